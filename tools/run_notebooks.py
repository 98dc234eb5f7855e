"""Run the teaching notebooks: every exercise's blank must FAIL its check, every solution PASS.

The notebooks are jupytext percent scripts. ``notebooks/NAME.py`` holds the exercises with
blanks; ``notebooks/solutions/NAME.py`` the same notebook worked. A code cell tagged
``exercise`` (``# %% tags=["exercise"]``) is one exercise: its blank and its check.

* ``--blanks``: each notebook's cells run in order in one namespace; every ``exercise`` cell
  must raise ``AssertionError`` (its check failing on the blank; any other exception is a
  broken exercise, and a pass means the check cannot tell a blank from an answer); every other
  cell must run. The solution must exist, with the same cells in the same order and identical
  code outside the exercise cells.
* ``--solutions``: every cell of each solution must run, checks included.

Usage: ``python tools/run_notebooks.py --blanks notebooks/*.py --solutions notebooks/solutions/*.py``
(exit 1 on any failure). Figures go to a non-interactive backend.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

os.environ.setdefault("MPLBACKEND", "Agg")

import jupytext  # noqa: E402


def _cells(path: Path) -> list[tuple[str, bool, str]]:
    """(cell type, is an exercise, source) for every cell of a percent script."""
    nb = jupytext.read(path)
    return [(c.cell_type, "exercise" in c.metadata.get("tags", []), c.source) for c in nb.cells]


def _run(path: Path, blanks: bool) -> list[str]:
    """Run one notebook; return its problems (empty when it behaves)."""
    problems: list[str] = []
    ns: dict[str, Any] = {"__name__": "__main__"}
    n_ex = 0
    for k, (kind, exercise, src) in enumerate(_cells(path)):
        if kind != "code":
            continue
        n_ex += exercise
        label = f"{path}: cell {k}" + (f" (exercise {n_ex})" if exercise else "")
        try:
            exec(compile(src, f"{path}:cell{k}", "exec"), ns)  # noqa: S102 - our own notebooks
        except AssertionError as e:
            if not (blanks and exercise):
                problems.append(f"{label}: check failed: {e}")
            else:
                print(f"  exercise {n_ex}: the blank fails its check, as it should ({e})")
            continue
        except Exception:  # noqa: BLE001 - reported, then the run goes on
            tb = traceback.format_exc(limit=-2)
            what = "the blank crashed instead of failing its check" if exercise and blanks else ""
            problems.append(f"{label}: {what}\n{tb}")
            continue
        if blanks and exercise:
            problems.append(f"{label}: passed with its blank: the check cannot fail")
    if n_ex == 0:
        problems.append(f"{path}: no cell tagged 'exercise'")
    return problems


def _pairing(blank: Path) -> list[str]:
    """The solution of ``blank`` exists and differs from it only inside exercise cells."""
    sol = blank.parent / "solutions" / blank.name
    if not sol.is_file():
        return [f"{blank}: no worked solution at {sol}"]
    a, b = _cells(blank), _cells(sol)
    if [(k, e) for k, e, _ in a] != [(k, e) for k, e, _ in b]:
        return [f"{blank} and {sol}: different cells (types or exercise tags)"]
    return [
        f"{blank} and {sol}: code cell {i} differs outside the exercises"
        for i, ((kind, ex, s1), (_, _, s2)) in enumerate(zip(a, b, strict=True))
        if kind == "code" and not ex and s1 != s2
    ]


def main(argv: list[str] | None = None) -> int:
    """Entry point (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--blanks", nargs="*", default=[], type=Path)
    p.add_argument("--solutions", nargs="*", default=[], type=Path)
    args = p.parse_args(argv)
    problems: list[str] = []
    for path, blanks in [(b, True) for b in args.blanks] + [(s, False) for s in args.solutions]:
        t0 = time.perf_counter()
        print(f"{path} ({'blanks: every check must fail' if blanks else 'solution: must pass'})")
        found = (_pairing(path) if blanks else []) + _run(path, blanks)
        problems += found
        print(f"  {path}: {'ok' if not found else 'FAILED'} in {time.perf_counter() - t0:.0f}s")
    for line in problems:
        print(line, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
