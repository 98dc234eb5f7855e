"""Run a :class:`~scoresde.studies.StudySpec`: reproducible, resumable, with the noise floor.

:func:`run_study` runs every cell of a spec and, given a run folder, appends each finished cell
as one JSON line to ``cells.jsonl``; a rerun on the same folder skips the cells already there
(a study killed half-way resumes where it stopped). The folder also holds ``spec.json``,
``env.json`` (package versions, thread count, device) and ``floor.json`` (each metric for exact
samples against the same reference, mean and sd over ``floor_repeats`` draws).

Randomness is fixed by the seeds alone: for seed s, x_T comes from a generator seeded with s,
the sampler's noise from s + 1 and the metrics' projections from s, so the same spec gives the
same numbers (timings aside). Each cell runs on :func:`~scoresde.samplers.plan_for_nfe` of
its NFE (the sampler's own defaults, e.g. its grid kind, final denoising step and budget plan,
unless a factor sets them), so a row's ``nfe`` is what the sampler spent.

Sharding is a way of running the cells: with a :class:`~scoresde.distributed.World` of
several ranks (``torchrun``), each cell is one item of
:func:`~scoresde.distributed.run_sharded` (finished cells saved under ``out/shards``), and rank
0 gathers the rows in spec order. Every cell depends on its seed alone, so the rows are those
of one process at any world size (timings aside).

The floor and the exact-draw statistics (entropy, component masses) are computed once per
problem and kept in memory, so repeated studies of one problem in a process reuse them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..analytic import GaussianMixture
from ..metrics import get_metric
from ..samplers import OptimizedGrid, get_sampler
from ..sde import LinearSDE, get_sde
from .cells import PlannedCell, plan_cell, run_cell
from .folder import floor_table, load_sample, open_folder, read_cells, sample_path, write_env
from .spec import Cell, StudySpec
from .table import summarize, write_csv

__all__ = ["Problem", "StudyResult", "run_study"]


@dataclass
class Problem:
    """What a study samples and scores against.

    Attributes:
        sde: The SDE (the default when the spec has no ``sde`` factor).
        score_fn: ``score_fn(x, t)`` for ``sde``.
        reference: Reference samples, ``(m, *event_shape)``.
        draw: ``draw(n, generator)``: exact samples independent of ``reference`` (noise floor);
            None: no floor.
        density: Optional exact density (CE gap; mode-mass error and precision/recall for a
            GaussianMixture).
        guidance: For a ``guidance`` factor, the guided scores and references per weight
            (:func:`~scoresde.studies.guided_problem`).
    """

    sde: LinearSDE
    score_fn: Callable[[Tensor, Tensor], Tensor]
    reference: Tensor
    draw: Callable[[int, torch.Generator], Tensor] | None
    density: Any = None
    guidance: Any = None

    @classmethod
    def analytic(
        cls, mixture: GaussianMixture, sde: str = "vp", n_reference: int = 2000, seed: int = 10_000
    ) -> Problem:
        """An exact mixture: exact score under ``sde``, exact reference and floor draws."""
        if not isinstance(mixture, GaussianMixture):
            raise TypeError(
                f"Problem.analytic: expected a GaussianMixture, received {type(mixture).__name__}"
            )
        s = get_sde(sde)
        ref = mixture.sample(n_reference, torch.Generator().manual_seed(seed), dtype=torch.float32)

        def draw(n: int, gen: torch.Generator) -> Tensor:
            return mixture.sample(n, gen, dtype=torch.float32)

        return cls(s, mixture.with_sde(s), ref, draw, mixture)

    def for_sde(self, name: str | None) -> tuple[LinearSDE, Any]:
        """The SDE and score of an ``sde`` factor value (exact mixtures only)."""
        if name is None:
            return self.sde, self.score_fn
        if not isinstance(self.density, GaussianMixture):
            raise ValueError(
                "run_study: an 'sde' factor needs an exact mixture score "
                "(a checkpoint's score belongs to its own SDE)"
            )
        sde = get_sde(name)
        return sde, self.density.with_sde(sde)


@dataclass
class StudyResult:
    """Rows (one per cell, spec order), the noise floor and the kept samples.

    Attributes:
        spec: The spec that ran.
        rows: One dict per cell (sampler label, factors, ``nfe_target``, ``nfe`` spent, seed,
            cost columns, one column per metric, and the density's columns).
        floor: ``{column: {"mean", "sd", "values"}}`` of exact samples ({} without draws).
        samples: Samples of the first seed by ``(config, nfe_target)``, if kept.
        skipped: Human-readable reasons for cells that could not be planned.
        reference: The reference samples.
    """

    spec: StudySpec
    rows: list[dict[str, Any]]
    floor: dict[str, dict[str, Any]]
    samples: dict[tuple[str, int | None], Tensor] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    reference: Tensor | None = None

    @property
    def metrics(self) -> tuple[str, ...]:
        """The metric names scored."""
        return tuple(self.spec.metrics)

    def to_csv(self, path: str | Path) -> None:
        """Write the rows as CSV."""
        write_csv(self.rows, path)

    def summary(self, metric: str) -> list[dict[str, Any]]:
        """Mean and standard error of ``metric`` over seeds, per (config, NFE)."""
        return summarize(self.rows, metric)


def run_study(
    spec: StudySpec,
    problem: Problem,
    out: str | Path | None = None,
    *,
    progress: Callable[[str], object] | None = None,
    world: Any = None,
    grids: Mapping[str, OptimizedGrid] | None = None,
    timing_repeats: int = 3,
    keep_samples: bool = True,
) -> StudyResult | None:
    """Run every cell of ``spec`` on ``problem``; with ``out``, save and resume there.

    Args:
        spec: The study spec.
        problem: Score, reference and exact draws (:meth:`Problem.analytic` for a mixture).
        out: Run folder. If it holds a ``spec.json``, it must equal ``spec``; the cells in its
            ``cells.jsonl`` are kept, not rerun.
        progress: Optional ``progress(message)`` called before each run.
        world: Optional :class:`~scoresde.distributed.World`: its ranks share the cells (same
            rows at any world size); only rank 0 gets the result and writes files.
        grids: In-memory saved grids by row label (:func:`~scoresde.samplers.optimize_grid`):
            each runs its own sampler and options at its own NFE, under every setting and seed.
        timing_repeats: Runs per cell behind the median CPU and wall times (>= 1).
        keep_samples: Keep the first seed's samples at each config's smallest and largest NFE
            (and save them under ``out/samples``).

    Returns:
        A :class:`StudyResult` (None on ranks other than 0).

    Raises:
        ValueError: A ``spec.json`` in ``out`` that differs from ``spec``, unknown metric or
            sampler names, factor names that clash with row columns, or a reference the score
            function does not accept.
    """
    if not isinstance(spec, StudySpec):
        raise TypeError(f"run_study: expected a StudySpec, received {type(spec).__name__}")
    if not isinstance(problem, Problem):
        raise TypeError(f"run_study: expected a Problem, received {type(problem).__name__}")
    if (
        isinstance(timing_repeats, bool)
        or not isinstance(timing_repeats, int)
        or timing_repeats < 1
    ):
        raise ValueError(f"run_study: expected timing_repeats >= 1, received {timing_repeats!r}")
    grids = _check_grids(grids)
    metric_specs = {m: get_metric(m) for m in spec.metrics}
    adaptive = {e["name"] for e in spec.samplers if get_sampler(e["name"]).adaptive}
    clash = set(spec.factors) & {"sampler", "method", "name", "nfe", "nfe_target", "seed", "n"}
    if clash:
        raise ValueError(f"run_study: factor names {sorted(clash)} clash with row columns")
    _probe(problem)
    rank0 = world is None or world.rank == 0
    folder = None if out is None else Path(out)
    done: dict[str, dict[str, Any]] = {}
    if folder is not None:
        if rank0:
            done = open_folder(folder, spec)
        if world is not None and world.size > 1:
            world.barrier()  # rank 0 has checked (or written) spec.json
            done = done if rank0 else read_cells(folder)
    planned, skipped = _plan(spec, problem, adaptive, grids)
    lo_hi = (min(spec.nfe), max(spec.nfe))
    ref = problem.reference
    state: dict[str, Any] = {"priors": {}, "warmed": set()}

    def one(i: int, score_wrap: Callable[[Any], Any] | None = None) -> tuple[dict, Tensor | None]:
        p = planned[i]
        c = p.cell
        if c.key in done:
            x = load_sample(folder, c) if folder is not None and _keep(c, spec, lo_hi) else None
            return done[c.key], x
        if progress is not None:
            progress(f"{c.config} nfe={c.nfe} seed={c.seed}")
        if score_wrap is not None:
            p = replace(p, score_fn=score_wrap(p.score_fn))
        pkey = (c.factors.get("sde"), c.seed)
        if pkey not in state["priors"]:
            gen = torch.Generator().manual_seed(c.seed)
            x_T = p.sde.prior_sample((spec.n, *ref.shape[1:]), gen)
            state["priors"][pkey] = x_T.to(device=ref.device, dtype=ref.dtype)
        x_T = state["priors"][pkey]
        if c.name not in state["warmed"]:  # untimed warm-up on 8 draws: steadier timings
            run_cell(p, x_T[:8], ref, {}, None, 1)
            state["warmed"].add(c.name)
        target, density = (ref, problem.density) if p.reference is None else p.reference
        row, x = run_cell(p, x_T, target, metric_specs, density, timing_repeats)
        return row, (x.detach().cpu() if x is not None and _keep(c, spec, lo_hi) else None)

    if world is not None and world.size > 1:
        pairs = _sharded(one, len(planned), spec, problem, folder, world, progress is not None)
        if pairs is None:
            return None
    else:
        pairs = []
        for i in range(len(planned)):
            row, x = one(i)
            pairs.append((row, x))
            if folder is not None and planned[i].cell.key not in done:
                with open(folder / "cells.jsonl", "a") as fh:
                    fh.write(json.dumps(row) + "\n")
                    fh.flush()
    floor = floor_table(spec, problem, folder)
    result = StudyResult(spec, [], floor, skipped=skipped, reference=ref)
    for p, (row, x) in zip(planned, pairs, strict=True):
        result.rows.append(row)
        if x is not None and keep_samples:
            result.samples[(p.cell.config, p.cell.nfe)] = x
            if folder is not None and not sample_path(folder, p.cell).is_file():
                (folder / "samples").mkdir(exist_ok=True)
                torch.save(x, sample_path(folder, p.cell))
    if folder is not None:
        if world is not None and world.size > 1:  # the rows of every rank, as one process writes
            (folder / "cells.jsonl").write_text("".join(json.dumps(r) + "\n" for r in result.rows))
        write_csv(result.rows, folder / "sampler_study.csv")
        write_env(folder / "env.json", world)
    return result


def _keep(c: Cell, spec: StudySpec, lo_hi: tuple[int, int]) -> bool:
    extreme = c.nfe is None or c.nfe not in spec.nfe or c.nfe in lo_hi
    return c.seed == spec.seeds[0] and extreme


def _check_grids(grids: Mapping[str, OptimizedGrid] | None) -> dict[str, OptimizedGrid]:
    if grids is None:
        return {}
    if not isinstance(grids, Mapping) or not all(
        isinstance(k, str) and isinstance(v, OptimizedGrid) for k, v in grids.items()
    ):
        raise TypeError(
            "run_study: expected grids as a dict {label: OptimizedGrid}, received "
            f"{type(grids).__name__}"
        )
    return dict(grids)


def _probe(problem: Problem) -> None:
    """One score evaluation on the reference: a wrong event shape is an error, not NaN rows."""
    ref = problem.reference
    if not isinstance(ref, Tensor) or ref.ndim < 2:
        raise ValueError("run_study: expected reference samples of shape (m, *event_shape)")
    try:
        with torch.no_grad():
            t = torch.full((1,), problem.sde.T, dtype=ref.dtype, device=ref.device)
            problem.score_fn(ref[:1], t)
    except (ValueError, RuntimeError) as err:
        raise ValueError(
            f"run_study: expected reference samples the score function accepts, "
            f"received shape {tuple(ref.shape)} ({str(err).splitlines()[0]})"
        ) from None


def _plan(
    spec: StudySpec, problem: Problem, adaptive: set[str], grids: dict[str, OptimizedGrid]
) -> tuple[list[PlannedCell], list[str]]:
    """Every cell that can run, in spec order (seed, setting, samplers, grid files, grids)."""
    for name in spec.factors.get("sde", []):
        problem.for_sde(name)  # a checkpoint's score belongs to its own SDE: an error, not a skip
    if "guidance" in spec.factors and problem.guidance is None:  # an error, not a skip
        raise ValueError(
            "run_study: a 'guidance' factor needs a labelled exact mixture (studies."
            "guided_problem; compare --analytic with labels and class) or a class-conditional "
            "model and a class (compare --ckpt with --class K), received a problem without"
        )
    cells = spec.cells(adaptive)
    if grids:
        varying = cells[0].varying if cells else ()
        extra = [
            Cell(label, og.sampler, {}, dict(setting), og.nfe, seed, varying)
            for seed in spec.seeds
            for setting in spec.settings()
            for label, og in grids.items()
        ]
        order = {
            json.dumps([s, st], sort_keys=True): i
            for i, (s, st) in enumerate((s, st) for s in spec.seeds for st in spec.settings())
        }
        cells = sorted(
            cells + extra, key=lambda c: order[json.dumps([c.seed, c.factors], sort_keys=True)]
        )
    planned: list[PlannedCell] = []
    skipped: list[str] = []
    seen: set[str] = set()
    for cell in cells:
        try:
            p = plan_cell(cell, problem, grids)
        except (ValueError, TypeError) as err:
            if cell.seed == spec.seeds[0]:
                skipped.append(f"{cell.config} at NFE {cell.nfe}: {err}")
            continue
        if p.cell.key not in seen:
            seen.add(p.cell.key)
            planned.append(p)
    return planned, skipped


def _sharded(
    one: Callable[..., tuple[dict, Tensor | None]],
    n: int,
    spec: StudySpec,
    problem: Problem,
    folder: Path | None,
    world: Any,
    progress: bool,
) -> list[tuple[dict, Tensor | None]] | None:
    """The cells as items of :func:`~scoresde.distributed.run_sharded` (one cell per shard)."""
    from ..distributed import fingerprint_of, run_sharded
    from ..distributed.jobs import _beating

    def shard(start: int, stop: int, beat: Callable[[], None]) -> dict[str, Any]:
        row, x = one(start, lambda fn: _beating(fn, beat))
        return {"row": row, "x": [] if x is None else [x]}

    fp = None
    if folder is not None:
        fp = fingerprint_of(
            {
                "job": "study",
                "spec": spec.to_dict(),
                "sde": problem.sde.config(),
                "score_fn": problem.score_fn,
                "reference": problem.reference,
            }
        )
    parts = run_sharded(
        shard,
        n,
        shard_size=1,
        world=world,
        shard_dir=None if folder is None else folder / "shards",
        fingerprint=fp,
        progress=progress,
        desc="sampler study",
    )
    if parts is None:
        return None
    return [(p["row"], p["x"][0] if p["x"] else None) for p in parts]
