"""Trainer: exact resume, atomic and safe checkpoints, signals, NaN guard, configs, smoke run."""

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

import scoresde.training as training
from scoresde.config import RunConfig
from scoresde.training import TrainingDiverged, make_test_loss_hook, train
from scoresde.training_ckpt import CheckpointError, load_checkpoint, load_model, save_checkpoint

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


@pytest.mark.parametrize("data", ["toy", "array"])
def test_interrupted_run_resumes_to_identical_weights(tmp_path, data):
    cfg = small_config(steps=30)
    if data == "array":  # a finite set: epoch permutations must resume too
        np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(50, 2)))
        cfg.data.name, cfg.data.kwargs = "array", {"path": str(tmp_path / "x.npy")}
    full = train(cfg, tmp_path / "full", progress=False)
    part = train(cfg, tmp_path / "part", progress=False, stop_after=17)
    assert part.interrupted and part.step == 17
    assert load_checkpoint(tmp_path / "part" / "checkpoint.pt")["step"] == 17
    rest = train(cfg, tmp_path / "part", progress=False)
    assert rest.step == 30 and not rest.interrupted
    assert_same_weights(full.raw_model, rest.raw_model)
    assert_same_weights(full.model, rest.model)  # EMA
    rows = (tmp_path / "part" / "log.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["5", "10", "15", "20", "25", "30"]


def test_outputs_log_bins_eval_hook_and_load_model(tmp_path):
    cfg = small_config(steps=20, eval_every=10)
    res = train(
        cfg,
        tmp_path,
        progress=False,
        eval_hooks=[
            make_test_loss_hook(
                training.build_loss(cfg.loss, training.build_sde(cfg)), batch_size=200
            )
        ],
    )
    header = (tmp_path / "log.csv").read_text().splitlines()[0].split(",")
    assert header[:6] == ["step", "loss", "lr", "grad_norm", "nan_skips", "seconds"]
    assert len([h for h in header if h.startswith("loss_t")]) == 10
    ev = (tmp_path / "eval.csv").read_text().splitlines()
    assert ev[0] == "step,test_loss" and len(ev) == 3
    assert RunConfig.load(tmp_path / "config.json") == cfg
    model, cfg2, scaler = load_model(tmp_path / "checkpoint.pt")
    assert cfg2 == cfg and scaler.to_dict() == {"shift": 0.0, "scale": 1.0}
    x, t = torch.randn(5, 2), torch.full((5,), 0.5)
    res.model.eval()
    torch.testing.assert_close(model.score_fn(x, t), res.model.score_fn(x, t))


def test_atomic_checkpoint_survives_a_crash_midway(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"step": 1, "w": torch.ones(3)})

    def crash(obj, fh):  # write half a file, then die
        fh.write(b"PK\x03\x04 partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"step": 2, "w": torch.zeros(3)})
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temporary left


def test_truncated_foreign_and_missing_checkpoints(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"step": 3, "w": torch.randn(1000)})
    data = path.read_bytes()
    (tmp_path / "trunc.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(tmp_path / "trunc.pt")
    torch.save({"weights": torch.ones(2)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a scoresde checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "nope.pt")


class _Payload:
    marker = ""

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_pickle_carrying_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "code_ran"
    payload = _Payload()
    payload.marker = str(marker)
    torch.save({"format": "scoresde-checkpoint-v1", "step": 0, "evil": payload}, tmp_path / "e.pt")
    with pytest.raises(CheckpointError, match="refusing to load"):
        load_checkpoint(tmp_path / "e.pt")
    assert not marker.exists()


class _NaNLoss:
    """Wraps a loss; the listed (0-based) calls return NaN."""

    def __init__(self, inner, bad):
        self.inner, self.bad, self.calls = inner, set(bad), 0

    def draw(self, x0, generator=None):
        return self.inner.draw(x0, generator)

    def terms(self, model, x0, t, noise):
        out = self.inner.terms(model, x0, t, noise)
        self.calls += 1
        return out * float("nan") if self.calls - 1 in self.bad else out


def test_nan_guard_skips_then_stops_keeping_last_good_checkpoint(tmp_path, monkeypatch):
    real = training.build_loss
    monkeypatch.setattr(training, "build_loss", lambda c, s: _NaNLoss(real(c, s), {3, 4}))
    res = train(small_config(steps=12), tmp_path / "a", progress=False)
    assert res.nan_skips == 2 and res.step == 12
    assert all(torch.isfinite(p).all() for p in res.raw_model.parameters())
    monkeypatch.setattr(training, "build_loss", lambda c, s: _NaNLoss(real(c, s), range(13, 99)))
    cfg = small_config(steps=40, max_nan_steps=4)
    with pytest.raises(TrainingDiverged, match="4 consecutive steps"):
        train(cfg, tmp_path / "b", progress=False)
    state = load_checkpoint(tmp_path / "b" / "checkpoint.pt")
    assert state["step"] == 10 and all(torch.isfinite(v).all() for v in state["model"].values())


def _spawn(cfg, out, tmp_path):
    cfg.save(tmp_path / "cfg.json")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "scoresde.training",
        "--config",
        str(tmp_path / "cfg.json"),
        "--out",
        str(out),
        "--no-progress",
    ]
    return subprocess.Popen(cmd, env=env, cwd=ROOT, stderr=subprocess.PIPE)


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
        assert rc == 130 and 0 < step < 4000  # saved where it stopped, then exited
    else:
        assert rc == -signal.SIGKILL and step % 20 == 0
    cfg.schedule.steps, cfg.schedule.ckpt_every = step + 15, 20
    resumed = train(cfg, tmp_path / "run", progress=False)
    full = train(cfg, tmp_path / "full", progress=False)
    assert_same_weights(full.raw_model, resumed.raw_model)


def test_smoke_8gaussians_improves_test_metric(tmp_path):
    cfg = RunConfig.from_dict(
        {
            "net": {"kwargs": {"hidden": 64, "depth": 2}},
            "optim": {"lr": 3e-3, "ema_decay": 0.95},
            "loss": {"weighting": "likelihood", "t_sampling": "importance"},
            "schedule": {"steps": 400, "batch_size": 256, "log_every": 100, "ckpt_every": 400},
        }
    )
    before = train(cfg, tmp_path / "a", progress=False, stop_after=1).model
    after = train(cfg, tmp_path / "b", progress=False).model
    data = training.build_data(cfg)
    x = data.test[:500]
    try:
        from scoresde.likelihood import log_likelihood
    except ImportError:
        try:
            from scoresde.likelihood.ode import log_likelihood
        except ImportError:  # no likelihood module: fall back to the test loss
            log_likelihood = None
    if log_likelihood is None:
        hook = make_test_loss_hook(training.build_loss(cfg.loss, training.build_sde(cfg)))
        lb, la = (hook(0, m, data)["test_loss"] for m in (before, after))
        assert la < 0.75 * lb  # the loss has a large irreducible part; the NLL falls far more
        return
    sde = training.build_sde(cfg)
    nll = []
    for m in (before, after):  # fixed-step RK4: cheap, and enough for a smoke test
        with torch.no_grad():
            res = log_likelihood(
                sde, m.score_fn, x[:200], solver="rk4", options={"step_size": 0.005}
            )
        nll.append(-float(res.log_prob.mean()))
    assert nll[1] < nll[0] - 1.0 and nll[1] < 4.0, nll


def test_config_roundtrip_and_validation(tmp_path):
    cfg = small_config()
    assert RunConfig.from_json(cfg.to_json()) == cfg == RunConfig.from_yaml(cfg.to_yaml())
    cfg.save(tmp_path / "c.yaml")
    assert RunConfig.load(tmp_path / "c.yaml") == cfg
    bad = [
        ({"sde": {"name": "vpp"}}, r"unknown sde.name 'vpp'; valid: \['subvp', 've', 'vp'\]"),
        ({"net": {"name": "transformer"}}, r"valid: \['mlp', 'unet'\]"),
        ({"data": {"name": "cifar10"}}, "unknown data.name 'cifar10'; valid:"),
        ({"loss": {"weighting": "snr"}}, "unknown loss.weighting"),
        ({"optim": {"lr": -1e-3}}, r"optim.lr: expected a finite number > 0, received -0.001"),
        ({"optim": {"name": "sgd"}}, r"valid: \['adam', 'adamw'\]"),
        ({"schedule": {"batch_size": 0}}, "schedule.batch_size: expected an integer >= 1"),
        ({"schedule": {"stepz": 3}}, r"unknown keys \['stepz'\] in section 'schedule'"),
        ({"trainer": {}}, "unknown config sections"),
    ]
    for d, msg in bad:
        with pytest.raises(ValueError, match=msg):
            RunConfig.from_dict(d)
    with pytest.raises(FileNotFoundError, match="config file not found"):
        RunConfig.load(tmp_path / "missing.yaml")


def test_bad_data_and_world_size_errors(tmp_path):
    bad = np.ones((20, 2))
    bad[0, 0] = np.nan
    np.save(tmp_path / "bad.npy", bad)
    cfg = small_config()
    cfg.data.name, cfg.data.kwargs = "array", {"path": str(tmp_path / "bad.npy")}
    with pytest.raises(ValueError, match="finite"):
        train(cfg, tmp_path / "o", progress=False)
    cfg.data.kwargs = {"path": str(tmp_path / "missing.npy")}
    with pytest.raises(FileNotFoundError):
        train(cfg, tmp_path / "o", progress=False)
    cfg = small_config()
    cfg.net.name = "unet"
    with pytest.raises(ValueError, match="square images"):
        train(cfg, tmp_path / "o", progress=False)


def test_default_device_and_time_limit(tmp_path):
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert training._default_device(None).type == expected
    res = train(small_config(steps=10**6), tmp_path, progress=False, time_limit=0.5)
    assert res.interrupted and 0 < res.step < 10**6
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == res.step


def test_unet_on_digits_with_ddpm_loss_runs(tmp_path):
    cfg = RunConfig.from_dict(
        {
            "data": {"name": "digits"},
            "net": {"name": "unet", "predicts": "v", "kwargs": {"base_channels": 8}},
            "loss": {"name": "ddpm", "num_steps": 100},
            "schedule": {"steps": 3, "batch_size": 8, "log_every": 1, "ckpt_every": 3},
        }
    )
    res = train(cfg, tmp_path, progress=False)
    assert res.step == 3 and res.nan_skips == 0
    model, _, scaler = load_model(tmp_path / "checkpoint.pt")
    assert scaler.to_dict() == {"shift": 8.0, "scale": 8.5}  # [-1/2, 16.5] -> [-1, 1]
    assert model.score_fn(torch.randn(2, 1, 8, 8), torch.tensor(0.5)).shape == (2, 1, 8, 8)


def test_warmup_and_cosine_schedule():
    from scoresde.config import OptimConfig
    from scoresde.config_build import build_optimizer

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


def test_ema_weights_are_the_closed_form_weighted_average(tmp_path):
    """After k optimizer steps with raw weights w_1..w_k (recorded one step at a time through
    exact resume), EMA = d^(k-1) w_1 + sum_{j>=2} (1 - d) d^(k-j) w_j: the first update copies
    the weights (torch's AveragedModel), each later one is ema <- d ema + (1 - d) w."""
    decay, k = 0.9, 4
    cfg = small_config(steps=k)
    raw, res = [], None
    for step in range(1, k + 1):
        res = train(cfg, tmp_path, progress=False, stop_after=1)
        assert res.step == step
        raw.append({n: p.detach().clone() for n, p in res.raw_model.named_parameters()})
    coef = [decay ** (k - 1)] + [(1 - decay) * decay ** (k - j) for j in range(2, k + 1)]
    assert abs(sum(coef) - 1) < 1e-12
    ema = dict(res.model.named_parameters())
    for name, w_k in raw[-1].items():
        want = sum(c * w[name] for c, w in zip(coef, raw, strict=True))
        torch.testing.assert_close(ema[name].detach(), want, rtol=1e-5, atol=1e-6)
        assert not torch.allclose(want, w_k)  # the average is not just the last weights
