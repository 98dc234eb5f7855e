"""The processes of one evaluation job: rank, world size, device, and how they coordinate.

A :class:`World` is either a single process (``World.single()``, no communication at all) or
the ranks started by ``torchrun`` (``World.from_env()``, which reads ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``). The ranks coordinate through two channels:

* the c10d key-value store of the rendezvous (a TCP store): heartbeats, the shared progress
  count and the abort message (:mod:`~scoresde.distributed.monitor`). Store calls are
  point-to-point and never wait for another rank, so nothing blocks inside a solver;
* one ``gloo`` process group for the single gather of the (CPU) results to rank 0 at the end,
  entered only once every rank has reported that its shards are done.

Evaluation has no collective on GPU tensors, so the GPUs (``cuda:LOCAL_RANK``) never need NCCL;
if the user's script already initialised a process group (e.g. NCCL for DDP training), it is
left alone and a ``gloo`` group over the same ranks is added for the gather.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from . import env

__all__ = ["RankFailedError", "World"]

#: The rendezvous store of this process (created once: a second TCP store on the same port
#: would race with the first one's teardown) and the number of Worlds built on it; every rank
#: builds its Worlds in the same order, so the count names a fresh key namespace.
_RENDEZVOUS: dict[str, Any] = {"store": None, "key": None, "generation": 0}


class RankFailedError(RuntimeError):
    """A rank of a sharded job failed or made no progress within the timeout.

    Attributes:
        rank: The rank that failed (or stalled).
    """

    def __init__(self, rank: int, message: str) -> None:
        super().__init__(message)
        self.rank = rank


def _check_seconds(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise ValueError(f"World: expected {name} > 0 seconds, received {value!r}")
    return float(value)


@dataclass
class World:
    """One rank's view of a sharded evaluation job.

    Attributes:
        rank: This process's rank in [0, size).
        size: Number of processes.
        device: Torch device this rank computes on.
        timeout: Seconds without progress after which a rank counts as failed (frozen or dead);
            must exceed the time of one score evaluation.
        poll: Seconds between heartbeats and checks of the other ranks.
        store: This World's namespace of the rendezvous key-value store (None for one process).
        group: The process group of the final gather (None: the default group or one process).
    """

    rank: int = 0
    size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    timeout: float = 600.0
    poll: float = 0.5
    store: Any = None
    group: Any = None
    _owns_group: bool = False
    _jobs: int = 0

    def __post_init__(self) -> None:
        self.timeout = _check_seconds(self.timeout, "timeout")
        self.poll = _check_seconds(self.poll, "poll")
        if not isinstance(self.size, int) or self.size < 1:
            raise ValueError(f"World: expected size >= 1, received {self.size!r}")
        if not isinstance(self.rank, int) or not 0 <= self.rank < self.size:
            raise ValueError(f"World: expected 0 <= rank < {self.size}, received {self.rank!r}")
        if self.size > 1 and self.store is None:
            raise ValueError("World: expected a store for size > 1 (use World.from_env())")
        self.device = torch.device(self.device)

    @classmethod
    def single(cls, device: torch.device | str | None = None) -> World:
        """One process on ``device`` (default: cuda if available, else cpu)."""
        return cls(device=_default_device(device, 0))

    @classmethod
    def from_env(
        cls,
        device: torch.device | str | None = None,
        *,
        timeout: float = 600.0,
        poll: float = 0.5,
    ) -> World:
        """The ranks launched by ``torchrun`` (a single process when ``WORLD_SIZE`` is unset or 1).

        Args:
            device: ``"cpu"``, ``"cuda"`` (then ``cuda:LOCAL_RANK``) or an explicit device;
                default: ``cuda:LOCAL_RANK`` if CUDA is available, else cpu.
            timeout: Seconds without progress before a rank counts as failed; also bounds the
                rendezvous and the final gather.
            poll: Seconds between heartbeats.

        Returns:
            A :class:`World`; call :meth:`close` (or use it as a context manager) at the end.

        Raises:
            ValueError: for a non-positive timeout or poll, or inconsistent environment
                variables.
        """
        _check_seconds(timeout, "timeout")
        size, rank, local = env.world_size(), env.rank(), env.local_rank()
        dev = _default_device(device, local)
        if size == 1:
            return cls(device=dev, timeout=timeout, poll=poll)
        if not 0 <= rank < size:
            raise ValueError(
                f"World.from_env: expected 0 <= RANK < WORLD_SIZE={size}, received RANK={rank}"
            )
        missing = [k for k in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(k)]
        if missing:
            raise ValueError(
                f"World.from_env: expected {' and '.join(missing)} in the environment with "
                f"WORLD_SIZE={size} (launch with torchrun)"
            )
        wait = timedelta(seconds=timeout)
        key = tuple(os.environ.get(k) for k in ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE"))
        if _RENDEZVOUS["key"] != key:
            url = "env://"
            _RENDEZVOUS["store"], _, _ = next(dist.rendezvous(url, rank, size, timeout=wait))
            _RENDEZVOUS["key"] = key
        _RENDEZVOUS["generation"] += 1
        store = dist.PrefixStore(f"scoresde/world{_RENDEZVOUS['generation']}", _RENDEZVOUS["store"])
        own = not dist.is_initialized()
        if own:
            dist.init_process_group(
                "gloo",
                store=dist.PrefixStore("pg", store),
                rank=rank,
                world_size=size,
                timeout=wait,
            )
            group = None
        else:  # the user's group: gather over gloo whatever its backend
            group = None if dist.get_backend() == "gloo" else dist.new_group(backend="gloo")
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        world = cls(rank, size, dev, timeout, poll, store, group)
        world._owns_group = own
        return world

    def job_store(self) -> Any:
        """A fresh key namespace of the store for the next job (ranks run jobs in one order)."""
        self._jobs += 1
        return dist.PrefixStore(f"job{self._jobs}", self.store)

    def gather(self, obj: Any) -> list[Any] | None:
        """``obj`` of every rank, in rank order, on rank 0 (None elsewhere)."""
        if self.size == 1:
            return [obj]
        out = [None] * self.size if self.rank == 0 else None
        dist.gather_object(obj, out, dst=0, group=self.group)
        return out

    def barrier(self) -> None:
        """Wait for every rank (only called once all ranks are known to be alive and done)."""
        if self.size > 1:
            dist.barrier(group=self.group)

    def close(self) -> None:
        """Destroy the process group if this World created it."""
        if self._owns_group and dist.is_initialized():
            dist.destroy_process_group()
        self._owns_group = False

    def __enter__(self) -> World:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _default_device(device: torch.device | str | None, local_rank: int) -> torch.device:
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(
            f"World: expected a device such as 'cpu' or 'cuda', received {device!r}"
        ) from err
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", local_rank)
    return dev
