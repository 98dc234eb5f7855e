"""Child processes of tests: each in its own process group, killed as a group, none left behind.

:func:`spawn` and :func:`run` start a command in a new session (its own process group), so a
timeout or a failed assertion kills the whole tree (``torchrun`` and its ranks), not only the
launcher. ``tests/conftest.py`` makes the test process a child subreaper and checks after each
test that no process it started (or their orphans) is still alive.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from typing import Any

__all__ = [
    "children",
    "free_port",
    "kill_group",
    "reap_survivors",
    "run",
    "spawn",
    "subreaper",
]

_PR_SET_CHILD_SUBREAPER = 36


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (now)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def subreaper() -> bool:
    """Make this process adopt its orphaned descendants (Linux), so that none escapes notice."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def children(pid: int | None = None) -> set[int]:
    """The live (non-zombie) children of ``pid`` (default: this process); zombies are reaped."""
    pid = pid or os.getpid()
    out: set[int] = set()
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/children") as fh:
                out.update(int(p) for p in fh.read().split())
    live = set()
    for c in out:
        try:
            with open(f"/proc/{c}/stat") as fh:
                state = fh.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state == "Z" and pid == os.getpid():
            with contextlib.suppress(ChildProcessError):
                os.waitpid(c, os.WNOHANG)
        elif state != "Z":
            live.add(c)
    return live


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace").strip()[:200]
    except OSError:
        return "?"


def kill_group(proc: subprocess.Popen | int) -> None:
    """SIGKILL the process group of ``proc`` (started by :func:`spawn`), then reap it."""
    pid = proc if isinstance(proc, int) else proc.pid
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    if not isinstance(proc, int):
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)


def spawn(cmd: list[str], **kwargs: Any) -> subprocess.Popen:
    """``subprocess.Popen(cmd)`` in a new session (its own process group)."""
    return subprocess.Popen(cmd, start_new_session=True, **kwargs)


def run(cmd: list[str], timeout: float, **kwargs: Any) -> subprocess.CompletedProcess:
    """``subprocess.run`` in a new process group; on timeout the whole group is killed."""
    if kwargs.pop("capture_output", False):
        kwargs.update(stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc = spawn(cmd, **kwargs)
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException:
        kill_group(proc)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


@contextlib.contextmanager
def killed_on_exit(proc: subprocess.Popen) -> Iterator[subprocess.Popen]:
    """Kill ``proc``'s process group when the block ends (by any path)."""
    try:
        yield proc
    finally:
        kill_group(proc)


def reap_survivors(before: set[int], grace: float = 5.0) -> list[str]:
    """Children started since ``before`` still alive after ``grace`` s: killed, and described."""
    deadline = time.monotonic() + grace
    new = children() - before
    while new and time.monotonic() < deadline:
        time.sleep(0.05)
        new = children() - before
    described = [f"{p}: {_cmdline(p)}" for p in sorted(new)]
    for p in new:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            group = os.getpgid(p)
            if group != os.getpgrp():  # its own group (spawn): the whole tree
                os.killpg(group, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGKILL)
    children()  # reap
    return described
