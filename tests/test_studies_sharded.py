"""A study spec on 2 ranks (forked as torchrun would, and the real torchrun) gives the cells,
floor and factor tables of one process: sharding is a way of running a study's cells."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from scoresde.cli import main
from tests.sharded_launch import launch

ROOT = Path(__file__).resolve().parents[1]
SPEC = {"samplers": ["ddim", "euler_maruyama"], "nfe": [3], "seeds": [0, 1], "n": 40,
        "metrics": ["sw2"], "factors": {"t_end": [1e-3, 1e-2]}, "floor_repeats": 2}  # fmt: skip
TIMING = ("wall_time_s", "cpu_time_s", "us_per_sample")


def _argv(spec: Path, out: Path) -> list[str]:
    return ["compare", "--analytic", "2modes", "--spec", str(spec), "--out", str(out), "--quiet",
            "--device", "cpu"]  # fmt: skip


def _cells(out: Path) -> list[dict]:
    rows = [json.loads(line) for line in (out / "cells.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def _same_study(a: Path, b: Path) -> None:
    assert _cells(a) == _cells(b) and len(_cells(a)) == 2 * 2 * 2
    assert json.loads((a / "floor.json").read_text()) == json.loads((b / "floor.json").read_text())
    ra, rb = (json.loads((p / "results.json").read_text()) for p in (a, b))
    assert ra["by_factor"] == rb["by_factor"] and "t_end" in ra["by_factor"]
    assert ra["ranking"]["sw2"]["budgets"] == rb["ranking"]["sw2"]["budgets"]
    assert json.loads((b / "env.json").read_text())["world_size"] == 2


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("study")
    spec = tmp / "spec.json"
    spec.write_text(json.dumps(SPEC))
    assert main(_argv(spec, tmp / "single")) == 0
    return spec, tmp / "single"


@pytest.mark.timeout(120)
def test_spec_on_two_forked_ranks_gives_the_cells_of_one_process(single, tmp_path: Path) -> None:
    spec, one = single
    out = tmp_path / "ranks2"

    def rank_main(rank: int) -> int:
        import scoresde._launcher

        scoresde._launcher.LAUNCHER_PID = os.getppid()  # the forking test process launches
        return main(_argv(spec, out) + ["--timeout", "60"])

    res = launch(rank_main, 2, timeout=100)
    assert res == {0: ("ok", 0), 1: ("ok", 0)}, res
    _same_study(one, out)


@pytest.mark.timeout(200)
def test_spec_under_torchrun_gives_the_cells_of_one_process(single, tmp_path: Path) -> None:
    spec, one = single
    out = tmp_path / "torchrun"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "scoresde", *_argv(spec, out)]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    try:
        _, err = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # torchrun and both ranks
        proc.communicate()
        pytest.fail("torchrun study did not finish in 180 s")
    assert proc.returncode == 0, err[-3000:]
    _same_study(one, out)
