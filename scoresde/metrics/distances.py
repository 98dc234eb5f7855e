"""Distances between two sample sets (flattened to vectors, computed in float64).

* :func:`sliced_wasserstein`: SW_2(p, q)^2 = E_theta W_2^2(theta # p, theta # q) over random
  unit directions theta, with the exact 1-D W_2 between the projected empirical measures;
  returned as the square root. For N(m1, s^2 I) vs N(m2, s^2 I) in R^d: |m1 - m2| / sqrt(d).
* :func:`wasserstein`: the exact W_2 between two empirical measures (an optimal assignment
  by ``scipy.optimize.linear_sum_assignment`` for equal sizes; POT's ``ot.emd2`` if installed
  and sizes differ). O(n^3): meant for n up to a few thousand, e.g. 2-D toy data.

Kernel distances (MMD, energy distance) live in :mod:`scoresde.metrics.kernels`.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from typing import Any

import torch
from torch import Tensor

__all__ = ["sliced_wasserstein", "wasserstein"]

#: Pairwise distances by explicit differences: exact zeros for identical points.
_EXACT = "donot_use_mm_for_euclid_dist"


def _pair(x: Tensor, y: Tensor, name: str) -> tuple[Tensor, Tensor]:
    """Validate two sample sets and return them flattened to float64 ``(n, d)``, ``(m, d)``."""
    for label, v in (("x", x), ("y", y)):
        if not isinstance(v, Tensor):
            raise TypeError(
                f"{name}: expected {label} to be a torch.Tensor, received {type(v).__name__}"
            )
        if v.ndim < 2 or v.shape[0] < 2:
            raise ValueError(
                f"{name}: expected {label} of shape (n >= 2, *dims), received {tuple(v.shape)}"
            )
    if x.shape[1:] != y.shape[1:]:
        raise ValueError(
            f"{name}: x and y must have the same event shape, received {tuple(x.shape[1:])} "
            f"and {tuple(y.shape[1:])}"
        )
    xf = x.detach().reshape(x.shape[0], -1).to(torch.float64)
    yf = y.detach().reshape(y.shape[0], -1).to(device=xf.device, dtype=torch.float64)
    for label, v in (("x", xf), ("y", yf)):
        if not bool(torch.isfinite(v).all()):
            raise ValueError(f"{name}: expected finite {label}, received NaN/Inf entries")
    return xf, yf


def _wasserstein_1d_sq(a: Tensor, b: Tensor, b_sorted: bool = False) -> Tensor:
    """Exact W_2^2 between empirical measures on the line, batched: a (P, n), b (P, m) -> (P,).

    W_2^2 = int_0^1 (F_a^{-1}(u) - F_b^{-1}(u))^2 du, evaluated exactly on the merged grid of
    quantile levels {i/n} and {j/m}, on which both quantile functions are piecewise constant.
    """
    n, m = a.shape[1], b.shape[1]
    a = a.sort(dim=1).values
    b = b if b_sorted else b.sort(dim=1).values
    if n == m:
        return ((a - b) ** 2).mean(dim=1)
    dev = a.device
    levels = torch.cat(
        [torch.arange(1, n + 1, device=dev) / n, torch.arange(1, m + 1, device=dev) / m]
    )
    levels = levels.to(torch.float64).sort().values
    width = torch.diff(levels, prepend=levels.new_zeros(1))
    mid = levels - 0.5 * width
    ia = torch.clamp((mid * n).long(), max=n - 1)
    ib = torch.clamp((mid * m).long(), max=m - 1)
    return (((a[:, ia] - b[:, ib]) ** 2) * width).sum(dim=1)


def sliced_wasserstein(
    x: Tensor,
    y: Tensor,
    n_projections: int = 256,
    *,
    generator: torch.Generator | None = None,
) -> float:
    """Sliced Wasserstein-2 distance, sqrt(mean_theta W_2^2(theta^T x, theta^T y)).

    Args:
        x: Samples of shape ``(n, *dims)``.
        y: Samples of shape ``(m, *dims)``; ``m`` may differ from ``n``.
        n_projections: Number of random directions theta, uniform on the unit sphere.
        generator: Optional generator for the directions (reproducible estimates).

    Returns:
        The estimate (same units as the data). Between N(m1, s^2 I) and N(m2, s^2 I) in R^d it
        tends to |m1 - m2| / sqrt(d) as n, m and ``n_projections`` grow.
    """
    xf, yf = _pair(x, y, "sliced_wasserstein")
    if isinstance(n_projections, bool) or not isinstance(n_projections, int) or n_projections < 1:
        raise ValueError(
            f"sliced_wasserstein: expected n_projections >= 1, received {n_projections!r}"
        )
    dev = generator.device if generator is not None else torch.device("cpu")
    theta = torch.randn(
        n_projections, xf.shape[1], generator=generator, device=dev, dtype=torch.float64
    )
    theta = (theta / theta.norm(dim=1, keepdim=True)).to(xf.device)
    yp = _sorted_projections(y, yf, theta)
    return math.sqrt(float(_wasserstein_1d_sq(theta @ xf.T, yp, b_sorted=True).mean()))


#: The last few sorted projections of a second set (a study scores every cell against one
#: reference with the same directions per seed): key -> (the set, kept alive, and its sorted
#: projections). Holding the set keeps its memory from being reused by another tensor.
_SORTED: OrderedDict[tuple[Any, ...], tuple[Tensor, Tensor]] = OrderedDict()


def _sorted_projections(y: Tensor, yf: Tensor, theta: Tensor) -> Tensor:
    key = (
        y.data_ptr(),
        tuple(y.shape),
        tuple(y.stride()),
        y._version,
        str(y.device),
        y.dtype,
        hashlib.sha1(theta.detach().cpu().numpy().tobytes()).hexdigest(),
    )
    hit = _SORTED.get(key)
    if hit is not None:
        _SORTED.move_to_end(key)
        return hit[1]
    yp = (theta @ yf.T).sort(dim=1).values
    _SORTED[key] = (y, yp)
    while len(_SORTED) > 8:
        _SORTED.popitem(last=False)
    return yp


def wasserstein(x: Tensor, y: Tensor, *, max_points: int = 5000) -> float:
    """Exact Wasserstein-2 distance between two empirical measures with uniform weights.

    For n = m an optimal transport plan between uniform empirical measures is a permutation
    (Birkhoff–von Neumann), found by ``scipy.optimize.linear_sum_assignment`` on the squared
    distances. For n != m, POT (``pip install pot``) is used if it is installed.

    Args:
        x: Samples of shape ``(n, *dims)``.
        y: Samples of shape ``(m, *dims)``.
        max_points: Refuse larger sets (the solvers are O(n^3) time and O(n^2) memory).

    Returns:
        W_2 in data units. For y = x + c exactly |c|.

    Raises:
        ValueError: for n != m without POT, or for sets larger than ``max_points``.
    """
    xf, yf = _pair(x, y, "wasserstein")
    n, m = xf.shape[0], yf.shape[0]
    if max(n, m) > max_points:
        raise ValueError(
            f"wasserstein: expected at most max_points={max_points} samples per set, received "
            f"{n} and {m}; subsample, or use sliced_wasserstein"
        )
    cost = torch.cdist(xf, yf, compute_mode=_EXACT).pow(2).cpu().numpy()
    if n == m:
        from scipy.optimize import linear_sum_assignment

        rows, cols = linear_sum_assignment(cost)
        return math.sqrt(max(float(cost[rows, cols].mean()), 0.0))
    try:
        import ot  # POT: Python Optimal Transport
    except ImportError as err:
        raise ValueError(
            f"wasserstein: sets of different sizes ({n} vs {m}) need POT (pip install pot); "
            "expected equal sizes otherwise"
        ) from err
    import numpy as np

    return math.sqrt(max(float(ot.emd2(np.full(n, 1 / n), np.full(m, 1 / m), cost)), 0.0))
