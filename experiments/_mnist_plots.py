"""Samples and figures of ``experiments/mnist.py``: sample grids, per-image bits/dim, training curve.

Model units y in [-1, 1] map back to levels by the cell they fall in, k = floor((y + 1) / CELL).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import _quantized as q
import torch
from _common import plt, save_fig
from _mnist_eval import LEVELS
from torch import Tensor

from scoresde.parameterization import ScoreModel
from scoresde.samplers import sample

SIDE = 28
to_levels = partial(q.to_levels, levels=LEVELS)
plot_samples = partial(q.plot_samples, levels=LEVELS, gap=2)


@torch.no_grad()
def draw_samples(
    model: ScoreModel, n: int, sampler: str, nfe: int, generator: torch.Generator
) -> tuple[Tensor, int]:
    """``n`` unconditional samples as levels, ending with one Tweedie denoising step; the NFE."""
    x_T = model.sde.prior_sample((n, 1, SIDE, SIDE), generator=generator)
    x, info = sample(sampler, model.sde, model, x_T, nfe, generator=generator, denoise=True)
    return to_levels(x), info.nfe


def plot_bpd(per_image: dict[str, Tensor], log: list, evals: list, pyplot: Any) -> Any:
    """Histogram of per-image test bits/dim (clipped at 8), and the training curve."""
    fig, axes = pyplot.subplots(1, 2, figsize=(11, 3.6))
    bins = torch.linspace(0.0, 8.0, 50).numpy()
    for i, (name, v) in enumerate(per_image.items()):
        label = f"{name}: mean {float(v.mean()):.3f}"
        axes[0].hist(v.clamp(max=8.0).numpy(), bins=bins, alpha=0.5, color=f"C{i}", label=label)
        axes[0].axvline(min(float(v.mean()), 8.0), color=f"C{i}", lw=1)
    axes[0].axvline(8.0, color="k", ls=":", lw=1, label="uniform: log2 256")
    axes[0].set(xlabel="test bits/dim per image (clipped at 8)", ylabel="images")
    axes[0].set_title("Per-image test bits/dim")
    axes[0].legend(fontsize=7)
    if log:
        axes[1].plot([r["step"] for r in log], [r["loss"] for r in log], label="training loss")
    if evals:
        steps = [r["step"] for r in evals]
        axes[1].plot(steps, [r["test_loss"] for r in evals], "o-", ms=3, label="test loss (EMA)")
    axes[1].set(xlabel="step", ylabel="likelihood-weighted DSM loss", yscale="log")
    axes[1].set_title("Training (loss per image, importance-sampled t)")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def sample_figure(res: dict[str, Any], pyplot: Any) -> Any:
    """Training images, then each sampler's samples, titled with the NFE each spent."""
    panels = {"training images": res["train_k"]}
    for k, (name, x) in enumerate(res["samples"].items()):
        tag = {0: ", auto", 1: ", auto for an exact score"}.get(k, "")
        panels[f"{name}{tag} ({res['results']['sample_nfe'][name]} NFE)"] = x
    return plot_samples(panels, pyplot)


def make_figures(res: dict[str, Any], log: list, evals: list, out: Path, fast: bool) -> list[str]:
    """``samples.png`` and ``bpd.png`` into ``out``; the file names."""
    pyplot = plt()
    if fast:
        pyplot.rcParams["savefig.dpi"] = 50
    return [
        save_fig(sample_figure(res, pyplot), out, "samples"),
        save_fig(plot_bpd(res["per_image"], log, evals, pyplot), out, "bpd"),
    ]
