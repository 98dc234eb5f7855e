"""The registry of sample distances: name -> :class:`MetricSpec` (DESIGN.md, contract 6)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from .._utils import names_list
from .distances import sliced_wasserstein, wasserstein
from .kernels import energy_distance, mmd, mmd_features

__all__ = ["METRICS", "MetricSpec", "get_metric"]


@dataclass(frozen=True)
class MetricSpec:
    """A registered sample distance: ``fn(x, y, generator=None) -> float`` plus metadata."""

    fn: Callable[..., float]
    description: str
    #: Whether the value is random given the samples (needs a generator to be reproducible).
    stochastic: bool
    #: Largest sample set the metric handles in reasonable time (None: any).
    max_points: int | None = None

    def __call__(self, x: Tensor, y: Tensor, generator: torch.Generator | None = None) -> float:
        """The distance between the sample sets ``x`` and ``y`` (subsampled to ``max_points``)."""
        if self.max_points is not None:
            x, y = x[: self.max_points], y[: self.max_points]
        if self.stochastic:
            return self.fn(x, y, generator=generator)
        return self.fn(x, y)


#: Registry of sample distances by name (lower is better for all).
METRICS: dict[str, MetricSpec] = {
    "sw2": MetricSpec(sliced_wasserstein, "sliced Wasserstein-2 (256 projections)", True),
    "mmd": MetricSpec(
        mmd_features,
        "squared MMD, RBF kernel, median bandwidth, 512 random Fourier features (linear time)",
        True,
    ),
    "mmd_exact": MetricSpec(
        mmd,
        "unbiased squared MMD, RBF kernel, median bandwidth, all pairs (first 4000 points)",
        False,
        4000,
    ),
    "energy": MetricSpec(energy_distance, "unbiased squared energy distance", False, 4000),
    "w2": MetricSpec(wasserstein, "exact Wasserstein-2 (optimal assignment)", False, 2000),
}


def get_metric(name: str) -> MetricSpec:
    """Look up a metric in :data:`METRICS`; unknown names raise ``ValueError`` listing valid ones."""
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; expected one of {names_list(METRICS)}")
    return METRICS[name]
