"""Mutation testing of the core formulas: does a fast test fail when a formula is wrong?

Each mutation (``benchmarks/mutation_list.py``) is (name, file, exact old snippet, new snippet,
test selection). The script copies
the working tree (tracked and untracked, not ignored files) to a temporary folder once, then for
each mutation writes the mutated file there, runs the selected fast tests with ``pytest -x``, and
restores the file. A mutation is *caught* when the tests fail, *survived* when they pass. The
worktree itself is never modified.

Snippets are located robustly, since modules move: first in the named file, else anywhere under
``scoresde/``, exactly, then up to whitespace (a reformatted line still matches). A snippet that
is not found, or found more than once, is an error that stops the run before any test runs.

Not run in CI. Each mutation runs only the test files named with it (one pytest at a time,
one torch thread; ~1-2 h for the whole list on a busy 2-core machine). Usage:

    python benchmarks/mutation.py               # every mutation
    python benchmarks/mutation.py --check       # only locate the snippets
    python benchmarks/mutation.py -k langevin   # mutations whose name contains 'langevin'
    python benchmarks/mutation.py --slice 41:   # mutations 41, 42, ... of the list

Exit status: 0 when every mutation is caught, 1 when some survive, 2 on a missing snippet or
a test selection that pytest cannot run (usage error, nothing collected).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mutation_list import MUTATIONS, Mutation

ROOT = Path(__file__).resolve().parents[1]


def _files(root: Path) -> list[str]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=root,
                         check=True, capture_output=True, text=True).stdout  # fmt: skip
    return [f for f in out.splitlines() if (root / f).is_file()]


def _pattern(snippet: str) -> re.Pattern[str]:
    """The snippet with any run of whitespace (or none, around punctuation) matching any other."""
    tokens = re.findall(r"\w+|[^\w\s]", snippet)
    return re.compile(r"\s*".join(re.escape(t) for t in tokens))


def locate(mut: Mutation, root: Path) -> tuple[str, int, int]:
    """(file, start, end) of the one occurrence of ``mut.old``; ValueError otherwise."""
    hint = root / mut.file
    candidates = [mut.file] if hint.is_file() else []
    candidates += sorted(str(p.relative_to(root)) for p in (root / "scoresde").rglob("*.py"))
    for matcher in ("exact", "whitespace"):
        for rel in dict.fromkeys(candidates):
            text = (root / rel).read_text()
            if matcher == "exact":
                spans = [(m.start(), m.end()) for m in re.finditer(re.escape(mut.old), text)]
            else:
                spans = [(m.start(), m.end()) for m in _pattern(mut.old).finditer(text)]
            if len(spans) > 1:
                raise ValueError(f"{mut.name}: snippet found {len(spans)} times in {rel}")
            if spans:
                return rel, *spans[0]
    raise ValueError(f"{mut.name}: snippet not found in {mut.file} nor anywhere under scoresde/:"
                     f"\n    {mut.old!r}")  # fmt: skip


def run_tests(root: Path, tests: tuple[str, ...], timeout: float) -> tuple[int, float]:
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "pytest", *tests, "-x", "-q", "-p", "no:cacheprovider",
           "-m", "not slow"]  # fmt: skip
    t0 = time.perf_counter()
    try:
        rc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        rc = -1
    return rc, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-k", action="append", default=[],
                    help="only mutations whose name contains this (repeatable)")  # fmt: skip
    ap.add_argument("--slice", default=None, metavar="A:B",
                    help="only mutations A..B-1 of the (filtered) list, e.g. 41: (repeatable runs)")  # fmt: skip
    ap.add_argument("--check", action="store_true", help="only locate every snippet")
    ap.add_argument("--no-baseline", action="store_true", help="skip the unmutated run")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per pytest run")
    args = ap.parse_args()
    muts = [m for m in MUTATIONS if not args.k or any(k in m.name for k in args.k)]
    if args.slice is not None:
        a, _, b = args.slice.partition(":")
        muts = muts[int(a) if a else None : int(b) if b else None]
    tmp = Path(tempfile.mkdtemp(prefix="scoresde-mutation-"))
    try:
        for rel in _files(ROOT):
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, tmp / rel)
        try:
            spots = [locate(m, tmp) for m in muts]
        except ValueError as err:
            print(f"ERROR: {err}", file=sys.stderr)
            return 2
        for m in muts:
            missing = [t for t in m.tests if not (tmp / t.split("::")[0]).is_file()]
            if missing:
                print(f"ERROR: {m.name}: test file(s) not found: {missing}", file=sys.stderr)
                return 2
        print(f"{len(muts)} mutations located in a copy of the tree at {tmp} "
              "(each pytest runs with one torch thread)")  # fmt: skip
        if args.check:
            for m, (rel, *_) in zip(muts, spots, strict=True):
                print(f"  {m.name:<62} {rel}")
            return 0
        if not args.no_baseline:
            sel = tuple(dict.fromkeys(t for m in muts for t in m.tests))
            rc, sec = run_tests(tmp, sel, args.timeout)
            print(f"baseline (unmutated) {'passes' if rc == 0 else 'FAILS'} in {sec:.0f}s")
            if rc != 0:
                return 2
        survivors, errors = [], []
        for m, (rel, start, end) in zip(muts, spots, strict=True):
            path = tmp / rel
            text = path.read_text()
            path.write_text(text[:start] + m.new + text[end:])
            try:
                rc, sec = run_tests(tmp, m.tests, args.timeout)
            finally:
                path.write_text(text)
            # pytest: 1 = a test failed; 2-5 = interrupted, internal or usage error, nothing
            # collected (a wrong selection, not a catch); -1 = our timeout (counted as caught)
            status = {0: "SURVIVED", 1: "caught", -1: "timeout"}.get(rc, f"ERROR rc={rc}")
            print(f"  {status:<10} {sec:5.0f}s  {m.name}  [{rel}]", flush=True)
            if rc == 0:
                survivors.append(m.name)
            elif rc not in (1, -1):
                errors.append(m.name)
        caught = len(muts) - len(survivors) - len(errors)
        print(f"{caught}/{len(muts)} caught; survivors: {survivors or 'none'}; "
              f"selection errors: {errors or 'none'}")  # fmt: skip
        return 2 if errors else 1 if survivors else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
