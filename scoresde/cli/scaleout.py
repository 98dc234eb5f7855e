"""``scoresde sample | nll | compare`` under ``torchrun``: ranks, run folder, atomic outputs.

Every command runs through :mod:`scoresde.distributed` whether it was launched by ``torchrun``
(``WORLD_SIZE`` > 1) or as one process, so both write the same files with the same numbers.
Finished shards are kept in ``<out>/shards/``; rerunning the same command with the same
``--out`` computes only the shards that are missing.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import torch

from ..distributed import World
from .common import run_dir

__all__ = ["add_scaleout_flags", "cli_world", "shared_run_dir"]


def add_scaleout_flags(p: argparse.ArgumentParser, shard_size: int, unit: str) -> None:
    """``--shard-size`` and ``--timeout`` of a sharded command."""
    p.add_argument(
        "--shard-size",
        type=_positive(int),
        default=shard_size,
        help=f"{unit} per shard, the unit of work, of resume and of the progress "
        f"count (default {shard_size}; keep it fixed to reproduce a run)",
    )
    p.add_argument(
        "--timeout",
        type=_positive(float),
        default=600.0,
        help="seconds without progress before a rank counts as failed under torchrun (default 600)",
    )


def _positive(kind: Callable[[str], float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, received {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"expected a positive number, received {text!r}")
        return value

    return parse


def cli_world(args: argparse.Namespace, device: torch.device) -> World:
    """The ranks of this command (``torchrun``'s environment, else one process)."""
    return World.from_env(device, timeout=args.timeout)


def shared_run_dir(world: World, out: str | None, command: str, force: bool = False) -> Path:
    """The run folder, chosen by rank 0 (a default name carries rank 0's time) and shared.

    ``force`` (``--force``) lets rank 0 write into an ``--out`` that holds another run.
    """
    if world.size == 1:
        return run_dir(out, command, force)
    key = "run_dir"
    if world.rank == 0:
        path = run_dir(out, command, force)
        world.store.set(key, str(path))
        return path
    return Path(world.store.get(key).decode())
