"""The run folder of a study: spec, environment, finished cells, kept samples, the floor.

A folder holds ``spec.json`` (must match on resume), ``env.json`` (versions, threads, ranks and
the load average at start and end), ``cells.jsonl`` (one finished cell per line),
``floor.json`` and ``samples/``. The floor of a problem is also cached in memory, so a
process that studies one problem several times draws it once.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .coverage import _key
from .quality import noise_floor_table
from .spec import Cell, StudySpec
from .table import write_json

__all__: list[str] = []


def sample_path(folder: Path, cell: Cell) -> Path:
    return folder / "samples" / f"{hashlib.sha1(cell.key.encode()).hexdigest()[:16]}.pt"


def load_sample(folder: Path, cell: Cell) -> Tensor | None:
    path = sample_path(folder, cell)
    return torch.load(path, weights_only=True) if path.is_file() else None


def read_cells(folder: Path) -> dict[str, dict[str, Any]]:
    """The finished cells of ``cells.jsonl`` by key (a line a kill cut short is dropped)."""
    done: dict[str, dict[str, Any]] = {}
    cells = folder / "cells.jsonl"
    if cells.is_file():
        for line in cells.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            done[row["key"]] = row
    return done


def open_folder(folder: Path, spec: StudySpec) -> dict[str, dict[str, Any]]:
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
        write_env(folder / "env.json", None)
    done = read_cells(folder)
    if done:
        (folder / "cells.jsonl").write_text("".join(json.dumps(r) + "\n" for r in done.values()))
    return done


def write_env(path: Path, world: Any) -> None:
    """Write (or update) ``env.json``: versions, threads, ranks and the load average.

    The load average (1, 5, 15 min) is recorded when the study starts and when it ends: CPU
    times are the method's, wall times also the machine's.
    """
    import numpy

    from .. import __version__

    old = json.loads(path.read_text()) if path.is_file() else {}
    load = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    env = {
        "scoresde": __version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "world_size": 1 if world is None else world.size,
        "load_average_start": old.get("load_average_start", load),
    }
    if old:
        env["load_average_end"] = load
    write_json(env, path)


_FLOORS: dict[str, dict[str, dict[str, Any]]] = {}


def floor_table(spec: StudySpec, problem: Any, folder: Path | None) -> dict[str, dict[str, Any]]:
    """The floor table: from ``floor.json``, the in-memory cache, or fresh exact draws."""
    path = None if folder is None else folder / "floor.json"
    if path is not None and path.is_file():
        return json.loads(path.read_text())
    if problem.draw is None:
        return {}
    ref = problem.reference.detach().cpu().contiguous()
    h = hashlib.sha256(ref.numpy().tobytes() if ref.dtype != torch.bfloat16 else b"")
    who = _key(problem.density) if problem.density is not None else f"draw:{id(problem.draw)}"
    weights = spec.factors.get("guidance", [])
    key = json.dumps([who, h.hexdigest(), spec.metrics, spec.n, spec.floor_repeats, weights])
    if key not in _FLOORS:
        _FLOORS[key] = noise_floor_table(
            problem.draw,
            problem.reference,
            spec.metrics,
            n=spec.n,
            repeats=spec.floor_repeats,
            density=problem.density,
        )
        if weights and getattr(problem, "guidance", None) is not None:  # per w: tilted target
            _FLOORS[key].update(problem.guidance.tilted_floor(weights, spec.n, spec.floor_repeats))
    floor = _FLOORS[key]
    if path is not None:
        write_json(floor, path)
    return floor
