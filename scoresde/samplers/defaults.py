"""Few-step defaults per sampler, SDE kind and NFE band, and the recommended sampler per budget.

What is derived, not fitted (DESIGN contract 12; docs/howto/sample.md, "The end of sampling"):

* every run given an NFE ends at the SDE's ``eps`` and then takes one Tweedie step
  x0 = (x + sigma_t^2 s(x, t)) / alpha_t, counted in the NFE (``denoise=False`` turns it off);

What is chosen on problems of the family :func:`~scoresde.data.family.random_mixture` by
``benchmarks/few_step_defaults.py`` (the tables live in :mod:`scoresde.samplers.defaults_table`,
which that script writes, never by hand): each sampler's settings on training problems, the
recommended sampler on held-out ones (where every sampler is reported at its settings), and the
recommendation is reported on test problems that played no part in any choice:

* :data:`TABLE`: ``TABLE[sampler][sde_kind][band] = {"grid": kind, **options}``: the grid kind
  and the sampler's own few-step switches (``lower_order_final``, a multistep solver's
  ``order``, the PF-ODE's ``coords``, DDPM's ``variance``, a corrector's ``snr``);
* :data:`RECOMMENDED`: ``RECOMMENDED[sde_kind][band] = sampler``: the sampler ``sample("auto",
  ...)`` runs for an exact score;
* :data:`RECOMMENDED_LEARNED`: the same among the stochastic samplers, which ``"auto"`` runs for a
  learned score (a trained network). Score matching bounds the L2 error of a learned score, and
  that bounds the KL divergence of the reverse SDE's samples (Song et al. 2021b, "Maximum
  likelihood training of score-based diffusion models", Thm. 1) but not of the probability-flow
  ODE's, whose error also depends on the error of the score's Jacobian (Lu et al. 2022, "Maximum
  likelihood training for score-based diffusion ODEs by high-order denoising score matching",
  Thm. 3.1). The class is chosen by that principle, the member on the family.

A sampler, SDE kind or band missing from the table falls back to the sampler's
``SamplerSpec.default_grid`` and ``default_options``.
"""

from __future__ import annotations

from typing import Any

import torch

from ..sde import VESDE, LinearSDE, SubVPSDE
from .defaults_table import RECOMMENDED, RECOMMENDED_LEARNED, TABLE

__all__ = [
    "BANDS",
    "RECOMMENDED",
    "RECOMMENDED_LEARNED",
    "SCORE_KINDS",
    "TABLE",
    "band_of",
    "recommended",
    "score_kind_of",
    "sde_kind",
    "table_entry",
]

#: What a score function is, for ``sample("auto", ...)``: exact (closed form) or learned.
SCORE_KINDS = ("exact", "learned")

#: NFE bands: name -> (lowest, highest) NFE.
BANDS: dict[str, tuple[int, float]] = {
    "<=10": (1, 10),
    "11-25": (11, 25),
    ">25": (26, float("inf")),
}


def band_of(nfe: int) -> str:
    """The NFE band of ``nfe`` (a key of :data:`BANDS`)."""
    return next(k for k, (lo, hi) in BANDS.items() if lo <= nfe <= hi)


def sde_kind(sde: LinearSDE) -> str:
    """'ve', 'subvp' or 'vp' (every other linear SDE: VP with any schedule)."""
    if isinstance(sde, VESDE):
        return "ve"
    return "subvp" if isinstance(sde, SubVPSDE) else "vp"


def table_entry(name: str, sde: LinearSDE, nfe: int) -> dict[str, Any] | None:
    """The chosen ``{"grid": kind, **options}`` of sampler ``name``, or None if not chosen."""
    return TABLE.get(name, {}).get(sde_kind(sde), {}).get(band_of(nfe))


def score_kind_of(score_fn: object) -> str:
    """'learned' for a trained network (a ``torch.nn.Module``), else 'exact'.

    A callable may say which it is with a ``score_kind`` attribute (the guidance wrappers of
    :mod:`scoresde.samplers.guidance` pass on the kind of the score they wrap).
    """
    kind = getattr(score_fn, "score_kind", None)
    if kind is not None:
        return check_score_kind(kind)
    return "learned" if isinstance(score_fn, torch.nn.Module) else "exact"


def check_score_kind(kind: object) -> str:
    """``kind`` if it is one of :data:`SCORE_KINDS`, else a ValueError naming them."""
    if kind not in SCORE_KINDS:
        raise ValueError(f"auto: expected a score kind in {SCORE_KINDS}, received {kind!r}")
    return str(kind)


def recommended(sde: LinearSDE, nfe: int, score_kind: str = "exact") -> str:
    """The sampler best on the family's held-out problems for this SDE kind and NFE band.

    For ``score_kind="learned"``, the best among the stochastic samplers (module docstring).
    """
    kind, band = sde_kind(sde), band_of(nfe)
    table = RECOMMENDED if check_score_kind(score_kind) == "exact" else RECOMMENDED_LEARNED
    if kind not in table or band not in table[kind]:
        raise ValueError(f"auto: no recommended sampler for SDE kind {kind!r} and band {band!r}")
    return table[kind][band]
