"""The one reader of the ``torchrun`` environment: rank, world size, local rank, device.

``torchrun`` starts the same command once per process and sets ``WORLD_SIZE``, ``RANK`` and
``LOCAL_RANK`` (and ``MASTER_ADDR``/``MASTER_PORT`` for the rendezvous). Everything that needs
them (:class:`~scoresde.distributed.World`, training's DDP in :mod:`~scoresde.distributed.ddp`,
the CLI) reads them here; without ``torchrun`` this is one process of rank 0.
"""

from __future__ import annotations

import os

import torch

__all__ = ["default_device", "env_int", "local_rank", "pg_timeout", "rank", "world_size"]


def env_int(name: str, default: int) -> int:
    """The integer environment variable ``name`` (``default`` when unset or empty).

    Raises:
        ValueError: If it is set to something other than an integer.
    """
    text = os.environ.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"torchrun: expected an integer {name}, received {text!r}") from None


def world_size() -> int:
    """The number of processes started by ``torchrun`` (1 without it)."""
    return env_int("WORLD_SIZE", 1)


def rank() -> int:
    """This process's rank among them (0 without ``torchrun``)."""
    return env_int("RANK", 0)


def local_rank() -> int:
    """This process's rank on its node: the index of its GPU (0 without ``torchrun``)."""
    return env_int("LOCAL_RANK", 0)


def default_device(device: str | torch.device | None) -> torch.device:
    """``device`` if given, else ``cuda:LOCAL_RANK`` when CUDA is available, else the CPU."""
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank())
    return torch.device("cpu")


def pg_timeout() -> float:
    """Seconds a collective may wait before it raises (``SCORESDE_PG_TIMEOUT``, default 600)."""
    return float(os.environ.get("SCORESDE_PG_TIMEOUT", "600"))
