"""Guidance weight as a study factor, on an exact labelled mixture (:mod:`scoresde.conditional`).

A ``guidance`` factor with values w runs every sampler on the exact classifier-free guided field
(1 + w) s(x, t | y) - w s(x, t) (Ho & Salimans 2022) of one class y of a
:class:`~scoresde.conditional.LabeledMixture`. Since guidance does not sample the tilted target
p(x | y)^(1+w) p(x)^(-w) (:mod:`scoresde.conditional`), each w is scored against the limit of its
own guided PF-ODE: reference samples from an adaptive solve (dopri5, rtol = atol = 1e-8) of
independent prior draws, so every distance measures the sampler's error at that w. At w = 0 the
reference is exact samples of p(x | y), which is also the problem's reference and noise floor.
No exact density is attached (the guided limit has none), so every w is scored by distances.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ..conditional import LabeledMixture
from ..samplers import sample
from ..sde import get_sde

__all__ = ["GuidedTargets", "check_guidance", "guided_problem"]


def check_guidance(w: Any) -> float:
    """A guidance weight: a finite number w > -1 (ValueError otherwise)."""
    if isinstance(w, bool) or not isinstance(w, int | float) or not (math.isfinite(w) and w > -1):
        raise ValueError(f"StudySpec: expected guidance values finite numbers > -1, received {w!r}")
    return float(w)


@dataclass
class GuidedTargets:
    """The guided score and its reference samples for each weight w (cached)."""

    labeled: LabeledMixture
    label: int
    n_reference: int
    seed: int
    _refs: dict[float, Tensor] = field(default_factory=dict, repr=False)

    def score(self, w: float) -> Any:
        """The exact guided field of weight ``w``."""
        return self.labeled.guided_score(self.label, check_guidance(w))

    def reference(self, w: float) -> Tensor:
        """Reference samples of the guided PF-ODE's limit at weight ``w`` (float32)."""
        w = check_guidance(w)
        if w not in self._refs:
            gen = torch.Generator().manual_seed(self.seed)
            if w == 0:
                ref = self.labeled.given(self.label).sample(self.n_reference, gen)
            else:
                sde = self.labeled.sde
                assert sde is not None
                x_T = sde.prior_sample((self.n_reference, self.labeled.mixture.dim), gen)
                grid = torch.tensor([sde.T, sde.eps], dtype=torch.float64)
                field_w, x_T = self.score(w), x_T.double()
                ref, _ = sample("pf_adaptive", sde, field_w, x_T, grid, rtol=1e-8, atol=1e-8)
            self._refs[w] = ref.float()
        return self._refs[w]

    def density(self, w: float) -> Any:
        """None: the guided ODE's limit has no closed-form density (every w scored by distances)."""
        check_guidance(w)
        return None


def guided_problem(
    labeled: LabeledMixture,
    label: int,
    sde: str = "vp",
    n_reference: int = 2000,
    seed: int = 10_000,
) -> Any:
    """A study :class:`~scoresde.studies.Problem` for class ``label`` with a ``guidance`` factor.

    Without the factor the problem is conditional sampling of p(x | y) (w = 0).
    """
    from .runner import Problem

    if not isinstance(labeled, LabeledMixture):
        raise TypeError(
            f"guided_problem: expected a LabeledMixture, received {type(labeled).__name__}"
        )
    s = get_sde(sde)
    bound = LabeledMixture(labeled.mixture.with_sde(s), labeled.labels)
    cond = bound.given(label)  # checks the label
    targets = GuidedTargets(bound, label, n_reference, seed)

    def draw(n: int, gen: torch.Generator) -> Tensor:
        return cond.sample(n, gen, dtype=torch.float32)

    return Problem(s, cond, targets.reference(0.0), draw, None, guidance=targets)
