"""Run configs and ``scoresde train``: validation, builders, signals and resume from the CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from scoresde.cli.build import build_optimizer, train_from_config
from scoresde.cli.config import OptimConfig, RunConfig
from scoresde.training import load_checkpoint, load_model
from tests.procs import spawn

ROOT = Path(__file__).resolve().parents[1]


def small_config(steps=30, **schedule):
    return RunConfig.from_dict(
        {
            "net": {"kwargs": {"hidden": 32, "depth": 2, "dropout": 0.1}},
            "optim": {"lr": 3e-3, "warmup_steps": 5, "ema_decay": 0.9},
            "schedule": {
                "steps": steps,
                "batch_size": 32,
                "log_every": 5,
                "ckpt_every": 10,
                **schedule,
            },
        }
    )


def assert_same_weights(a, b):
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb), ka


def _spawn(cfg, out, tmp_path):
    cfg.save(tmp_path / "cfg.json")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "scoresde",
        "train",
        "--config",
        str(tmp_path / "cfg.json"),
        "--out",
        str(out),
        "--device",
        "cpu",
        "--quiet",
    ]
    return spawn(cmd, env=env, cwd=ROOT, stderr=subprocess.PIPE)


def _wait_for(path, proc, min_lines=0, timeout=60.0):
    t0 = time.time()
    while not path.is_file() or len(path.read_bytes().splitlines()) < min_lines:
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.time() - t0 < timeout
        time.sleep(0.05)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("how", ["sigterm", "kill9"])
def test_signal_and_kill9_then_resume(tmp_path, how):
    # SIGTERM: no periodic checkpoint, so a checkpoint can only come from the signal handler.
    cfg = small_config(steps=4000, ckpt_every=10**6 if how == "sigterm" else 20)
    proc = _spawn(cfg, tmp_path / "run", tmp_path)
    if how == "sigterm":  # wait for the first log rows: the handler is installed by then
        _wait_for(tmp_path / "run" / "log.csv", proc, min_lines=3)
    else:
        _wait_for(tmp_path / "run" / "checkpoint.pt", proc)
        time.sleep(0.3)
    proc.send_signal(signal.SIGTERM if how == "sigterm" else signal.SIGKILL)
    rc = proc.wait(timeout=60)
    step = load_checkpoint(tmp_path / "run" / "checkpoint.pt")["step"]
    if how == "sigterm":
        assert rc == 143 and 0 < step < 4000  # saved where it stopped, exit 128 + SIGTERM
    else:
        assert rc == -signal.SIGKILL and step % 20 == 0
    cfg.schedule.steps, cfg.schedule.ckpt_every = step + 15, 20
    resumed = train_from_config(cfg, tmp_path / "run", progress=False, device="cpu")
    full = train_from_config(cfg, tmp_path / "full", progress=False, device="cpu")
    assert_same_weights(full.raw_model, resumed.raw_model)


def test_config_roundtrip_and_validation(tmp_path):
    cfg = small_config()
    assert RunConfig.from_json(cfg.to_json()) == cfg == RunConfig.from_yaml(cfg.to_yaml())
    cfg.save(tmp_path / "c.yaml")
    assert RunConfig.load(tmp_path / "c.yaml") == cfg
    bad = [
        ({"sde": {"name": "vpp"}}, "unknown sde.name 'vpp'; expected one of 'subvp', 've', 'vp'"),
        ({"net": {"name": "transformer"}}, "expected one of 'mlp', 'unet'"),
        ({"data": {"name": "cifar10"}}, "unknown data.name 'cifar10'; expected one of '2spirals'"),
        ({"loss": {"weighting": "snr"}}, "unknown loss.weighting"),
        ({"optim": {"lr": -1e-3}}, r"optim.lr: expected a finite number > 0, received -0.001"),
        ({"optim": {"name": "sgd"}}, "expected one of 'adam', 'adamw'"),
        ({"schedule": {"batch_size": 0}}, "schedule.batch_size: expected an integer >= 1"),
        ({"schedule": {"stepz": 3}}, r"unknown keys \['stepz'\] in section 'schedule'"),
        ({"trainer": {}}, "unknown config sections"),
    ]
    for d, msg in bad:
        with pytest.raises(ValueError, match=msg):
            RunConfig.from_dict(d)
    with pytest.raises(FileNotFoundError, match="expected an existing file"):
        RunConfig.load(tmp_path / "missing.yaml")


def test_bad_data_and_net_errors(tmp_path):
    bad = np.ones((20, 2))
    bad[0, 0] = np.nan
    np.save(tmp_path / "bad.npy", bad)
    cfg = small_config()
    cfg.data.name, cfg.data.kwargs = "array", {"path": str(tmp_path / "bad.npy")}
    with pytest.raises(ValueError, match="finite"):
        train_from_config(cfg, tmp_path / "o", progress=False)
    cfg.data.kwargs = {"path": str(tmp_path / "missing.npy")}
    with pytest.raises(FileNotFoundError):
        train_from_config(cfg, tmp_path / "o", progress=False)
    cfg = small_config()
    cfg.net.name = "unet"
    with pytest.raises(ValueError, match="square images"):
        train_from_config(cfg, tmp_path / "o", progress=False)


def test_unet_on_digits_with_ddpm_loss_runs(tmp_path):
    cfg = RunConfig.from_dict(
        {
            "data": {"name": "digits"},
            "net": {"name": "unet", "predicts": "v", "kwargs": {"base_channels": 8}},
            "loss": {"name": "ddpm", "num_steps": 100},
            "schedule": {"steps": 3, "batch_size": 8, "log_every": 1, "ckpt_every": 3},
        }
    )
    res = train_from_config(cfg, tmp_path, progress=False)
    assert res.step == 3 and res.nan_skips == 0
    assert RunConfig.load(tmp_path / "config.json") == cfg
    model, scaler, shape, metadata = load_model(tmp_path / "checkpoint.pt")
    assert shape == (1, 8, 8) and RunConfig.from_dict(metadata["run_config"]) == cfg
    assert scaler.to_dict() == {"shift": 8.0, "scale": 8.5}  # [-1/2, 16.5] -> [-1, 1]
    assert model.score_fn(torch.randn(2, 1, 8, 8), torch.tensor(0.5)).shape == (2, 1, 8, 8)


def test_warmup_and_cosine_schedule():
    w = [torch.nn.Parameter(torch.zeros(2))]
    opt, sched = build_optimizer(OptimConfig(lr=1.0, warmup_steps=4, lr_decay="cosine"), w, 14)
    lrs = []
    for _ in range(14):
        lrs.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert lrs[9] == pytest.approx(0.5) and lrs[13] == pytest.approx(0.0245, abs=1e-3)
    with pytest.raises(ValueError, match="unknown optim.lr_decay"):
        RunConfig.from_dict({"optim": {"lr_decay": "step"}})
