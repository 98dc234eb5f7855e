"""Shared plumbing of the experiment scripts: arguments, output folder, JSON, matplotlib.

Every experiment is ``python experiments/NAME.py [--fast] [--out DIR] [--seed S]``; it writes
PNG figures and ``results.json`` into ``DIR`` (default ``docs/experiments/NAME``, where the
write-ups in ``docs/experiments/`` embed them) and returns the results dict from ``main``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from scoresde.cli.report import pyplot as lazy_pyplot
from scoresde.studies import write_json

ROOT = Path(__file__).resolve().parent.parent


def parse_args(name: str, description: str, argv: list[str] | None) -> argparse.Namespace:
    """Parse the common options ``--fast``, ``--out`` and ``--seed``."""
    p = argparse.ArgumentParser(prog=f"experiments/{name}.py", description=description)
    p.add_argument("--fast", action="store_true", help="tiny sizes for CI (seconds, noisy numbers)")
    p.add_argument(
        "--out",
        type=Path,
        default=ROOT / "docs" / "experiments" / name,
        help="output folder for figures (PNG) and results.json (default: %(default)s)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of every torch.Generator used")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    return args


def plt():  # noqa: ANN201 - returns the pyplot module
    """pyplot with the non-interactive Agg backend (imported lazily) and the figures' style."""
    pyplot = lazy_pyplot()
    pyplot.rcParams.update({"figure.dpi": 100, "savefig.dpi": 110, "font.size": 9})
    return pyplot


def save_fig(fig: Any, out: Path, name: str) -> str:
    """Save ``fig`` as ``out/name.png``, close it, and return the file name."""
    path = out / f"{name}.png"
    fig.savefig(path, bbox_inches="tight")
    fig.clf()
    lazy_pyplot().close(fig)
    return path.name


def save_json(results: dict[str, Any], out: Path, started: float) -> None:
    """Write ``results`` (plus wall time) to ``out/results.json``."""
    results = dict(results)
    results["wall_time_s"] = round(time.perf_counter() - started, 2)
    write_json(results, out / "results.json")
