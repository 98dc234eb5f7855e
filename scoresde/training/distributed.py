"""Data-parallel training through ``torchrun``: device choice, process group, DDP, agreement.

``torchrun`` sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``; the same command then runs once per
process. :func:`process_group` joins (or reuses) the group, ``gloo`` on CPU and ``NCCL`` on GPUs;
every rank takes its contiguous shard of the same global batch and DDP averages the gradients.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import Tensor, nn

__all__ = [
    "all_ranks_max",
    "all_ranks_mean",
    "barrier",
    "default_device",
    "process_group",
    "world_size",
    "wrap_ddp",
]


def world_size() -> int:
    """The number of processes started by ``torchrun`` (1 without it)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def default_device(device: str | torch.device | None) -> torch.device:
    """``device`` if given, else ``cuda:LOCAL_RANK`` when CUDA is available, else the CPU."""
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


@contextmanager
def process_group(device: torch.device) -> Iterator[tuple[int, int]]:
    """Yield ``(rank, world)``; joins the process group under ``torchrun`` and leaves it after.

    A group that already exists (the caller's) is used and left alone. A group it creates has
    the timeout ``SCORESDE_PG_TIMEOUT`` seconds (default 600): a collective that waits longer
    (a frozen rank) raises on the other ranks instead of hanging the job.
    """
    world = world_size()
    own = world > 1 and not dist.is_initialized()
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if own:  # a stuck collective (a frozen rank) ends in an error after the timeout, not a hang
        seconds = float(os.environ.get("SCORESDE_PG_TIMEOUT", "600"))
        dist.init_process_group(
            "nccl" if device.type == "cuda" else "gloo", timeout=timedelta(seconds=seconds)
        )
    try:
        yield (dist.get_rank() if world > 1 else 0), world
    finally:
        if own:
            dist.destroy_process_group()


def wrap_ddp(module: nn.Module, device: torch.device, world: int) -> nn.Module:
    """``module`` wrapped in ``DistributedDataParallel`` when ``world > 1``, else unchanged."""
    if world == 1:
        return module
    ids = [device] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids)


def all_ranks_max(flags: Tensor, world: int) -> Tensor:
    """Elementwise maximum of ``flags`` over ranks (in place), so that all ranks agree."""
    if world > 1:
        dist.all_reduce(flags, op=dist.ReduceOp.MAX)
    return flags


def all_ranks_mean(value: Tensor, world: int) -> Tensor:
    """The mean of ``value`` over ranks (a copy), e.g. the global batch's loss for the log."""
    if world == 1:
        return value
    out = value.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / world


def barrier(world: int) -> None:
    """Wait for every rank (no-op for a single process)."""
    if world > 1:
        dist.barrier()
