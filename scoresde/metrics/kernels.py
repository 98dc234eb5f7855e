"""Kernel distances between sample sets: MMD (all pairs, or random features) and energy distance.

* :func:`mmd`: the unbiased estimate of the squared maximum mean discrepancy (Gretton et al.
  2012, Eq. 3) with the Gaussian kernel k(x, y) = exp(-|x - y|^2 / (2 h^2)), summed over one
  or more bandwidths h (median heuristic by default). Can be slightly negative.
* :func:`mmd_features`: the same MMD^2 in linear time, through random Fourier features
  (Rahimi & Recht 2007) of the Gaussian kernel, unbiased given the features.
* :func:`energy_distance`: the unbiased squared energy distance (Szekely & Rizzo 2013)
  D^2 = 2 E|X - Y| - E|X - X'| - E|Y - Y'|. Can be slightly negative.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from .distances import _EXACT, _pair

__all__ = ["energy_distance", "median_bandwidth", "mmd", "mmd_features"]

#: Rows per block when summing pairwise kernels (bounds memory at ~block * m floats).
_BLOCK = 2048


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


def mmd_features(
    x: Tensor,
    y: Tensor,
    n_features: int = 512,
    *,
    bandwidth: float | None = None,
    generator: torch.Generator | None = None,
) -> float:
    """Squared MMD with a Gaussian kernel through random Fourier features, in O((n + m) D).

    Bochner's theorem gives k(x, y) = exp(-|x - y|^2 / (2 h^2)) = E_w,b[phi(x) phi(y)] with
    phi(x) = sqrt(2) cos(w^T x + b), w ~ N(0, I / h^2), b ~ U[0, 2 pi] (Rahimi & Recht 2007).
    With F features and the feature sums S_x = sum_i phi(x_i),
    MMD^2 = (|S_x|^2 - sum_i |phi(x_i)|^2) / (n (n - 1)) + (same for y) - 2 S_x . S_y / (n m),
    the U-statistic of :func:`mmd` with the kernel replaced by its F-feature estimate: unbiased
    for MMD^2 over the draws of samples and features, at linear cost in n and m.

    Args:
        x: Samples of shape ``(n, *dims)``.
        y: Samples of shape ``(m, *dims)``.
        n_features: Random features F (the kernel's Monte Carlo error shrinks like 1/sqrt(F)).
        bandwidth: h; default the median heuristic on the first 500 points of each set.
        generator: Generator of the features (the same seed gives the same estimate).

    Returns:
        The estimate of MMD^2 (may be slightly negative when p = q).
    """
    xf, yf = _pair(x, y, "mmd_features")
    if isinstance(n_features, bool) or not isinstance(n_features, int) or n_features < 1:
        raise ValueError(f"mmd_features: expected n_features >= 1, received {n_features!r}")
    h = median_bandwidth(xf, yf, max_points=500) if bandwidth is None else bandwidth
    if not (isinstance(h, (int, float)) and 0 < h < math.inf):
        raise ValueError(f"mmd_features: expected a positive finite bandwidth, received {h!r}")
    dev = generator.device if generator is not None else torch.device("cpu")
    w = torch.randn(xf.shape[1], n_features, generator=generator, device=dev, dtype=torch.float64)
    b = torch.rand(n_features, generator=generator, device=dev, dtype=torch.float64)
    w, b = (w / float(h)).to(xf.device), (2 * math.pi * b).to(xf.device)

    def sums(z: Tensor) -> tuple[Tensor, float]:
        phi = math.sqrt(2.0) * torch.cos(z @ w + b)  # (n, F), k(x, y) ~ phi(x) . phi(y) / F
        return phi.sum(0), float(phi.pow(2).sum())

    (sx, qx), (sy, qy) = sums(xf), sums(yf)
    n, m = xf.shape[0], yf.shape[0]
    kxx = (float(sx @ sx) - qx) / (n * (n - 1))
    kyy = (float(sy @ sy) - qy) / (m * (m - 1))
    return (kxx + kyy - 2 * float(sx @ sy) / (n * m)) / n_features


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
