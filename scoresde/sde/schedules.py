"""Noise schedules: beta(t) for variance-preserving SDEs and sigma(t) for variance-exploding SDEs.

A VP-type SDE (Song et al. 2021, Eqs. 11 and 29) is fully determined by

    beta(t) > 0   and its integral   B(t) = int_0^t beta(s) ds,

since the mean coefficient is alpha_t = exp(-B(t) / 2). A VE SDE (Eq. 9) is determined by
sigma(t) and d[sigma(t)^2]/dt. Schedules are small objects with closed forms where they exist
and a safe numerical fallback (bisection on a monotone function) where they do not.

Each schedule writes and reads its own settings: :meth:`Schedule.to_config` (abstract) gives a
JSON-ready dict ``{"kind": ..., **settings}`` and :meth:`Schedule.from_config` rebuilds the
schedule from it. A schedule class registers its ``kind`` with :func:`register_schedule` (one
line, beside the class); :func:`schedule_from_config` reads any registered kind. Schedules that
hold Python callables (``CustomBeta``, ``CustomSigma``, ``PiecewiseLinearIntegral``) describe
themselves by class name and are not registered: they cannot be rebuilt from JSON.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import torch
from torch import Tensor
from typing_extensions import override

from .._utils import check_positive, names_list

__all__ = [
    "SCHEDULES",
    "BetaSchedule",
    "CosineBeta",
    "CustomBeta",
    "CustomSigma",
    "GeometricSigma",
    "LinearBeta",
    "PiecewiseLinearIntegral",
    "Schedule",
    "SigmaSchedule",
    "register_schedule",
    "schedule_from_config",
]


def _bisect(fn: Callable[[Tensor], Tensor], target: Tensor, lo: float, hi: float) -> Tensor:
    """Solve ``fn(t) = target`` for increasing ``fn`` on ``[lo, hi]`` by bisection (float64)."""
    tgt = target.to(torch.float64)
    a = torch.full_like(tgt, lo)
    b = torch.full_like(tgt, hi)
    for _ in range(80):  # 2^-80 of the interval: beyond float64 resolution
        m = 0.5 * (a + b)
        below = fn(m) < tgt
        a = torch.where(below, m, a)
        b = torch.where(below, b, m)
    return (0.5 * (a + b)).to(target.dtype)


class Schedule(ABC):
    """A noise schedule that writes (:meth:`to_config`) and reads (:meth:`from_config`) itself."""

    #: The registry name (:data:`SCHEDULES`), set by :func:`register_schedule`.
    kind: ClassVar[str] = ""

    @abstractmethod
    def to_config(self) -> dict[str, Any]:
        """A JSON-ready description ``{"kind": ..., **settings}`` (for configs and checkpoints)."""

    def to_dict(self) -> dict[str, Any]:
        """The same as :meth:`to_config` (its former name)."""
        return self.to_config()

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> Schedule:
        """The same as :meth:`from_config` (its former name)."""
        return cls.from_config(config)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Schedule:
        """The schedule :meth:`to_config` described: ``cls(**settings)`` by default.

        Raises:
            ValueError: If ``config`` is not a description of this kind with its settings.
        """
        settings = _settings(cls, config)
        try:
            return cls(**settings)
        except TypeError as err:
            raise ValueError(f"{cls.__name__}.from_config: {err} (received {config!r})") from None


def _settings(cls: type[Schedule], config: object) -> dict[str, Any]:
    """``config`` without its ``kind``, after checking the kind is ``cls.kind``."""
    if not cls.kind:
        raise ValueError(f"{cls.__name__}: holds Python callables, not rebuildable from a config")
    if not isinstance(config, dict) or config.get("kind") != cls.kind:
        raise ValueError(
            f"{cls.__name__}.from_config: expected a dict with kind {cls.kind!r}, received "
            f"{config!r}"
        )
    return {k: v for k, v in config.items() if k != "kind"}


#: Every schedule that rebuilds from its settings, by ``kind``.
SCHEDULES: dict[str, type[Schedule]] = {}

_S = TypeVar("_S", bound=type[Schedule])


def register_schedule(kind: str) -> Callable[[_S], _S]:
    """Class decorator: register the schedule class under ``kind`` (its ``to_config`` kind)."""

    def deco(cls: _S) -> _S:
        if kind in SCHEDULES:
            raise ValueError(f"register_schedule: kind {kind!r} is registered already")
        cls.kind = kind
        SCHEDULES[kind] = cls
        return cls

    return deco


def schedule_from_config(config: dict[str, Any]) -> Schedule:
    """Rebuild any registered schedule from its :meth:`Schedule.to_config` description.

    Raises:
        ValueError: For a dict without a registered ``kind`` (listing the registered ones).
    """
    kind = config.get("kind") if isinstance(config, dict) else None
    if not isinstance(kind, str) or kind not in SCHEDULES:
        raise ValueError(
            f"schedule_from_config: cannot rebuild a schedule of kind {kind!r}; expected one of "
            f"{names_list(SCHEDULES)}"
        )
    return SCHEDULES[kind].from_config(config)


class BetaSchedule(Schedule):
    """A VP noise schedule: ``beta(t)``, its integral ``B(t)`` and the inverse of ``B``."""

    #: Largest time at which the schedule is finite (``T`` of the SDE must not exceed it).
    t_max: float = 1.0
    #: Whether beta(t) is infinite at ``t_max`` (then ``T < t_max`` is required).
    diverges_at_t_max: bool = False
    #: The final time a VP SDE uses when none is given (``t_max`` if None).
    default_T: float | None = None

    @abstractmethod
    def beta(self, t: Tensor) -> Tensor:
        """The instantaneous noise rate beta(t)."""

    @abstractmethod
    def integral(self, t: Tensor) -> Tensor:
        """B(t) = int_0^t beta(s) ds (so that alpha_t = exp(-B/2))."""

    def inverse_integral(self, b: Tensor) -> Tensor:
        """The time t with B(t) = b (bisection unless a subclass has a closed form)."""
        return _bisect(self.integral, b, 0.0, self.t_max)


@register_schedule("linear")
class LinearBeta(BetaSchedule):
    """beta(t) = beta_min + t (beta_max - beta_min) (Song et al. 2021, Eq. 33; DDPM's schedule)."""

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0) -> None:
        self.beta_min = check_positive(beta_min, name="beta_min")
        self.beta_max = check_positive(beta_max, name="beta_max")
        if not self.beta_min < self.beta_max:
            raise ValueError(
                f"LinearBeta: expected beta_min < beta_max, received beta_min={beta_min}, "
                f"beta_max={beta_max}"
            )

    @override
    def beta(self, t: Tensor) -> Tensor:
        return self.beta_min + t * (self.beta_max - self.beta_min)

    @override
    def integral(self, t: Tensor) -> Tensor:
        return self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t**2

    @override
    def inverse_integral(self, b: Tensor) -> Tensor:
        # Solve 0.5 d t^2 + b0 t - b = 0 with d = b1 - b0 > 0, in the cancellation-free form
        # t = 2 b / (b0 + sqrt(b0^2 + 2 d b)).
        d = self.beta_max - self.beta_min
        return 2 * b / (self.beta_min + torch.sqrt(self.beta_min**2 + 2 * d * b))

    @override
    def to_config(self) -> dict[str, Any]:
        return {"kind": self.kind, "beta_min": self.beta_min, "beta_max": self.beta_max}


@register_schedule("cosine")
class CosineBeta(BetaSchedule):
    """The cosine schedule of Nichol & Dhariwal (2021), in continuous time.

    alpha_bar(t) = f(t) / f(0) with f(t) = cos^2(pi/2 (t + s) / (1 + s)), so that
    B(t) = -log alpha_bar(t) and beta(t) = pi / (1 + s) * tan(pi/2 (t + s) / (1 + s)).
    beta diverges at t = 1, so a cosine VP SDE uses ``T < 1`` (default 0.9946, where the
    log-SNR is about -9.6, as in DPM-Solver).
    """

    diverges_at_t_max = True
    default_T = 0.9946

    def __init__(self, s: float = 0.008) -> None:
        self.s = check_positive(s, name="s")
        self.t_max = 1.0
        self._log_f0 = 2 * math.log(math.cos(math.pi / 2 * self.s / (1 + self.s)))

    def _theta(self, t: Tensor) -> Tensor:
        return math.pi / 2 * (t + self.s) / (1 + self.s)

    @override
    def beta(self, t: Tensor) -> Tensor:
        return math.pi / (1 + self.s) * torch.tan(self._theta(t))

    @override
    def integral(self, t: Tensor) -> Tensor:
        # B = -2 log(cos(theta0 + d) / cos(theta0)) = -2 log1p(cos d - 1 - tan(theta0) sin d),
        # d = pi/2 t / (1 + s): free of the cancellation that plain logs suffer at t -> 0.
        d = math.pi / 2 * t / (1 + self.s)
        tan0 = math.tan(math.pi / 2 * self.s / (1 + self.s))
        return -2 * torch.log1p(-2 * torch.sin(0.5 * d) ** 2 - tan0 * torch.sin(d))

    @override
    def inverse_integral(self, b: Tensor) -> Tensor:
        b64 = b.to(torch.float64)
        cos_theta = torch.exp(0.5 * (self._log_f0 - b64))
        return (torch.arccos(cos_theta) * 2 * (1 + self.s) / math.pi - self.s).to(b.dtype)

    @override
    def to_config(self) -> dict[str, Any]:
        return {"kind": self.kind, "s": self.s}


class CustomBeta(BetaSchedule):
    """A user schedule given by ``beta_fn(t)`` and its integral ``integral_fn(t)`` (torch ops)."""

    def __init__(
        self,
        beta_fn: Callable[[Tensor], Tensor],
        integral_fn: Callable[[Tensor], Tensor],
        inverse_integral_fn: Callable[[Tensor], Tensor] | None = None,
        t_max: float = 1.0,
    ) -> None:
        if not callable(beta_fn) or not callable(integral_fn):
            raise TypeError("CustomBeta: expected callables beta_fn(t) and integral_fn(t)")
        self._beta, self._integral, self._inverse = beta_fn, integral_fn, inverse_integral_fn
        self.t_max = check_positive(t_max, name="t_max")

    @override
    def beta(self, t: Tensor) -> Tensor:
        return self._beta(t)

    @override
    def integral(self, t: Tensor) -> Tensor:
        return self._integral(t)

    @override
    def inverse_integral(self, b: Tensor) -> Tensor:
        if self._inverse is not None:
            return self._inverse(b)
        return super().inverse_integral(b)

    @override
    def to_config(self) -> dict[str, Any]:
        """The class name only: a schedule of Python callables is not rebuilt from JSON."""
        return {"kind": type(self).__name__}


class PiecewiseLinearIntegral(BetaSchedule):
    """B(t) piecewise linear through knots ``(t_k, B_k)``, so beta(t) is piecewise constant.

    This is the continuous VP SDE behind a discrete DDPM beta table: with knots
    ``t_n = (n + 1) / N`` and ``B_n = -log alpha_bar_n`` (plus ``(0, 0)``), log alpha_bar is
    interpolated piecewise-linearly in t and the SDE reproduces alpha_bar_n exactly at t_n.
    """

    def __init__(self, t_knots: Tensor, b_knots: Tensor) -> None:
        t_knots = torch.as_tensor(t_knots, dtype=torch.float64)
        b_knots = torch.as_tensor(b_knots, dtype=torch.float64)
        if t_knots.ndim != 1 or t_knots.shape != b_knots.shape or t_knots.numel() < 2:
            raise ValueError(
                "PiecewiseLinearIntegral: expected 1-D knots of equal length >= 2, received "
                f"shapes {tuple(t_knots.shape)} and {tuple(b_knots.shape)}"
            )
        if not bool((t_knots.diff() > 0).all()) or not bool((b_knots.diff() > 0).all()):
            raise ValueError(
                "PiecewiseLinearIntegral: knots must be strictly increasing in t and B"
            )
        self.t_knots, self.b_knots = t_knots, b_knots
        self.slopes = b_knots.diff() / t_knots.diff()
        self.t_max = float(t_knots[-1])

    def _segment(self, t: Tensor) -> Tensor:
        knots = self.t_knots.to(t.device)
        idx = torch.searchsorted(knots, t.detach().to(torch.float64).contiguous(), right=True) - 1
        return idx.clamp(0, self.slopes.numel() - 1)

    @override
    def beta(self, t: Tensor) -> Tensor:
        return self.slopes.to(t.device)[self._segment(t)].to(t.dtype)

    @override
    def integral(self, t: Tensor) -> Tensor:
        i = self._segment(t)
        t0 = self.t_knots.to(t.device)[i].to(t.dtype)
        b0 = self.b_knots.to(t.device)[i].to(t.dtype)
        return b0 + self.slopes.to(t.device)[i].to(t.dtype) * (t - t0)

    @override
    def inverse_integral(self, b: Tensor) -> Tensor:
        knots = self.b_knots.to(b.device)
        i = torch.searchsorted(knots, b.detach().to(torch.float64).contiguous(), right=True) - 1
        i = i.clamp(0, self.slopes.numel() - 1)
        t0 = self.t_knots.to(b.device)[i].to(b.dtype)
        return t0 + (b - knots[i].to(b.dtype)) / self.slopes.to(b.device)[i].to(b.dtype)

    @override
    def to_config(self) -> dict[str, Any]:
        """The class name only: a schedule of Python callables is not rebuilt from JSON."""
        return {"kind": type(self).__name__}


class SigmaSchedule(Schedule):
    """A VE noise schedule sigma(t) with d[sigma^2]/dt; the SDE is dx = sqrt(d[sigma^2]/dt) dw."""

    @abstractmethod
    def sigma(self, t: Tensor) -> Tensor:
        """The noise scale sigma(t), increasing in t."""

    @abstractmethod
    def dsigma2(self, t: Tensor) -> Tensor:
        """d[sigma(t)^2]/dt = g(t)^2."""

    def var_increment(self, t: Tensor) -> Tensor:
        """sigma(t)^2 - sigma(0)^2: the exact variance of x_t given x_0."""
        s0 = self.sigma(torch.zeros_like(t))
        return self.sigma(t) ** 2 - s0**2

    def inverse_var_increment(self, v: Tensor, t_max: float) -> Tensor:
        """The time t with sigma(t)^2 - sigma(0)^2 = v (bisection by default)."""
        return _bisect(self.var_increment, v, 0.0, t_max)


@register_schedule("geometric")
class GeometricSigma(SigmaSchedule):
    """sigma(t) = sigma_min (sigma_max / sigma_min)^t (Song et al. 2021, Eq. 31; SMLD's schedule)."""

    def __init__(self, sigma_min: float = 0.01, sigma_max: float = 50.0) -> None:
        self.sigma_min = check_positive(sigma_min, name="sigma_min")
        self.sigma_max = check_positive(sigma_max, name="sigma_max")
        if not self.sigma_min < self.sigma_max:
            raise ValueError(
                f"GeometricSigma: expected sigma_min < sigma_max, received sigma_min={sigma_min}, "
                f"sigma_max={sigma_max}"
            )
        self.log_ratio = math.log(self.sigma_max / self.sigma_min)

    @override
    def sigma(self, t: Tensor) -> Tensor:
        return self.sigma_min * torch.exp(t * self.log_ratio)

    @override
    def dsigma2(self, t: Tensor) -> Tensor:
        return 2 * self.log_ratio * self.sigma(t) ** 2

    @override
    def var_increment(self, t: Tensor) -> Tensor:
        # sigma_min^2 (r^{2t} - 1) with expm1: exact at t -> 0 in float32.
        return self.sigma_min**2 * torch.expm1(2 * self.log_ratio * t)

    @override
    def inverse_var_increment(self, v: Tensor, t_max: float) -> Tensor:
        return torch.log1p(v / self.sigma_min**2) / (2 * self.log_ratio)

    @override
    def to_config(self) -> dict[str, Any]:
        return {"kind": self.kind, "sigma_min": self.sigma_min, "sigma_max": self.sigma_max}


class CustomSigma(SigmaSchedule):
    """A user sigma(t); d[sigma^2]/dt is taken from ``dsigma2_fn`` or from autograd."""

    def __init__(
        self,
        sigma_fn: Callable[[Tensor], Tensor],
        dsigma2_fn: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        if not callable(sigma_fn):
            raise TypeError("CustomSigma: expected a callable sigma_fn(t)")
        self._sigma, self._dsigma2 = sigma_fn, dsigma2_fn

    @override
    def sigma(self, t: Tensor) -> Tensor:
        return self._sigma(t)

    @override
    def dsigma2(self, t: Tensor) -> Tensor:
        if self._dsigma2 is not None:
            return self._dsigma2(t)
        with torch.enable_grad():
            tt = t.detach().clone().requires_grad_(True)
            s2 = self._sigma(tt) ** 2
            (grad,) = torch.autograd.grad(s2.sum(), tt)
        return grad

    @override
    def to_config(self) -> dict[str, Any]:
        """The class name only: a schedule of Python callables is not rebuilt from JSON."""
        return {"kind": type(self).__name__}
