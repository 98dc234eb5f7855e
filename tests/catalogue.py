"""A data-driven catalogue of bad inputs (issue #24), classified clear / unclear / traceback /
silent / hang.

Every case runs in-process: CLI cases through :func:`scoresde.cli.main`, API cases as a call.
:func:`classify` says what happened:

* ``clear``: one line (CLI: exit status != 0 and one stderr line; API: a ``ValueError``,
  ``TypeError``, ``OSError`` or :class:`~scoresde.training.CheckpointError`) that says what was
  expected (or lists the choices) and names the received value (the case's ``received``
  fragment); for a case that should only warn, a warning naming it and success;
* ``unclear``: an error of the right kind whose message misses the expectation or the value;
* ``traceback``: an exception escaping ``main``, several lines on stderr, or an API error of a
  raw kind (``RuntimeError``, ``IndexError``, ...);
* ``silent``: success without an error (or without the expected warning);
* ``hang``: still running after :data:`TIMEOUT` seconds (SIGALRM).

``python -m tests.catalogue`` prints the table of outcomes (with ``PYTHONPATH`` pointing at any
checkout, which is how the before/after table of the issue is made); ``tests/test_catalogue.py``
asserts it.
"""

from __future__ import annotations

import contextlib
import io
import signal
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TIMEOUT = 30  #: seconds before a case counts as a hang
OUTCOMES = ("clear", "unclear", "traceback", "silent", "hang")
#: Words of a message that says what was expected (argparse: "invalid int value", "choose from").
CLEAR_WORDS = ("expected", "choose from", "invalid", "required", "corrupt or was edited",
               "cannot write")  # fmt: skip


@dataclass
class Case:
    """One bad input: a CLI argv or an API call, and the fragment that names what was received."""

    name: str
    received: str
    argv: list[str] | None = None
    call: Callable[[Path], Any] | None = None
    warn: bool = False  #: the input is valid but must be warned about (and succeed)
    setup: Callable[[Path], None] | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)


class _Hang(BaseException):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise _Hang


def _clear(text: str, received: str) -> bool:
    low = text.lower()
    return received in text and any(w in low for w in CLEAR_WORDS)


def classify(case: Case, fx: Path, timeout: int | None = None) -> tuple[str, str]:
    """Run ``case`` with the fixtures folder ``fx``; return ``(outcome, what was seen)``."""
    from scoresde.cli import main

    if case.setup is not None:
        case.setup(fx)
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(timeout or TIMEOUT)
    err, caught = io.StringIO(), []
    try:
        with warnings.catch_warnings(record=True) as seen, contextlib.redirect_stderr(err):
            warnings.simplefilter("always")
            with contextlib.redirect_stdout(io.StringIO()):
                try:
                    if case.argv is not None:
                        argv = [a.replace("{fx}", str(fx)) for a in case.argv]
                        result: Any = main(argv)
                    else:
                        assert case.call is not None
                        result = case.call(fx)
                except SystemExit as stop:  # argparse
                    result = stop.code
                except _Hang:
                    raise
                except BaseException as exc:  # noqa: BLE001 (what escapes is the finding)
                    caught.append(exc)
                    result = None
    except _Hang:
        return "hang", f"> {timeout or TIMEOUT} s"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    lines = [x for x in err.getvalue().strip().splitlines() if x.strip()]
    warned = [str(w.message) for w in seen]
    if case.argv is not None:
        if caught:
            exc = caught[0]
            return "traceback", f"{type(exc).__name__}: {str(exc)[:150]}"
        if case.warn:
            text = " ".join(lines + warned)
            ok = (
                result == 0
                and case.received in text
                and "warning" in text.lower()
                or (result == 0 and any(case.received in w for w in warned))
            )
            return ("clear" if ok else "silent"), text[:200]
        if result == 0:
            return "silent", "exit 0"
        errors = [x for x in lines if "error" in x.lower() or "usage" in x.lower()]
        if "Traceback" in err.getvalue() or len(errors) > 1:
            return "traceback", err.getvalue()[-200:]
        last = errors[-1] if errors else (lines[-1] if lines else "")
        return ("clear" if _clear(last, case.received) else "unclear"), last[:200]
    if case.warn:
        ok = not caught and any(case.received in w for w in warned)
        return ("clear" if ok else "silent"), (warned or ["no warning"])[0][:200]
    if not caught:
        return "silent", f"returned {type(result).__name__}"
    exc = caught[0]
    from scoresde.training import CheckpointError

    text = str(exc)
    if not isinstance(exc, (ValueError, TypeError, OSError, CheckpointError)):
        return "traceback", f"{type(exc).__name__}: {text[:150]}"
    if len(text.splitlines()) > 1:
        return "unclear", text[:200]
    return (
        "clear" if _clear(text, case.received) else "unclear"
    ), f"{type(exc).__name__}: {text[:200]}"


def table(results: dict[str, tuple[str, str]]) -> str:
    """The counts per outcome as a Markdown table row."""
    counts = {o: sum(1 for r in results.values() if r[0] == o) for o in OUTCOMES}
    head = "| cases | " + " | ".join(OUTCOMES) + " |"
    return "\n".join([head, "|" + "---|" * (len(OUTCOMES) + 1),
                      f"| {len(results)} | " + " | ".join(str(counts[o]) for o in OUTCOMES) + " |"])  # fmt: skip


def main() -> None:
    """Run every case (fixtures in a temporary folder) and print the table and the non-clear."""
    import os
    import tempfile

    import torch

    from tests.catalogue_cases import CASES, make_fixtures

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        fx = make_fixtures(Path(tmp) / "fx")
        work = Path(tmp) / "cwd"
        work.mkdir()
        os.chdir(work)
        results = {}
        skip = set(filter(None, os.environ.get("CATALOGUE_SKIP", "").split(",")))
        for case in CASES:
            if case.name in skip:  # e.g. a segfault or a machine-sized allocation on old code
                print(f"not run: {case.name}")
                continue
            results[case.name] = classify(case, fx)
            if "-v" in sys.argv:
                print(case.name, results[case.name], flush=True)
    print(table(results))
    for name, (outcome, seen) in results.items():
        if outcome != "clear":
            print(f"{outcome:9s} {name}: {seen}")


if __name__ == "__main__":
    main()
