"""Sampler study: every sampler on a grid of NFEs, from the same prior draws, scored by metrics.

* :func:`compare_samplers` runs every (sampler, NFE, seed) from the *same* prior draws x_T (per
  seed) and scores the samples against reference samples with the metrics of
  :mod:`scoresde.metrics`. It returns a :class:`SamplerStudy`, a tidy table with one row per
  sampler x NFE x seed (columns in :data:`SAMPLER_COLUMNS` plus one per metric).
* :func:`likelihood_study` compares log p(x) from the PF-ODE with exact divergence, Hutchinson's
  estimator with 1..k probes, and the continuous ELBO (Song, Durkan, Murray & Ermon 2021,
  Thm. 2), reporting error and cost (NFE, vector-Jacobian products, wall time) per solver
  tolerance. Columns in :data:`LIKELIHOOD_COLUMNS`.

Plots of both tables live in :mod:`scoresde.cli.report`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..metrics import Density, get_metric
from ..samplers import OptimizedGrid, get_sampler, plan_for_nfe, sample
from ..sde import LinearSDE
from .quality import score_samples
from .table import summarize, write_csv

__all__ = ["SAMPLER_COLUMNS", "SamplerStudy", "compare_samplers"]

#: Columns of every sampler-study row (plus one column per metric, and ``ce_gap``/``ce_gap_se``
#: when a density is given). ``nfe`` is the count the sampler reports; ``error`` is empty unless
#: the run failed (e.g. NaN), in which case the metrics are NaN.
SAMPLER_COLUMNS = (
    "sampler",
    "name",
    "nfe_target",
    "nfe",
    "n_steps",
    "seed",
    "wall_time_s",
    "error",
)
SamplerArg = str | tuple[str, dict[str, Any]]


@dataclass
class SamplerStudy:
    """The result of :func:`compare_samplers`.

    Attributes:
        rows: One dict per sampler x NFE x seed (see :data:`SAMPLER_COLUMNS`).
        metrics: The metric names scored.
        samples: Samples of the first seed by ``(sampler label, nfe_target)``, if kept.
        skipped: Human-readable reasons for (sampler, NFE) pairs that could not run.
    """

    rows: list[dict[str, Any]]
    metrics: tuple[str, ...]
    samples: dict[tuple[str, int | None], Tensor] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def to_csv(self, path: str | Path) -> None:
        """Write the rows as CSV."""
        write_csv(self.rows, path)

    def summary(self, metric: str) -> list[dict[str, Any]]:
        """Mean and standard error of ``metric`` over seeds, per (sampler, NFE)."""
        return summarize(self.rows, metric)


def _label(arg: SamplerArg) -> tuple[str, str, dict[str, Any]]:
    if isinstance(arg, str):
        return arg, arg, {}
    if isinstance(arg, tuple) and len(arg) == 2 and isinstance(arg[1], dict):
        name, opts = arg
        inner = ", ".join(f"{k}={v}" for k, v in sorted(opts.items()))
        return (f"{name}({inner})" if inner else name), name, dict(opts)
    raise TypeError(f"samplers: expected names or (name, options) pairs, received {arg!r}")


def compare_samplers(
    sde: LinearSDE,
    score_fn: Callable[[Tensor, Tensor], Tensor],
    samplers: Sequence[SamplerArg],
    nfes: Sequence[int],
    reference: Tensor,
    metrics: Sequence[str] = ("sw2", "mmd"),
    *,
    seeds: Sequence[int] = (0,),
    n_samples: int | None = None,
    density: Density | None = None,
    grid_kind: str | None = None,
    grids: Mapping[str, OptimizedGrid] | None = None,
    denoise: bool = False,
    keep_samples: bool = True,
    progress: Callable[[str], object] | None = None,
) -> SamplerStudy:
    """Run each sampler at each NFE and seed; score the samples against ``reference``.

    For seed s every sampler starts from the same prior draws x_T (generator seeded with s) and
    its own noise comes from a generator seeded with s + 1; metrics with random projections use
    a generator seeded with s as well (common random numbers, so differences between samplers
    are not metric noise). A sampler whose cost per step does not divide an NFE runs at the
    largest NFE below it; the row records the NFE actually used. Adaptive samplers run once
    per seed at their own NFE (``nfe_target`` is None).

    Args:
        sde: The linear SDE.
        score_fn: ``score_fn(x, t)``.
        samplers: Registry names, or ``(name, options)`` pairs, e.g. ``("pc", {"snr": 0.1})``.
        nfes: Target numbers of score evaluations.
        reference: Exact (or held-out) samples, shape ``(m, *event_shape)``.
        metrics: Names in :data:`scoresde.metrics.METRICS`.
        seeds: One row per seed.
        n_samples: Samples per run (default: ``len(reference)``).
        density: Optional exact density; adds the cross-entropy gap columns.
        grid_kind: Grid kind for every sampler (default: each sampler's own).
        grids: Extra runs on saved grids (:func:`~scoresde.samplers.optimize_grid`), by row
            label: each runs its own sampler and options at its own NFE, for every seed.
        denoise: Add the final Tweedie step (1 NFE, inside the budget) to every named sampler.
        keep_samples: Keep the first seed's samples in ``SamplerStudy.samples``.
        progress: Optional ``progress(message)`` called before each run.

    Returns:
        A :class:`SamplerStudy`.

    Raises:
        ValueError: For unknown sampler or metric names, samplers that do not support ``sde``,
            empty ``nfes``/``seeds``, or a badly shaped reference.
    """
    specs = [_label(a) for a in samplers]
    if not specs and not grids:
        raise ValueError(
            "compare_samplers: expected at least one sampler (or saved grid), received none"
        )
    if denoise:
        specs = [(label, name, {"denoise": True, **opts}) for label, name, opts in specs]
    fixed = _check_grids(sde, grids)
    for label, name, _ in specs:
        spec = get_sampler(name)
        if not spec.supports(sde):
            raise ValueError(f"compare_samplers: sampler {label!r} does not support {sde!r}")
    metric_specs = {m: get_metric(m) for m in metrics}
    if not nfes or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in nfes):
        raise ValueError(f"compare_samplers: expected positive integer NFEs, received {nfes!r}")
    if not seeds:
        raise ValueError("compare_samplers: expected at least one seed")
    if not isinstance(reference, Tensor) or reference.ndim < 2:
        raise ValueError("compare_samplers: expected reference samples of shape (m, *event_shape)")
    try:  # one probe: a reference of the wrong event shape is an error, not NaN rows
        with torch.no_grad():
            t_probe = torch.full((1,), sde.T, dtype=reference.dtype, device=reference.device)
            score_fn(reference[:1], t_probe)
    except (ValueError, RuntimeError) as err:
        raise ValueError(
            f"compare_samplers: expected reference samples the score function accepts, received "
            f"shape {tuple(reference.shape)} ({str(err).splitlines()[0]})"
        ) from None
    n = int(n_samples or reference.shape[0])
    study = SamplerStudy([], tuple(metrics))
    for seed in seeds:
        x_T = sde.prior_sample((n, *reference.shape[1:]), torch.Generator().manual_seed(seed))
        x_T = x_T.to(device=reference.device, dtype=reference.dtype)
        for label, name, opts in specs:
            adaptive = get_sampler(name).adaptive
            for nfe_target in [None] if adaptive else sorted(set(nfes)):
                run_opts = opts
                if adaptive:
                    grid = torch.tensor([sde.T, sde.eps], dtype=torch.float64)
                else:
                    assert nfe_target is not None
                    try:  # the sampler's measured few-step defaults, as ``sample`` applies them
                        grid, run_opts = plan_for_nfe(
                            sde, name, nfe_target, grid_kind, exact=False, **opts
                        )
                    except ValueError as err:
                        if seed == seeds[0]:
                            study.skipped.append(f"{label} at NFE {nfe_target}: {err}")
                        continue
                if progress is not None:
                    progress(f"{label} nfe={nfe_target} seed={seed}")
                row, x = _run_one(sde, score_fn, name, run_opts, x_T, grid, seed)
                row.update(sampler=label, name=name, nfe_target=nfe_target)
                _score(row, x, reference, metric_specs, seed, density)
                study.rows.append(row)
                if keep_samples and seed == seeds[0] and x is not None:
                    study.samples[(label, nfe_target)] = x
        for label, og in fixed.items():
            if progress is not None:
                progress(f"{label} nfe={og.nfe} seed={seed}")
            row, x = _run_one(sde, score_fn, og.sampler, og.options, x_T, og.times, seed)
            row.update(sampler=label, name=og.sampler, nfe_target=og.nfe)
            _score(row, x, reference, metric_specs, seed, density)
            study.rows.append(row)
            if keep_samples and seed == seeds[0] and x is not None:
                study.samples[(label, og.nfe)] = x
    return study


def _check_grids(
    sde: LinearSDE, grids: Mapping[str, OptimizedGrid] | None
) -> dict[str, OptimizedGrid]:
    if grids is None:
        return {}
    if not isinstance(grids, Mapping) or not all(
        isinstance(k, str) and isinstance(v, OptimizedGrid) for k, v in grids.items()
    ):
        raise TypeError(
            "compare_samplers: expected grids as a dict {label: OptimizedGrid}, received "
            f"{type(grids).__name__}"
        )
    for og in grids.values():
        og.check_sde(sde)
    return dict(grids)


def _run_one(
    sde: LinearSDE,
    score_fn: Any,
    name: str,
    opts: dict[str, Any],
    x_T: Tensor,
    grid: Tensor,
    seed: int,
) -> tuple[dict[str, Any], Tensor | None]:
    gen = torch.Generator(device=x_T.device).manual_seed(seed + 1)
    start = time.perf_counter()
    try:
        with torch.no_grad():
            x, info = sample(name, sde, score_fn, x_T, grid, generator=gen, **opts)
        if not bool(torch.isfinite(x).all()):
            raise ValueError("samples contain NaN/Inf")
    except ValueError as err:  # a diverging run is a result, not a crash
        row = {"nfe": None, "n_steps": grid.numel() - 1, "error": str(err).splitlines()[0]}
        return {**row, "seed": seed, "wall_time_s": time.perf_counter() - start}, None
    wall = time.perf_counter() - start
    return {
        "nfe": info.nfe,
        "n_steps": info.n_steps,
        "seed": seed,
        "wall_time_s": wall,
        "error": "",
    }, x


def _score(
    row: dict[str, Any],
    x: Tensor | None,
    reference: Tensor,
    metric_specs: dict[str, Any],
    seed: int,
    density: Any,
) -> None:
    row.update(score_samples(x, reference, metric_specs, seed, density))
