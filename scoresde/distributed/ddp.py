"""Data-parallel training through ``torchrun``: process group, DDP, agreement across ranks.

The ranks, world size and device come from :mod:`~scoresde.distributed.env` (the one reader of
``torchrun``'s environment). :func:`process_group` joins (or reuses) the group, ``gloo`` on CPU
and ``NCCL`` on GPUs; every rank takes its contiguous shard of the same global batch and DDP
averages the gradients.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import Tensor, nn

from .env import default_device, pg_timeout, world_size

__all__ = [
    "all_ranks_max",
    "all_ranks_mean",
    "barrier",
    "default_device",
    "process_group",
    "world_size",
    "wrap_ddp",
]


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
        dist.init_process_group(
            "nccl" if device.type == "cuda" else "gloo", timeout=timedelta(seconds=pg_timeout())
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
