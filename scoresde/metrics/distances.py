"""Distances between two sample sets (flattened to vectors, computed in float64).

* :func:`sliced_wasserstein`: SW_2(p, q)^2 = E_theta W_2^2(theta # p, theta # q) over random
  unit directions theta, with the exact 1-D W_2 between the projected empirical measures;
  returned as the square root. For N(m1, s^2 I) vs N(m2, s^2 I) in R^d: |m1 - m2| / sqrt(d).
* :func:`wasserstein`: the exact W_2 between two empirical measures (an optimal assignment
  by ``scipy.optimize.linear_sum_assignment`` for equal sizes; POT's ``ot.emd2`` if installed
  and sizes differ). O(n^3): meant for n up to a few thousand, e.g. 2-D toy data.
* :func:`mmd`: the unbiased estimate of the squared maximum mean discrepancy (Gretton et al.
  2012, Eq. 3) with the Gaussian kernel k(x, y) = exp(-|x - y|^2 / (2 h^2)), summed over one
  or more bandwidths h (median heuristic by default). Can be slightly negative.
* :func:`energy_distance`: the unbiased squared energy distance (Szekely & Rizzo 2013)
  D^2 = 2 E|X - Y| - E|X - X'| - E|Y - Y'|. Can be slightly negative.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

__all__ = ["energy_distance", "median_bandwidth", "mmd", "sliced_wasserstein", "wasserstein"]

#: Rows per block when summing pairwise kernels (bounds memory at ~block * m floats).
_BLOCK = 2048
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


def _wasserstein_1d_sq(a: Tensor, b: Tensor) -> Tensor:
    """Exact W_2^2 between empirical measures on the line, batched: a (P, n), b (P, m) -> (P,).

    W_2^2 = int_0^1 (F_a^{-1}(u) - F_b^{-1}(u))^2 du, evaluated exactly on the merged grid of
    quantile levels {i/n} and {j/m}, on which both quantile functions are piecewise constant.
    """
    n, m = a.shape[1], b.shape[1]
    a, b = a.sort(dim=1).values, b.sort(dim=1).values
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
    return math.sqrt(float(_wasserstein_1d_sq(theta @ xf.T, theta @ yf.T).mean()))


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


def median_bandwidth(x: Tensor, y: Tensor, max_points: int = 1000) -> float:
    """The median heuristic: median pairwise distance in the pooled sample (first points only).

    Uses at most ``max_points`` points from each set (the first ones: sets are i.i.d.).
    """
    xf, yf = _pair(x, y, "median_bandwidth")
    z = torch.cat([xf[:max_points], yf[:max_points]])
    d = torch.cdist(z, z, compute_mode=_EXACT)
    iu = torch.triu_indices(len(z), len(z), offset=1, device=z.device)
    h = float(d[iu[0], iu[1]].median())
    return h if h > 0 else 1.0


def _kernel_sum(a: Tensor, b: Tensor, fn: Callable[[Tensor], Tensor], same: bool) -> float:
    """Sum of fn(|a_i - b_j|^2) over all pairs (i != j when ``same``), in row blocks."""
    total = 0.0
    for i in range(0, a.shape[0], _BLOCK):
        d2 = torch.cdist(a[i : i + _BLOCK], b, compute_mode=_EXACT).pow(2)
        total += float(fn(d2).sum())
    if same:  # remove the diagonal terms fn(0)
        total -= a.shape[0] * float(fn(a.new_zeros(1)))
    return total


def _u_stat(
    x: Tensor, y: Tensor, fn: Callable[[Tensor], Tensor], unbiased: bool
) -> tuple[float, float, float]:
    """Means of fn over (x, x'), (y, y') and (x, y); U-statistics (i != j) when ``unbiased``."""
    n, m = x.shape[0], y.shape[0]
    if unbiased:
        kxx = _kernel_sum(x, x, fn, True) / (n * (n - 1))
        kyy = _kernel_sum(y, y, fn, True) / (m * (m - 1))
    else:  # V-statistics: exactly zero for identical sets, biased upwards by O(1/n)
        kxx = _kernel_sum(x, x, fn, False) / n**2
        kyy = _kernel_sum(y, y, fn, False) / m**2
    kxy = _kernel_sum(x, y, fn, False) / (n * m)
    return kxx, kyy, kxy


def mmd(
    x: Tensor,
    y: Tensor,
    bandwidths: float | Sequence[float] | None = None,
    *,
    unbiased: bool = True,
) -> float:
    """Unbiased squared MMD with a Gaussian (RBF) kernel, summed over bandwidths.

    MMD^2_u = mean_{i != j} k(x_i, x_j) + mean_{i != j} k(y_i, y_j) - 2 mean_{i, j} k(x_i, y_j),
    with k(x, y) = sum_h exp(-|x - y|^2 / (2 h^2)) (Gretton et al. 2012, Eq. 3).

    Args:
        x: Samples of shape ``(n, *dims)``.
        y: Samples of shape ``(m, *dims)``.
        bandwidths: One h or several; default the median heuristic (:func:`median_bandwidth`).
        unbiased: U-statistic (default) or the biased V-statistic (which includes the i = j
            terms and is exactly zero when x and y are the same set).

    Returns:
        The estimate of MMD^2 (the unbiased one may be slightly negative when p = q).
    """
    xf, yf = _pair(x, y, "mmd")
    if bandwidths is None:
        hs = [median_bandwidth(xf, yf)]
    else:
        hs = [bandwidths] if isinstance(bandwidths, (int, float)) else list(bandwidths)
    if not hs or any(not (isinstance(h, (int, float)) and 0 < h < math.inf) for h in hs):
        raise ValueError(f"mmd: expected positive finite bandwidths, received {bandwidths!r}")

    def kernel(d2: Tensor) -> Tensor:
        return sum(torch.exp(-d2 / (2 * float(h) ** 2)) for h in hs)  # type: ignore[return-value]  # hs non-empty: a Tensor

    kxx, kyy, kxy = _u_stat(xf, yf, kernel, unbiased)
    return kxx + kyy - 2 * kxy


def energy_distance(x: Tensor, y: Tensor, *, unbiased: bool = True) -> float:
    """Unbiased squared energy distance D^2 = 2 E|X - Y| - E|X - X'| - E|Y - Y'|.

    Args:
        x: Samples of shape ``(n, *dims)``.
        y: Samples of shape ``(m, *dims)``.
        unbiased: U-statistic (default) or the V-statistic (exactly zero for identical sets).

    Returns:
        The estimate of D^2 (zero iff p = q in the population; the unbiased one may be
        slightly negative).
    """
    xf, yf = _pair(x, y, "energy_distance")
    exx, eyy, exy = _u_stat(xf, yf, lambda d2: torch.sqrt(d2.clamp_min(0)), unbiased)
    return 2 * exy - exx - eyy
