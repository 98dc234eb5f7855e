"""The CLI's two exceptions: a user error (one line, exit 2) and a stop by a signal."""

from __future__ import annotations

__all__ = ["CLIError", "Interrupted"]


class CLIError(ValueError):
    """A user error: printed as one line, exit status 2."""


class Interrupted(Exception):
    """A command stopped by a signal after saving its work; exit status ``128 + signum``."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.code = 128 + signum
