"""Sharded evaluation over ``torchrun`` ranks: the same log-likelihoods and samples at any world size.

Launch a script (or ``scoresde nll | sample | compare``) with ``torchrun --nproc_per_node N``;
inside, build the ranks with :meth:`World.from_env` and pass them as ``world=``::

    from scoresde.distributed import World, sharded_log_likelihood

    with World.from_env(timeout=300) as world:
        res = sharded_log_likelihood(sde, model, x_test, world=world, shard_dir="runs/nll/shards")
    if res is not None:  # rank 0
        print(res.log_prob.mean())

The one runtime layer: :mod:`~scoresde.distributed.env` reads ``torchrun``'s environment (rank,
world size, local rank, device) for everyone, training's DDP lives in
:mod:`~scoresde.distributed.ddp`, and sharded evaluation runs on a :class:`World`.

* :mod:`~scoresde.distributed.env`: rank, world size, local rank, default device.
* :mod:`~scoresde.distributed.ddp`: the training process group, DDP and agreement across ranks.
* :mod:`~scoresde.distributed.world`: :class:`World` (rank, size, device, store, timeout).
* :mod:`~scoresde.distributed.atomic`: the one atomic file writer (umask, one-line write errors).
* :mod:`~scoresde.distributed.shards`: the fixed cut of items into shards, per-item seeds,
  atomic shard files for resuming.
* :mod:`~scoresde.distributed.monitor`: heartbeats, failure detection, the one progress bar.
* :mod:`~scoresde.distributed.runner`: :func:`run_sharded`, the loop every sharded job shares.
* :mod:`~scoresde.distributed.jobs`: :func:`sharded_log_likelihood` and :func:`sharded_sample`.
* :mod:`~scoresde.distributed.bpd`: :func:`sharded_bits_per_dim` (discrete data) and
  :func:`sharded_compare_samplers` (sampler studies).

See docs/howto/scale-out.md for launch commands on one GPU, several GPUs and several nodes.
"""

from __future__ import annotations

from .atomic import (
    WriteError,
    append_text,
    atomic_save_npy,
    atomic_save_torch,
    atomic_write,
    atomic_write_bytes,
    atomic_write_text,
)
from .bpd import sharded_bits_per_dim, sharded_compare_samplers
from .jobs import SampleSummary, sharded_log_likelihood, sharded_sample
from .runner import ShardFn, run_sharded
from .shards import ShardStore, fingerprint_of, item_seed, plan_shards
from .world import RankFailedError, World

__all__ = [
    "RankFailedError",
    "SampleSummary",
    "ShardFn",
    "ShardStore",
    "World",
    "WriteError",
    "append_text",
    "atomic_save_npy",
    "atomic_save_torch",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "fingerprint_of",
    "item_seed",
    "plan_shards",
    "run_sharded",
    "sharded_bits_per_dim",
    "sharded_compare_samplers",
    "sharded_log_likelihood",
    "sharded_sample",
]
