"""Run a :class:`~scoresde.studies.StudySpec`: reproducible, resumable, with the noise floor.

:func:`run_study` runs every cell of a spec and, given a run folder, appends each finished cell
as one JSON line to ``cells.jsonl``; a rerun on the same folder skips the cells already there
(a study killed half-way resumes where it stopped). The folder also holds ``spec.json``,
``env.json`` (package versions, thread count, device) and ``floor.json`` (each metric for exact
samples against the same reference, mean and sd over ``floor_repeats`` draws).

Randomness is fixed by the seeds alone: for seed s, x_T comes from a generator seeded with s,
the sampler's noise from s + 1 and the metrics' projections from s, so the same spec gives the
same numbers (wall time aside). Each cell runs on :func:`~scoresde.samplers.plan_for_nfe` of
its NFE (the sampler's own defaults, e.g. its grid kind, final denoising step and budget plan,
unless a factor sets them), so a row's ``nfe`` is what the sampler spent.
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..analytic import GaussianMixture
from ..metrics import get_metric
from ..samplers import get_sampler, load_grid, plan_for_nfe
from ..sde import LinearSDE, get_sde
from .quality import noise_floor_table, score_samples
from .samplers import _run_one
from .spec import Cell, StudySpec
from .table import write_csv, write_json

__all__ = ["Problem", "StudyResult", "run_study"]


@dataclass
class Problem:
    """What a study samples and scores against.

    Attributes:
        sde: The SDE (the default when the spec has no ``sde`` factor).
        score_fn: ``score_fn(x, t)`` for ``sde``.
        reference: Reference samples, ``(m, *event_shape)``.
        draw: ``draw(n, generator)``: exact samples independent of ``reference`` (noise floor).
        density: Optional exact density (CE gap; mode-mass error for a GaussianMixture).
    """

    sde: LinearSDE
    score_fn: Callable[[Tensor, Tensor], Tensor]
    reference: Tensor
    draw: Callable[[int, torch.Generator], Tensor]
    density: Any = None

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
    """Rows (one per cell, spec order), the noise floor and the kept samples."""

    spec: StudySpec
    rows: list[dict[str, Any]]
    floor: dict[str, dict[str, Any]]
    samples: dict[tuple[str, int | None], Tensor] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    reference: Tensor | None = None


def run_study(
    spec: StudySpec,
    problem: Problem,
    out: str | Path | None = None,
    *,
    progress: Callable[[str], object] | None = None,
) -> StudyResult:
    """Run every cell of ``spec`` on ``problem``; with ``out``, save and resume there.

    Args:
        spec: The study spec.
        problem: Score, reference and exact draws (:meth:`Problem.analytic` for a mixture).
        out: Run folder. If it holds a ``spec.json``, it must equal ``spec``; the cells in its
            ``cells.jsonl`` are kept, not rerun.
        progress: Optional ``progress(message)`` called before each run.

    Returns:
        A :class:`StudyResult`; samples of the first seed at each config's smallest and largest
        NFE are kept (and saved under ``out/samples``).

    Raises:
        ValueError: A ``spec.json`` in ``out`` that differs from ``spec``, unknown metric or
            sampler names, or factor names that clash with row columns.
    """
    if not isinstance(spec, StudySpec):
        raise TypeError(f"run_study: expected a StudySpec, received {type(spec).__name__}")
    if not isinstance(problem, Problem):
        raise TypeError(f"run_study: expected a Problem, received {type(problem).__name__}")
    metric_specs = {m: get_metric(m) for m in spec.metrics}
    adaptive = {e["name"] for e in spec.samplers if get_sampler(e["name"]).adaptive}
    clash = set(spec.factors) & {"sampler", "method", "name", "nfe", "nfe_target", "seed", "n"}
    if clash:
        raise ValueError(f"run_study: factor names {sorted(clash)} clash with row columns")
    folder = None if out is None else Path(out)
    done: dict[str, dict[str, Any]] = {}
    if folder is not None:
        done = _open_folder(folder, spec)
    ref = problem.reference
    floor_path = None if folder is None else folder / "floor.json"
    if floor_path is not None and floor_path.is_file():
        floor = json.loads(floor_path.read_text())
    else:
        floor = noise_floor_table(
            problem.draw,
            ref,
            spec.metrics,
            n=spec.n,
            repeats=spec.floor_repeats,
            density=problem.density,
        )
        if floor_path is not None:
            write_json(floor, floor_path)
    result = StudyResult(spec, [], floor, reference=ref)
    priors: dict[tuple[Any, int], Tensor] = {}
    seen: set[str] = set()
    warmed: set[str] = set()
    for cell in spec.cells(adaptive):
        structural, opts = StudySpec.run_options(cell)
        sde, score_fn = problem.for_sde(structural.get("sde"))
        grid_arg = cell.grid_file or structural.get("grid")
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
            opts, grid = {**opts, **og.options}, og.times
        elif cell.nfe is None:
            grid = torch.tensor([sde.T, structural.get("t_end", sde.eps)], dtype=torch.float64)
        else:
            try:
                grid, opts = plan_for_nfe(
                    sde,
                    cell.name,
                    cell.nfe,
                    grid_arg,
                    t_end=structural.get("t_end"),
                    exact=False,
                    **opts,
                )
            except (ValueError, TypeError) as err:
                if cell.seed == spec.seeds[0]:
                    result.skipped.append(f"{cell.config} at NFE {cell.nfe}: {err}")
                continue
        if cell.key in seen:
            continue
        seen.add(cell.key)
        extreme = (
            cell.nfe is None
            or cell.nfe not in spec.nfe
            or cell.nfe in (min(spec.nfe), max(spec.nfe))
        )
        keep = cell.seed == spec.seeds[0] and extreme
        if cell.key in done:
            result.rows.append(done[cell.key])
            if keep and folder is not None:
                _load_sample(result, folder, cell)
            continue
        if progress is not None:
            progress(f"{cell.config} nfe={cell.nfe} seed={cell.seed}")
        pkey = (structural.get("sde"), cell.seed)
        if pkey not in priors:
            gen = torch.Generator().manual_seed(cell.seed)
            x_T = sde.prior_sample((spec.n, *ref.shape[1:]), gen)
            priors[pkey] = x_T.to(device=ref.device, dtype=ref.dtype)
        try:
            if cell.name not in warmed:  # untimed warm-up on 8 draws: steadier wall times
                _run_one(sde, score_fn, cell.name, opts, priors[pkey][:8], grid, cell.seed)
                warmed.add(cell.name)
            row, x = _run_one(sde, score_fn, cell.name, opts, priors[pkey], grid, cell.seed)
        except TypeError as err:  # an option this sampler does not take: a result, not a crash
            row = {
                "nfe": None,
                "n_steps": grid.numel() - 1,
                "seed": cell.seed,
                "wall_time_s": 0.0,
                "error": str(err).splitlines()[0],
            }
            x = None
        row = {
            "sampler": cell.config,
            "method": cell.label,
            "name": cell.name,
            **cell.factors,
            "nfe_target": cell.nfe,
            **row,
            "us_per_sample": 1e6 * row["wall_time_s"] / spec.n,
            **score_samples(x, ref, metric_specs, cell.seed, problem.density),
            "key": cell.key,
        }
        result.rows.append(row)
        if folder is not None:
            with open(folder / "cells.jsonl", "a") as fh:
                fh.write(json.dumps(row) + "\n")
                fh.flush()
        if keep and x is not None:
            result.samples[(cell.config, cell.nfe)] = x.detach().cpu()
            if folder is not None:
                (folder / "samples").mkdir(exist_ok=True)
                torch.save(x.detach().cpu(), _sample_path(folder, cell))
    if folder is not None:
        write_csv(result.rows, folder / "sampler_study.csv")
    return result


def _sample_path(folder: Path, cell: Cell) -> Path:
    return folder / "samples" / f"{hashlib.sha1(cell.key.encode()).hexdigest()[:16]}.pt"


def _load_sample(result: StudyResult, folder: Path, cell: Cell) -> None:
    path = _sample_path(folder, cell)
    if path.is_file():
        result.samples[(cell.config, cell.nfe)] = torch.load(path, weights_only=True)


def _open_folder(folder: Path, spec: StudySpec) -> dict[str, dict[str, Any]]:
    """Create or check the run folder; return the finished cells by key."""
    folder.mkdir(parents=True, exist_ok=True)
    spec_path = folder / "spec.json"
    if spec_path.is_file():
        saved = json.loads(spec_path.read_text())
        if saved != json.loads(json.dumps(spec.to_dict())):
            raise ValueError(
                f"run_study: {folder} holds a different spec; use a new folder "
                "(or the saved spec.json) to resume"
            )
    else:
        write_json(spec.to_dict(), spec_path)
        write_json(_env(), folder / "env.json")
    done: dict[str, dict[str, Any]] = {}
    cells = folder / "cells.jsonl"
    if cells.is_file():
        for line in cells.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:  # the line a kill cut short
                continue
            done[row["key"]] = row
        cells.write_text("".join(json.dumps(r) + "\n" for r in done.values()))
    return done


def _env() -> dict[str, Any]:
    import numpy

    from .. import __version__

    return {
        "scoresde": __version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch_threads": torch.get_num_threads(),
    }
