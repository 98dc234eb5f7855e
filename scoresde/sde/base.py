"""The abstract SDE, the linear-SDE interface, and the reverse SDE / probability-flow ODE.

Song et al. (2021), "Score-Based Generative Modeling through Stochastic Differential Equations":

* forward SDE (Eq. 5):            dx = f(x, t) dt + g(t) dw
* reverse SDE (Eq. 6):            dx = [f(x, t) - g(t)^2 grad_x log p_t(x)] dt + g(t) dw_bar
* probability-flow ODE (Eq. 13):  dx = [f(x, t) - 1/2 g(t)^2 grad_x log p_t(x)] dt

For the linear SDEs used here, f(x, t) = a(t) x, and the transition kernel is Gaussian
(Eq. 29 and Appendix B):  x_t = alpha_t x_0 + sigma_t eps,  eps ~ N(0, I),  with

    a(t) = d log alpha_t / dt,     g(t)^2 = d sigma_t^2 / dt - 2 a(t) sigma_t^2,

and the log signal-to-noise ratio lambda(t) = log(alpha_t^2 / sigma_t^2) satisfies
d lambda / dt = -g(t)^2 / sigma_t^2. VP, sub-VP and VE share every sampler through
``marginal``, ``log_snr`` and ``t_from_log_snr`` (DESIGN.md, contract 4).

``reverse`` and ``probability_flow`` return small objects built by composition (in
:mod:`scoresde.sde.reverse`): they hold the forward SDE and the score function and expose
``drift(x, t)`` / ``diffusion(t)``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import torch
from torch import Tensor
from typing_extensions import override

from .._utils import append_dims, as_time, check_batch_time, check_time_range, names_list
from .pf_ode import perturb
from .schedules import schedule_from_config

if TYPE_CHECKING:
    from .reverse import ProbabilityFlowODE, ReverseSDE

__all__ = ["SDES", "SDE", "LinearSDE", "ScoreFn", "register_sde", "sde_from_config"]

#: A score function: ``score_fn(x, t) -> grad_x log p_t(x)``, shaped like ``x``.
ScoreFn = Callable[[Tensor, Tensor], Tensor]

_LOG_2PI = math.log(2 * math.pi)


class SDE(ABC):
    """An Ito SDE dx = f(x, t) dt + g(t) dw on t in [0, T] with a tractable prior p_T.

    Attributes:
        T: The final time (the prior lives at t = T).
        eps: The smallest time used by samplers and likelihoods (t in [eps, T]).
    """

    def __init__(self, T: float = 1.0, eps: float = 1e-5) -> None:
        if isinstance(T, bool) or not isinstance(T, (int, float)) or not math.isfinite(T) or T <= 0:
            raise ValueError(f"SDE: expected a finite T > 0, received T={T!r}")
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps < T:
            raise ValueError(f"SDE: expected 0 < eps < T={T}, received eps={eps!r}")
        self.T = float(T)
        self.eps = float(eps)

    # -- the forward SDE ------------------------------------------------------------------
    @abstractmethod
    def drift(self, x: Tensor, t: float | Tensor) -> Tensor:
        """f(x, t), shaped like ``x``; ``t`` is a scalar or has shape ``(batch,)``."""

    @abstractmethod
    def diffusion(self, t: float | Tensor) -> Tensor:
        """g(t), shaped like ``t``."""

    def g2(self, t: float | Tensor) -> Tensor:
        """g(t)^2, shaped like ``t``."""
        return self.diffusion(t) ** 2

    # -- the prior --------------------------------------------------------------------------
    @abstractmethod
    def prior_sample(
        self,
        shape: Sequence[int],
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> Tensor:
        """Draw x_T ~ p_T with the given shape ``(batch, *dims)``."""

    @abstractmethod
    def prior_log_prob(self, z: Tensor) -> Tensor:
        """log p_T(z) summed over all non-batch dims: shape ``(batch,)``."""

    # -- discretization and reversal ------------------------------------------------------
    def discretize(self, x: Tensor, t: float | Tensor, dt: float) -> tuple[Tensor, Tensor]:
        """One step of the forward chain x_{i+1} = x_i + f_i + G_i z_i (Euler–Maruyama here).

        Subclasses override it with the chains the SDEs came from (DDPM for VP, SMLD for VE).

        Args:
            x: State of shape ``(batch, *dims)``.
            t: Time of the step start (scalar or ``(batch,)``).
            dt: Positive step size (``1 / N`` for an N-step chain on [0, 1]).

        Returns:
            ``(f, G)``: the increment shaped like ``x`` and the noise scale shaped like ``t``.
        """
        if not dt > 0:
            raise ValueError(f"discretize: expected dt > 0, received dt={dt!r}")
        t = as_time(t, like=x)
        return self.drift(x, t) * dt, self.diffusion(t) * math.sqrt(dt)

    def reverse(self, score_fn: ScoreFn) -> ReverseSDE:
        """The reverse-time SDE (Song et al. 2021, Eq. 6) for ``score_fn``."""
        from .reverse import ReverseSDE

        return ReverseSDE(self, score_fn)

    def probability_flow(self, score_fn: ScoreFn) -> ProbabilityFlowODE:
        """The probability-flow ODE (Song et al. 2021, Eq. 13) for ``score_fn``."""
        from .reverse import ProbabilityFlowODE

        return ProbabilityFlowODE(self, score_fn)

    # -- helpers --------------------------------------------------------------------------
    def _time(self, t: float | Tensor, x: Tensor | None = None, lo: float = 0.0) -> Tensor:
        tt = as_time(t, like=x)
        if x is not None:
            check_batch_time(tt, x.shape[0])
        check_time_range(tt, lo, self.T)
        return tt

    def __repr__(self) -> str:
        return f"{type(self).__name__}(T={self.T:g}, eps={self.eps:g})"


class LinearSDE(SDE):
    """An SDE with linear drift f(x, t) = a(t) x and Gaussian kernel x_t = alpha_t x0 + sigma_t eps.

    Subclasses implement ``log_alpha(t)``, ``sigma2(t)``, ``drift_coef(t)`` (= a(t)), ``g2(t)``,
    ``t_from_log_snr`` and the prior scale ``prior_std``.
    """

    #: Standard deviation of the Gaussian prior p_T = N(0, prior_std^2 I).
    prior_std: float = 1.0
    #: Registry name (``scoresde.sde.SDES``).
    name: str = "linear"
    #: The noise schedule (a BetaSchedule or SigmaSchedule: it writes its own settings).
    schedule: Any

    def to_config(self) -> dict[str, Any]:
        """The SDE's settings ``{"name", "schedule", "T", "eps"}``, JSON-ready.

        The schedule writes its own part (:meth:`~scoresde.sde.schedules.Schedule.to_config`);
        :meth:`from_config` and :func:`sde_from_config` read it back.
        """
        return {
            "name": self.name,
            "schedule": self.schedule.to_config(),
            "T": self.T,
            "eps": self.eps,
        }

    def config(self) -> dict[str, Any]:
        """The same as :meth:`to_config` (its former name; stored in checkpoints)."""
        return self.to_config()

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LinearSDE:
        """The SDE :meth:`to_config` described: ``cls(schedule=..., T=..., eps=...)``.

        The schedule is rebuilt by its own kind (:func:`~scoresde.sde.schedules.
        schedule_from_config`); a config without a schedule gets the class's default one.

        Raises:
            ValueError: If ``config`` is not a description of this SDE (wrong name, unknown
                keys, a schedule of an unregistered kind).
        """
        keys = {"name", "schedule", "T", "eps"}
        if not isinstance(config, dict) or config.get("name") != cls.name or set(config) - keys:
            raise ValueError(
                f"{cls.__name__}.from_config: expected a dict with name {cls.name!r} and keys "
                f"among {sorted(keys)}, received {config!r}"
            )
        kwargs: dict[str, Any] = {k: config[k] for k in ("T", "eps") if k in config}
        if config.get("schedule"):
            kwargs["schedule"] = schedule_from_config(config["schedule"])
        return cls(**kwargs)

    def __repr__(self) -> str:
        sched = self.schedule.to_config()
        return f"{type(self).__name__}(schedule={sched}, T={self.T:g}, eps={self.eps:g})"

    # -- closed forms implemented by subclasses (no validation; t already a tensor) --------
    @abstractmethod
    def _log_alpha(self, t: Tensor) -> Tensor: ...

    @abstractmethod
    def _sigma2(self, t: Tensor) -> Tensor: ...

    @abstractmethod
    def _drift_coef(self, t: Tensor) -> Tensor: ...

    @abstractmethod
    def _g2(self, t: Tensor) -> Tensor: ...

    @abstractmethod
    def _log_snr(self, t: Tensor) -> Tensor: ...

    @abstractmethod
    def _t_from_log_snr(self, lam: Tensor) -> Tensor: ...

    # -- public API (validated) ------------------------------------------------------------
    def marginal(self, t: float | Tensor) -> tuple[Tensor, Tensor]:
        """(alpha_t, sigma_t) with x_t = alpha_t x_0 + sigma_t eps, for t in [0, T].

        Args:
            t: A scalar or a tensor of shape ``(batch,)``.

        Returns:
            Two tensors shaped like ``t``.
        """
        tt = self._time(t)
        return torch.exp(self._log_alpha(tt)), torch.sqrt(self._sigma2(tt))

    def log_snr(self, t: float | Tensor) -> Tensor:
        """lambda(t) = log(alpha_t^2 / sigma_t^2), decreasing in t; t in (0, T]."""
        return self._log_snr(self._time(t))

    def t_from_log_snr(self, lam: float | Tensor) -> Tensor:
        """The inverse of :meth:`log_snr`: the time t in (0, T] with lambda(t) = lam."""
        lam_t = as_time(lam)
        if lam_t.device.type == "cpu" and not bool(torch.isfinite(lam_t).all()):
            raise ValueError("t_from_log_snr: expected finite log-SNR values, received NaN/Inf")
        # Inverses are computed in float64: they suffer cancellation near t = 0 otherwise.
        return self._t_from_log_snr(lam_t.to(torch.float64)).to(lam_t.dtype)

    def noise_level(self, t: float | Tensor) -> Tensor:
        """sigma~(t) = sigma_t / alpha_t = exp(-lambda(t) / 2): EDM's noise level sigma.

        The noise level of the scaled state x / alpha_t (Karras et al. 2022, Eq. 4), in which
        the PF-ODE reads d(x / alpha_t) / d sigma~ = eps_hat; increasing in t.
        """
        return torch.exp(-0.5 * self.log_snr(t))

    def t_from_noise_level(self, level: float | Tensor) -> Tensor:
        """The inverse of :meth:`noise_level`: the time t with sigma_t / alpha_t = ``level``."""
        return self.t_from_log_snr(-2 * torch.log(as_time(level)))

    def drift_coef(self, t: float | Tensor) -> Tensor:
        """a(t) with f(x, t) = a(t) x, shaped like ``t``."""
        return self._drift_coef(self._time(t))

    def drift(self, x: Tensor, t: float | Tensor) -> Tensor:
        """f(x, t) = a(t) x."""
        tt = self._time(t, x)
        return append_dims(self._drift_coef(tt), x.ndim) * x

    def g2(self, t: float | Tensor) -> Tensor:
        """g(t)^2 = d sigma_t^2 / dt - 2 a(t) sigma_t^2, shaped like ``t``."""
        return self._g2(self._time(t))

    def diffusion(self, t: float | Tensor) -> Tensor:
        """g(t), shaped like ``t``."""
        return torch.sqrt(self.g2(t))

    def perturb(self, x0: Tensor, t: float | Tensor, noise: Tensor) -> Tensor:
        """x_t = alpha_t x0 + sigma_t noise (a draw from p_{0t}(x_t | x_0) given the noise)."""
        if noise.shape != x0.shape:
            raise ValueError(
                f"perturb: expected noise shaped like x0 {tuple(x0.shape)}, received "
                f"{tuple(noise.shape)}"
            )
        tt = self._time(t, x0)
        return perturb(x0, torch.exp(self._log_alpha(tt)), torch.sqrt(self._sigma2(tt)), noise)

    # -- the Gaussian prior N(0, prior_std^2 I) ---------------------------------------------
    @override
    def prior_sample(
        self,
        shape: Sequence[int],
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> Tensor:
        shape = tuple(int(s) for s in shape)
        if len(shape) < 1 or any(s <= 0 for s in shape):
            raise ValueError(f"prior_sample: expected a shape (batch, *dims), received {shape}")
        if generator is not None and device is None:
            device = generator.device
        z = torch.randn(shape, generator=generator, device=device, dtype=dtype)
        return z * self.prior_std

    def prior_log_prob(self, z: Tensor) -> Tensor:
        """log N(z; 0, prior_std^2 I), summed over every non-batch dim: shape ``(batch,)``."""
        if z.ndim < 1:
            raise ValueError("prior_log_prob: expected z of shape (batch, *dims), got a scalar")
        d = z[0].numel()
        sq = (z.reshape(z.shape[0], -1) ** 2).sum(dim=1)
        log_var = 2 * math.log(self.prior_std)
        return -0.5 * (d * (_LOG_2PI + log_var) + sq / self.prior_std**2)

    def prior_mismatch(self, data_second_moment: float = 1.0) -> Tensor:
        """Upper bound on KL(p_T || prior) per dimension in nats.

        For data with this second moment per dimension (:func:`scoresde.sde.prior_kl`; 0 when
        p_T is the prior).
        """
        from .prior import prior_kl

        return torch.tensor(prior_kl(self, data_var=data_second_moment).upper, dtype=torch.float64)


#: Every SDE class by registry name (``sde.name``), each registered by :func:`register_sde`.
SDES: dict[str, type[LinearSDE]] = {}

_L = TypeVar("_L", bound=type[LinearSDE])


def register_sde(name: str) -> Callable[[_L], _L]:
    """Class decorator: register the SDE class as ``name`` (its ``to_config`` name)."""

    def deco(cls: _L) -> _L:
        if name in SDES:
            raise ValueError(f"register_sde: {name!r} is registered already")
        cls.name = name
        SDES[name] = cls
        return cls

    return deco


def sde_from_config(config: dict[str, Any]) -> LinearSDE:
    """Rebuild any registered SDE from its :meth:`LinearSDE.to_config` settings.

    The SDE and its schedule each read their own part (including SNR-shifted schedules and the
    learned log-SNR schedule's shape: load its weights with ``sde.schedule.load_state_dict``).

    Raises:
        ValueError: For a dict without a registered ``name`` (listing them), or settings the
            SDE or its schedule cannot read.
    """
    name = config.get("name") if isinstance(config, dict) else None
    if not isinstance(name, str) or name not in SDES:
        raise ValueError(
            f"sde_from_config: expected a dict whose 'name' is one of {names_list(SDES)}, "
            f"received {config!r}"
        )
    return SDES[name].from_config(config)
