"""Run a function over the shards of n items on every rank; gather the results on rank 0.

:func:`run_sharded` is the one loop every sharded job shares (likelihood, sampling, studies):

1. cut the items into shards (:func:`~scoresde.distributed.shards.plan_shards`); rank r takes
   shards r, r + size, r + 2 size, ...;
2. for each of its shards, load it from the shard folder if an earlier run finished it, else
   compute ``fn(start, stop, beat)`` and save it atomically;
3. report each finished shard to the :class:`~scoresde.distributed.monitor.Monitor` (progress,
   heartbeats) and, once all its shards are done, wait until every rank is done;
4. gather every rank's shards on rank 0 (one ``gloo`` gather of CPU objects) and return them in
   shard order there; the other ranks return None.

A failure on any rank (an exception, or no progress within ``world.timeout``) ends every rank
with :class:`~scoresde.distributed.world.RankFailedError` naming the rank; shards already saved
stay on disk, and rerunning the job computes only the missing ones.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .monitor import Monitor
from .shards import ShardStore, plan_shards
from .world import RankFailedError, World

__all__ = ["ShardFn", "run_sharded"]

#: Type of the job of one shard: ``fn(start, stop, beat) -> dict`` for the items [start, stop).
#: Call ``beat()`` at every score evaluation (it raises when another rank failed). The dict
#: must be picklable (tensors, moved to the CPU by the runner, numbers, strings and lists
#: thereof: it is saved and loaded with ``weights_only``).
ShardFn = Callable[[int, int, Callable[[], None]], dict[str, Any]]


def run_sharded(
    fn: ShardFn,
    n: int,
    *,
    shard_size: int,
    world: World | None = None,
    shard_dir: str | Path | None = None,
    fingerprint: dict[str, Any] | None = None,
    progress: bool = False,
    desc: str = "",
) -> list[dict[str, Any]] | None:
    """Run ``fn`` over the shards of ``n`` items across the ranks of ``world``.

    Args:
        fn: Computes one shard (see :data:`ShardFn`).
        n: Number of items.
        shard_size: Items per shard (the last shard may be shorter); results do not depend on
            the world size for a fixed ``shard_size``.
        world: The ranks (default: one process on the CPU).
        shard_dir: Folder for finished shards (resume); None keeps them in memory only.
        fingerprint: What identifies the job (required with ``shard_dir``): a rerun resumes
            only a job with the same fingerprint.
        progress: Draw one progress bar (on rank 0) counting items across ranks.
        desc: The progress bar's label.

    Returns:
        On rank 0 the shard results in item order; None on other ranks.

    Raises:
        RankFailedError: if any rank failed or stalled (every rank raises it).
        TypeError: if ``fn`` is not callable or returns something other than a dict.
        ValueError: for bad ``n``/``shard_size``, or a shard folder of another job.
    """
    if not callable(fn):
        raise TypeError(f"run_sharded: expected a callable fn(start, stop, beat), received {fn!r}")
    world = World.single("cpu") if world is None else world
    if not isinstance(world, World):
        raise TypeError(f"run_sharded: expected a World, received {type(world).__name__}")
    spans = plan_shards(n, shard_size)
    if shard_dir is not None and fingerprint is None:
        raise ValueError("run_sharded: expected a fingerprint with shard_dir (what to resume)")
    store = world.job_store() if world.size > 1 else None
    monitor = Monitor(store, world.rank, world.size, world.timeout, world.poll, n, progress, desc)
    mine: dict[int, dict[str, Any]] = {}
    with monitor:
        try:
            saved = None
            if shard_dir is not None:
                saved = ShardStore(shard_dir, fingerprint or {}, world.rank)
            for k in range(world.rank, len(spans), world.size):
                result = saved.load(k, spans[k]) if saved is not None else None
                if result is None:
                    result = fn(*spans[k], monitor.beat)
                    if not isinstance(result, dict):
                        raise TypeError(
                            f"run_sharded: expected fn to return a dict, received "
                            f"{type(result).__name__}"
                        )
                    result = _to_cpu(result)  # gathered over gloo, loadable anywhere
                    if saved is not None:
                        saved.save(k, spans[k], result)
                mine[k] = result
                monitor.advance(spans[k][1] - spans[k][0])
            monitor.wait_all()
        except RankFailedError:
            raise
        except BaseException as err:
            monitor.fail(f"rank {world.rank} failed: {type(err).__name__}: {err}")
            raise
    parts = world.gather(mine)
    world.barrier()  # no rank leaves (and takes a store down) while another still gathers
    if parts is None:
        return None
    merged = {k: v for part in parts for k, v in part.items()}
    return [merged[k] for k in range(len(spans))]


def _to_cpu(value: Any) -> Any:
    """``value`` with every tensor (in dicts, lists and tuples) detached and moved to the CPU."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_cpu(v) for v in value)
    return value
