"""Sharded bits/dim against a single-process reference written out here (issue 23).

The reference follows the documented contract of
:func:`~scoresde.distributed.sharded_bits_per_dim` with plain loops: per shard, uniform
dequantization noise from the generator seeded ``item_seed(seed, start, "dequantize")``, one
draw after another; per point i and draw d, a FRESH Hutchinson probe from
``item_seed(seed, i, f"probes/{d}")``; each point's log-likelihood solved on its own (probes
from seeds make a point's estimate independent of its batch); bits/dim = -(log p(y) + D log
((hi - lo) / levels)) / (D log 2). Reusing one probe set for every draw (correlated draws and a
standard error that is too small) changes draws d >= 1 by the Hutchinson noise, far above the
solver tolerance used here.
"""

from __future__ import annotations

import math

import torch

from scoresde.analytic import GaussianMixture
from scoresde.distributed import item_seed, sharded_bits_per_dim
from scoresde.likelihood import log_likelihood
from scoresde.sde import VPSDE

F64 = torch.float64
SDE = VPSDE(eps=1e-3)
GM = GaussianMixture([0.4, 0.6], [[-1.0, 0.5], [1.0, -0.5]], [[0.3, 0.2], [0.2, 0.4]], sde=SDE)
TOL = {"rtol": 1e-5, "atol": 1e-5, "probe": "gaussian"}


def _reference(k: torch.Tensor, seed: int, shard_size: int, n_draws: int, levels: int):
    lo, hi = -1.0, 1.0
    n, D = k.shape[0], k[0].numel()
    per_draw = torch.zeros(n_draws, n, dtype=F64)
    for start in range(0, n, shard_size):
        stop = min(start + shard_size, n)
        gen = torch.Generator().manual_seed(item_seed(seed, start, "dequantize"))
        for d in range(n_draws):
            u = torch.rand(k[start:stop].shape, generator=gen, dtype=F64)
            y = lo + (hi - lo) * (k[start:stop].to(F64) + u) / levels
            for i in range(start, stop):
                lp = log_likelihood(SDE, GM.score, y[i - start : i - start + 1],
                                    divergence="hutchinson",
                                    seeds=[item_seed(seed, i, f"probes/{d}")], **TOL).log_prob  # fmt: skip
                log_p = float(lp[0]) + D * math.log((hi - lo) / levels)
                per_draw[d, i] = -log_p / (D * math.log(2))
    return per_draw


def test_sharded_bits_per_dim_against_a_fresh_probe_per_draw_reference() -> None:
    k = torch.randint(0, 4, (3, 2), generator=torch.Generator().manual_seed(1))
    got = sharded_bits_per_dim(SDE, GM.score, k, levels=4, n_draws=2, seed=11, shard_size=2,
                               divergence="hutchinson", **TOL)  # fmt: skip
    want = _reference(k, seed=11, shard_size=2, n_draws=2, levels=4)
    torch.testing.assert_close(got.per_draw, want, rtol=0, atol=1e-4)
    torch.testing.assert_close(got.bpd, want.mean(0), rtol=0, atol=1e-4)
    torch.testing.assert_close(got.stderr, want.std(0) / math.sqrt(2), rtol=0, atol=1e-4)
