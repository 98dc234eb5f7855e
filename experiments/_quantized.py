"""What the image experiments share: quantized data in model units, baselines, summaries, tiles.

Conventions (Theis et al. 2016; Song et al. 2021, App. D.2): ``k`` are integer levels
``0..levels-1``; model units are y = -1 + 2 (k + U) / levels with U ~ U[0, 1) (uniform
dequantization, :mod:`scoresde.likelihood.bpd`), so a level owns a cell of width 2 / levels.
``experiments/_digits_eval.py`` (17 levels) and ``experiments/_mnist_eval.py`` (256) bind
``levels``.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from scoresde.likelihood import dequantized_bits_per_dim
from scoresde.studies import mean_se


def to_model(k: Tensor, u: Tensor | float = 0.5, *, levels: int) -> Tensor:
    """Levels (plus dequantization offsets ``u`` in [0, 1)) to model units."""
    return -1.0 + 2.0 / levels * (k.double() + u)


def to_levels(y: Tensor, *, levels: int) -> Tensor:
    """Model units back to levels: the cell ``y`` falls in, clamped to 0..levels-1."""
    return torch.floor((y.double() + 1.0) * levels / 2.0).clamp(0, levels - 1)


def summary(per_image: Tensor) -> dict[str, float]:
    """Mean over images and its standard error."""
    n = per_image.numel()
    return {"bpd": float(per_image.mean()), "se": float(mean_se(per_image)[1]), "n": n}


def categorical_probs(train_k: Tensor, *, levels: int) -> Tensor:
    """Per-pixel probabilities with add-one smoothing, (count + 1) / (n + levels): ``(D, levels)``."""
    tr = train_k.reshape(train_k.shape[0], -1).long()
    counts = torch.zeros(tr.shape[1], levels, dtype=torch.float64)
    counts.scatter_add_(1, tr.T, torch.ones(tr.T.shape, dtype=torch.float64))
    return (counts + 1.0) / (tr.shape[0] + levels)


def categorical_bpd(train_k: Tensor, test_k: Tensor, *, levels: int) -> Tensor:
    """Independent per-pixel categorical (exact discrete model): -mean_j log2 p_j(k_j) per image."""
    te = test_k.reshape(test_k.shape[0], -1).long()
    return -torch.log2(categorical_probs(train_k, levels=levels).gather(1, te.T)).T.mean(1)


def fit_gaussian(train_k: Tensor, ridge: float = 0.0, *, levels: int) -> tuple[Tensor, Tensor]:
    """Gaussian of the dequantized training data in model units; maximum likelihood at ridge 0.

    Exact moments over U (independent of k, no Monte Carlo): mean of the cell centres, and
    cov = cov(cell centres) + cell^2 / 12 I, positive definite even for constant pixels;
    ``ridge`` adds ridge * I (a variance floor, in model units squared).
    """
    yc = to_model(train_k.reshape(train_k.shape[0], -1), levels=levels)
    diag = (2.0 / levels) ** 2 / 12 + ridge
    cov = torch.cov(yc.T, correction=0) + diag * torch.eye(yc.shape[1], dtype=yc.dtype)
    return yc.mean(0), cov


def gaussian_bpd_mc(
    mean: Tensor,
    cov: Tensor,
    test_k: Tensor,
    n_draws: int,
    generator: torch.Generator,
    *,
    levels: int,
) -> Any:
    """The Gaussian through :func:`dequantized_bits_per_dim` (Monte Carlo over U), like a model."""
    mvn = torch.distributions.MultivariateNormal(mean, cov)
    return dequantized_bits_per_dim(
        lambda y: mvn.log_prob(y.reshape(y.shape[0], -1)),
        test_k,
        levels=levels,
        n_draws=n_draws,
        generator=generator,
    )


def gaussian_bpd_closed_form(mean: Tensor, cov: Tensor, test_k: Tensor, *, levels: int) -> Tensor:
    """E_U of the dequantized bound under N(mean, cov) in closed form, per image.

    With y = c + cell (U - 1/2), c the cell centre and P = cov^-1:
    E_U (y - m)^T P (y - m) = (c - m)^T P (c - m) + cell^2 / 12 tr(P); then subtract D log cell.
    """
    cell = 2.0 / levels
    c = to_model(test_k.reshape(test_k.shape[0], -1), levels=levels) - mean
    chol = torch.linalg.cholesky(cov)
    prec = torch.cholesky_inverse(chol)
    D = c.shape[1]
    quad = torch.einsum("ni,ij,nj->n", c, prec, c) + cell**2 / 12 * torch.trace(prec)
    logdet = 2 * torch.log(torch.diagonal(chol)).sum()
    nll = 0.5 * (D * math.log(2 * math.pi) + logdet + quad)
    return (nll - D * math.log(cell)) / (D * math.log(2))


def read_csv(path: Path) -> list[dict[str, float]]:
    """Rows of a training log (floats); empty if the file is missing."""
    if not path.is_file():
        return []
    with path.open() as fh:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(fh)]


def tiles(images: Tensor, nrow: int, *, levels: int, gap: int = 1) -> Any:
    """Images of levels ``(n, 1, H, W)`` as one array, dark ink on white, ``gap`` white pixels."""
    x = images.double().clamp(0, levels - 1) / (levels - 1)
    H, W = x.shape[-2:]
    rows = math.ceil(x.shape[0] / nrow)
    canvas = torch.ones(rows * (H + gap) - gap, nrow * (W + gap) - gap, dtype=torch.float64)
    for i in range(x.shape[0]):
        r, c = divmod(i, nrow)
        canvas[r * (H + gap) : r * (H + gap) + H, c * (W + gap) : c * (W + gap) + W] = 1.0 - x[i, 0]
    return canvas.numpy()


def plot_samples(
    panels: dict[str, Tensor], pyplot: Any, nrow: int = 8, *, levels: int, gap: int = 1
) -> Any:
    """Side-by-side grids of levels, one per panel."""
    fig, axes = pyplot.subplots(1, len(panels), figsize=(3.5 * len(panels), 3.8), squeeze=False)
    for ax, (title, images) in zip(axes[0], panels.items(), strict=True):
        ax.imshow(tiles(images, nrow, levels=levels, gap=gap), cmap="gray", vmin=0, vmax=1,
                  interpolation="nearest")  # fmt: skip
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    return fig
