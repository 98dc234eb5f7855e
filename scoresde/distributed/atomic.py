"""The one atomic writer of the package: whole files or none, the umask respected, one-line errors.

Every file scoresde writes (checkpoints, samples, shards, CSV logs, reports, figures, configs)
goes through :func:`atomic_write`: the bytes go to a temporary file in the destination folder,
are flushed and ``fsync``-ed, then :func:`os.replace` renames it over the destination (atomic on
POSIX) and the folder is ``fsync``-ed. A crash or a failed write at any point leaves either the
old file or the complete new one, never a partial file; a failed write removes its temporary.

Permissions: the file gets ``0o666 & ~umask`` (what ``open()`` would give), not the ``0600`` of
:func:`tempfile.mkstemp`, so every output of a run has the same, user-chosen permissions.

Write errors that the user must act on (disk full, quota, I/O error, permission denied,
read-only file system) become one :class:`WriteError` line naming the file, the bytes it needed
and the free space, e.g. ``cannot write runs/a/checkpoint.pt: no space left on device (needs
1.2 MB, 0.3 MB free); the previous file is kept``.
"""

from __future__ import annotations

import errno
import io
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = [
    "WriteError",
    "append_text",
    "as_write_error",
    "atomic_save_npy",
    "atomic_save_torch",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "file_mode",
]

#: errno values turned into a :class:`WriteError` (the rest propagate unchanged).
WRITE_ERRNOS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EIO: "input/output error",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
    errno.EFBIG: "file too large",
}


class WriteError(OSError):
    """A file could not be written (disk full, I/O error, no permission): one clear line."""


_UMASK: list[int] = []
_UMASK_LOCK = threading.Lock()


def file_mode() -> int:
    """The mode a plain ``open(path, "w")`` would give a new file: ``0o666 & ~umask``.

    The umask is read once per process (reading it means setting it, which is not thread-safe).
    """
    with _UMASK_LOCK:
        if not _UMASK:
            old = os.umask(0o022)
            os.umask(old)
            _UMASK.append(old)
    return 0o666 & ~_UMASK[0]


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} bytes"


def write_error(path: Path, err: OSError, needed: int | None, kept: bool | str) -> WriteError:
    """The one-line :class:`WriteError` for a failed write of ``path`` (``needed`` bytes).

    ``kept``: whether an older ``path`` survives (or the words to say what does).
    """
    reason = WRITE_ERRNOS.get(err.errno or 0, err.strerror or str(err))
    try:
        free = f", {_size(shutil.disk_usage(path.parent).free)} free"
    except OSError:
        free = ""
    need = f"needs {_size(needed)}{free}" if needed is not None else f"{free.lstrip(', ')}"
    what = (
        (f"; {kept}" if kept else "")
        if isinstance(kept, str)
        else ("; the previous file is kept" if kept else "; nothing was written")
    )
    detail = f" ({need})" if need else ""
    out = WriteError(err.errno or 0, f"cannot write {path}: {reason}{detail}{what}")
    out.filename = str(path)
    return out


def as_write_error(err: BaseException) -> WriteError | None:
    """``err`` as a :class:`WriteError` if a full disk or a refused write caused it, else None.

    Catches what other writers raise (an ``OSError``, or torch's ``RuntimeError`` around one).
    """
    for e in (err, err.__cause__, err.__context__):
        if isinstance(e, WriteError):
            return e
        if e is not None and _is_write_error(e):
            name = getattr(e, "filename", None)
            return write_error(Path(name or "a file"), e, None, "")  # type: ignore[arg-type]  # an OSError: _is_write_error
    return None


def _is_write_error(err: BaseException) -> bool:
    return isinstance(err, OSError) and err.errno in WRITE_ERRNOS


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | Path, write: Callable[[Path], Any], size: int | None = None) -> Path:
    """Call ``write(tmp_path)``, then move the file onto ``path`` in one step.

    A reader sees the old file or the complete new one, never a partial file. The temporary
    file keeps the suffix of ``path`` (writers such as matplotlib pick the format from it).

    Args:
        path: The destination (its folder is created).
        write: Writes the whole file to the path it is given.
        size: The bytes the file needs, if known (for the message of a failed write).

    Returns:
        ``path``.

    Raises:
        WriteError: The disk is full, the file system failed or refused the write; the old
            file (if any) is unchanged.
    """
    path = Path(path)
    kept = path.exists()
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}"
        )
        os.close(fd)
        tmp = Path(name)
        write(tmp)
        os.chmod(tmp, file_mode())
        with tmp.open("rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        tmp = None
    except BaseException as err:
        written = tmp.stat().st_size if tmp is not None and tmp.exists() else 0
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        cause = err.__cause__ or err.__context__ if isinstance(err, RuntimeError) else err
        if isinstance(cause, OSError) and _is_write_error(cause):
            raise write_error(path, cause, size or written or None, kept) from None
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda p: p.write_bytes(data), size=len(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write_bytes(path, text.encode())


def atomic_save_torch(path: str | Path, obj: Any) -> Path:
    """``torch.save(obj)`` to ``path`` atomically.

    The object is serialised in memory first, so a full disk is an ``OSError`` with the exact
    size, never a half-written zip.
    """
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, buf.getvalue())


def atomic_save_npy(path: str | Path, array: Any) -> Path:
    """``np.save(array)`` to ``path`` atomically."""
    import numpy as np

    buf = io.BytesIO()
    np.save(buf, array)
    return atomic_write_bytes(path, buf.getvalue())


def append_text(path: str | Path, text: str) -> None:
    """Append ``text`` to ``path`` (a log); a failed write is a :class:`WriteError`.

    Appends are not atomic: a cut-off last line is what a resume's trim removes.
    """
    path = Path(path)
    try:
        with path.open("a") as fh:
            fh.write(text)
            fh.flush()
    except OSError as err:
        if _is_write_error(err):
            kept = "the lines before are kept (a resume drops a cut-off line)"
            raise write_error(path, err, len(text.encode()), kept) from None
        raise
