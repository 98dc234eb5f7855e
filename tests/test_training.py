"""Trainer: exact resume, atomic and safe checkpoints, signals, NaN guard, configs, smoke run."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from scoresde.data import get_dataset, load_array
from scoresde.distributed.ddp import default_device
from scoresde.losses import get_loss
from scoresde.nets import ResidualMLP
from scoresde.parameterization import ScoreModel
from scoresde.sde import VESDE, VPSDE, CustomBeta
from scoresde.training import TrainingDiverged, load_model, make_test_loss_hook, train
from scoresde.training.checkpoint import (
    FORMAT,
    CheckpointError,
    load_checkpoint,
    model_config,
    model_from_config,
    save_checkpoint,
)

ROOT = Path(__file__).resolve().parents[1]


def small_run(steps=30, data=None, loss=None, hidden=32, lr=3e-3, **kwargs):
    """Fresh objects (same initial weights on every call) and train's keyword arguments."""
    sde = VPSDE()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = ResidualMLP(2, hidden=hidden, depth=2, dropout=0.1)
    model = ScoreModel(net, sde)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    warmup = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: min(1.0, (k + 1) / 5))
    objects = (model, loss or get_loss("dsm", sde), data or get_dataset("8gaussians"), opt)
    options = {"steps": steps, "batch_size": 32, "log_every": 5, "ckpt_every": 10,
               "ema_decay": 0.9, "lr_schedule": warmup, "progress": False, **kwargs}  # fmt: skip
    return objects, options


def assert_same_weights(a, b):
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb), ka


@pytest.mark.parametrize("source", ["toy", "array"])
def test_interrupted_run_resumes_to_identical_weights(tmp_path, source):
    data = None
    if source == "array":  # a finite set: epoch permutations must resume too
        np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(50, 2)))
        data = load_array(tmp_path / "x.npy")

    def run(out, **kw):
        objects, options = small_run(steps=30, data=data)
        return train(*objects, out_dir=tmp_path / out, **{**options, **kw})

    full = run("full")
    part = run("part", stop_after=17)
    assert part.interrupted and part.step == 17
    assert load_checkpoint(tmp_path / "part" / "checkpoint.pt")["step"] == 17
    rest = run("part")
    assert rest.step == 30 and not rest.interrupted
    assert_same_weights(full.raw_model, rest.raw_model)
    assert_same_weights(full.model, rest.model)  # EMA
    rows = (tmp_path / "part" / "log.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["5", "10", "15", "20", "25", "30"]


def test_outputs_log_bins_eval_hook_and_load_model(tmp_path):
    objects, options = small_run(steps=20, eval_every=10, metadata={"note": "kept"})
    hook = make_test_loss_hook(objects[1], batch_size=200)
    res = train(*objects, out_dir=tmp_path, eval_hooks=[hook], **options)
    header = (tmp_path / "log.csv").read_text().splitlines()[0].split(",")
    assert header[:6] == ["step", "loss", "lr", "grad_norm", "nan_skips", "seconds"]
    assert len([h for h in header if h.startswith("loss_t")]) == 10
    ev = (tmp_path / "eval.csv").read_text().splitlines()
    assert ev[0] == "step,test_loss" and len(ev) == 3
    # load_model rebuilds network and SDE through their registries, without any run config
    model, scaler, shape, metadata = load_model(tmp_path / "checkpoint.pt")
    assert scaler.to_dict() == {"shift": 0.0, "scale": 1.0} and shape == (2,)
    assert metadata == {"note": "kept"} and model.sde.config() == res.model.sde.config()
    x, t = torch.randn(5, 2), torch.full((5,), 0.5)
    res.model.eval()
    torch.testing.assert_close(model.score_fn(x, t), res.model.score_fn(x, t))
    raw = load_model(tmp_path / "checkpoint.pt", use_ema=False).model
    torch.testing.assert_close(raw.score_fn(x, t), res.raw_model.eval().score_fn(x, t))


def test_model_config_names_the_net_and_sde_and_a_foreign_net_is_refused(tmp_path):
    sde = VESDE(sigma_max=10.0)
    net = ResidualMLP(2, hidden=8, depth=1)
    model = ScoreModel(net, sde, predicts="edm", sigma_data=0.7, x0_clip=2.0)
    cfg = model_config(model)
    assert cfg["net"]["name"] == "mlp" and cfg["net"]["hidden"] == 8 and cfg["sde"]["name"] == "ve"
    assert (cfg["predicts"], cfg["sigma_data"], cfg["x0_clip"]) == ("edm", 0.7, 2.0)
    twin = model_from_config(cfg)
    twin.load_state_dict(model.state_dict())
    x, t = torch.randn(4, 2), torch.full((4,), 0.3)
    torch.testing.assert_close(twin.score_fn(x, t), model.score_fn(x, t))
    foreign = ScoreModel(torch.nn.Linear(2, 2), sde)  # not a registered network: no config
    assert model_config(foreign) is None
    custom = VPSDE(schedule=CustomBeta(lambda t: 0.1 + 19.9 * t, lambda t: 0.1 * t + 9.95 * t**2))
    assert model_config(ScoreModel(net, custom)) is None  # sde_from_config cannot rebuild it
    save_checkpoint(tmp_path / "c.pt", {"model_config": None, "ema": {}, "model": {}})
    with pytest.raises(CheckpointError, match="holds no model config"):
        load_model(tmp_path / "c.pt")


def test_train_validates_its_arguments(tmp_path):
    (model, loss, data, opt), options = small_run(steps=3)
    cases = [
        ((model.net, loss, data, opt), {}, TypeError, "expected model a ScoreModel, received ResidualMLP"),
        ((model, "dsm", data, opt), {}, TypeError, "expected loss a scoresde.losses.Loss, received str"),
        ((model, loss, data.test, opt), {}, TypeError, "expected data a Dataset, received Tensor"),
        ((model, loss, data, opt), {"steps": 0}, ValueError, "expected steps an integer >= 1, received 0"),
        ((model, loss, data, opt), {"batch_size": 2.5}, ValueError, "batch_size an integer >= 1, received 2.5"),
        ((model, loss, data, opt), {"ema_decay": 1.0}, ValueError, r"ema_decay in \[0, 1\), received 1.0"),
        ((model, loss, data, opt), {"grad_clip": 0.0}, ValueError, "grad_clip > 0 or None, received 0.0"),
        ((model, get_loss("dsm", VESDE()), data, opt), {}, ValueError, "loss carries the SDE VESDE"),
        ((model, loss, data, torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=1.0)), {},
         ValueError, "optimizer holds parameters that are not the model's"),
    ]  # fmt: skip
    for args, kw, err, msg in cases:
        with pytest.raises(err, match=msg):
            train(*args, out_dir=tmp_path / "o", **{**options, **kw})
    assert not (tmp_path / "o").exists()  # nothing written before the checks


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
    torch.save({"format": FORMAT, "step": 0, "evil": payload}, tmp_path / "e.pt")
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


def test_nan_guard_skips_then_stops_keeping_last_good_checkpoint(tmp_path):
    (model, loss, data, opt), options = small_run(steps=12)
    res = train(model, _NaNLoss(loss, {3, 4}), data, opt, out_dir=tmp_path / "a", **options)
    assert res.nan_skips == 2 and res.step == 12
    assert all(torch.isfinite(p).all() for p in res.raw_model.parameters())
    (model, loss, data, opt), options = small_run(steps=40, max_nan_steps=4)
    with pytest.raises(TrainingDiverged, match="4 consecutive steps"):
        train(model, _NaNLoss(loss, range(13, 99)), data, opt, out_dir=tmp_path / "b", **options)
    state = load_checkpoint(tmp_path / "b" / "checkpoint.pt")
    assert state["step"] == 10 and all(torch.isfinite(v).all() for v in state["model"].values())


def test_smoke_8gaussians_improves_test_metric(tmp_path):
    from scoresde.likelihood import log_likelihood

    def run(out, **kw):
        sde = VPSDE()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = ScoreModel(ResidualMLP(2, hidden=64, depth=2), sde)
        loss = get_loss("dsm", sde, weighting="likelihood", t_sampling="importance")
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        data = get_dataset("8gaussians")
        return train(model, loss, data, opt, out_dir=tmp_path / out, steps=400, batch_size=256,
                     ema_decay=0.95, progress=False, **kw).model  # fmt: skip

    before, after = run("a", stop_after=1), run("b")
    x = get_dataset("8gaussians").test[:200]
    nll = []
    for m in (before, after):  # fixed-step RK4: cheap, and enough for a smoke test
        with torch.no_grad():
            res = log_likelihood(m.sde, m.score_fn, x, solver="rk4", options={"step_size": 0.005})
        nll.append(-float(res.log_prob.mean()))
    assert nll[1] < nll[0] - 1.0 and nll[1] < 4.0, nll


def test_default_device_and_time_limit(tmp_path):
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert default_device(None).type == expected
    objects, options = small_run(steps=10**6, time_limit=0.5)
    res = train(*objects, out_dir=tmp_path, **options)
    assert res.interrupted and 0 < res.step < 10**6
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == res.step


def test_ema_weights_are_the_closed_form_weighted_average(tmp_path):
    """After k optimizer steps with raw weights w_1..w_k (recorded one step at a time through
    exact resume), EMA = d^(k-1) w_1 + sum_{j>=2} (1 - d) d^(k-j) w_j: the first update copies
    the weights (torch's AveragedModel), each later one is ema <- d ema + (1 - d) w."""
    decay, k = 0.9, 4
    raw, res = [], None
    for step in range(1, k + 1):
        objects, options = small_run(steps=k, ema_decay=decay)
        res = train(*objects, out_dir=tmp_path, **{**options, "stop_after": 1})
        assert res.step == step
        raw.append({n: p.detach().clone() for n, p in res.raw_model.named_parameters()})
    coef = [decay ** (k - 1)] + [(1 - decay) * decay ** (k - j) for j in range(2, k + 1)]
    assert abs(sum(coef) - 1) < 1e-12
    ema = dict(res.model.named_parameters())
    for name, w_k in raw[-1].items():
        want = sum(c * w[name] for c, w in zip(coef, raw, strict=True))
        torch.testing.assert_close(ema[name].detach(), want, rtol=1e-5, atol=1e-6)
        assert not torch.allclose(want, w_k)  # the average is not just the last weights


def test_ema_warmup_ramps_the_decay_and_forgets_the_initial_weights(tmp_path):
    """With ema_warmup the update after n averaged steps uses d_n = min(d, (1 + n) / (10 + n)):
    EMA after k steps = prod_{j>=2} d_{j-1} w_1 + sum_{j>=2} (1 - d_{j-1}) prod_{i>j} d_{i-1} w_j,
    each step recorded through exact resume (so the count survives a checkpoint)."""
    from scoresde.training.steps import ema_decay_at

    assert ema_decay_at(0.999, 1, True) == 2 / 11 and ema_decay_at(0.999, 1, False) == 0.999
    assert ema_decay_at(0.999, 10**6, True) == 0.999
    decay, k = 0.99, 4
    raw, res = [], None
    for step in range(1, k + 1):
        objects, options = small_run(steps=k, ema_decay=decay, ema_warmup=True)
        res = train(*objects, out_dir=tmp_path, **{**options, "stop_after": 1})
        assert res.step == step
        raw.append({n: p.detach().clone() for n, p in res.raw_model.named_parameters()})
    d = {j: min(decay, j / (9 + j)) for j in range(2, k + 1)}  # decay of update j (n = j - 1)
    coef = [float(np.prod([d[i] for i in range(2, k + 1)]))]
    coef += [
        (1 - d[j]) * float(np.prod([d[i] for i in range(j + 1, k + 1)])) for j in range(2, k + 1)
    ]
    assert abs(sum(coef) - 1) < 1e-12 and coef[0] < 0.2  # without warm-up it would be 0.97
    ema = dict(res.model.named_parameters())
    for name in raw[-1]:
        want = sum(c * w[name] for c, w in zip(coef, raw, strict=True))
        torch.testing.assert_close(ema[name].detach(), want, rtol=1e-5, atol=1e-6)
    objects, options = small_run(steps=2, ema_warmup=1)
    with pytest.raises(TypeError, match="expected ema_warmup a bool, received int"):
        train(*objects, out_dir=tmp_path / "bad", **options)
