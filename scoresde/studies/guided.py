"""Guidance weight as a study factor, on an exact labelled mixture (:mod:`scoresde.conditional`).

A ``guidance`` factor with values w runs every sampler on the exact classifier-free guided field
(1 + w) s(x, t | y) - w s(x, t) (Ho & Salimans 2022) of one class y of a
:class:`~scoresde.conditional.LabeledMixture`. Guidance does not sample the tilted target
q_w ∝ p(x | y)^(1+w) p(x)^(-w) (:mod:`scoresde.conditional`), so each w is measured twice:

* against the limit of its own guided PF-ODE (the solver's error): every metric of the spec,
  with reference samples from an adaptive solve (dopri5, rtol = atol = 1e-8) of independent
  prior draws. At w = 0 the reference is exact samples of p(x | y), which is also the problem's
  reference and noise floor;
* against the tilted target (what guidance does to the distribution), in 1-D and 2-D data:
  ``tilted_ce_gap`` = mean(-log q_w(x)) - H(q_w), with q_w normalised and H(q_w) computed by
  quadrature (:meth:`~scoresde.conditional.TiltedTarget.cross_entropy_gap`, the one home of the
  formula), its Monte Carlo SE ``tilted_ce_gap_se``, and a floor entry
  ``tilted_ce_gap[w=W]`` per weight: mean 0 and sd sqrt(Var_q[log q_w] / n), both exact by the
  same quadrature, with the gaps of ``floor_repeats`` exact draws of q_w as its ``values``.

No exact density is attached (the guided limit has none), so every w is scored by distances.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ..conditional import LabeledMixture, TiltedTarget
from ..samplers import sample
from ..sde import get_sde
from .table import summarize

__all__ = [
    "GuidedTargets",
    "ModelGuidance",
    "check_guidance",
    "guided_problem",
    "ode_limit",
    "tilted_columns",
    "tilted_floor_key",
    "tilted_summary",
]


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
    _tilted: dict[float, TiltedTarget | None] = field(default_factory=dict, repr=False)

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
                ref = ode_limit(sde, self.score(w), x_T.double(), 1e-8)
            self._refs[w] = ref.float()
        return self._refs[w]

    def tilted(self, w: float) -> TiltedTarget | None:
        """The tilted target q_w of weight ``w`` (None for data of more than two dimensions)."""
        w = check_guidance(w)
        if w not in self._tilted:
            ok = self.labeled.mixture.dim <= 2
            self._tilted[w] = self.labeled.tilted(self.label, w) if ok else None
        return self._tilted[w]

    def tilted_floor(self, weights: list[Any], n: int, repeats: int) -> dict[str, dict[str, Any]]:
        """The floor of ``tilted_ce_gap`` per weight for ``n`` samples (see the module doc)."""
        out = {}
        for w in weights:
            q = self.tilted(w)
            if q is None:
                continue
            gen = torch.Generator().manual_seed(self.seed + 1)
            values = [q.cross_entropy_gap(q.sample(n, gen)) for _ in range(repeats)]
            out[tilted_floor_key(w)] = {"mean": 0.0, "sd": q.floor_sd(n), "values": values}
        return out

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


@dataclass
class ModelGuidance:
    """The ``guidance`` factor of a trained class-conditional model, for class ``label``.

    Each w runs the guided score (1 + w) s(x, t | K) - w s(x, t | null) of the network. At
    w = 0 the reference is the class's data (model and sampler error together, as for any
    checkpoint); for w != 0 no data set has the guided distribution, so the reference is the
    guided PF-ODE's own limit from independent prior draws (adaptive, rtol = atol = ``tol``)
    and the distances are the sampler's error at that w. No density, no tilted target.
    """

    model: Any
    label: int
    data: Tensor
    seed: int
    tol: float = 1e-5
    _refs: dict[float, Tensor] = field(default_factory=dict, repr=False)

    def score(self, w: float) -> Any:
        """The network's guided score of weight ``w`` (its conditional score at w = 0)."""
        from ..samplers.guidance import bind_label, classifier_free_guidance

        cond, w = bind_label(self.model, self.label), check_guidance(w)
        return cond if w == 0 else classifier_free_guidance(cond, self.model, w)

    def reference(self, w: float) -> Tensor:
        """The class's data at w = 0, the guided PF-ODE's limit otherwise (cached)."""
        w = check_guidance(w)
        if w == 0:
            return self.data
        if w not in self._refs:
            gen = torch.Generator().manual_seed(self.seed)
            sde, d = self.model.sde, self.data
            x_T = sde.prior_sample(tuple(d.shape), gen).to(device=d.device, dtype=d.dtype)
            with torch.no_grad():
                self._refs[w] = ode_limit(sde, self.score(w), x_T, self.tol)
        return self._refs[w]

    def density(self, w: float) -> Any:
        """None (a network has no closed-form density)."""
        check_guidance(w)
        return None

    def tilted(self, w: float) -> None:
        """None (the tilted target needs the exact p(x | y) and p(x))."""
        check_guidance(w)

    def tilted_floor(self, weights: list[Any], n: int, repeats: int) -> dict[str, Any]:
        """{} (no tilted target)."""
        return {}


def ode_limit(sde: Any, score_fn: Any, x_T: Tensor, tol: float) -> Tensor:
    """The PF-ODE's endpoint at t = eps from ``x_T`` (dopri5, rtol = atol = ``tol``)."""
    grid = torch.tensor([sde.T, sde.eps], dtype=torch.float64)
    x, _ = sample("pf_adaptive", sde, score_fn, x_T, grid, rtol=tol, atol=tol)
    return x


def tilted_floor_key(w: float) -> str:
    """The floor table's key of ``tilted_ce_gap`` at weight ``w``."""
    return f"tilted_ce_gap[w={check_guidance(w):g}]"


def tilted_columns(x: Tensor | None, target: TiltedTarget) -> dict[str, float]:
    """``tilted_ce_gap`` and ``tilted_ce_gap_se`` of samples ``x`` (NaN for a failed run)."""
    if x is None:
        return {"tilted_ce_gap": math.nan, "tilted_ce_gap_se": math.nan}
    gap, se = target.cross_entropy_gap_se(x)
    return {"tilted_ce_gap": gap, "tilted_ce_gap_se": se}


def tilted_summary(
    rows: Sequence[dict[str, Any]], floor: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """``tilted_ce_gap`` per (configuration, NFE target) of the rows that have it.

    Returns:
        :func:`~scoresde.studies.summarize` rows plus ``guidance``; ``se`` is the Monte Carlo SE
        of the mean over seeds, ``floor_sd`` is mean / (floor sd of that w), ``floor`` the band.
    """
    sel = [r for r in rows if "tilted_ce_gap" in r]
    out = summarize(sel, "tilted_ce_gap") if sel else []
    for s in out:
        grp = [r for r in sel if (r["sampler"], r["nfe_target"]) == (s["sampler"], s["nfe_target"])]
        s["se"] = math.sqrt(sum(r["tilted_ce_gap_se"] ** 2 for r in grp)) / len(grp)
        s["guidance"] = w = grp[0]["guidance"]
        fl = floor.get(tilted_floor_key(w))
        s["floor"] = f"{fl['mean']:.3g} ± {fl['sd']:.2g}" if fl else ""
        s["floor_sd"] = (s["mean"] - fl["mean"]) / fl["sd"] if fl and fl["sd"] > 0 else math.nan
    return out
