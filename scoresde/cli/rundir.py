"""Run folders: which ``--out`` a command may write into, and the lock that keeps it to one process.

DESIGN.md, contracts 13 and 15: a run never writes into another run's folder, and a folder that
is not a run is never written into. ``--out`` may be

* a new folder (created), or an empty one;
* the folder of a run of the same command, which the command resumes (``train`` continues its
  checkpoint; ``sample``, ``nll`` and ``compare`` reuse their finished shards; a ``compare``
  study folder with ``spec.json`` is resumed if the spec matches).

Anything else (a folder holding other files, ``/``, a file, an empty string) is refused with one
line naming what is there, unless ``--force``. While a command runs it holds an advisory lock
(:func:`fcntl.flock`) on ``<out>/.scoresde.lock``, which records its command and pid: a second
process on the same folder fails at once, naming the holder's pid. The lock file stays after the
run as the mark of the command that owns the folder (``{"command": ...}``, the same after
every run); the lock itself ends with the command (or the process).
"""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path
from typing import IO

from .errors import CLIError

__all__ = ["LOCK_FILE", "RUN_FILES", "release_locks", "run_dir"]

#: Files a scoresde command writes into its run folder: a folder holding any of them is a run.
RUN_FILES = (
    "config.json",
    "results.json",
    "report.md",
    "checkpoint.pt",
    "log.csv",
    "eval.csv",
    "samples.npy",
    "nll.csv",
    "sampler_study.csv",
    "history.jsonl",
)
#: The lock (and owner mark) of a run folder.
LOCK_FILE = ".scoresde.lock"

# run folders this process holds: (lock file handle, the entries before the claim, or None if
# the lock file existed already)
_CLAIMED: dict[Path, tuple[IO[str] | None, set[str] | None]] = {}


def run_dir(out: str | None, command: str, force: bool = False) -> Path:
    """The run folder: ``--out`` or a new, unique ``runs/<command>-<timestamp>-<pid><random>``.

    A default folder is created with ``exist_ok=False`` (retried with a new suffix), so two
    commands started in the same second never share one. The folder is locked for this process
    (released by :func:`release_locks`, or at exit).

    Raises:
        CLIError: If ``--out`` is empty, a file, not writable, holds files that are not a run of
            ``command`` (unless ``force``), or is locked by another running process.
    """
    if out is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        Path("runs").mkdir(exist_ok=True)
        for _ in range(100):
            path = Path("runs") / f"{command}-{stamp}-{os.getpid()}{secrets.token_hex(2)}"
            try:
                path.mkdir()
            except FileExistsError:
                continue
            _lock(path, command)
            return path
        raise CLIError(f"could not create a unique run folder under {Path('runs').resolve()}")
    if not out.strip():
        raise CLIError("--out: expected a folder path, received an empty string")
    path = Path(out)
    if path.resolve() in _CLAIMED:  # checked and locked by this process already
        path.mkdir(parents=True, exist_ok=True)
        return path
    if path.exists() and not path.is_dir():
        raise CLIError(f"--out: expected a folder, received the existing file {out}")
    if path.is_dir() and not force:
        _check_foreign(path, out, command)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise CLIError(
            f"--out: expected a writable folder, received {out} ({err.strerror})"
        ) from None
    _lock(path, command)
    return path


def _check_foreign(path: Path, out: str, command: str) -> None:
    """Refuse a folder that holds anything but a run of ``command`` (or nothing)."""
    try:
        entries = sorted(p.name for p in path.iterdir())
    except OSError as err:
        raise CLIError(
            f"--out: expected a readable folder, received {out} ({err.strerror})"
        ) from None
    if not [e for e in entries if e != LOCK_FILE] and owner(path) in (None, command):
        return  # empty (or an earlier call of this command left only its mark)
    if owner(path) == command or (owner(path) is None and _legacy_owner(path, command)):
        return
    theirs = [f for f in RUN_FILES if f in entries]
    who = owner(path) or _command_of(path) or ("a run" if theirs else None)
    shown = ", ".join(entries[:5]) + (f", ... ({len(entries)} entries)" if len(entries) > 5 else "")
    what = f"another run's files ({who}: {shown})" if who else f"files that are not a run ({shown})"
    raise CLIError(
        f"--out: {out} holds {what}, which {command} would write beside or overwrite; expected a "
        f"new or empty folder, or a {command} run's folder to resume (or pass --force)"
    )


def owner(path: Path) -> str | None:
    """The command that owns the run folder ``path`` (from its lock file), if any."""
    try:
        d = json.loads((path / LOCK_FILE).read_text() or "{}")
    except (OSError, ValueError):
        return None
    return d.get("command") if isinstance(d, dict) else None


def _legacy_owner(path: Path, command: str) -> bool:
    """A folder written before lock files: judged by its files."""
    if command == "train":
        return _is_train_run(path)
    if command == "compare" and (path / "spec.json").is_file():
        return True  # run_study resumes a matching spec and refuses another
    return _command_of(path) == command


def _lock(path: Path, command: str) -> None:
    """Hold the advisory lock of ``path`` for this process; fail at once if another holds it."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no advisory lock
        _CLAIMED[path.resolve()] = (None, None)
        return
    file = path / LOCK_FILE
    before = None if file.exists() else {p.name for p in path.iterdir()}
    # registered before the file exists: a signal from here on finds it in release_locks
    _CLAIMED[path.resolve()] = (None, before)
    fh = open(file, "a+")  # noqa: SIM115 (held open: closing it releases the lock)
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        del _CLAIMED[path.resolve()]  # another process's lock: never ours to remove
        fh.seek(0)
        try:
            held = json.loads(fh.read() or "{}")
        except ValueError:
            held = {}
        fh.close()
        pid, cmd = held.get("pid", "unknown"), held.get("command", "scoresde")
        raise CLIError(
            f"--out: {path} is in use by another process (pid {pid}, scoresde {cmd}); expected a "
            "folder no running command writes to: wait for it to finish or use another --out"
        ) from None
    fh.seek(0)
    fh.truncate()
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    fh.write(json.dumps({"command": command, "pid": os.getpid(), "started": started}) + "\n")
    fh.flush()
    _CLAIMED[path.resolve()] = (fh, before)


def release_locks(cleanup: bool = False) -> None:
    """Release every run-folder lock of this process.

    Args:
        cleanup: Also remove a lock file this process created if nothing else changed in the
            folder (a command that failed before writing anything leaves no trace).
    """
    for path, (fh, before) in list(_CLAIMED.items()):
        if cleanup and before is not None:
            try:
                if {p.name for p in path.iterdir()} - {LOCK_FILE} == before:
                    (path / LOCK_FILE).unlink()
            except OSError:
                pass
        if fh is not None:
            if not fh.closed and (path / LOCK_FILE).exists():  # back to the owner mark alone
                try:
                    fh.seek(0)
                    mark = json.loads(fh.read() or "{}").get("command")
                    fh.seek(0)
                    fh.truncate()
                    fh.write(json.dumps({"command": mark}) + "\n")
                    fh.flush()
                except (OSError, ValueError):
                    pass
            fh.close()
        del _CLAIMED[path]


def _command_of(path: Path) -> str | None:
    """The command that wrote the run folder ``path`` (its ``config.json``), if any."""
    try:
        d = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return None
    if isinstance(d, dict) and "command" not in d and "schedule" in d:
        return "train"
    return d.get("command") if isinstance(d, dict) else None


def _is_train_run(path: Path) -> bool:
    """Whether ``path`` is the folder of a ``train`` run (so ``train --out`` resumes it)."""
    if not ((path / "checkpoint.pt").exists() or (path / "log.csv").exists()):
        return (path / "config.json").is_file() and _command_of(path) == "train"
    return not (path / "config.json").is_file() or _command_of(path) == "train"
