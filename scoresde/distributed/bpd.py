"""Sharded bits per dim of discrete data, and a sharded sampler study.

* :func:`sharded_bits_per_dim`: :func:`~scoresde.likelihood.dequantized_bits_per_dim` with the
  PF-ODE likelihood, per shard (uniform dequantization, Theis et al. 2016; Song et al. 2021,
  App. D.2). The dequantization noise of a shard comes from the shard's own seed and the
  Hutchinson probes of point i from ``item_seed(seed, i, "probes/<draw>")``; shards are cut
  the same way at every world size, so the numbers do not depend on it.
* :func:`sharded_compare_samplers`: :func:`~scoresde.studies.compare_samplers` with its cells
  over the ranks (the study engine shards them), every row as one process computes it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..likelihood import BitsPerDim, dequantized_bits_per_dim, log_likelihood
from ..sde import LinearSDE
from ..studies import StudyResult, compare_samplers
from .jobs import _beating
from .runner import run_sharded
from .shards import fingerprint_of, item_seed
from .world import World

__all__ = ["sharded_bits_per_dim", "sharded_compare_samplers"]


def sharded_bits_per_dim(
    sde: LinearSDE,
    score_fn: Callable[[Tensor, Tensor], Tensor],
    k: Tensor,
    *,
    levels: int = 256,
    model_range: tuple[float, float] = (-1.0, 1.0),
    n_draws: int = 1,
    world: World | None = None,
    seed: int = 0,
    shard_size: int = 250,
    shard_dir: str | Path | None = None,
    progress: bool = False,
    dtype: torch.dtype = torch.float64,
    **likelihood_kwargs: Any,
) -> BitsPerDim | None:
    """Bits per dim of integer data ``k`` through the PF-ODE, sharded over ``world``'s ranks.

    Args:
        sde: A linear SDE.
        score_fn: ``score_fn(x, t)`` on the model's range, on ``world.device``.
        k: Integer levels in [0, levels - 1], shape ``(n, *dims)`` (the same on every rank).
        levels: Levels per entry.
        model_range: The interval the model's data lives in.
        n_draws: Dequantization draws averaged per point.
        world: The ranks (default: one process on the CPU).
        seed: Job seed (dequantization noise and probes).
        shard_size: Points per shard.
        shard_dir: Folder for finished shards (resume).
        progress: One progress bar on rank 0.
        dtype: Floating dtype of the computation.
        **likelihood_kwargs: Passed to :func:`~scoresde.likelihood.log_likelihood`.

    Returns:
        On rank 0 a :class:`~scoresde.likelihood.BitsPerDim` over all points (``nfe`` summed);
        None on the other ranks.

    Raises:
        TypeError: for a non-tensor ``k`` or non-integer ``seed``.
        ValueError: as :func:`~scoresde.likelihood.dequantized_bits_per_dim` raises, or for
            ``generator``/``seeds`` among the keyword arguments.
    """
    if not isinstance(k, Tensor) or k.ndim < 2:
        got = tuple(k.shape) if isinstance(k, Tensor) else type(k).__name__
        raise TypeError(f"sharded_bits_per_dim: expected a tensor (n, *dims), received {got}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"sharded_bits_per_dim: expected an integer seed, received {seed!r}")
    bad = sorted({"generator", "seeds"} & set(likelihood_kwargs))
    if bad:
        raise ValueError(f"sharded_bits_per_dim: expected seed=, received {', '.join(bad)}")
    world = World.single("cpu") if world is None else world
    hutchinson = likelihood_kwargs.get("divergence", "exact") == "hutchinson"

    def shard(start: int, stop: int, beat: Callable[[], None]) -> dict[str, Any]:
        draw = iter(range(n_draws))

        def log_prob_fn(y: Tensor) -> tuple[Tensor, int]:
            d = next(draw)
            seeds = [item_seed(seed, i, f"probes/{d}") for i in range(start, stop)]
            res = log_likelihood(
                sde,
                _beating(score_fn, beat),
                y,
                dtype=dtype,
                seeds=seeds if hutchinson else None,
                **likelihood_kwargs,
            )
            return res.log_prob, res.nfe

        gen = torch.Generator().manual_seed(item_seed(seed, start, "dequantize"))
        res = dequantized_bits_per_dim(
            log_prob_fn,
            k[start:stop].to(world.device),
            levels=levels,
            model_range=model_range,
            n_draws=n_draws,
            generator=gen,
            dtype=dtype,
        )
        return {
            "bpd": res.bpd.cpu(),
            "stderr": res.stderr.cpu(),
            "per_draw": res.per_draw.T.cpu(),
            "nfe": res.nfe,
        }

    spec = {
        "job": "bits_per_dim",
        "sde": sde.config(),
        "score_fn": score_fn,
        "k": k,
        "levels": levels,
        "model_range": list(model_range),
        "n_draws": n_draws,
        "seed": seed,
        "shard_size": shard_size,
        "dtype": str(dtype),
        "options": likelihood_kwargs,
    }
    fp = fingerprint_of(spec) if shard_dir is not None else None
    parts = run_sharded(
        shard,
        k.shape[0],
        shard_size=shard_size,
        world=world,
        shard_dir=shard_dir,
        fingerprint=fp,
        progress=progress,
        desc="bits/dim",
    )
    if parts is None:
        return None
    cat = {key: torch.cat([p[key] for p in parts]) for key in ("bpd", "stderr", "per_draw")}
    return BitsPerDim(cat["bpd"], cat["stderr"], cat["per_draw"].T, sum(p["nfe"] for p in parts))


def sharded_compare_samplers(
    sde: LinearSDE,
    score_fn: Callable[[Tensor, Tensor], Tensor],
    samplers: Sequence[Any],
    nfes: Sequence[int],
    reference: Tensor,
    metrics: Sequence[str] = ("sw2", "mmd"),
    *,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    world: World | None = None,
    **study_kwargs: Any,
) -> StudyResult | None:
    """:func:`~scoresde.studies.compare_samplers` with its cells shared out over the ranks.

    The study engine runs each cell as one item of :func:`run_sharded`; every row equals the
    row of a single process (same prior draws, noise and metric seeds), in the same order;
    only the timing columns differ.

    Returns:
        On rank 0 the :class:`~scoresde.studies.StudyResult`; None on the other ranks.
    """
    return compare_samplers(
        sde,
        score_fn,
        samplers,
        nfes,
        reference,
        metrics,
        seeds=seeds,
        world=World.single("cpu") if world is None else world,
        **study_kwargs,
    )
