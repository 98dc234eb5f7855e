"""VP schedules from the DDPM literature, written through alpha_bar(t) or the log-SNR lambda(t).

Both are :class:`~scoresde.sde.schedules.BetaSchedule` objects, so a
:class:`~scoresde.sde.VPSDE` built on them has exact closed-form marginals
(alpha_t^2 = exp(-B(t)), Song et al. 2021, Eq. 29):

* :class:`SqrtBeta` (Li et al. 2022, Diffusion-LM, Sec. 4.2):
  alpha_bar(t) = (1 - sqrt(t + s)) / (1 - sqrt(s)), the continuous counterpart of the ``sqrt``
  DDPM table (:mod:`scoresde.sde.tables`). It adds noise fast at first: the log-SNR falls from
  +inf to about 4.6 by t = 0.01.
* :class:`LogSNRLinearBeta`: lambda(t) = log(alpha_t^2 / sigma_t^2) falls *linearly* from
  ``lambda_max`` at t = 0 to ``lambda_min`` at t = 1, the schedule the study notes call ideal
  (uniform log-SNR decay; Kingma et al. 2021, VDM, Eq. 4 with a linear gamma). With
  alpha_t^2 = sigmoid(lambda(t)),

      B(t) = softplus(-lambda(t)),  beta(t) = (lambda_max - lambda_min) sigmoid(-lambda(t)).

  Like VDM, the chain starts at the tiny noise level sigma_0^2 = sigmoid(-lambda_max) (2e-9 for
  the default lambda_max = 20) instead of exactly 0: that is what keeps lambda linear on all of
  [0, T] (a VP schedule with sigma_0 = 0 has lambda(0) = +inf).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor
from torch.nn.functional import softplus
from typing_extensions import override

from .._utils import check_positive
from .schedules import BetaSchedule, register_schedule

__all__ = ["LogSNRLinearBeta", "SqrtBeta"]

#: Log-SNR at the default final time of schedules whose beta(t) diverges (as for cosine).
LOG_SNR_T = -9.6


@register_schedule("sqrt")
class SqrtBeta(BetaSchedule):
    """alpha_bar(t) = (1 - sqrt(t + s)) / (1 - sqrt(s)) (Li et al. 2022), in continuous time.

    B(t) = log(1 - sqrt(s)) - log(1 - sqrt(t + s)) and beta(t) = 1 / (2 u (1 - u)) with
    u = sqrt(t + s). beta diverges at t = 1 - s, so the default final time is where the log-SNR
    is -9.6 (as for the cosine schedule), t = 0.99977 for s = 1e-4.

    Args:
        s: Offset (Li et al. use 1e-4); 0 < s < 1.
    """

    diverges_at_t_max = True

    def __init__(self, s: float = 1e-4) -> None:
        self.s = check_positive(s, name="s")
        if not self.s < 1:
            raise ValueError(f"SqrtBeta: expected 0 < s < 1, received s={s!r}")
        self.t_max = 1.0 - self.s
        self._log_1m_sqrt_s = math.log1p(-math.sqrt(self.s))
        b_T = float(softplus(torch.tensor(-LOG_SNR_T, dtype=torch.float64)))
        self.default_T = float(self.inverse_integral(torch.tensor(b_T, dtype=torch.float64)))

    @override
    def beta(self, t: Tensor) -> Tensor:
        u = torch.sqrt(t + self.s)
        return 0.5 / (u * (1 - u))

    @override
    def integral(self, t: Tensor) -> Tensor:
        return self._log_1m_sqrt_s - torch.log1p(-torch.sqrt(t + self.s))

    @override
    def inverse_integral(self, b: Tensor) -> Tensor:
        # 1 - sqrt(t + s) = (1 - sqrt(s)) e^{-B}  =>  t = (1 - (1 - sqrt(s)) e^{-B})^2 - s.
        b64 = b.to(torch.float64)
        u = -torch.expm1(self._log_1m_sqrt_s - b64)
        return (u**2 - self.s).clamp_min(0.0).to(b.dtype)

    @override
    def to_config(self) -> dict[str, Any]:
        return {"kind": self.kind, "s": self.s}


@register_schedule("log_snr_linear")
class LogSNRLinearBeta(BetaSchedule):
    """A VP schedule with log-SNR linear in t: lambda(t) = lambda_max + (lambda_min - lambda_max) t.

    The log-SNR is linear for a :class:`~scoresde.sde.VPSDE`; a sub-VP SDE on the same B(t) has
    another log-SNR (its sigma_t is 1 - alpha_t^2).

    Args:
        lambda_max: log-SNR at t = 0 (default 20: sigma_0 = 4.5e-5).
        lambda_min: log-SNR at t = 1 (default -10, alpha_bar_1 = 4.5e-5, like the linear VP SDE).
    """

    def __init__(self, lambda_max: float = 20.0, lambda_min: float = -10.0) -> None:
        for name, v in (("lambda_max", lambda_max), ("lambda_min", lambda_min)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"LogSNRLinearBeta: expected a finite {name}, received {v!r}")
        if not lambda_min < lambda_max:
            raise ValueError(
                "LogSNRLinearBeta: expected lambda_min < lambda_max, received "
                f"lambda_min={lambda_min}, lambda_max={lambda_max}"
            )
        self.lambda_max, self.lambda_min = float(lambda_max), float(lambda_min)
        self.rate = self.lambda_max - self.lambda_min  # -d lambda / dt

    def log_snr(self, t: Tensor) -> Tensor:
        """lambda(t), linear in t."""
        return self.lambda_max - self.rate * t

    @override
    def beta(self, t: Tensor) -> Tensor:
        return self.rate * torch.sigmoid(-self.log_snr(t))

    @override
    def integral(self, t: Tensor) -> Tensor:
        return softplus(-self.log_snr(t))

    @override
    def inverse_integral(self, b: Tensor) -> Tensor:
        # softplus(-lambda) = B  =>  lambda = -log(expm1(B)); then invert the line.
        lam = -torch.log(torch.expm1(b.to(torch.float64)))
        return ((self.lambda_max - lam) / self.rate).to(b.dtype)

    @override
    def to_config(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "lambda_max": self.lambda_max,
            "lambda_min": self.lambda_min,
        }
