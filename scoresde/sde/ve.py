"""The variance-exploding (VE) SDE dx = sqrt(d[sigma(t)^2]/dt) dw (Song et al. 2021, Eq. 9).

The kernel is exact: x_t = x_0 + sigma_t eps with sigma_t^2 = sigma(t)^2 - sigma(0)^2 (Eq. 29
with the sigma(0) offset kept, so that sigma_t -> 0 as t -> 0). alpha_t = 1, f = 0. The prior is
N(0, sigma_T^2 I). ``discretize`` is the SMLD chain with G_i = sqrt(sigma_i^2 - sigma_{i-1}^2).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .._utils import as_time
from .base import LinearSDE, register_sde
from .schedules import GeometricSigma, SigmaSchedule

__all__ = ["VESDE"]


@register_sde("ve")
class VESDE(LinearSDE):
    """The VE SDE with geometric sigma(t) = sigma_min (sigma_max / sigma_min)^t by default.

    Args:
        sigma_min: sigma(0) (default 0.01).
        sigma_max: sigma(1) (default 50; should exceed the largest pairwise data distance).
        schedule: Optional :class:`~scoresde.sde.schedules.SigmaSchedule` (any sigma(t)); when
            given, ``sigma_min``/``sigma_max`` are ignored.
        T: Final time (default 1).
        eps: Smallest time used by samplers and likelihoods (default 1e-5).
    """

    def __init__(
        self,
        sigma_min: float = 0.01,
        sigma_max: float = 50.0,
        schedule: SigmaSchedule | None = None,
        T: float = 1.0,
        eps: float = 1e-5,
    ) -> None:
        if schedule is not None and not isinstance(schedule, SigmaSchedule):
            raise TypeError(
                f"VESDE: expected schedule to be a SigmaSchedule, received {type(schedule).__name__}"
            )
        self.schedule = schedule if schedule is not None else GeometricSigma(sigma_min, sigma_max)
        super().__init__(T=T, eps=eps)
        self.prior_std = math.sqrt(
            float(self.schedule.var_increment(torch.tensor(self.T, dtype=torch.float64)))
        )

    def _log_alpha(self, t: Tensor) -> Tensor:
        return 0.0 * t  # keeps the autograd graph: d alpha / dt = 0

    def _sigma2(self, t: Tensor) -> Tensor:
        return self.schedule.var_increment(t)

    def _drift_coef(self, t: Tensor) -> Tensor:
        return 0.0 * t

    def _g2(self, t: Tensor) -> Tensor:
        return self.schedule.dsigma2(t)

    def _log_snr(self, t: Tensor) -> Tensor:
        return -torch.log(self.schedule.var_increment(t))

    def _t_from_log_snr(self, lam: Tensor) -> Tensor:
        return self.schedule.inverse_var_increment(torch.exp(-lam), self.T)

    def discretize(self, x: Tensor, t: float | Tensor, dt: float) -> tuple[Tensor, Tensor]:
        """The SMLD chain x_i = x_{i-1} + sqrt(sigma_i^2 - sigma_{i-1}^2) z: f = 0 and G as said."""
        if not dt > 0:
            raise ValueError(f"discretize: expected dt > 0, received dt={dt!r}")
        tt = self._time(as_time(t, like=x), x)
        prev = torch.clamp(tt - dt, min=0.0)
        G = torch.sqrt(self.schedule.var_increment(tt) - self.schedule.var_increment(prev))
        return torch.zeros_like(x), G
