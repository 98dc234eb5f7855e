"""Samples measured against an exact density: cross-entropy gap, Monte Carlo KL, noise floor."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Protocol

import torch
from torch import Tensor

from .._utils import mean_se
from .registry import MetricSpec, get_metric

__all__ = ["CrossEntropyGap", "Density", "cross_entropy_gap", "kl_monte_carlo", "noise_floor"]


class Density(Protocol):
    """An exact density with sampling, e.g. :class:`~scoresde.analytic.GaussianMixture`."""

    def log_prob(self, x: Tensor) -> Tensor:
        """log p(x) per point, shape ``(n,)``."""
        ...

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` exact draws, shape ``(n, d)``."""
        ...


def _mean_se(v: Tensor) -> tuple[float, float]:
    mean, se = mean_se(v.to(torch.float64).reshape(-1))
    return float(mean), float(se)


@dataclass(frozen=True)
class CrossEntropyGap:
    """Cross-entropy of samples under p_0 minus the entropy of p_0, with standard errors (nats).

    ``gap = cross_entropy - entropy``; zero in expectation when the samples come from p_0.
    """

    cross_entropy: float
    cross_entropy_se: float
    entropy: float
    entropy_se: float
    gap: float
    gap_se: float
    n_samples: int
    n_reference: int

    def as_dict(self) -> dict[str, float | int]:
        """A JSON-ready dict."""
        return asdict(self)


def cross_entropy_gap(
    samples: Tensor,
    density: Density,
    *,
    n_reference: int = 100_000,
    generator: torch.Generator | None = None,
) -> CrossEntropyGap:
    """mean(-log p_0(samples)) - H(p_0), with H(p_0) = E[-log p_0(x)] by Monte Carlo.

    Sensitive to mass in low-density regions (unlike the distances), blind to missing modes:
    a sampler that collapses onto the modes can score a negative gap.

    Args:
        samples: Generated samples of shape ``(n, *event_shape)``.
        density: The exact data density, with ``log_prob`` and ``sample``.
        n_reference: Exact samples used to estimate the entropy H(p_0).
        generator: Optional generator for the reference samples.

    Returns:
        A :class:`CrossEntropyGap` (standard errors combine independently).
    """
    if not isinstance(samples, Tensor) or samples.ndim < 2:
        raise ValueError("cross_entropy_gap: expected samples of shape (n, *event_shape)")
    nll = -density.log_prob(samples.detach().to(torch.float64))
    if not bool(torch.isfinite(nll).all()):
        raise ValueError("cross_entropy_gap: log p_0 of the samples is not finite")
    ce, ce_se = _mean_se(nll)
    ref = density.sample(int(n_reference), generator=generator)
    h, h_se = _mean_se(-density.log_prob(ref.to(torch.float64)))
    return CrossEntropyGap(
        ce, ce_se, h, h_se, ce - h, math.hypot(ce_se, h_se), samples.shape[0], int(n_reference)
    )


def kl_monte_carlo(
    p: Density,
    log_q: Callable[[Tensor], Tensor],
    n: int = 100_000,
    *,
    generator: torch.Generator | None = None,
) -> tuple[float, float]:
    """KL(p || q) = E_p[log p(x) - log q(x)] by Monte Carlo with exact log densities.

    Returns:
        ``(estimate, standard_error)`` in nats.
    """
    x = p.sample(int(n), generator=generator).to(torch.float64)
    return _mean_se(p.log_prob(x) - log_q(x))


def noise_floor(
    sample_fn: Callable[[int, torch.Generator], Tensor],
    n: int,
    metric: str | Callable[..., float],
    *,
    repeats: int = 3,
    generator: torch.Generator | None = None,
) -> dict[str, float | list[float]]:
    """The value of ``metric`` between two independent exact sample sets of size ``n``.

    A sampler whose distance to the reference is within this floor cannot be told apart
    from exact sampling at this sample size.

    Args:
        sample_fn: ``sample_fn(n, generator)`` draws exact samples (e.g. ``GaussianMixture.sample``).
        n: Size of each set.
        metric: A :data:`METRICS` name or a callable ``(x, y) -> float``.
        repeats: Number of independent pairs.
        generator: Generator for the draws (and the metric's projections).

    Returns:
        ``{"mean", "std", "values"}``.
    """
    fn = get_metric(metric) if isinstance(metric, str) else metric
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    values = []
    for _ in range(int(repeats)):
        a, b = sample_fn(n, gen), sample_fn(n, gen)
        values.append(float(fn(a, b, generator=gen) if isinstance(fn, MetricSpec) else fn(a, b)))
    v = torch.tensor(values, dtype=torch.float64)
    std = float(v.std()) if len(values) > 1 else 0.0
    return {"mean": float(v.mean()), "std": std, "values": values}
