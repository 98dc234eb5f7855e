"""Variance-preserving (VP) and sub-VP SDEs (Song et al. 2021, Eqs. 11 and 17).

With B(t) = int_0^t beta(s) ds and alpha_t = exp(-B(t)/2):

* VP:      dx = -1/2 beta(t) x dt + sqrt(beta(t)) dw,
           sigma_t^2 = 1 - exp(-B(t))                      (Eq. 29)
* sub-VP:  dx = -1/2 beta(t) x dt + sqrt(beta(t) (1 - exp(-2 B(t)))) dw,
           sigma_t = 1 - exp(-B(t))                        (Eq. 29, sub-VP row)

Both have the prior N(0, I). Closed forms use expm1/log1p so that they stay accurate in
float32 down to t = 1e-5, where B(t) is about 1e-6. ``VPSDE.discretize`` is the DDPM chain
(Ho et al. 2020) with beta_i = beta(t_i) / N.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._utils import append_dims, as_time, names_list
from .base import LinearSDE, register_sde
from .schedules import BetaSchedule, CosineBeta, schedule_from_config

__all__ = ["BETA_SCHEDULES", "SubVPSDE", "VPSDE", "make_beta_schedule"]

#: Default final time of the cosine schedule, where log-SNR is about -9.6 (beta(1) is infinite).
COSINE_T = CosineBeta.default_T


#: Named continuous beta schedules (the ``schedule=`` argument of VPSDE / SubVPSDE).
BETA_SCHEDULES = ("linear", "cosine", "sqrt", "log_snr_linear")


def make_beta_schedule(
    schedule: str | BetaSchedule, beta_min: float, beta_max: float, s: float = 0.008
) -> BetaSchedule:
    """Build a beta schedule from a name (:data:`BETA_SCHEDULES`) or pass a schedule through.

    The name is the schedule's registered kind, read by :func:`schedule_from_config` with the
    constructor's settings: ``beta_min``/``beta_max`` for 'linear', ``s`` for 'cosine'; 'sqrt'
    uses Li et al.'s s = 1e-4 and 'log_snr_linear' lambda from 20 to -10 (build
    :class:`SqrtBeta` / :class:`LogSNRLinearBeta` directly for other values).
    """
    if isinstance(schedule, BetaSchedule):
        return schedule
    if schedule not in BETA_SCHEDULES:
        raise ValueError(
            f"unknown beta schedule {schedule!r}; expected one of {names_list(BETA_SCHEDULES)} "
            "or a BetaSchedule instance"
        )
    settings = {"linear": {"beta_min": beta_min, "beta_max": beta_max}, "cosine": {"s": s}}
    out = schedule_from_config({"kind": schedule, **settings.get(schedule, {})})
    assert isinstance(out, BetaSchedule)  # BETA_SCHEDULES names beta schedules only
    return out


class _BetaSDE(LinearSDE):
    """Shared code of VP and sub-VP: both are driven by beta(t) and B(t)."""

    def __init__(
        self,
        beta_min: float = 0.1,
        beta_max: float = 20.0,
        schedule: str | BetaSchedule = "linear",
        T: float | None = None,
        eps: float = 1e-5,
        cosine_s: float = 0.008,
    ) -> None:
        self.schedule = make_beta_schedule(schedule, beta_min, beta_max, cosine_s)
        sched = self.schedule
        if T is None:
            T = sched.default_T if sched.default_T is not None else sched.t_max
        if T > sched.t_max or (sched.diverges_at_t_max and T >= sched.t_max):
            raise ValueError(
                f"{type(self).__name__}: T={T} exceeds where the {type(sched).__name__} "
                f"schedule is finite (use T < {sched.t_max:g}; its default is {sched.default_T})"
            )
        super().__init__(T=T, eps=eps)

    def _beta(self, t: Tensor) -> Tensor:
        return self.schedule.beta(t)

    def _B(self, t: Tensor) -> Tensor:
        return self.schedule.integral(t)

    def _log_alpha(self, t: Tensor) -> Tensor:
        return -0.5 * self._B(t)

    def _drift_coef(self, t: Tensor) -> Tensor:
        return -0.5 * self._beta(t)


@register_sde("vp")
class VPSDE(_BetaSDE):
    """The VP SDE dx = -1/2 beta(t) x dt + sqrt(beta(t)) dw (Song et al. 2021, Eq. 11).

    Args:
        beta_min: beta(0) of the linear schedule (default 0.1, as in the paper).
        beta_max: beta(1) of the linear schedule (default 20).
        schedule: ``"linear"``, ``"cosine"`` (Nichol & Dhariwal 2021, ``s = cosine_s``),
            ``"sqrt"`` (Li et al. 2022), ``"log_snr_linear"`` (lambda linear in t) or any
            :class:`~scoresde.sde.schedules.BetaSchedule` (beta(t) and its integral).
        T: Final time; the schedule's ``default_T`` (1; 0.9946 for cosine; 0.99977 for sqrt).
        eps: Smallest time used by samplers and likelihoods (default 1e-5).
        cosine_s: Offset ``s`` of the cosine schedule.
    """

    def _sigma2(self, t: Tensor) -> Tensor:
        return -torch.expm1(-self._B(t))

    def _g2(self, t: Tensor) -> Tensor:
        return self._beta(t)

    def _log_snr(self, t: Tensor) -> Tensor:
        B = self._B(t)
        return -B - torch.log(-torch.expm1(-B))

    def _t_from_log_snr(self, lam: Tensor) -> Tensor:
        # alpha^2 = sigmoid(lambda)  =>  B = -log sigmoid(lambda) = softplus(-lambda).
        return self.schedule.inverse_integral(torch.nn.functional.softplus(-lam))

    def discretize(self, x: Tensor, t: float | Tensor, dt: float) -> tuple[Tensor, Tensor]:
        """The DDPM chain x_i = sqrt(1 - beta_i) x_{i-1} + sqrt(beta_i) z, beta_i = beta(t) dt.

        Returns ``(f, G)`` with f = (sqrt(1 - beta_i) - 1) x and G = sqrt(beta_i).
        """
        if not dt > 0:
            raise ValueError(f"discretize: expected dt > 0, received dt={dt!r}")
        tt = self._time(as_time(t, like=x), x)
        beta_i = self._beta(tt) * dt
        if tt.device.type == "cpu" and bool((beta_i >= 1).any()):
            raise ValueError(
                f"discretize: beta(t) * dt must be < 1 for the DDPM chain, received "
                f"max {float(beta_i.max()):.4g} (use a smaller dt)"
            )
        f = append_dims(torch.expm1(0.5 * torch.log1p(-beta_i)), x.ndim) * x
        return f, torch.sqrt(beta_i)


@register_sde("subvp")
class SubVPSDE(_BetaSDE):
    """The sub-VP SDE dx = -1/2 beta x dt + sqrt(beta (1 - exp(-2 B(t)))) dw (Eq. 17).

    Its marginal variance sigma_t^2 = (1 - exp(-B))^2 is bounded by the VP one at every t.
    Arguments are those of :class:`VPSDE`.
    """

    def _sigma2(self, t: Tensor) -> Tensor:
        return torch.expm1(-self._B(t)) ** 2

    def _g2(self, t: Tensor) -> Tensor:
        return self._beta(t) * -torch.expm1(-2 * self._B(t))

    def _log_snr(self, t: Tensor) -> Tensor:
        B = self._B(t)
        return -B - 2 * torch.log(-torch.expm1(-B))

    def _t_from_log_snr(self, lam: Tensor) -> Tensor:
        # alpha / (1 - alpha^2) = e^{lambda/2}  =>  alpha = exp(-asinh(e^{-lambda/2} / 2)).
        B = 2 * torch.asinh(0.5 * torch.exp(-0.5 * lam))
        return self.schedule.inverse_integral(B)
