"""How far the forward process ends from its prior: KL(p_T || prior) bounds and a one-time warning.

Samplers start from the prior N(0, s^2 I) and the likelihood integrates from it, but the forward
process ends at p_T = E_{x_0}[N(alpha_T x_0, sigma_T^2 I)]. When alpha_T is not small (the study
notes' T = 100 DDPM example ends at alpha_bar_T = 0.36; their rule is "check alpha_bar_T < 0.001")
the model is asked to start from a distribution it never saw. For data with per-dimension mean
m, variance v and second moment m2 = v + m^2, per dimension (nats):

* upper bound, by joint convexity of KL (KL(E q || p) <= E KL(q || p)):
      U = 1/2 [(alpha_T^2 m2 + sigma_T^2) / s^2 - 1 - log(sigma_T^2 / s^2)],
* lower bound, the moment-matched Gaussian (KL(q || p) = KL(q || q_G) + KL(q_G || p) for a
  Gaussian p), with r = (alpha_T^2 v + sigma_T^2) / s^2:
      L = 1/2 [r - 1 - log r + alpha_T^2 m^2 / s^2].

U is also the DDPM bound's prior term L_T per dimension (Ho et al. 2020, Eq. 5), and U - KL is
the mutual information I(x_0; x_T): the warning uses U, and judges the SDE by U for
standardised data at every entry point (training, sampling and likelihood), so one chain gets
one verdict and one number (:func:`check_prior`). For standardised data (m = 0, v = 1) on a VP SDE, U = -1/2 log(1 -
alpha_bar_T) and L = 0.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch

from .base import LinearSDE
from .ddpm import DDPMSchedule

__all__ = [
    "PriorCheck",
    "PriorMismatchWarning",
    "check_prior",
    "check_prior_for_data",
    "prior_kl",
]

#: Default warning threshold on the upper bound, in nats per dimension (alpha_bar_T ~ 0.002 on VP).
PRIOR_KL_THRESHOLD = 1e-3

_WARNED: set[tuple[str, str, str]] = set()


class PriorMismatchWarning(UserWarning):
    """p_T is far from the prior the sampler / likelihood starts from."""


@dataclass(frozen=True)
class PriorCheck:
    """Bounds on KL(p_T || prior) per dimension, in nats, and the end-point quantities."""

    lower: float
    upper: float
    alpha_T: float
    sigma_T: float
    prior_std: float


def _end_point(sde: LinearSDE | DDPMSchedule) -> tuple[float, float, float]:
    if isinstance(sde, DDPMSchedule):
        ab = float(sde.alpha_bars[-1])
        return math.sqrt(ab), math.sqrt(1 - ab), 1.0
    if isinstance(sde, LinearSDE):
        alpha, sigma = (
            float(v.detach()) for v in sde.marginal(torch.tensor(sde.T, dtype=torch.float64))
        )
        return alpha, sigma, float(sde.prior_std)
    raise TypeError(
        f"prior_kl: expected a LinearSDE or a DDPMSchedule, received {type(sde).__name__}"
    )


def _check_stat(value: float, name: str, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"prior_kl: expected a finite {name}, received {value!r}")
    if positive and value <= 0:
        raise ValueError(f"prior_kl: expected {name} > 0, received {value!r}")
    return float(value)


def prior_kl(
    sde: LinearSDE | DDPMSchedule, data_var: float = 1.0, data_mean: float = 0.0
) -> PriorCheck:
    """Lower and upper bounds on KL(p_T || prior) per dimension (module docstring).

    Args:
        sde: A linear SDE (its marginal at T and ``prior_std``) or a DDPM chain (alpha_bar of the
            last step and the N(0, I) prior).
        data_var: Per-dimension variance of the data in model units (1 for standardised data;
            the average over dimensions for anisotropic data, which keeps both bounds valid).
        data_mean: Root-mean-square per-dimension mean of the data (0 for standardised data).

    Returns:
        A :class:`PriorCheck`.
    """
    v = _check_stat(data_var, "data_var", positive=True)
    m = _check_stat(data_mean, "data_mean", positive=False)
    alpha, sigma, s = _end_point(sde)
    a2, s2, p2 = alpha**2, sigma**2, s**2
    upper = 0.5 * ((a2 * (v + m * m) + s2) / p2 - 1 - math.log(s2 / p2))
    r = (a2 * v + s2) / p2
    lower = 0.5 * (r - 1 - math.log(r) + a2 * m * m / p2)
    return PriorCheck(max(lower, 0.0), max(upper, 0.0), alpha, sigma, s)


def check_prior(
    sde: LinearSDE | DDPMSchedule,
    data_var: float | None = None,
    data_mean: float = 0.0,
    *,
    threshold: float = PRIOR_KL_THRESHOLD,
    context: str = "",
) -> PriorCheck:
    """:func:`prior_kl`, warning when the bound exceeds ``threshold`` nats per dimension.

    The :class:`PriorMismatchWarning` is issued once per SDE and context.

    One rule at every entry point (training, sampling, likelihood): the SDE is judged by the
    upper bound for **standardised** data (variance 1, mean 0), a property of the SDE alone, so
    the same chain gets the same verdict and the same number wherever it is checked; sampling
    never sees the data. Where the data are known (``data_var`` given), their own bound is
    reported beside it, and data far from standardised (their bound above ``threshold`` on an
    SDE that passes) get a warning of their own that says to standardise them.

    Returns:
        The bounds for the data given, else for standardised data.
    """
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or threshold <= 0:
        raise ValueError(f"check_prior: expected a threshold > 0, received {threshold!r}")
    std = prior_kl(sde)
    res = std if data_var is None else prior_kl(sde, data_var, data_mean)
    ours = (
        ""
        if data_var is None
        else (
            f"; for these data (variance {data_var:.3g}, mean {data_mean:.3g}) <= {res.upper:.3g}"
        )
    )
    where = f" ({context})" if context else ""
    if std.upper > threshold:
        message = (
            f"{type(sde).__name__}{where}: x_T is far from the prior: KL(p_T || prior) <= "
            f"{std.upper:.3g} nats/dim for standardised data (> {threshold:g}){ours}; "
            f"alpha_T = {std.alpha_T:.3g}, sigma_T = {std.sigma_T:.3g}, prior std "
            f"{std.prior_std:.3g}. Samples start from a distribution the model never saw: use a "
            "longer schedule / larger T or beta_max (VP: alpha_bar_T < 0.001), or a larger "
            "sigma_max (VE)."
        )
    elif res.upper > threshold:
        message = (
            f"{type(sde).__name__}{where}: the data are far from standardised: KL(p_T || prior) "
            f"<= {std.upper:.3g} nats/dim for standardised data{ours} (> {threshold:g}). "
            "Standardise the data (mean 0, variance 1 per dimension), or lengthen the schedule."
        )
    else:
        return res
    key = (repr(sde), context, "sde" if std.upper > threshold else "data")
    if key not in _WARNED:
        _WARNED.add(key)
        warnings.warn(message, PriorMismatchWarning, stacklevel=3)
    return res


def check_prior_for_data(
    sde: LinearSDE | DDPMSchedule, x: torch.Tensor, context: str
) -> PriorCheck | None:
    """:func:`check_prior` with the statistics of data ``x`` (model units, ``(batch, *dims)``).

    The per-dimension variance is averaged over dimensions and the mean enters as its RMS; a
    single point counts as its second moment. Returns None (no check) for empty or non-finite
    data, which the caller's own validation reports.
    """
    if not isinstance(x, torch.Tensor) or x.ndim < 1 or x.shape[0] == 0:
        return None
    flat = x.detach().reshape(x.shape[0], -1).to(torch.float64)
    if not bool(torch.isfinite(flat).all()):
        return None
    if flat.shape[0] > 1:
        var, mean = float(flat.var(0).mean()), float(flat.mean(0).pow(2).mean().sqrt())
    else:
        var, mean = float(flat.pow(2).mean()), 0.0
    return check_prior(sde, max(var, 1e-12), mean, context=context)
