"""Sharded log-likelihood and sampling: the same numbers on 1, 2 or N ranks.

* :func:`sharded_log_likelihood`: log p(x) through the PF-ODE (Song et al. 2021, Sec. 4.3 and
  Eq. 39) for a whole data set, each shard one call to
  :func:`~scoresde.likelihood.log_likelihood`; Hutchinson probes are drawn per point
  (``seeds=``), so a point's estimate does not depend on the rank or the world size.
* :func:`sharded_sample`: n samples from a registered sampler, each sample's prior draw x_T and
  its sampler noise from its own seeds (:func:`~scoresde.distributed.shards.item_seed`).

Both call the score function through a wrapper that reports a heartbeat per evaluation, so a
rank whose adaptive solver takes more steps than another's is busy, never waited for, and a
failure elsewhere stops it at its next evaluation.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .._utils import sde_of
from ..likelihood import LikelihoodResult, log_likelihood
from ..samplers import get_sampler, noise_from_seeds, sample
from ..sde import LinearSDE
from .runner import run_sharded
from .shards import fingerprint_of, item_seed
from .world import World

__all__ = ["SampleSummary", "sharded_log_likelihood", "sharded_sample"]

ScoreFn = Callable[[Tensor, Tensor], Tensor]


class _Beating:
    """``score_fn`` that reports a heartbeat per evaluation.

    It carries the wrapped function's SDE (``sde`` attribute), so the samplers' and likelihood's
    SDE checks still see it.
    """

    def __init__(self, score_fn: ScoreFn, beat: Callable[[], None]) -> None:
        self.fn, self.beat = score_fn, beat
        carried = sde_of(score_fn)
        if carried is not None:
            self.sde = carried

    def __call__(self, x: Tensor, t: Tensor) -> Tensor:
        self.beat()
        return self.fn(x, t)


def _beating(score_fn: ScoreFn, beat: Callable[[], None]) -> ScoreFn:
    return _Beating(score_fn, beat)


def _cat(results: list[dict[str, Any]], key: str) -> Tensor:
    return torch.cat([r[key] for r in results])


def sharded_log_likelihood(
    sde: LinearSDE,
    score_fn: ScoreFn,
    x: Tensor,
    *,
    world: World | None = None,
    seed: int = 0,
    shard_size: int = 250,
    shard_dir: str | Path | None = None,
    progress: bool = False,
    **likelihood_kwargs: Any,
) -> LikelihoodResult | None:
    """log p(x) of every row of ``x`` through the PF-ODE, sharded over the ranks of ``world``.

    Every rank passes the same ``x`` (e.g. the whole test set; only its shards are moved to
    ``world.device``). Point i's Hutchinson probes come from ``item_seed(seed, i, "probes")``.

    Args:
        sde: A linear SDE (VP, sub-VP or VE).
        score_fn: ``score_fn(x, t)`` approximating grad_x log p_t(x), on ``world.device``.
        x: Data of shape ``(n, *dims)``.
        world: The ranks (default: one process on the CPU).
        seed: Seed of the per-point probes.
        shard_size: Points per :func:`log_likelihood` call (an adaptive solver picks its steps
            per call, so keep it fixed to compare runs).
        shard_dir: Folder for finished shards, for resuming an interrupted job.
        progress: One progress bar on rank 0 over the points of all ranks.
        **likelihood_kwargs: Passed to :func:`~scoresde.likelihood.log_likelihood` (``solver``,
            ``rtol``, ``atol``, ``divergence``, ``n_probes``, ``dtype``, ...), except
            ``generator`` and ``seeds``.

    Returns:
        On rank 0 a :class:`~scoresde.likelihood.LikelihoodResult` over all n points (``nfe``
        and ``n_vjp`` summed over shards); None on the other ranks.

    Raises:
        TypeError: for a non-tensor ``x`` or a non-integer ``seed``.
        ValueError: for ``generator``/``seeds`` among the keyword arguments, or as
            :func:`log_likelihood` and :func:`~scoresde.distributed.run_sharded` raise.
        RankFailedError: if a rank failed or stalled.
    """
    if not isinstance(x, Tensor) or x.ndim < 2:
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise TypeError(f"sharded_log_likelihood: expected a tensor (n, *dims), received {got}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"sharded_log_likelihood: expected an integer seed, received {seed!r}")
    bad = sorted({"generator", "seeds"} & set(likelihood_kwargs))
    if bad:
        raise ValueError(
            f"sharded_log_likelihood: expected seed=, received {', '.join(bad)} (probes are "
            "drawn per point from the seed)"
        )
    world = World.single("cpu") if world is None else world
    hutchinson = likelihood_kwargs.get("divergence", "exact") == "hutchinson"

    def shard(start: int, stop: int, beat: Callable[[], None]) -> dict[str, Any]:
        seeds = [item_seed(seed, i, "probes") for i in range(start, stop)] if hutchinson else None
        xs = x[start:stop].to(world.device)
        r = log_likelihood(sde, _beating(score_fn, beat), xs, seeds=seeds, **likelihood_kwargs)
        out = {
            "log_prob": r.log_prob,
            "z": r.z,
            "prior_log_prob": r.prior_log_prob,
            "nfe": r.nfe,
            "n_vjp": r.n_vjp,
        }
        if r.per_probe is not None:
            out.update(stderr=r.stderr, per_probe=r.per_probe.T)
        return {k: v.detach().cpu() if isinstance(v, Tensor) else v for k, v in out.items()}

    spec = {
        "job": "log_likelihood",
        "sde": sde.config(),
        "score_fn": score_fn,
        "x": x,
        "seed": seed,
        "shard_size": shard_size,
        "options": likelihood_kwargs,
    }
    fp = fingerprint_of(spec) if shard_dir is not None else None
    parts = run_sharded(
        shard,
        x.shape[0],
        shard_size=shard_size,
        world=world,
        shard_dir=shard_dir,
        fingerprint=fp,
        progress=progress,
        desc="log-likelihood",
    )
    if parts is None:
        return None
    nfe, n_vjp = sum(p["nfe"] for p in parts), sum(p["n_vjp"] for p in parts)
    extra = {}
    if "per_probe" in parts[0]:
        extra = {"stderr": _cat(parts, "stderr"), "per_probe": _cat(parts, "per_probe").T}
    return LikelihoodResult(
        _cat(parts, "log_prob"),
        _cat(parts, "z"),
        _cat(parts, "prior_log_prob"),
        nfe,
        n_vjp,
        **extra,
    )


class SampleSummary(dict):
    """What :func:`sharded_sample` reports beside the samples, as a dict.

    Keys: ``nfe`` (score evaluations summed over shards), ``nfe_per_shard``, ``n_steps`` and
    ``stats`` (the numeric stats of each shard's :class:`~scoresde.samplers.SampleInfo`).
    """


def sharded_sample(
    sampler: str,
    sde: LinearSDE,
    score_fn: ScoreFn,
    shape: tuple[int, ...],
    n: int,
    grid: Tensor,
    *,
    world: World | None = None,
    seed: int = 0,
    shard_size: int = 500,
    shard_dir: str | Path | None = None,
    progress: bool = False,
    dtype: torch.dtype = torch.float32,
    **options: Any,
) -> tuple[Tensor, SampleSummary] | None:
    """Draw ``n`` samples with a registered sampler, sharded over the ranks of ``world``.

    Sample i starts from x_T = prior_std * N(0, I) drawn with ``item_seed(seed, i, "prior")``
    and draws its sampler noise from ``item_seed(seed, i, "noise")`` (the samplers' ``seeds``
    option), so it is the same sample on 1, 2 or N ranks and in any shard.

    Args:
        sampler: A name in :data:`~scoresde.samplers.SAMPLERS`.
        sde: A linear SDE.
        score_fn: ``score_fn(x, t)`` on ``world.device``.
        shape: The shape of one sample, ``dims``.
        n: Number of samples.
        grid: The time grid (decreasing, see :func:`~scoresde.samplers.grid_for_nfe`).
        world: The ranks (default: one process on the CPU).
        seed: Job seed.
        shard_size: Samples per sampler call.
        shard_dir: Folder for finished shards, for resuming an interrupted job.
        progress: One progress bar on rank 0 over the samples of all ranks.
        dtype: dtype of x_T.
        **options: Sampler options (except ``generator``, ``seeds``, ``noise_sampler``).

    Returns:
        On rank 0 ``(x, summary)`` with x of shape ``(n, *shape)`` on the CPU; None elsewhere.

    Raises:
        TypeError, ValueError: for bad arguments (an unknown sampler name lists the valid ones).
        RankFailedError: if a rank failed or stalled.
    """
    get_sampler(sampler)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"sharded_sample: expected an integer seed, received {seed!r}")
    if not isinstance(shape, (tuple, list)) or not all(isinstance(d, int) and d > 0 for d in shape):
        raise ValueError(
            f"sharded_sample: expected a shape of positive integers, received {shape!r}"
        )
    bad = sorted({"generator", "seeds", "noise_sampler"} & set(options))
    if bad:
        raise ValueError(f"sharded_sample: expected seed=, received {', '.join(bad)}")
    world = World.single("cpu") if world is None else world

    def shard(start: int, stop: int, beat: Callable[[], None]) -> dict[str, Any]:
        prior = [item_seed(seed, i, "prior") for i in range(start, stop)]
        x_T = sde.prior_std * noise_from_seeds(prior, shape, dtype=dtype, device=world.device)
        noise = [item_seed(seed, i, "noise") for i in range(start, stop)]
        with torch.no_grad():
            x, info = sample(
                sampler, sde, _beating(score_fn, beat), x_T, grid, seeds=noise, **options
            )
        return {
            "x": x.detach().cpu(),
            "nfe": info.nfe,
            "n_steps": info.n_steps,
            "stats": {k: v for k, v in info.stats.items() if isinstance(v, (int, float))},
        }

    spec = {
        "job": "sample",
        "sampler": sampler,
        "sde": sde.config(),
        "score_fn": score_fn,
        "shape": list(shape),
        "n": n,
        "grid": grid,
        "seed": seed,
        "shard_size": shard_size,
        "dtype": str(dtype),
        "options": options,
    }
    fp = fingerprint_of(spec) if shard_dir is not None else None
    parts = run_sharded(
        shard,
        n,
        shard_size=shard_size,
        world=world,
        shard_dir=shard_dir,
        fingerprint=fp,
        progress=progress,
        desc=f"sample {sampler}",
    )
    if parts is None:
        return None
    summary = SampleSummary(
        nfe=sum(p["nfe"] for p in parts),
        nfe_per_shard=[p["nfe"] for p in parts],
        n_steps=[p["n_steps"] for p in parts],
        stats=[p["stats"] for p in parts],
    )
    return _cat(parts, "x"), summary
