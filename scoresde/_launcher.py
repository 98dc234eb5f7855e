"""The parent process of this one, read when scoresde is first imported (before anything slow).

Under ``torchrun`` the parent is the rank's launcher, which
:func:`scoresde.cli.signals.watch_launcher` watches: a launcher can die while the rank is still
importing torch, and after that the parent pid would already be someone else's.
"""

from __future__ import annotations

import os

__all__ = ["LAUNCHER_PID", "launcher_pid"]

#: ``os.getppid()`` at import.
LAUNCHER_PID = os.getppid()
_IMPORTED_BY = os.getpid()


def launcher_pid() -> int:
    """The parent at import, or for a process forked after the import, its parent now."""
    return LAUNCHER_PID if os.getpid() == _IMPORTED_BY else os.getppid()
