"""SIGINT and SIGTERM from the first line of ``main``: a clean stop at any moment.

:func:`early_handlers` is installed before anything slow (imports, data, models). A signal then
raises :class:`Stopped` (a ``KeyboardInterrupt``) wherever the command is: before a run's first
step nothing is left behind (the run folder it created is removed), and the command exits
``128 + signum`` (130 for SIGINT, 143 for SIGTERM) with the command line that resumes it.
Training swaps in its own handler (:class:`scoresde.training.guards.Stopper`), which finishes
the step, writes a checkpoint and stops; sharded commands keep their finished shards.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["Stopped", "early_handlers", "watch_launcher"]


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


_WATCHING: list[bool] = []  # one watchdog per process


def watch_launcher(command: str, poll: float = 1.0) -> threading.Thread | None:
    """Under ``torchrun``: stop this rank when its launcher (the parent process) is gone.

    A rank whose launcher was killed (e.g. a test's timeout killing ``torchrun`` only) would
    otherwise wait for peers and stores that no longer answer. The watchdog polls the parent pid;
    when it changes it prints one line naming the launcher, raises SIGTERM in this process (the
    clean stop: a checkpoint in training), and if the rank is still alive after a grace period
    (the smaller of 30 s and ``SCORESDE_PG_TIMEOUT``, or ``SCORESDE_ORPHAN_GRACE``; a call
    blocked in C++ cannot take the signal) it exits with status 1.

    Returns:
        The daemon thread, or None for a single process (no launcher to watch).
    """
    from ..distributed import env

    if env.world_size() <= 1 or _WATCHING:
        return None
    _WATCHING.append(True)
    from .._launcher import launcher_pid

    parent = launcher_pid()

    rank = env.rank()
    grace = min(30.0, env.pg_timeout())
    grace = float(os.environ.get("SCORESDE_ORPHAN_GRACE", grace))

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll)
        sys.stderr.write(
            f"scoresde {command} (rank {rank}): error: its launcher (pid {parent}) exited; "
            "expected torchrun to run until every rank ends. Stopping this rank\n"
        )
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(grace)
        os._exit(1)

    thread = threading.Thread(target=watch, name="scoresde-launcher-watch", daemon=True)
    thread.start()
    return thread
