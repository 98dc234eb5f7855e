"""Checks that sampling, training and likelihood entry points run once per call.

* :func:`warn_unstable_parameterization`: an ``eps``-predicting :class:`ScoreModel` without
  ``x0_clip`` under a deterministic sampler is a known-unstable combination (a few percent of
  probability-flow / DDIM paths run away to |x| ~ 100 on a 2-D toy set, where DDPM sampling of
  the same model does not); warned once per sampler.
* the prior check :func:`scoresde.sde.check_prior` (KL(p_T || prior) bounds), re-exported here.
"""

from __future__ import annotations

import warnings
from typing import Any

from .parameterization import ScoreModel
from .sde import check_prior

__all__ = [
    "FAR_FROM_DATA",
    "FarFromDataWarning",
    "UnstableParameterizationWarning",
    "check_prior",
    "far_from_data",
    "warn_unstable_parameterization",
]

#: Model units put training data at about unit scale (|x| <= ~5): a point beyond this is far out.
FAR_FROM_DATA = 50.0


class FarFromDataWarning(UserWarning):
    """Likelihood inputs far outside the range of the data a model learns (model units)."""


def far_from_data(x: Any, context: str, limit: float = FAR_FROM_DATA) -> str | None:
    """Warn, and return the message, if points of ``x`` (model units) lie beyond ``limit``.

    Scores learnt on data of unit scale say nothing about a point at |x| = 1e30: its
    log-likelihood is an extrapolation (a point at 1e30 gave log p ~ -1e61). Returns None when
    every point is within ``limit``.
    """
    import torch

    if not isinstance(x, torch.Tensor) or x.ndim < 1 or x.shape[0] == 0:
        return None
    size = x.detach().reshape(x.shape[0], -1).abs().amax(1).double()
    far = size > limit
    if not bool(far.any()):
        return None
    msg = (
        f"{context}: {int(far.sum())} of {x.shape[0]} points lie far outside the data range "
        f"(|x| up to {float(size.max()):.3g} in model units, {float(size.max()) / limit:.3g} times "
        f"the limit {limit:g}; training data sit within about 5): their log-likelihoods are "
        "extrapolations"
    )
    warnings.warn(msg, FarFromDataWarning, stacklevel=3)
    return msg


_WARNED: set[str] = set()


class UnstableParameterizationWarning(UserWarning):
    """A model / sampler combination known to let sample paths run away."""


def _score_model(score_fn: Any) -> ScoreModel | None:
    if isinstance(score_fn, ScoreModel):
        return score_fn
    owner = getattr(score_fn, "__self__", None)  # a bound method such as model.score_fn
    return owner if isinstance(owner, ScoreModel) else None


def warn_unstable_parameterization(score_fn: Any, sampler: str, deterministic: bool) -> bool:
    """Warn (once per sampler) if ``score_fn`` is an eps ScoreModel without x0_clip and the
    sampler is deterministic. Returns whether the combination is the unstable one."""
    model = _score_model(score_fn)
    unstable = (
        deterministic and model is not None and model.predicts == "eps" and model.x0_clip is None
    )
    if unstable and sampler not in _WARNED:
        _WARNED.add(sampler)
        warnings.warn(
            f"sampler {sampler!r} is deterministic and the model predicts 'eps' without "
            "x0_clip: at low SNR its x0 = (x - sigma eps) / alpha amplifies the network's error "
            "by sigma / alpha and some paths can run away. Set ScoreModel(..., x0_clip=<data "
            "bound>) (clamps x0 where sigma_t > alpha_t), train with predicts='edm' or 'v', or "
            "use a stochastic sampler (ddpm, euler_maruyama).",
            UnstableParameterizationWarning,
            stacklevel=3,
        )
    return unstable
