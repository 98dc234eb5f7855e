"""Moved: training's DDP lives in :mod:`scoresde.distributed.ddp` (names importable from here)."""

from __future__ import annotations

from ..distributed.ddp import (
    all_ranks_max,
    all_ranks_mean,
    barrier,
    default_device,
    process_group,
    world_size,
    wrap_ddp,
)

__all__ = [
    "all_ranks_max",
    "all_ranks_mean",
    "barrier",
    "default_device",
    "process_group",
    "world_size",
    "wrap_ddp",
]
