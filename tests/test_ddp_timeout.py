"""A frozen rank (SIGSTOP) under torchrun ends the job with an error after the process-group
timeout (``SCORESDE_PG_TIMEOUT``) instead of hanging; the last good checkpoint survives."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scoresde.cli.config import RunConfig
from scoresde.training import load_checkpoint
from tests.procs import kill_group, spawn

ROOT = Path(__file__).resolve().parents[1]


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_frozen_rank_ends_in_an_error_after_the_timeout(tmp_path):
    cfg = RunConfig.from_dict({"net": {"kwargs": {"hidden": 16, "depth": 2}},
                               "schedule": {"steps": 10**6, "batch_size": 16, "log_every": 5,
                                            "ckpt_every": 10}})  # fmt: skip
    cfg.save(tmp_path / "cfg.json")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
           "SCORESDE_PG_TIMEOUT": "5"}  # fmt: skip
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "scoresde", "train", "--config", str(tmp_path / "cfg.json"), "--out",
           str(tmp_path / "ddp"), "--device", "cpu", "--quiet"]  # fmt: skip
    proc = spawn(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    t0 = time.time()
    while not (tmp_path / "ddp" / "checkpoint.pt").is_file():
        assert proc.poll() is None and time.time() - t0 < 90
        time.sleep(0.1)
    workers = [c for p in _children(proc.pid) for c in [p, *_children(p)]]
    ranks = sorted(set(workers))[-1:]  # the last started worker
    os.kill(ranks[0], signal.SIGSTOP)
    try:
        t1 = time.time()
        out, err = proc.communicate(timeout=120)
        assert proc.returncode != 0 and time.time() - t1 < 90
    finally:
        for p in ranks:
            try:
                os.kill(p, signal.SIGCONT)
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        kill_group(proc)
    assert load_checkpoint(tmp_path / "ddp" / "checkpoint.pt")["step"] % 10 == 0
