"""How good "good" is: per-sample scores, mode-mass error and the noise floor of exact samples.

* :func:`score_samples` scores one sample set against the reference with the metrics of
  :mod:`scoresde.metrics`, plus, given an exact density, the cross-entropy gap with its
  standard error and, for a :class:`~scoresde.analytic.GaussianMixture`, the mode-mass error
  and per-component precision/recall (:mod:`~scoresde.studies.coverage`). The entropy behind
  the CE gap is estimated once per density (:func:`~scoresde.studies.coverage.exact_stats`).
* :func:`mode_mass` is the mean posterior responsibility of each mixture component,
  w_hat_k = mean_i p(k | x_i). Under exact sampling E_{p_0}[p(k | x)] = w_k exactly, so the
  total-variation distance 0.5 sum_k |w_hat_k - w_k| is zero in expectation up to sampling
  noise; a sampler that drops or thins a mode shows it even when CE and W2 do not.
* :func:`noise_floor_table` scores ``repeats`` independent draws of exact samples (from the
  density, or disjoint subsets of a data pool) against the *same* reference as the samplers,
  giving each metric's floor as mean +- sd over draws.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from .._utils import mean_se
from ..analytic import GaussianMixture
from ..metrics import get_metric
from .coverage import exact_stats, precision_recall

__all__ = ["data_pool_sampler", "mode_mass", "noise_floor_table", "score_samples"]


def mode_mass(x: Tensor, mixture: GaussianMixture) -> Tensor:
    """Mean posterior responsibility of each component, w_hat_k = mean_i p(k | x_i).

    Args:
        x: Samples of shape ``(n, *event_shape)``.
        mixture: The exact data mixture p_0 = sum_k w_k N(mu_k, Sigma_k).

    Returns:
        A float64 tensor of shape ``(K,)`` summing to 1.
    """
    if not isinstance(mixture, GaussianMixture):
        raise TypeError(f"mode_mass: expected a GaussianMixture, received {type(mixture).__name__}")
    if not isinstance(x, Tensor) or x.ndim < 2:
        raise ValueError("mode_mass: expected samples of shape (n, *event_shape)")
    xs = x.detach().to(torch.float64).cpu()
    cov = mixture.covariances
    logp = (
        torch.stack(
            [
                GaussianMixture(
                    [1.0], mixture.means[k : k + 1], cov[k : k + 1], event_shape=mixture.event_shape
                ).log_prob(xs)
                for k in range(mixture.K)
            ],
            dim=1,
        )
        + mixture.weights.log()
    )
    return torch.softmax(logp, dim=1).mean(0)


def score_samples(
    x: Tensor | None,
    reference: Tensor,
    metrics: Mapping[str, Any],
    seed: int,
    density: Any = None,
) -> dict[str, Any]:
    """Every quality column of one sample set (NaN where ``x`` is None, i.e. a failed run).

    Metrics with random projections use a generator seeded with ``seed`` (common random numbers
    across samplers). The CE gap is mean(-log p_0(x)) - H(p_0), with H(p_0) from the cached
    exact draws of the density (the same for every cell); its SE combines both parts.

    Returns:
        ``{metric: value}`` plus ``ce_gap``, ``ce_gap_se`` with a density and ``mode_mass_err``,
        ``mode_mass`` (list), ``precision``, ``recall`` and ``recall_k`` (list) with a
        GaussianMixture.
    """
    out: dict[str, Any] = {}
    for m, spec in metrics.items():
        out[m] = math.nan if x is None else spec(x, reference, torch.Generator().manual_seed(seed))
    if density is not None:
        if x is None:
            out["ce_gap"] = out["ce_gap_se"] = math.nan
        else:
            nll = -density.log_prob(x.detach().to(torch.float64))
            if not bool(torch.isfinite(nll).all()):
                raise ValueError("score_samples: log p_0 of the samples is not finite")
            ce, ce_se = (float(v) for v in mean_se(nll.cpu()))
            h = exact_stats(density)
            out["ce_gap"] = ce - h["entropy"]
            out["ce_gap_se"] = math.hypot(ce_se, h["entropy_se"])
    if isinstance(density, GaussianMixture):
        if x is None:
            out["mode_mass_err"], out["mode_mass"] = math.nan, None
            out["precision"] = out["recall"] = math.nan
            out["recall_k"] = None
        else:
            w_hat = mode_mass(x, density)
            out["mode_mass_err"] = 0.5 * float((w_hat - density.weights).abs().sum())
            out["mode_mass"] = [round(float(v), 6) for v in w_hat]
            out.update(precision_recall(x, density))
    return out


def data_pool_sampler(pool: Tensor) -> Callable[[int, torch.Generator], Tensor]:
    """``draw(n, gen)``: a random n-subset (without replacement) of data points ``pool``."""
    if not isinstance(pool, Tensor) or pool.ndim < 2:
        raise ValueError("data_pool_sampler: expected a pool of shape (m, *event_shape)")

    def draw(n: int, gen: torch.Generator) -> Tensor:
        if n > pool.shape[0]:
            raise ValueError(
                f"noise floor: the data pool outside the reference has {pool.shape[0]} points, "
                f"fewer than the {n} samples per run; lower --n or supply more data"
            )
        return pool[torch.randperm(pool.shape[0], generator=gen)[:n].to(pool.device)]

    return draw


def noise_floor_table(
    draw: Callable[[int, torch.Generator], Tensor],
    reference: Tensor,
    metric_names: Sequence[str],
    *,
    n: int,
    repeats: int = 5,
    density: Any = None,
    seed: int = 0,
    coverage_repeats: int = 50,
) -> dict[str, dict[str, Any]]:
    """Each metric's value for exact samples against ``reference``: mean and sd over draws.

    Args:
        draw: ``draw(n, generator)`` returns ``n`` exact samples independent of ``reference``
            (``density.sample`` or :func:`data_pool_sampler`).
        reference: The reference set the samplers are scored against.
        metric_names: Names in :data:`scoresde.metrics.METRICS`.
        n: Samples per draw (the samplers' sample count).
        repeats: Independent draws (>= 2 for an sd).
        density: Optional exact density (adds ``ce_gap`` and, for a mixture, ``mode_mass_err``).
        seed: Seed of the draws; draw r scores with seed ``seed + r``.
        coverage_repeats: Draws behind the floor of ``precision`` and ``recall`` (a mixture
            density only): they need no reference and cost little, and their floor sd decides
            :func:`~scoresde.studies.below_floor`, so it gets more draws than ``repeats``.

    Returns:
        ``{column: {"mean", "sd", "values"}}`` for every numeric column of :func:`score_samples`.
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 2:
        raise ValueError(f"noise_floor_table: expected repeats >= 2, received {repeats!r}")
    specs = {m: get_metric(m) for m in metric_names}
    gen = torch.Generator().manual_seed(seed)
    cols: dict[str, list[float]] = {}
    for r in range(repeats):
        x = draw(n, gen).to(device=reference.device, dtype=reference.dtype)
        for k, v in score_samples(x, reference, specs, seed + r, density).items():
            if isinstance(v, float) and not k.endswith("_se"):
                cols.setdefault(k, []).append(v)
    if isinstance(density, GaussianMixture) and coverage_repeats > repeats:
        gen = torch.Generator().manual_seed(seed + 7919)
        extra = [precision_recall(draw(n, gen), density) for _ in range(coverage_repeats)]
        for k in ("precision", "recall"):
            cols[k] = [e[k] for e in extra]
    out = {}
    for k, vals in cols.items():
        t = torch.tensor(vals, dtype=torch.float64)
        out[k] = {"mean": float(t.mean()), "sd": float(t.std()), "values": vals}
    return out
