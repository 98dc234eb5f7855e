"""``compare_samplers``: samplers on a grid of NFEs from the same prior draws, a front of run_study.

:func:`compare_samplers` builds a :class:`~scoresde.studies.StudySpec` from its arguments
(samplers, NFEs, seeds, metrics; a grid kind and ``denoise`` as factors) and a
:class:`~scoresde.studies.Problem` (the density's exact draws give the noise floor), and runs
:func:`~scoresde.studies.run_study`: one engine, one row format. It returns the
:class:`~scoresde.studies.StudyResult`, with one row per sampler x NFE x seed (columns in
:data:`SAMPLER_COLUMNS` plus one per metric).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from torch import Tensor

from ..metrics import Density
from ..samplers import OptimizedGrid, get_sampler
from ..sde import LinearSDE
from .runner import Problem, StudyResult, run_study
from .spec import StudySpec

__all__ = ["SAMPLER_COLUMNS", "SamplerStudy", "compare_samplers"]

#: Columns of every sampler-study row (plus one column per metric, and ``ce_gap``/``ce_gap_se``
#: when a density is given). ``nfe`` is the count the sampler reports; ``error`` is empty unless
#: the run failed (e.g. NaN), in which case the metrics are NaN. ``cpu_time_s`` and
#: ``wall_time_s`` are medians over the timing repeats; ``us_per_sample`` is CPU time.
SAMPLER_COLUMNS = (
    "sampler",
    "name",
    "nfe_target",
    "nfe",
    "n_steps",
    "seed",
    "cpu_time_s",
    "wall_time_s",
    "us_per_sample",
    "error",
)
#: The result of :func:`compare_samplers` (the study engine's result).
SamplerStudy = StudyResult
SamplerArg = str | tuple[str, dict[str, Any]]


def _entry(arg: SamplerArg) -> dict[str, Any]:
    if isinstance(arg, str):
        return {"name": arg, "options": {}}
    if isinstance(arg, tuple) and len(arg) == 2 and isinstance(arg[1], dict):
        return {"name": arg[0], "options": dict(arg[1])}
    raise TypeError(f"samplers: expected names or (name, options) pairs, received {arg!r}")


def compare_samplers(
    sde: LinearSDE,
    score_fn: Callable[[Tensor, Tensor], Tensor],
    samplers: Sequence[SamplerArg],
    nfes: Sequence[int],
    reference: Tensor,
    metrics: Sequence[str] = ("sw2", "mmd"),
    *,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    n_samples: int | None = None,
    density: Density | None = None,
    grid_kind: str | None = None,
    grids: Mapping[str, OptimizedGrid] | None = None,
    denoise: bool = False,
    keep_samples: bool = True,
    progress: Callable[[str], object] | None = None,
    world: Any = None,
    timing_repeats: int = 3,
) -> StudyResult | None:
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
        seeds: One row per seed (two or more for a ranking; five by default).
        n_samples: Samples per run (default: ``len(reference)``).
        density: Optional exact density: the CE gap columns, the noise floor from its exact
            draws and, for a mixture, mode mass and precision/recall.
        grid_kind: Grid kind for every sampler (default: each sampler's own).
        grids: Extra runs on saved grids (:func:`~scoresde.samplers.optimize_grid`), by row
            label: each runs its own sampler and options at its own NFE, for every seed.
        denoise: Add the final Tweedie step (1 NFE, inside the budget) to every named sampler.
        keep_samples: Keep the first seed's samples at the smallest and largest NFE.
        progress: Optional ``progress(message)`` called before each run.
        world: Optional :class:`~scoresde.distributed.World`: its ranks share the cells.
        timing_repeats: Runs per cell behind the median CPU and wall times.

    Returns:
        A :class:`~scoresde.studies.StudyResult` (None on ranks other than 0).

    Raises:
        ValueError: For unknown sampler or metric names, samplers that do not support ``sde``,
            empty ``nfes``/``seeds``, or a badly shaped reference.
    """
    entries = [_entry(a) for a in samplers]
    if not entries and not grids:
        raise ValueError(
            "compare_samplers: expected at least one sampler (or saved grid), received none"
        )
    for e in entries:
        if not get_sampler(e["name"]).supports(sde):
            raise ValueError(f"compare_samplers: sampler {e['name']!r} does not support {sde!r}")
    if not nfes or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in nfes):
        raise ValueError(f"compare_samplers: expected positive integer NFEs, received {nfes!r}")
    if not seeds:
        raise ValueError("compare_samplers: expected at least one seed")
    if not isinstance(reference, Tensor) or reference.ndim < 2:
        raise ValueError("compare_samplers: expected reference samples of shape (m, *event_shape)")
    factors: dict[str, list[Any]] = {"grid": [grid_kind]} if grid_kind else {}
    if denoise:
        factors["denoise"] = [True]
    spec = StudySpec(
        samplers=entries or [{"name": "ddim", "options": {}}],
        nfe=sorted(set(nfes)),
        seeds=list(seeds),
        metrics=list(metrics),
        n=int(n_samples or reference.shape[0]),
        factors=factors,
    )
    spec.samplers = entries  # with grids only, their rows alone
    draw = None
    if density is not None:
        dtype = reference.dtype

        def draw(n: int, gen: Any) -> Tensor:
            return density.sample(n, generator=gen).to(dtype=dtype)

    problem = Problem(sde, score_fn, reference, draw, density)
    return run_study(
        spec,
        problem,
        progress=progress,
        world=world,
        grids=grids,
        timing_repeats=timing_repeats,
        keep_samples=keep_samples,
    )
