"""DDP: ``scoresde train`` under torchrun (2 gloo processes) matches one process with the same batch."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

from scoresde.cli.build import train_from_config
from scoresde.cli.config import RunConfig
from scoresde.training import load_checkpoint
from tests.procs import run

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(120)
def test_two_process_gloo_matches_single_process(tmp_path):
    cfg = RunConfig.from_dict(
        {
            "net": {"kwargs": {"hidden": 32, "depth": 2}},
            "optim": {"lr": 3e-3, "ema_decay": 0.9, "grad_clip": 0.5},
            "schedule": {"steps": 8, "batch_size": 64, "log_every": 4, "ckpt_every": 8},
        }
    )
    cfg.save(tmp_path / "cfg.json")
    single = train_from_config(cfg, tmp_path / "single", progress=False, device="cpu")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "scoresde",
        "train",
        "--config",
        str(tmp_path / "cfg.json"),
        "--out",
        str(tmp_path / "ddp"),
        "--device",
        "cpu",
        "--quiet",
    ]
    proc = run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=110)
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = load_checkpoint(tmp_path / "ddp" / "checkpoint.pt")
    assert state["step"] == 8 and state["world_size"] == 2
    for key, value in single.raw_model.state_dict().items():
        torch.testing.assert_close(state["model"][key], value, rtol=1e-4, atol=1e-5, msg=key)
    rows = (tmp_path / "ddp" / "log.csv").read_text().splitlines()
    assert len(rows) == 3  # rank 0 alone logs: header + steps 4 and 8
    # the logged loss is the all-reduced mean over ranks: the full-batch loss (issue #12, item 11)
    single_rows = (tmp_path / "single" / "log.csv").read_text().splitlines()
    for ddp_row, one_row in zip(rows[1:], single_rows[1:], strict=True):
        assert float(ddp_row.split(",")[1]) == pytest.approx(float(one_row.split(",")[1]), rel=1e-4)
