"""Named discrete DDPM beta tables and their continuous-time counterparts.

* ``linear``: Ho et al. (2020): beta from 1e-4 to 0.02 at N = 1000, scaled by 1000 / N for other
  N (Nichol & Dhariwal 2021, Sec. 3.2). Continuous counterpart: ``LinearBeta(0.1, 20)``
  (Song et al. 2021, Appendix B: beta_i = beta(t) / N).
* ``cosine``: Nichol & Dhariwal (2021, Eq. 17): alpha_bar(t) = f(t) / f(0),
  f(t) = cos^2(pi/2 (t + s) / (1 + s)), s = 0.008, and beta_i = min(1 - alpha_bar((i+1)/N) /
  alpha_bar(i/N), 0.999). Continuous counterpart: :class:`~scoresde.sde.CosineBeta`.
* ``sqrt``: Li et al. (2022, Diffusion-LM): alpha_bar(t) = 1 - sqrt(t + s), s = 1e-4, through the
  same ratio rule. alpha_bar(1) < 0, so the ratio is clipped to [0, 1] and beta to 0.999.
  Continuous counterpart: :class:`~scoresde.sde.SqrtBeta` (normalised by alpha_bar(0) = 1 -
  sqrt(s), which is what the ratio rule does to the table).

Without the clip, the cosine table's last beta is 1 to rounding (alpha_bar(1) = cos^2(pi/2) = 0),
the last step destroys x_0 completely and the VLB's KL terms are infinite. Every table is
rejected by :class:`~scoresde.sde.DDPMSchedule` if some beta is not in (0, 1).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from .._utils import names_list
from .ddpm import DDPMSchedule
from .schedules import BetaSchedule, CosineBeta, LinearBeta
from .snr_schedules import SqrtBeta

__all__ = [
    "BETA_TABLES",
    "betas_from_alpha_bar",
    "continuous_schedule",
    "cosine_betas",
    "ddpm_schedule",
    "linear_betas",
    "sqrt_betas",
]

#: Largest beta of a table built from alpha_bar(t) (Nichol & Dhariwal 2021, Sec. 3.2).
MAX_BETA = 0.999


def _check_n(N: int, name: str) -> None:
    if isinstance(N, bool) or not isinstance(N, int) or N < 1:
        raise ValueError(f"{name}: expected an integer N >= 1, received {N!r}")


def betas_from_alpha_bar(
    alpha_bar: Callable[[Tensor], Tensor], N: int, max_beta: float = MAX_BETA
) -> Tensor:
    """beta_i = min(1 - alpha_bar((i+1)/N) / alpha_bar(i/N), max_beta), i = 0..N-1 (float64).

    The ratio is clipped to [0, 1] first, so an alpha_bar(t) that reaches 0 or goes negative at
    t = 1 (cosine, sqrt) gives beta = max_beta there instead of a beta >= 1.

    Args:
        alpha_bar: A decreasing function on [0, 1] (float64 tensors in and out).
        N: Number of steps.
        max_beta: The clip, in (0, 1).
    """
    _check_n(N, "betas_from_alpha_bar")
    if isinstance(max_beta, bool) or not isinstance(max_beta, (int, float)):
        raise TypeError(f"betas_from_alpha_bar: expected a float max_beta, received {max_beta!r}")
    if not 0 < max_beta < 1:
        raise ValueError(f"betas_from_alpha_bar: expected 0 < max_beta < 1, received {max_beta}")
    t = torch.arange(N + 1, dtype=torch.float64) / N
    ab = alpha_bar(t)
    ratio = (ab[1:] / ab[:-1]).clamp(0.0, 1.0)
    return (1 - ratio).clamp(max=max_beta)


def linear_betas(N: int, beta_min: float = 0.1, beta_max: float = 20.0) -> Tensor:
    """DDPM's linear table: beta_i from beta_min / N to beta_max / N (1e-4..0.02 at N = 1000)."""
    _check_n(N, "linear_betas")
    LinearBeta(beta_min, beta_max)  # validates the pair
    return torch.linspace(beta_min / N, beta_max / N, N, dtype=torch.float64)


def cosine_betas(N: int, s: float = 0.008, max_beta: float = MAX_BETA) -> Tensor:
    """Nichol & Dhariwal's cosine table (Eq. 17), beta clipped at ``max_beta``."""
    sched = CosineBeta(s)

    def alpha_bar(t: Tensor) -> Tensor:
        return (torch.cos(sched._theta(t)) / math.cos(sched._theta(torch.zeros(())))) ** 2

    return betas_from_alpha_bar(alpha_bar, N, max_beta)


def sqrt_betas(N: int, s: float = 1e-4, max_beta: float = MAX_BETA) -> Tensor:
    """Li et al.'s sqrt table, alpha_bar(t) = 1 - sqrt(t + s), beta clipped at ``max_beta``."""
    SqrtBeta(s)  # validates s
    return betas_from_alpha_bar(lambda t: 1 - torch.sqrt(t + s), N, max_beta)


#: Named tables: ``name -> fn(N, **kwargs) -> betas``.
BETA_TABLES: dict[str, Callable[..., Tensor]] = {
    "linear": linear_betas,
    "cosine": cosine_betas,
    "sqrt": sqrt_betas,
}


def ddpm_schedule(name: str, N: int, T: float = 1.0, **kwargs: float) -> DDPMSchedule:
    """The N-step :class:`DDPMSchedule` of a named table (``linear``, ``cosine``, ``sqrt``).

    Args:
        name: A key of :data:`BETA_TABLES`.
        N: Number of steps.
        T: Final time of the continuous clock (step i sits at t_i = (i + 1) T / N).
        **kwargs: Table parameters (``s``, ``max_beta``, ``beta_min``, ``beta_max``).
    """
    if name not in BETA_TABLES:
        raise ValueError(f"unknown beta table {name!r}; expected one of {names_list(BETA_TABLES)}")
    return DDPMSchedule.from_betas(BETA_TABLES[name](N, **kwargs), T)


def continuous_schedule(name: str, **kwargs: float) -> BetaSchedule:
    """The continuous beta(t) whose alpha_bar(t_i) the named table reproduces (unclipped steps)."""
    kinds: dict[str, Callable[..., BetaSchedule]] = {
        "linear": LinearBeta,
        "cosine": CosineBeta,
        "sqrt": SqrtBeta,
    }
    if name not in kinds:
        raise ValueError(f"unknown beta table {name!r}; expected one of {names_list(kinds)}")
    kwargs.pop("max_beta", None)
    return kinds[name](**kwargs)
