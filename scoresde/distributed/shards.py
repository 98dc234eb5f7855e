"""Work units of a sharded job, per-sample seeds, and the shard files that make a job resumable.

The items 0..n-1 are cut into shards of ``shard_size`` consecutive items (the last one shorter);
the cut depends on ``n`` and ``shard_size`` only, never on the world size, and shard k runs on
rank ``k % size``. Every random draw of item i comes from its own seed
:func:`item_seed` ``(seed, i, stream)``, so an item's result is the same whichever rank, batch
or world size computes it (as long as ``shard_size`` is unchanged: an adaptive solver chooses
one step sequence per batch).

A :class:`ShardStore` keeps each finished shard as ``shard-00042.pt`` in a folder, written
atomically (:mod:`scoresde.distributed.atomic`), with a fingerprint of the job (data,
model, options). A rerun of the same job loads finished shards instead of computing them; a
different job in the same folder is refused with the first differing setting named
(DESIGN.md, contract 13).
"""

from __future__ import annotations

import hashlib
import json
import types
from pathlib import Path
from typing import Any

import torch

from .atomic import atomic_save_torch, atomic_write_text

__all__ = ["ShardStore", "fingerprint_of", "item_seed", "plan_shards"]


def plan_shards(n: int, shard_size: int) -> list[tuple[int, int]]:
    """The ``(start, stop)`` item ranges of the shards of ``n`` items.

    Raises:
        ValueError: for ``n < 1`` or ``shard_size < 1``.
    """
    for name, v in (("n", n), ("shard_size", shard_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"plan_shards: expected an integer {name} >= 1, received {v!r}")
    return [(s, min(s + shard_size, n)) for s in range(0, n, shard_size)]


def item_seed(seed: int, index: int, stream: str) -> int:
    """A 63-bit seed for item ``index`` of a job seeded with ``seed``, one per named stream.

    Distinct streams (``"prior"``, ``"noise"``, ``"probes"``) give independent generators, so
    x_T and the sampler's noise of one sample are never the same draws.
    """
    digest = hashlib.sha256(f"scoresde:{seed}:{index}:{stream}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _digest(value: Any, depth: int = 0) -> Any:
    """A JSON-able stand-in for ``value`` (never by memory address).

    Tensors and modules by content hash, functions by name and closure, other objects by type
    and attributes.
    """
    if depth > 6:
        return type(value).__qualname__
    if isinstance(value, torch.nn.Module):
        return {"module": type(value).__qualname__, "state": _digest(value.state_dict(), depth + 1)}
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        h = hashlib.sha256(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        return {"tensor": h.hexdigest()[:16], "shape": list(t.shape), "dtype": str(t.dtype)}
    if isinstance(value, dict):
        return {str(k): _digest(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_digest(v, depth + 1) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (torch.dtype, torch.device)):
        return str(value)
    if isinstance(value, types.MethodType):
        return {"method": value.__func__.__qualname__, "self": _digest(value.__self__, depth + 1)}
    if isinstance(value, types.FunctionType):
        cells = [_cell(c) for c in value.__closure__ or ()]
        return {
            "function": f"{value.__module__}.{value.__qualname__}",
            "closure": _digest(cells, depth + 1),
        }
    if hasattr(value, "__dict__"):
        public = {k: v for k, v in vars(value).items() if not k.startswith("_")}  # no caches
        return {"type": type(value).__qualname__, "vars": _digest(public, depth + 1)}
    return type(value).__qualname__


def _cell(cell: Any) -> Any:
    """A closure cell's value; a cell never assigned (a branch not taken) is ``"<empty>"``."""
    try:
        return cell.cell_contents
    except ValueError:
        return "<empty>"


def fingerprint_of(spec: dict[str, Any]) -> dict[str, Any]:
    """The JSON-able fingerprint of a job description (tensors/modules hashed by content)."""
    return json.loads(json.dumps(_digest(spec), sort_keys=True))


class ShardStore:
    """Finished shards of one job in a folder (``job.json`` + ``shard-NNNNN.pt``).

    Args:
        folder: The shard folder (created).
        fingerprint: :func:`fingerprint_of` the job; every shard file carries it.
        rank: Only rank 0 writes ``job.json``.

    Raises:
        ValueError: if the folder holds shards of a different job.
    """

    def __init__(self, folder: str | Path, fingerprint: dict[str, Any], rank: int = 0) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.fingerprint = fingerprint
        self.key = hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()
        job = self.folder / "job.json"
        if job.is_file():
            self._check(json.loads(job.read_text()), job)
        elif rank == 0:
            text = json.dumps(fingerprint, indent=1, sort_keys=True) + "\n"
            atomic_write_text(job, text)

    def _check(self, old: dict[str, Any], where: Path) -> None:
        if old == self.fingerprint:
            return
        keys = sorted(set(old) | set(self.fingerprint))
        diff = next(k for k in keys if old.get(k) != self.fingerprint.get(k))
        raise ValueError(
            f"shard folder {self.folder} holds another job ({where.name}): {diff!r} was "
            f"{old.get(diff)!r}, now {self.fingerprint.get(diff)!r}; use a new folder or the "
            "same settings to resume"
        )

    def path(self, k: int) -> Path:
        """The file of shard ``k``."""
        return self.folder / f"shard-{k:05d}.pt"

    def load(self, k: int, span: tuple[int, int]) -> dict[str, Any] | None:
        """The result of shard ``k`` if it finished in an earlier run of this job, else None."""
        p = self.path(k)
        if not p.is_file():
            return None
        try:
            saved = torch.load(p, map_location="cpu", weights_only=True)
            ok = isinstance(saved, dict) and {"key", "span", "result"} <= set(saved)
        except Exception:  # noqa: BLE001 (any failure of the reader is a damaged file)
            ok = False
        if not ok:
            raise ValueError(
                f"{p}: expected a shard file written by scoresde, received a truncated, corrupt "
                "or foreign file; delete it and rerun (only that shard is recomputed)"
            )
        if saved.get("key") != self.key:
            self._check(saved.get("fingerprint", {}), p)
        if tuple(saved["span"]) != tuple(span):
            raise ValueError(f"{p}: expected items {span}, the file holds {tuple(saved['span'])}")
        return saved["result"]

    def save(self, k: int, span: tuple[int, int], result: dict[str, Any]) -> None:
        """Write shard ``k`` atomically."""
        blob = {
            "key": self.key,
            "fingerprint": self.fingerprint,
            "span": list(span),
            "result": result,
        }
        atomic_save_torch(self.path(k), blob)
