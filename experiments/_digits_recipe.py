"""The digits recipe: data stream (dequantized, optionally shifted), run config, ELBO in bits/dim.

Shared by ``experiments/digits.py`` (the full run) and ``experiments/digits_screen.py`` (the
screening of variants on a held-out part of the training split); ``experiments/mnist.py`` uses
its CPU-budgeted chunked training, :func:`train_in_chunks`.

Splits of scikit-learn's digits (:func:`scoresde.data.load_digits`: 300 test images, i % 6 == 0,
and 1497 training images, indexed j = 0..1496 in order):

    part="all"      train on all 1497 training images; the monitored set is the test set
                    (monitoring only: nothing is selected on it).
    part="screen"   train on j % 3 == 1 (499 images), monitor and select on j % 3 == 0 (499
                    images, the held-out part of the training split); the test set is not touched.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from scoresde.cli.build import train_from_config
from scoresde.cli.config import RunConfig
from scoresde.data import DATASETS, Dataset, Scaler, load_digits
from scoresde.data.augment import random_shift
from scoresde.parameterization import ScoreModel
from scoresde.training.checkpoint import load_checkpoint, load_model

LEVELS = 17
DATA_NAME = "digits_dequantized"
MONITOR_DEQUANT_SEED = 17  # the fixed dequantization of the monitored images (test loss)
PARTS = ("all", "screen")


def split(part: str) -> tuple[Tensor, Tensor]:
    """``(train_levels, monitored_levels)`` of a part (module docstring), shape ``(n, 1, 8, 8)``."""
    if part not in PARTS:
        raise ValueError(f"digits split: expected part in {PARTS}, received {part!r}")
    base = load_digits()
    if part == "all":
        return base.train, base.test
    j = torch.arange(base.train.shape[0])
    return base.train[j % 3 == 1], base.train[j % 3 == 0]


def load_digits_dequantized(part: str = "all", aug_p: float = 0.0, max_shift: int = 1) -> Dataset:
    """Digits in data units k + U (U ~ U[0, 1)), scaled by minmax(0, 17) to [-1, 1].

    Model units are then y = -1 + 2 (k + U) / 17, the convention of ``bits_per_dim``. Training
    draws are with replacement; each is shifted by up to ``max_shift`` pixels (zero fill) with
    probability ``aug_p`` (:func:`scoresde.data.augment.random_shift`) and then gets fresh
    dequantization noise: an infinite stream whose batch is a function of ``(seed, step)``, so
    resume stays exact.
    """
    train_k, mon_k = split(part)

    def sampler(n: int, generator: torch.Generator | None = None) -> Tensor:
        k = train_k[torch.randint(0, train_k.shape[0], (n,), generator=generator)]
        if aug_p > 0:
            k = random_shift(k, max_shift=max_shift, p=aug_p, generator=generator)
        return k + torch.rand(k.shape, generator=generator)

    g = torch.Generator().manual_seed(MONITOR_DEQUANT_SEED)
    test = mon_k + torch.rand(mon_k.shape, generator=g)
    return Dataset(DATA_NAME, (1, 8, 8), Scaler.minmax(0.0, float(LEVELS)), test, sampler=sampler)


def register_data() -> None:
    """Make ``digits_dequantized`` a data source of this process (configs name it)."""
    DATASETS.setdefault(DATA_NAME, load_digits_dequantized)


#: The recipe's knobs and their values in the committed run (``experiments/digits.py``).
DEFAULTS: dict[str, Any] = {
    "base_channels": 32,
    "dropout": 0.1,
    "weight_decay": 0.0,
    "ema_decay": 0.999,
    "lr": 1e-3,
    "aug_p": 0.0,
    "batch_size": 128,
}


def make_config(fast: bool, seed: int, steps: int, part: str = "all", **knobs: Any) -> RunConfig:
    """VP SDE, eps-prediction, likelihood weighting + importance sampling, EMA; ``knobs``
    override :data:`DEFAULTS`."""
    unknown = set(knobs) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"make_config: unknown knobs {sorted(unknown)}; expected {list(DEFAULTS)}")
    k = DEFAULTS | knobs
    net = {
        "base_channels": k["base_channels"],
        "channel_mult": [1, 2],
        "attn_resolutions": [4],
        "dropout": k["dropout"],
    }
    if fast:
        net = {"base_channels": 8, "channel_mult": [1], "attn_resolutions": [], "dropout": 0.0}
    net |= {"time_scale": 50.0}  # sinusoidal embedding of a log-SNR in about [-10, 14]
    data_kw = {"part": part, "aug_p": k["aug_p"]}
    return RunConfig.from_dict(
        {
            "sde": {"name": "vp", "kwargs": {"beta_min": 0.1, "beta_max": 20.0, "eps": 1e-5}},
            "net": {"name": "unet", "predicts": "eps", "time_input": "log_snr", "kwargs": net},
            "loss": {"name": "dsm", "weighting": "likelihood", "t_sampling": "importance"},
            "data": {"name": DATA_NAME, "kwargs": data_kw},
            "optim": {
                "name": "adamw" if k["weight_decay"] > 0 else "adam",
                "lr": k["lr"],
                "weight_decay": k["weight_decay"],
                "warmup_steps": 5 if fast else 200,
                "lr_decay": "cosine",
                "grad_clip": 1.0,
                "ema_decay": 0.9 if fast else k["ema_decay"],
            },
            "schedule": {
                "steps": steps,
                "batch_size": 32 if fast else k["batch_size"],
                "seed": seed,
                "log_every": 10 if fast else 100,
                "ckpt_every": 500,
                "eval_every": 20 if fast else 250,
            },
        }
    )


# -- the variational bound in bits/dim ------------------------------------------------------------
def elbo_terms(model: ScoreModel, y: Tensor, t: Tensor, noise: Tensor) -> Tensor:
    """A one-sample estimate of the bound -log p(y) <= L(y) in nats per image, shape ``(n,)``.

    The VDM form (Kingma et al. 2021, Eq. 11-17) of the continuous ELBO of Song, Durkan, Murray &
    Ermon (2021, Thm. 1) for a VP model with log-SNR lambda(t), truncated at t_eps:

        L = KL(q(x_T | y) || N(0, I)) + D/2 (log 2 pi - lambda(t_eps) + 1)
            + 1/2 (lambda(t_eps) - lambda(T)) E_{lambda ~ U} || eps - eps_hat(x_lambda) ||^2,

    the middle term being the Gaussian decoder N(y; x_eps / alpha, sigma^2 / alpha^2) and the
    last the likelihood-weighted DSM loss with t drawn uniformly in log-SNR (``t`` must be drawn
    that way, e.g. by ``DSMLoss(..., t_sampling="importance").sample_t``). Differentiable in
    ``y`` and in the model.
    """
    sde, n, D = model.sde, y.shape[0], y[0].numel()
    lam = sde.log_snr(torch.tensor([sde.eps, sde.T], dtype=torch.float64))
    lam_eps, lam_T = float(lam[0]), float(lam[1])
    alpha, sigma = sde.marginal(t)
    x_t = alpha.reshape(-1, 1, 1, 1) * y + sigma.reshape(-1, 1, 1, 1) * noise
    sq = ((model.eps_fn(x_t, t) - noise) ** 2).reshape(n, -1).sum(1)
    diffusion = 0.5 * (lam_eps - lam_T) * sq
    a2_T = 1.0 / (1.0 + math.exp(-lam_T))  # alpha_T^2 = sigmoid(lambda_T)
    prior = 0.5 * (D * (1 - a2_T - 1 - math.log(1 - a2_T)) + a2_T * (y**2).reshape(n, -1).sum(1))
    recon = 0.5 * D * (math.log(2 * math.pi) - lam_eps + 1)
    return prior + recon + diffusion


def stratified_t(model: ScoreModel, n: int, j: int, n_strata: int, generator: Any) -> Tensor:
    """Times of stratum ``j`` of ``n_strata`` in log-SNR: lambda uniform on its j-th slice.

    Drawing one t per stratum for every image (instead of independent draws) keeps the bound's
    expectation and removes most of its Monte Carlo variance, which the importance-sampled
    one-draw estimate has in heavy tails.
    """
    sde = model.sde
    lam = sde.log_snr(torch.tensor([sde.eps, sde.T], dtype=torch.float64))
    u = (j + torch.rand(n, generator=generator, dtype=torch.float64)) / n_strata
    lam_t = lam[0] - u * (lam[0] - lam[1])
    return sde.t_from_log_snr(lam_t).clamp(sde.eps, sde.T).float()


@torch.no_grad()
def elbo_bpd(
    model: ScoreModel, k: Tensor, n_strata: int, generator: torch.Generator, offsets: bool = True
) -> Tensor:
    """Upper bound on bits/dim per image under uniform dequantization, one (u, eps) per stratum
    of t (:func:`stratified_t`), shape ``(n,)``.

    bits/dim <= (E L(y) - D log(2 / 17)) / (D log 2), y = -1 + 2 (k + u) / 17. With
    ``offsets=False``, ``k`` already holds levels plus offsets (k + u, data units).
    """
    model.eval()
    kk = k.float()
    D, acc = kk[0].numel(), torch.zeros(kk.shape[0], dtype=torch.float64)
    for j in range(n_strata):
        u = torch.rand(kk.shape, generator=generator) if offsets else 0.0
        y = -1.0 + 2.0 * (kk + u) / LEVELS
        t = stratified_t(model, kk.shape[0], j, n_strata, generator)
        acc += elbo_terms(model, y, t, torch.randn(kk.shape, generator=generator)).double()
    return (acc / n_strata - D * math.log(2.0 / LEVELS)) / (D * math.log(2.0))


# -- training under a CPU budget, with a held-out monitor ----------------------------------------
def make_monitor_hook(
    n_draws: int, seed: int, best_path: Path | None = None
) -> Callable[[int, ScoreModel, Dataset], dict[str, float]]:
    """Eval hook: the ELBO bits/dim bound of the EMA model on the monitored images.

    The monitored images are ``data.test`` (dequantized with a fixed seed, module docstring);
    every evaluation reuses the same (t, eps) draws (common random numbers), so the curve's
    steps compare without Monte Carlo noise between them. With ``best_path``, the EMA weights
    with the lowest bound so far are saved there (early stopping on the held-out part).
    """
    best = {"bpd": math.inf}

    def hook(step: int, model: ScoreModel, data: Dataset) -> dict[str, float]:
        k_plus_u = data.test
        was_training = model.training
        g = torch.Generator().manual_seed(seed)
        bpd = float(elbo_bpd(model, k_plus_u, n_draws, g, offsets=False).mean())
        model.train(was_training)
        if best_path is not None and bpd < best["bpd"]:
            best["bpd"] = bpd
            torch.save({"step": step, "bpd": bpd, "state_dict": model.state_dict()}, best_path)
        return {"monitor_elbo_bpd": bpd}

    return hook


def train_in_chunks(
    config: RunConfig,
    run_dir: Path,
    cpu_budget_s: float,
    chunk: int,
    progress: bool,
    hooks: list[Any],
    *,
    exit_on_signal: bool,
) -> None:
    """Train in chunks of ``chunk`` steps until done or ``cpu_budget_s`` CPU seconds are spent.

    The CPU seconds of this process (``time.process_time``, one thread, eval hooks included)
    are accumulated across restarts in ``run_dir/cpu_time.json``; every chunk ends with a
    checkpoint. A finished run (all steps, or the budget spent) trains no further. On Ctrl-C or
    SIGTERM the checkpoint is saved and, with ``exit_on_signal``, the process exits non-zero.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    ledger = run_dir / "cpu_time.json"
    done = json.loads(ledger.read_text()) if ledger.is_file() else {"cpu_s": 0.0, "step": 0}
    used = done["cpu_s"] if done["step"] < config.schedule.steps else math.inf
    step = done["step"]
    while used < cpu_budget_s:
        c0 = time.process_time()
        res = train_from_config(
            config, run_dir, progress=progress, eval_hooks=hooks, stop_after=chunk
        )
        used += time.process_time() - c0
        ledger.write_text(json.dumps({"cpu_s": used, "step": res.step}))
        if res.stop_signal and exit_on_signal:
            raise SystemExit(128 + res.stop_signal)
        if res.step >= config.schedule.steps or res.step < step + chunk:  # done, or a signal
            break
        step = res.step


def train_with_cpu_budget(
    config: RunConfig,
    run_dir: Path,
    cpu_budget_s: float,
    chunk: int,
    progress: bool,
    hooks: list[Any],
) -> dict[str, Any]:
    """Train in chunks of ``chunk`` steps until done or ``cpu_budget_s`` CPU seconds are spent.

    The CPU seconds of this process (``time.process_time``, one thread, eval hooks included)
    are accumulated across restarts in ``run_dir/cpu_time.json``; every chunk ends with a
    checkpoint. A finished run (all steps, or the budget spent) is only loaded.
    """
    train_in_chunks(config, run_dir, cpu_budget_s, chunk, progress, hooks, exit_on_signal=True)
    state = load_checkpoint(run_dir / "checkpoint.pt")
    model = load_model(run_dir / "checkpoint.pt").model
    used = json.loads((run_dir / "cpu_time.json").read_text())["cpu_s"]
    return {"model": model, "step": int(state["step"]), "cpu_s": used,
            "nan_skips": int(state["nan_skips"])}  # fmt: skip
