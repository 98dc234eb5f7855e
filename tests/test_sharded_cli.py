"""``scoresde sample | nll | compare`` on 1, 2 and 3 ranks: the same files, written by rank 0.

The ranks are forked with torchrun's environment (``tests/sharded_launch.py``) and call the
CLI's ``main``; the slow test launches the real ``torchrun`` (2 ranks, all three commands).
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scoresde.cli import main
from tests.sharded_launch import launch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("train")
    argv = [
        "train",
        "--data",
        "8gaussians",
        "--steps",
        "4",
        "--batch-size",
        "32",
        "--out",
        str(out),
        "--quiet",
        "--device",
        "cpu",
    ]
    assert main(argv) == 0
    return str(out / "checkpoint.pt")


def _commands(ckpt: str, out: Path) -> list[list[str]]:
    common = ["--quiet", "--device", "cpu", "--timeout", "60"]
    return [
        [
            "sample",
            "--ckpt",
            ckpt,
            "--sampler",
            "euler_maruyama",
            "--nfe",
            "6",
            "-n",
            "7",
            "--shard-size",
            "3",
            "--out",
            str(out / "sample"),
            *common,
        ],
        [
            "nll",
            "--ckpt",
            ckpt,
            "--data",
            "8gaussians",
            "-n",
            "5",
            "--rtol",
            "1e-2",
            "--divergence",
            "hutchinson",
            "--shard-size",
            "2",
            "--out",
            str(out / "nll"),
            *common,
        ],
        [
            "compare",
            "--analytic",
            "2modes",
            "--samplers",
            "ddim,euler_maruyama",
            "--nfe",
            "4",
            "--seeds",
            "0,1",
            "-n",
            "30",
            "--metrics",
            "sw2",
            "--out",
            str(out / "compare"),
            *common,
        ],
    ]


def _outputs(out: Path) -> dict[str, object]:
    study = list(csv.DictReader((out / "compare" / "sampler_study.csv").open()))
    for row in study:
        for k in ("wall_time_s", "cpu_time_s", "us_per_sample"):
            row.pop(k)
    return {
        "samples": np.load(out / "sample" / "samples.npy"),
        "nll": (out / "nll" / "nll.csv").read_text(),
        "study": study,
    }


def _check_same(a: dict[str, object], b: dict[str, object]) -> None:
    assert np.array_equal(a["samples"], b["samples"])
    assert a["nll"] == b["nll"] and a["study"] == b["study"]


@pytest.mark.timeout(120)
def test_cli_same_files_on_one_and_three_ranks(ckpt: str, tmp_path: Path) -> None:
    single, out = tmp_path / "single", tmp_path / "ranks3"
    commands = _commands(ckpt, single)[:2]  # sample and nll (compare: the slow test)
    for argv in commands:
        assert main(argv) == 0, argv
    res = launch(lambda rank: [main(a) for a in _commands(ckpt, out)[:2]], 3, timeout=100)
    assert res == dict.fromkeys(range(3), ("ok", [0, 0])), res
    assert np.array_equal(
        np.load(out / "sample" / "samples.npy"), np.load(single / "sample" / "samples.npy")
    )
    nll = (single / "nll" / "nll.csv").read_text()
    assert (out / "nll" / "nll.csv").read_text() == nll and len(nll.splitlines()) == 6
    names = sorted(p.name for p in (out / "sample").iterdir())
    assert names == [
        ".scoresde.lock",  # the run folder's lock and owner mark
        "config.json",
        "report.md",
        "results.json",
        "samples.npy",
        "samples.png",
        "shards",
    ]
    for cmd in ("sample", "nll"):  # every text file as one process writes it
        for name in ("results.json", "report.md", "config.json"):
            text = (out / cmd / name).read_text().replace("ranks3", "single")
            assert text == (single / cmd / name).read_text(), (cmd, name)


@pytest.mark.timeout(60)
def test_cli_failed_rank_exits_with_one_line(ckpt: str, tmp_path: Path) -> None:
    argv = _commands(ckpt, tmp_path)[1]

    def job(rank: int) -> int:
        if rank == 1:
            import scoresde.distributed.jobs as jobs

            def broken(*a, **k):
                raise ValueError("no data here")

            jobs.log_likelihood = broken  # this rank's likelihood fails
        return main(argv)

    res = launch(job, 2, timeout=40, log=str(tmp_path / "err"))
    assert res[0] == ("ok", 1) and res[1] == ("ok", 2)
    err = (tmp_path / "err.0").read_text().strip().splitlines()
    assert err[-1] == "scoresde nll: error: rank 1 failed: ValueError: no data here"
    assert not (tmp_path / "nll" / "nll.csv").exists()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_cli_under_torchrun(ckpt: str, tmp_path: Path) -> None:
    single, ranks = tmp_path / "single", tmp_path / "torchrun"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    for argv in _commands(ckpt, single):
        assert main(argv) == 0
    for argv in _commands(ckpt, ranks):
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "scoresde",
            *argv,
        ]
        proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=280)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert proc.stdout.count("wrote") == 1  # rank 0 alone reports
    _check_same(_outputs(ranks), _outputs(single))
