"""Helpers of ``experiments/digits.py``: baselines, model bits/dim, sampling, inpainting, plots.

Conventions: ``k`` are integer levels 0..16 of shape ``(n, 1, 8, 8)``; model units are
y = -1 + 2 (k + U) / 17 (uniform dequantization, :mod:`scoresde.likelihood.bpd`).
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import _quantized as q
import torch
from torch import Tensor

from scoresde.parameterization import ScoreModel
from scoresde.samplers import InpaintHook, sample

LEVELS = 17
CELL = 2.0 / LEVELS  # width of one level's cell in model units

# The shared helpers of the image experiments (``_quantized``), bound to 17 levels.
to_model = partial(q.to_model, levels=LEVELS)
to_levels = partial(q.to_levels, levels=LEVELS)
categorical_probs = partial(q.categorical_probs, levels=LEVELS)
categorical_bpd = partial(q.categorical_bpd, levels=LEVELS)
fit_gaussian = partial(q.fit_gaussian, levels=LEVELS)
gaussian_bpd = partial(q.gaussian_bpd_mc, levels=LEVELS)  # Monte Carlo over U, like the model
gaussian_bpd_closed_form = partial(q.gaussian_bpd_closed_form, levels=LEVELS)
_tiles = partial(q.tiles, levels=LEVELS)
plot_samples = partial(q.plot_samples, levels=LEVELS)
summary, read_csv = q.summary, q.read_csv


# -- the score model -------------------------------------------------------------------------------
@torch.no_grad()
def draw_samples(
    model: ScoreModel, n: int, sampler: str, nfe: int, generator: torch.Generator
) -> tuple[Tensor, int]:
    """Unconditional samples (model units) and the NFE spent."""
    sde = model.sde
    x_T = sde.prior_sample((n, 1, 8, 8), generator=generator)
    x, info = sample(sampler, sde, model, x_T, nfe, generator=generator, denoise=True)
    return x, info.nfe


@torch.no_grad()
def inpaint(
    model: ScoreModel, test_k: Tensor, n_steps: int, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Fill the bottom half (rows 4..7) of each test digit; the top half is known.

    Reverse SDE (Euler-Maruyama) with :class:`~scoresde.samplers.InpaintHook`: the known pixels
    (cell centres) are replaced by their forward-noised values after every step.

    Returns:
        ``(completions, mask)``: levels of shape like ``test_k``, and the known-pixel mask.
    """
    sde = model.sde
    mask = torch.zeros(1, 1, 8, 8, dtype=torch.bool)
    mask[..., :4, :] = True
    x_known = to_model(test_k).float()
    hook = InpaintHook(sde, x_known, mask)
    x_T = sde.prior_sample(tuple(test_k.shape), generator=generator)
    x, _ = sample(  # NFE = n_steps + 1 (the final Tweedie step)
        "euler_maruyama", sde, model, x_T, n_steps + 1, generator=generator, hook=hook, denoise=True
    )
    levels = torch.where(mask, test_k.double(), to_levels(x))
    return levels, mask


def gaussian_inpaint(
    mean: Tensor, cov: Tensor, test_k: Tensor, mask: Tensor, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Conditional mean and one conditional sample of the Gaussian given the known pixels."""
    known = mask.reshape(-1)
    k_idx, u_idx = known.nonzero().squeeze(1), (~known).nonzero().squeeze(1)
    y = to_model(test_k.reshape(test_k.shape[0], -1))
    S_kk, S_uk = cov[k_idx][:, k_idx], cov[u_idx][:, k_idx]
    gain = S_uk @ torch.linalg.inv(S_kk)
    cond_mean = mean[u_idx] + (y[:, k_idx] - mean[k_idx]) @ gain.T
    cond_cov = cov[u_idx][:, u_idx] - gain @ S_uk.T
    L = torch.linalg.cholesky(cond_cov + 1e-9 * torch.eye(len(u_idx), dtype=cov.dtype))
    z = torch.randn(y.shape[0], len(u_idx), generator=generator, dtype=cov.dtype)
    out = []
    for vals in (cond_mean, cond_mean + z @ L.T):
        full = y.clone()
        full[:, u_idx] = vals
        out.append(torch.where(mask, test_k.double(), to_levels(full).reshape(test_k.shape)))
    return out[0], out[1]


def rmse_unknown(pred: Tensor, truth: Tensor, mask: Tensor) -> float:
    """Root-mean-square error in levels over the unknown pixels."""
    unknown = (~mask).expand_as(truth)
    return float(((pred - truth.double())[unknown] ** 2).mean().sqrt())


# -- plots -----------------------------------------------------------------------------------------
def plot_inpainting(truth: Tensor, mask: Tensor, completions: Tensor, gauss: Tensor, pyplot: Any):
    """Rows: digits. Columns: truth, the known top half, model completions, a Gaussian one."""
    n, m = completions.shape[:2]
    masked = torch.where(mask, truth.double(), torch.zeros_like(truth, dtype=torch.float64))
    cols = [truth, masked, *[completions[:, j] for j in range(m)], gauss]
    grid = torch.stack(cols, 1).reshape(-1, 1, 8, 8)
    fig, ax = pyplot.subplots(figsize=(0.55 * len(cols) + 0.5, 0.55 * n + 0.6))
    ax.imshow(_tiles(grid, len(cols)), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    labels = ["truth", "known", *[f"model {j + 1}" for j in range(m)], "Gaussian"]
    ax.set_xticks([9 * i + 3.5 for i in range(len(cols))], labels, rotation=45, fontsize=7)
    ax.set_yticks([])
    ax.set_title("Inpainting the bottom half (rows 4-7) of test digits", fontsize=8)
    fig.tight_layout()
    return fig


def plot_bpd(per_image: dict[str, Tensor], log: list, evals: list, pyplot: Any):
    """Histogram of per-image test bits/dim, and the training curve."""
    fig, axes = pyplot.subplots(1, 2, figsize=(11, 3.6))
    lo = min(float(v.min()) for v in per_image.values())
    hi = max(float(v.max()) for v in per_image.values())
    bins = torch.linspace(lo, hi, 40).numpy()
    for i, (name, v) in enumerate(per_image.items()):
        label = f"{name}: {float(v.mean()):.3f}"
        axes[0].hist(v.numpy(), bins=bins, alpha=0.5, color=f"C{i}", label=label)
        axes[0].axvline(float(v.mean()), color=f"C{i}", lw=1)
    axes[0].axvline(math.log2(LEVELS), color="k", ls=":", lw=1, label="uniform: log2 17")
    axes[0].set(xlabel="test bits/dim (per image)", ylabel="images")
    axes[0].set_title("Per-image test bits/dim (means in the legend)")
    axes[0].legend(fontsize=7)
    if log:
        axes[1].plot([r["step"] for r in log], [r["loss"] for r in log], label="training loss")
    axes[1].set(xlabel="step", ylabel="likelihood-weighted DSM loss", yscale="log")
    axes[1].set_title("Training loss (per example, importance-sampled t)")
    rows = [r for r in evals if "monitor_elbo_bpd" in r]
    if rows:
        ax2 = axes[1].twinx()
        ax2.plot([r["step"] for r in rows], [r["monitor_elbo_bpd"] for r in rows], "o-",
                 color="C1", ms=3, label="ELBO bound, test images (EMA)")  # fmt: skip
        ax2.set_ylabel("bits/dim (upper bound)")
        low = min(r["monitor_elbo_bpd"] for r in rows)
        ax2.set_ylim(low - 0.05, low + 1.0)  # the first evaluations are far above
        ax2.legend(fontsize=7, loc="upper center")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    return fig
