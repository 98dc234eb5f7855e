"""Shift the log-SNR of any linear SDE by a constant: the resolution rule of Hoogeboom et al.

Hoogeboom, Heek & Salimans (2023, simple diffusion, Sec. 3.1) and Chen (2023, Sec. 2) observe that
at d pixels an image holds as much signal as at d_ref pixels with an SNR (d / d_ref)^2 larger,
and shift the schedule so that

    lambda'(t) = lambda(t) + shift,    shift = -2 log(d / d_ref)

(a negative shift adds noise at every t for a larger image). The shifted SDE has the same
*family* as the original, only another schedule, so every sampler and likelihood works on it:

* VP (alpha^2 + sigma^2 = 1):  B'(t) = softplus(-lambda'(t)),
* sub-VP (sigma = 1 - alpha^2): B'(t) = 2 asinh(exp(-lambda'(t) / 2) / 2),
* VE (alpha = 1):              sigma'(t) = exp(-shift / 2) sigma(t) (sigma'^2_t = e^{-shift} sigma_t^2),

each with beta'(t) = dB'/dt through d lambda / dt = -g(t)^2 / sigma_t^2 (Song et al. 2021,
Eq. 29), and the inverse t(lambda') = t_base(lambda' - shift).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor
from typing_extensions import override

from .base import LinearSDE, sde_from_config
from .schedules import BetaSchedule, Schedule, SigmaSchedule, register_schedule
from .ve import VESDE
from .vp import VPSDE, SubVPSDE

__all__ = ["ShiftedBeta", "ShiftedSigma", "shift_snr", "snr_shift_for_resolution"]

#: Times below this are evaluated at it: d lambda / dt is 0 * inf at exactly t = 0.
_T_FLOOR = 1e-12


def snr_shift_for_resolution(d: float, d_ref: float) -> float:
    """The log-SNR shift -2 log(d / d_ref) for data of size ``d`` against ``d_ref``.

    ``d`` and ``d_ref`` are side lengths (e.g. 256 and 64 pixels), as in Hoogeboom et al. (2023).
    """
    for name, v in (("d", d), ("d_ref", d_ref)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < math.inf:
            raise ValueError(f"snr_shift_for_resolution: expected {name} > 0, received {v!r}")
    return -2.0 * math.log(d / d_ref)


class _Shifted(Schedule):
    """Settings of an SNR-shifted schedule: the shift and the base SDE's own settings."""

    kind = "snr_shift"
    base: LinearSDE
    shift: float

    @override
    def to_config(self) -> dict[str, Any]:
        return {"kind": self.kind, "shift": self.shift, "base": self.base.to_config()}

    @classmethod
    @override
    def from_config(cls, config: dict[str, Any]) -> Schedule:
        """The shifted schedule of the base SDE the settings describe (VP, sub-VP or VE)."""
        if not isinstance(config, dict) or set(config) != {"kind", "shift", "base"}:
            raise ValueError(
                f"snr_shift: expected the keys ['base', 'kind', 'shift'], received {config!r}"
            )
        base = sde_from_config(config["base"])
        if isinstance(base, (VPSDE, SubVPSDE)):
            return ShiftedBeta(base, float(config["shift"]))
        if isinstance(base, VESDE):
            return ShiftedSigma(base, float(config["shift"]))
        raise ValueError(f"snr_shift: expected a VP, sub-VP or VE base, received {base!r}")


@register_schedule("snr_shift")
class ShiftedBeta(_Shifted, BetaSchedule):
    """The beta schedule of a VP or sub-VP SDE whose log-SNR is shifted by ``shift``."""

    def __init__(self, base: VPSDE | SubVPSDE, shift: float) -> None:
        self.base, self.shift = base, float(shift)
        self.subvp = isinstance(base, SubVPSDE)
        self.t_max = base.schedule.t_max
        self.diverges_at_t_max = base.schedule.diverges_at_t_max
        self.default_T = base.T

    def _lam(self, t: Tensor) -> Tensor:
        return self.base._log_snr(t) + self.shift

    @override
    def integral(self, t: Tensor) -> Tensor:
        lam = self._lam(t)
        if self.subvp:
            return 2 * torch.asinh(0.5 * torch.exp(-0.5 * lam))
        return torch.nn.functional.softplus(-lam)

    @override
    def beta(self, t: Tensor) -> Tensor:
        t64 = t.to(torch.float64).clamp_min(_T_FLOOR)
        rate = self.base._g2(t64) / self.base._sigma2(t64)  # -d lambda / dt
        lam = self._lam(t64)
        if self.subvp:  # -dB'/dlambda = e^{-lambda/2} / (2 sqrt(1 + e^{-lambda} / 4))
            dB = 0.5 * torch.exp(-0.5 * lam) / torch.sqrt(1 + 0.25 * torch.exp(-lam))
        else:  # -dB'/dlambda = sigmoid(-lambda)
            dB = torch.sigmoid(-lam)
        return (dB * rate).to(t.dtype)

    @override
    def inverse_integral(self, b: Tensor) -> Tensor:
        b64 = b.to(torch.float64)
        if self.subvp:
            lam = -2 * torch.log(2 * torch.sinh(0.5 * b64))
        else:
            lam = -torch.log(torch.expm1(b64))
        return self.base._t_from_log_snr(lam - self.shift).to(b.dtype)


class ShiftedSigma(_Shifted, SigmaSchedule):
    """sigma'(t) = exp(-shift / 2) sigma(t): a VE schedule with log-SNR shifted by ``shift``."""

    def __init__(self, base: VESDE, shift: float) -> None:
        self.base, self.shift = base, float(shift)
        self.scale2 = math.exp(-self.shift)

    @override
    def sigma(self, t: Tensor) -> Tensor:
        return math.sqrt(self.scale2) * self.base.schedule.sigma(t)

    @override
    def dsigma2(self, t: Tensor) -> Tensor:
        return self.scale2 * self.base.schedule.dsigma2(t)

    @override
    def var_increment(self, t: Tensor) -> Tensor:
        return self.scale2 * self.base.schedule.var_increment(t)

    @override
    def inverse_var_increment(self, v: Tensor, t_max: float) -> Tensor:
        return self.base.schedule.inverse_var_increment(v / self.scale2, t_max)


def shift_snr(sde: LinearSDE, shift: float) -> LinearSDE:
    """The SDE of the same family as ``sde`` with log-SNR lambda(t) + ``shift`` at every t.

    Args:
        sde: A :class:`VPSDE`, :class:`SubVPSDE` or :class:`VESDE` (any schedule).
        shift: The constant added to the log-SNR; :func:`snr_shift_for_resolution` gives
            Hoogeboom et al.'s -2 log(d / d_ref).

    Returns:
        A new SDE with the same T and eps. For VE the prior scale follows (sigma_T' ^2 =
        e^{-shift} sigma_T^2); VP and sub-VP keep the N(0, I) prior.

    Raises:
        TypeError: For another kind of SDE.
        ValueError: For a non-finite shift.
    """
    if isinstance(shift, bool) or not isinstance(shift, (int, float)):
        raise TypeError(f"shift_snr: expected a float shift, received {type(shift).__name__}")
    if not math.isfinite(shift):
        raise ValueError(f"shift_snr: expected a finite shift, received {shift!r}")
    if isinstance(sde, (VPSDE, SubVPSDE)):
        return type(sde)(schedule=ShiftedBeta(sde, shift), T=sde.T, eps=sde.eps)
    if isinstance(sde, VESDE):
        return VESDE(schedule=ShiftedSigma(sde, shift), T=sde.T, eps=sde.eps)
    raise TypeError(
        f"shift_snr: expected a VPSDE, SubVPSDE or VESDE, received {type(sde).__name__}"
    )
