"""One cell of a study: its grid and options resolved, the sampler run and timed, the row scored.

:func:`plan_cell` turns a :class:`~scoresde.studies.Cell` into what runs (the SDE and score
of its ``sde`` factor, the time grid and sampler options: a saved grid file or an in-memory
:class:`~scoresde.samplers.OptimizedGrid` brings its own sampler, options and NFE; otherwise
:func:`~scoresde.samplers.plan_for_nfe` of the cell's NFE). :func:`run_cell` runs it from the
seed's prior draws and returns the row.

Cost is measured as the *method's*, not the machine's: the sampler runs ``timing_repeats``
times (same seed, same samples) and the row keeps the median CPU time (``time.process_time``,
all threads of this process) and the median wall time; ``us_per_sample`` is CPU microseconds
per sample. NFE stays the primary cost axis.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..samplers import OptimizedGrid, load_grid, plan_for_nfe, sample
from ..sde import LinearSDE
from .guided import tilted_columns
from .quality import score_samples
from .spec import Cell, StudySpec

__all__ = ["PlannedCell", "plan_cell", "run_cell"]


@dataclass
class PlannedCell:
    """A cell with what it runs: SDE, score, grid and sampler options."""

    cell: Cell
    sde: LinearSDE
    score_fn: Any
    grid: Tensor
    options: dict[str, Any]
    #: ``(reference, density)`` of a ``guidance`` cell; ``None``: the problem's own.
    reference: tuple[Tensor, Any] | None = None
    #: The tilted target of a ``guidance`` cell (:mod:`.guided`; None without one or for d > 2).
    tilted: Any = None


def plan_cell(cell: Cell, problem: Any, grids: dict[str, OptimizedGrid]) -> PlannedCell:
    """Resolve ``cell`` on ``problem`` (raises ValueError/TypeError if its plan is impossible)."""
    structural, opts = StudySpec.run_options(cell)
    sde, score_fn = problem.for_sde(structural.get("sde"))
    if "guidance" in structural:
        return replace(
            _plan_grid(cell, structural, opts, sde, score_fn, grids), **_guided(problem, structural)
        )
    return _plan_grid(cell, structural, opts, sde, score_fn, grids)


def _guided(problem: Any, structural: dict[str, Any]) -> dict[str, Any]:
    """The guided score and the reference of a ``guidance`` cell (:mod:`.guided`)."""
    targets, w = problem.guidance, structural["guidance"]
    if targets is None or "sde" in structural:
        raise ValueError(
            "run_study: a 'guidance' factor needs a labelled exact mixture "
            "(studies.guided_problem) or a class-conditional model with a class, and no 'sde' "
            "factor"
        )
    return {
        "score_fn": targets.score(w),
        "reference": (targets.reference(w), targets.density(w)),
        "tilted": targets.tilted(w),
    }


def _plan_grid(
    cell: Cell,
    structural: dict[str, Any],
    opts: dict[str, Any],
    sde: LinearSDE,
    score_fn: Any,
    grids: dict[str, OptimizedGrid],
) -> PlannedCell:
    """The grid and options of ``cell`` (a saved grid, an adaptive solve or a planned grid)."""
    grid_arg = cell.grid_file or structural.get("grid")
    if cell.label in grids and not cell.grid_file:  # an in-memory grid under its own label
        og = grids[cell.label]
        og.check_sde(sde)
        return PlannedCell(cell, sde, score_fn, og.times, {**opts, **og.options})
    if isinstance(grid_arg, str) and grid_arg.endswith(".json"):
        og = load_grid(grid_arg, sde)
        cell = replace(
            cell,
            label=f"{og.sampler}[{Path(grid_arg).stem}]",
            name=og.sampler,
            options=dict(og.options),
            nfe=og.nfe,
            grid_file=grid_arg,
        )
        return PlannedCell(cell, sde, score_fn, og.times, {**opts, **og.options})
    if cell.nfe is None:  # adaptive: the solver picks its own steps
        grid = torch.tensor([sde.T, structural.get("t_end", sde.eps)], dtype=torch.float64)
        return PlannedCell(cell, sde, score_fn, grid, opts)
    grid, opts = plan_for_nfe(
        sde, cell.name, cell.nfe, grid_arg, t_end=structural.get("t_end"), exact=False, **opts
    )
    return PlannedCell(cell, sde, score_fn, grid, opts)


def _sample_once(p: PlannedCell, x_T: Tensor, seed: int) -> tuple[Any, float, float]:
    gen = torch.Generator(device=x_T.device).manual_seed(seed + 1)
    cpu, wall = time.process_time(), time.perf_counter()
    with torch.no_grad():
        x, info = sample(p.cell.name, p.sde, p.score_fn, x_T, p.grid, generator=gen, **p.options)
    if x.is_cuda:
        torch.cuda.synchronize(x.device)
    return (x, info), time.process_time() - cpu, time.perf_counter() - wall


def run_cell(
    p: PlannedCell,
    x_T: Tensor,
    reference: Tensor,
    metric_specs: dict[str, Any],
    density: Any,
    timing_repeats: int = 3,
) -> tuple[dict[str, Any], Tensor | None]:
    """Run and score one cell from prior draws ``x_T``; return its row and samples (or None).

    A diverging run (NaN, or a ValueError from the sampler) or an option the sampler does not
    take (TypeError) is a result, not a crash: the row has ``error`` and NaN metrics.
    """
    c = p.cell
    n = x_T.shape[0]
    row: dict[str, Any] = {
        "sampler": c.config,
        "method": c.label,
        "name": c.name,
        **c.factors,
        "nfe_target": c.nfe,
    }
    cpus, walls = [], []
    x: Tensor | None = None
    try:
        (x, info), cpu, wall = _sample_once(p, x_T, c.seed)
        if not bool(torch.isfinite(x).all()):
            raise ValueError("samples contain NaN/Inf")
        cpus.append(cpu)
        walls.append(wall)
        for _ in range(timing_repeats - 1):  # same seed, same samples: timing only
            _, cpu, wall = _sample_once(p, x_T, c.seed)
            cpus.append(cpu)
            walls.append(wall)
        row.update(nfe=info.nfe, n_steps=info.n_steps, seed=c.seed, error="")
    except (ValueError, TypeError) as err:
        x = None
        row.update(
            nfe=None, n_steps=p.grid.numel() - 1, seed=c.seed, error=str(err).splitlines()[0]
        )
    cpu_s = statistics.median(cpus) if cpus else 0.0
    row.update(
        cpu_time_s=cpu_s,
        wall_time_s=statistics.median(walls) if walls else 0.0,
        us_per_sample=1e6 * cpu_s / n,
        timing_repeats=len(cpus),
    )
    row.update(score_samples(x, reference, metric_specs, c.seed, density))
    if p.tilted is not None:
        row.update(tilted_columns(x, p.tilted))
    row["key"] = c.key
    return row, x
