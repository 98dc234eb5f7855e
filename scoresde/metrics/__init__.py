"""Sample-quality metrics: distances between sample sets, and scores under an exact density.

Every distance takes two sample sets ``x`` of shape ``(n, *dims)`` and ``y`` of shape
``(m, *dims)`` and returns a Python float (lower is better):

* :func:`sliced_wasserstein` (SW_2), :func:`wasserstein` (exact W_2 by optimal assignment),
  :func:`mmd` (unbiased MMD^2, RBF kernel), :func:`energy_distance` (unbiased D^2);
* :func:`mmd_features`: the same MMD^2 in linear time (random Fourier features);
* :data:`METRICS` maps names ('sw2', 'w2', 'mmd' (random features), 'mmd_exact', 'energy') to
  them with a uniform signature ``spec(x, y, generator=None) -> float``, for the studies.

Against an exact density p_0 (e.g. :class:`~scoresde.analytic.GaussianMixture`):
:func:`cross_entropy_gap` = mean(-log p_0(samples)) - H(p_0), :func:`kl_monte_carlo`, and
:func:`noise_floor`, the distance between two independent exact sample sets (what "zero" looks
like at a given sample size).
"""

from __future__ import annotations

from .density import CrossEntropyGap, Density, cross_entropy_gap, kl_monte_carlo, noise_floor
from .distances import sliced_wasserstein, wasserstein
from .kernels import energy_distance, median_bandwidth, mmd, mmd_features
from .registry import METRICS, MetricSpec, get_metric

__all__ = [
    "METRICS",
    "CrossEntropyGap",
    "Density",
    "MetricSpec",
    "cross_entropy_gap",
    "energy_distance",
    "get_metric",
    "kl_monte_carlo",
    "median_bandwidth",
    "mmd",
    "mmd_features",
    "noise_floor",
    "sliced_wasserstein",
    "wasserstein",
]
