"""Problems of the random-mixture family with their exact reference, and the CE-gap measure.

Shared by ``few_step_defaults.py`` and ``sampler_peers.py``. A problem is one family member
(:func:`scoresde.data.family.random_mixture`) with its SDEs (VP beta 0.1-20, sub-VP, VE
sigma 0.01-50; eps = 1e-5 each: the library's defaults), the same prior draws for every sampler
and the entropy H(p0) from 20,000 exact samples. A run is scored by its cross-entropy gap

    gap = mean_i(-log p0(x_i)) - H(p0)    (nats; 0 for exact samples),

whose noise is the standard error of mean(-log p0) over n exact samples (``delta``): positive
gaps are mass between the modes, negative ones over-concentration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from scoresde import VESDE, VPSDE, GaussianMixture, SubVPSDE
from scoresde.data.family import narrowest_std, random_mixture
from scoresde.samplers import SAMPLERS, sample
from scoresde.sde import LinearSDE

#: Three disjoint sets of family members:
#:
#: * TRAIN_SEEDS: each sampler's defaults (grid kind, switches) are chosen here. Eight problems:
#:   the first four (0-3) held two 2-D problems and two of dimension 48-58, nothing between, so
#:   choices were made without a mid-dimensional narrow problem.
#: * HELD_OUT_SEEDS: every sampler is reported here at its defaults; the sampler ``auto`` runs
#:   is chosen here (issue 21, item 5), among settings none of which was chosen on them (on the
#:   training seeds a sampler with more switches to tune would look better than it is).
#: * TEST_SEEDS: ``auto`` is reported here; nothing is chosen on them.
TRAIN_SEEDS = (0, 1, 2, 3, 4, 5, 6, 7)
HELD_OUT_SEEDS = (1000, 1001, 1002, 1003, 1004, 1005)
TEST_SEEDS = (2000, 2001, 2002, 2003, 2004, 2005)


def make_sdes() -> dict[str, LinearSDE]:
    """The library's default VP, sub-VP and VE SDEs (eps = 1e-5)."""
    return {"vp": VPSDE(), "subvp": SubVPSDE(), "ve": VESDE()}


@dataclass
class Problem:
    """One family member, its prior draws per SDE and its exact entropy."""

    seed: int
    gm: GaussianMixture
    n: int
    sdes: dict[str, LinearSDE]
    x_T: dict[str, torch.Tensor] = field(default_factory=dict)
    entropy: float = 0.0
    delta: float = 0.0

    @property
    def label(self) -> str:
        """'seed: d=.., K=.., narrowest=..'."""
        return f"{self.seed}: d={self.gm.dim}, K={self.gm.K}, min std {narrowest_std(self.gm):.3f}"


def make_problem(seed: int, n: int) -> Problem:
    """The family member of ``seed`` with ``n`` prior draws per SDE (seeded)."""
    gm = random_mixture(seed)
    p = Problem(seed, gm, n, make_sdes())
    for k, sde in p.sdes.items():
        g = torch.Generator().manual_seed(10_000 + seed)
        p.x_T[k] = sde.prior_sample((n, gm.dim), g, dtype=torch.float64)
    nll = -gm.log_prob(gm.sample(20_000, torch.Generator().manual_seed(20_000 + seed)))
    p.entropy = float(nll.mean())
    p.delta = float(nll.std()) / math.sqrt(n)
    return p


def ce_gap(p: Problem, x: torch.Tensor) -> float:
    """mean(-log p0(x)) - H(p0); inf if any sample is not finite."""
    if not bool(torch.isfinite(x).all()):
        return math.inf
    return float(-p.gm.log_prob(x).mean()) - p.entropy


def run(p: Problem, name: str, sde_key: str, nfe: int, **settings: object) -> tuple[int, float]:
    """(NFE spent, CE gap) of ``sample(name, ...)`` at ``settings``; (nfe, inf) if it raises."""
    sde = p.sdes[sde_key]
    try:
        x, info = sample(
            name,
            sde,
            p.gm.with_sde(sde),
            p.x_T[sde_key],
            nfe,
            generator=torch.Generator().manual_seed(1),
            **settings,  # type: ignore[arg-type]
        )
    except (ValueError, RuntimeError):  # NaN/Inf scores, a failed linear solve
        return nfe, math.inf
    return info.nfe, ce_gap(p, x)


def supported(name: str, sde_key: str) -> bool:
    """Whether sampler ``name`` supports SDE kind ``sde_key``."""
    return SAMPLERS[name].supports(make_sdes()[sde_key])
