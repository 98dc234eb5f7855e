"""A seeded family of random standardised Gaussian mixtures: problems nobody tuned for.

Each member is a :class:`~scoresde.analytic.GaussianMixture` (exact score, denoiser and log-density
under every linear SDE) drawn from a seed:

* dimension d log-uniform in [2, 64] (an integer), K uniform in {2, ..., 10} components;
* unequal weights w_k proportional to E_k + 0.1 / K with E_k ~ Exp(1);
* means m N(0, I) with a spread m log-uniform in [0.5, 2.5];
* full anisotropic covariances Sigma_k = c_k^2 U_k diag(r^(2 u_k)) U_k^T: U_k a random rotation,
  u_k in [0, 1]^d uniform, one entry of one component equal to 1, c_k log-uniform in [0.3, 1];
* standardised per coordinate (zero mean, unit variance, as a user's scaler leaves data), and
  the narrowest standard deviation of any component in any direction, after standardising,
  log-uniform in [0.01, 0.5]: r is solved for by bisection (with the means and the component
  sizes brought closer where even r = 1 is narrower than asked), so a component can be 100x
  narrower than the data.

``random_mixture(seed)`` is one member; the benchmarks split seeds into training seeds (where
each sampler's defaults are chosen), held-out seeds (where they are reported, and the
recommended sampler is chosen) and test seeds (where the recommendation is reported).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..analytic import GaussianMixture

__all__ = ["FAMILY", "narrowest_std", "random_mixture"]

#: The family's ranges: dimension, components, narrowest std after standardising, mean spread.
FAMILY: dict[str, tuple[float, float]] = {
    "dim": (2, 64),
    "components": (2, 10),
    "narrowest": (0.01, 0.5),
    "spread": (0.5, 2.5),
}


def _log_uniform(lo: float, hi: float, g: torch.Generator) -> float:
    u = float(torch.rand((), generator=g, dtype=torch.float64))
    return math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))


def _standardised(w: Tensor, means: Tensor, cov: Tensor) -> tuple[Tensor, Tensor]:
    """Means and covariances after x -> (x - E x) / std(x) per coordinate."""
    mean = (w[:, None] * means).sum(0)
    dev = means - mean
    var = (w[:, None] * (torch.diagonal(cov, dim1=-2, dim2=-1) + dev**2)).sum(0)
    s = var.sqrt()
    return dev / s, cov / (s[:, None] * s[None, :])


def narrowest_std(gm: GaussianMixture) -> float:
    """The smallest standard deviation of any component in any direction."""
    return math.sqrt(float(gm.eigvals.min()))


def random_mixture(
    seed: int,
    *,
    dim: int | None = None,
    n_components: int | None = None,
    narrowest: float | None = None,
) -> GaussianMixture:
    """A random standardised Gaussian mixture of the family, drawn from ``seed`` (module doc).

    Args:
        seed: Seed of every draw.
        dim: Dimension in [1, 4096] (default: drawn log-uniform in [2, 64]).
        n_components: K >= 1 (default: drawn uniform in {2, ..., 10}).
        narrowest: The narrowest component std after standardising, in (0, 0.9] (default:
            drawn log-uniform in [0.01, 0.5]).

    Returns:
        A standardised :class:`~scoresde.analytic.GaussianMixture` with full covariances.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"random_mixture: expected an integer seed, received {seed!r}")
    for name, v, lo, hi in (("dim", dim, 1, 4096), ("n_components", n_components, 1, 1000)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi):
            raise ValueError(f"random_mixture: expected {name} in [{lo}, {hi}], received {v!r}")
    if narrowest is not None and not (isinstance(narrowest, (int, float)) and 0 < narrowest <= 0.9):
        raise ValueError(f"random_mixture: expected narrowest in (0, 0.9], received {narrowest!r}")
    g = torch.Generator().manual_seed(seed)
    f64 = torch.float64
    d = dim if dim is not None else int(round(_log_uniform(*FAMILY["dim"], g)))
    k_lo, k_hi = (int(v) for v in FAMILY["components"])
    K = (
        n_components
        if n_components is not None
        else int(torch.randint(k_lo, k_hi + 1, (), generator=g))
    )
    target = narrowest if narrowest is not None else _log_uniform(*FAMILY["narrowest"], g)
    w = torch.empty(K, dtype=f64).exponential_(generator=g) + 0.1 / K
    w = w / w.sum()
    spread = _log_uniform(*FAMILY["spread"], g)
    means = torch.randn(K, d, generator=g, dtype=f64)
    rot = torch.linalg.qr(torch.randn(K, d, d, generator=g, dtype=f64))[0]
    u = torch.rand(K, d, generator=g, dtype=f64)
    u[int(torch.randint(K, (), generator=g)), int(torch.randint(d, (), generator=g))] = 1.0
    scale = torch.tensor([_log_uniform(0.3, 1.0, g) for _ in range(K)], dtype=f64)

    def build(log_r: float, m: float) -> tuple[Tensor, Tensor, float]:
        stds = scale[:, None] * torch.exp(u * log_r)
        cov = rot @ torch.diag_embed(stds**2) @ rot.transpose(-1, -2)
        mu, c = _standardised(w, m * means, 0.5 * (cov + cov.transpose(-1, -2)))
        return mu, c, math.sqrt(float(torch.linalg.eigvalsh(c).min()))

    while build(0.0, spread)[2] < target:  # even isotropic components are too narrow:
        spread, scale = 0.8 * spread, scale**0.8  # closer means and component sizes
    lo_r, hi_r = math.log(1e-6), 0.0  # narrowest(log r) increases with log r
    for _ in range(60):
        mid = 0.5 * (lo_r + hi_r)
        lo_r, hi_r = (mid, hi_r) if build(mid, spread)[2] < target else (lo_r, mid)
    mu, cov, _ = build(hi_r, spread)
    return GaussianMixture(w, mu, cov)
