"""Helpers of ``experiments/mnist.py``: baselines and the score model's bits/dim, resumable.

Conventions: ``k`` are integer levels 0..255 of shape ``(n, 1, 28, 28)``; model units are
y = -1 + 2 (k + U) / 256 (uniform dequantization, :mod:`scoresde.likelihood.bpd`). Figures live
in ``_mnist_plots``.
"""

from __future__ import annotations

import math
import time
from functools import partial
from pathlib import Path
from typing import Any

import _quantized as q
import torch
from torch import Tensor

from scoresde.data import derive_seed
from scoresde.likelihood import dequantized_bits_per_dim, log_likelihood
from scoresde.losses import DSMLoss
from scoresde.parameterization import ScoreModel
from scoresde.studies import mean_se

LEVELS = 256
CELL = 2.0 / LEVELS  # width of one level's cell in model units
CHUNK = 50  # test images per PF-ODE solve (and per saved file of the run folder)

# The shared helpers of the image experiments (``_quantized``), bound to 256 levels.
to_model = partial(q.to_model, levels=LEVELS)
categorical_probs = partial(q.categorical_probs, levels=LEVELS)
categorical_bpd = partial(q.categorical_bpd, levels=LEVELS)
fit_gaussian = partial(q.fit_gaussian, levels=LEVELS)
gaussian_bpd_mc = partial(q.gaussian_bpd_mc, levels=LEVELS)
gaussian_bpd_closed_form = partial(q.gaussian_bpd_closed_form, levels=LEVELS)
summary, read_csv = q.summary, q.read_csv


# -- baselines -----------------------------------------------------------------------------------
RIDGES = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2)


def choose_ridge(train_k: Tensor, ridges: tuple[float, ...] = RIDGES) -> dict[str, Any]:
    """The ridge with the lowest closed-form bits/dim on a held-out fifth of the training set.

    Training images j % 5 == 4 are held out (the test set is never looked at); the chosen ridge
    is then refitted on the whole training set by the caller.
    """
    held = torch.arange(train_k.shape[0]) % 5 == 4
    scores = [float(gaussian_bpd_closed_form(*fit_gaussian(train_k[~held], r), train_k[held])
                    .mean()) for r in ridges]  # fmt: skip
    best = min(range(len(ridges)), key=scores.__getitem__)
    return {"ridge": ridges[best], "grid": list(ridges), "held_out_bpd": scores,
            "n_held_out": int(held.sum())}  # fmt: skip


def uniform_bpd(test_k: Tensor) -> Tensor:
    """The uniform density on [-1, 1]^D through the same convention: exactly log2(256) = 8."""
    return dequantized_bits_per_dim(
        lambda y: torch.full(y.shape[:1], -y[0].numel() * math.log(2.0), dtype=y.dtype),
        test_k,
        levels=LEVELS,
    ).bpd


def data_stats(train_k: Tensor, test_k: Tensor) -> dict[str, float]:
    """What makes MNIST hard for a Gaussian and a smooth density: the black background."""
    tr, te = train_k.reshape(train_k.shape[0], -1), test_k.reshape(test_k.shape[0], -1)
    dead = tr.max(0).values == 0  # pixels black in every training image
    return {"always_black_pixels": int(dead.sum()),
            "test_images_with_ink_there": int((te[:, dead] > 0).any(1).sum()),
            "black_fraction_train": float((tr == 0).double().mean())}  # fmt: skip


def test_loss_hook(loss_fn: DSMLoss, n: int, seed: int) -> Any:
    """Eval hook: the loss of the EMA model on ``n`` test images, dequantized once (fixed U, t, z).

    The likelihood-weighted DSM loss is the negative ELBO up to a model-independent constant,
    so this curve tracks the test likelihood during training.
    """

    @torch.no_grad()
    def hook(step: int, model: Any, data: Any) -> dict[str, float]:
        g = torch.Generator().manual_seed(seed)
        x = data.test[:n] + torch.rand(data.test[:n].shape, generator=g) - 0.5
        x = data.scaler.transform(x)
        t, noise = loss_fn.draw(x, g)
        return {"test_loss": float(loss_fn(model, x, t=t, noise=noise))}

    return hook


# -- the score model -------------------------------------------------------------------------------
def model_bpd(
    model: ScoreModel,
    test_k: Tensor,
    folder: Path,
    *,
    solve: dict[str, Any],
    n_probes: int,
    seed: int,
) -> dict[str, Any]:
    """PF-ODE bits/dim of each test image, CHUNK images per solve, each chunk saved and resumed.

    Hutchinson divergence with ``n_probes`` Rademacher probes per image, drawn from the image's
    own seed (its index), and uniform dequantization drawn per chunk from ``(seed, chunk start)``:
    two calls with different ``rtol`` or ``n_probes`` score the same dequantized images with the
    same first probes. ``solve`` holds the solver's arguments of
    :func:`~scoresde.likelihood.log_likelihood` (dopri5 with rtol = atol in the full run; the
    error norm is the RMS over the chunk); the solve runs in float32.

    Returns:
        ``bpd`` (per image, mean over probes), ``per_probe`` (``(n_probes, n)``), ``nfe`` (the
        drift evaluations of all chunks), ``cpu_s`` (their CPU seconds, one thread).
    """
    folder.mkdir(parents=True, exist_ok=True)
    parts = []
    for start in range(0, test_k.shape[0], CHUNK):
        k = test_k[start : start + CHUNK]
        path = folder / f"chunk_{start:04d}_{start + k.shape[0]:04d}.pt"
        if not path.is_file():
            parts.append(_solve_chunk(model, k, start, solve, n_probes=n_probes, seed=seed))
            torch.save(parts[-1], path)
        else:
            parts.append(torch.load(path, weights_only=True))
    return {
        "bpd": torch.cat([p["bpd"] for p in parts]),
        "per_probe": torch.cat([p["per_probe"] for p in parts], 1),
        "nfe": sum(int(p["nfe"]) for p in parts),
        "cpu_s": sum(float(p["cpu_s"]) for p in parts),
    }


def _solve_chunk(
    model: ScoreModel, k: Tensor, start: int, solve: dict[str, Any], *, n_probes: int, seed: int
) -> dict[str, Tensor]:
    c0 = time.process_time()
    seeds = [derive_seed(seed, 7_000_003 + start + i) for i in range(k.shape[0])]
    per_probe: list[Tensor] = []

    def log_prob_fn(y: Tensor) -> tuple[Tensor, int]:
        res = log_likelihood(model.sde, model, y, divergence="hutchinson", n_probes=n_probes,
                             seeds=seeds, dtype=torch.float32, **solve)  # fmt: skip
        assert res.per_probe is not None
        per_probe.append(res.per_probe.double() - res.log_prob.double())
        return res.log_prob, res.nfe

    gen = torch.Generator().manual_seed(derive_seed(seed, start))
    out = dequantized_bits_per_dim(log_prob_fn, k, levels=LEVELS, generator=gen)
    # each probe's estimate in bits/dim: log p_j = log p + (log p_j - log p)
    D = k[0].numel()
    probes = out.bpd - per_probe[0] / (D * math.log(2))
    return {"bpd": out.bpd, "per_probe": probes, "nfe": torch.tensor(out.nfe),
            "cpu_s": torch.tensor(time.process_time() - c0)}  # fmt: skip


def estimator_check(
    model: ScoreModel, test_k: Tensor, main: dict[str, Any], folder: Path, *,
    solve: dict[str, Any], tight: dict[str, Any], n_probes: int, seed: int, n_main: int,
) -> dict[str, Any]:  # fmt: skip
    """How much of the error bar is the Hutchinson probe, and how much bias the solver leaves.

    On the first ``len(test_k)`` images (the same dequantization as the main run): ``n_probes``
    probes with the main run's ``solve`` give each image's probe spread; one probe with the
    ``tight`` solver settings gives the paired difference to the main run (same U, same probe),
    i.e. the solver's error.
    """
    n = test_k.shape[0]
    many = model_bpd(model, test_k, folder / f"probes{n_probes}", solve=solve,
                     n_probes=n_probes, seed=seed)  # fmt: skip
    sd = many["per_probe"].std(0, correction=1)  # one probe's spread, per image
    probe_var = float((sd**2).mean())
    tighter = model_bpd(model, test_k, folder / tag(tight), solve=tight, n_probes=1, seed=seed)
    diff = tighter["bpd"] - main["bpd"][:n]
    return {
        "n_images": n,
        "n_probes": n_probes,
        "probe_sd_per_image": math.sqrt(probe_var),
        "probe_se_of_main_mean": math.sqrt(probe_var / n_main),
        "main_se": float(mean_se(main["bpd"])[1]),
        "probe_share_of_main_variance": probe_var / n_main / float(mean_se(main["bpd"])[1]) ** 2,
        "tight_solver": tight,
        "tight_minus_main": {
            "mean": float(diff.mean()),
            "se": float(mean_se(diff)[1]),
            "max_abs": float(diff.abs().max()),
        },
        "nfe_per_solve": {
            "main": _per_solve(main, CHUNK, n_main),
            "probes": _per_solve(many, CHUNK, n),
            "tight": _per_solve(tighter, CHUNK, n),
        },
        "cpu_minutes": round((many["cpu_s"] + tighter["cpu_s"]) / 60, 2),
    }


def tag(solve: dict[str, Any]) -> str:
    """A folder name for solver settings, e.g. ``dopri5_rtol0.001``."""
    extra = solve.get("options", {}).get("step_size")
    if extra is not None:
        return f"{solve['solver']}_h{extra:g}"
    return f"{solve.get('solver', 'dopri5')}_rtol{solve['rtol']:g}"


def _per_solve(res: dict[str, Any], chunk: int, n: int) -> float:
    return res["nfe"] / math.ceil(n / chunk)
