"""SIGINT and SIGTERM from the first line of ``main``: a clean stop at any moment.

:func:`early_handlers` is installed before anything slow (imports, data, models). A signal then
raises :class:`Stopped` (a ``KeyboardInterrupt``) wherever the command is: before a run's first
step nothing is left behind (the run folder it created is removed), and the command exits
``128 + signum`` (130 for SIGINT, 143 for SIGTERM) with the command line that resumes it.
Training swaps in its own handler (:class:`scoresde.training.guards.Stopper`), which finishes
the step, writes a checkpoint and stops; sharded commands keep their finished shards.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["Stopped", "early_handlers"]


class Stopped(KeyboardInterrupt):
    """A command stopped by SIGINT or SIGTERM; exit status ``128 + signum``."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.code = 128 + signum

    def describe(self, resume: str) -> str:
        """The one line printed on exit."""
        return (
            f"stopped by {signal.Signals(self.signum).name}; finished work (checkpoint, shards) "
            f"is kept. Resume with: {resume}"
        )


def _raise(signum: int, frame: Any) -> None:
    raise Stopped(signum)


@contextmanager
def early_handlers() -> Iterator[None]:
    """Turn SIGINT/SIGTERM into :class:`Stopped` for the duration (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, _raise) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
