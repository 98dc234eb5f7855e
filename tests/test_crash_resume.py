"""``kill -9`` at random points, resume, and compare with an uninterrupted run (issue #12).

A training run (tiny MLP, with an eval hook so that ``eval.csv`` is written) is killed with
SIGKILL at random moments ten times, each time resumed from its folder, then run to the end. Its
final checkpoint (weights, EMA, optimizer, LR schedule, every RNG state, counters, the log's
running sums) and its ``log.csv``/``eval.csv`` (timing column aside) must equal those of one
uninterrupted run, and no temporary file may be left in the folder.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from scoresde.cli.config import RunConfig
from scoresde.training import load_checkpoint
from tests.procs import spawn

ROOT = Path(__file__).resolve().parents[1]
KILLS = 10

CHILD = """
import sys
from scoresde.cli.build import build_loss, build_sde, train_from_config
from scoresde.cli.config import RunConfig
from scoresde.training import make_test_loss_hook
cfg = RunConfig.load(sys.argv[1])
hook = make_test_loss_hook(build_loss(cfg.loss, build_sde(cfg)), batch_size=64)
train_from_config(cfg, sys.argv[2], progress=False, device="cpu", eval_hooks=[hook])
"""


def _spawn(cfg_path: Path, out: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-c", CHILD, str(cfg_path), str(out)]
    return spawn(cmd, env=env, cwd=ROOT, stderr=subprocess.PIPE)


def _same(a: Any, b: Any, where: str = "") -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), where
        for k in a:
            _same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def _rows(path: Path) -> list[list[str]]:
    lines = [r.split(",") for r in path.read_text().splitlines()]
    drop = lines[0].index("seconds") if "seconds" in lines[0] else -1
    return [[c for i, c in enumerate(r) if i != drop] for r in lines]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_kill9_ten_times_then_resume_equals_an_uninterrupted_run(tmp_path):
    cfg = RunConfig.from_dict(
        {
            "net": {"kwargs": {"hidden": 16, "depth": 2, "dropout": 0.1}},
            "optim": {"lr": 2e-3, "warmup_steps": 10, "lr_decay": "cosine", "ema_decay": 0.9},
            "schedule": {"steps": 1000, "batch_size": 16, "log_every": 5, "ckpt_every": 3,
                         "eval_every": 4},
        }
    )  # fmt: skip
    cfg.save(tmp_path / "cfg.json")
    run, rng, kills = tmp_path / "run", random.Random(12), 0
    while kills < KILLS:
        proc = _spawn(tmp_path / "cfg.json", run)
        t0 = time.time()  # wait until this process is training (its log has grown), then kill
        n0 = len((run / "log.csv").read_text().splitlines()) if (run / "log.csv").exists() else 0
        while (
            not (run / "log.csv").exists()
            or len((run / "log.csv").read_text().splitlines()) <= n0 + 1
        ):
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.time() - t0 < 120
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.25))
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL
        proc.stderr.close()
        kills += 1
    step_at_last_kill = load_checkpoint(run / "checkpoint.pt")["step"]
    assert step_at_last_kill < cfg.schedule.steps  # the kills really interrupted the run
    for out in (run, tmp_path / "full"):
        proc = _spawn(tmp_path / "cfg.json", out)
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()[-2000:]
    resumed, full = (load_checkpoint(p / "checkpoint.pt") for p in (run, tmp_path / "full"))
    assert resumed["step"] == full["step"] == cfg.schedule.steps
    for key in ("model", "ema", "optimizer", "scheduler", "rng", "nan_skips", "log_state"):
        _same(resumed[key], full[key], key)
    for name in ("log.csv", "eval.csv"):
        assert _rows(run / name) == _rows(tmp_path / "full" / name), name
    assert not [p.name for p in run.iterdir() if p.name.endswith(".tmp")]
