"""Discrete DDPM quantities for an N-step chain (Ho et al. 2020), and the one index<->time helper.

Notation (see docs/notation.md): the DDPM chain has steps i = 0..N-1 (0-indexed) with

    beta_i,   alpha_i = 1 - beta_i,   alpha_bar_i = prod_{j<=i} alpha_j,   alpha_bar_{-1} = 1,

so that q(x_i | x_0) = N(sqrt(alpha_bar_i) x_0, (1 - alpha_bar_i) I). Step i sits at continuous
time t_i = (i + 1) T / N, and alpha_bar_i plays the role of alpha_t^2 of the continuous VP SDE
(DDPM's alpha_bar is our alpha_t squared: alpha_t here is the *mean coefficient*).

The posterior q(x_{i-1} | x_i, x_0) = N(c0_i x_0 + ct_i x_i, beta_tilde_i I) has (Ho et al. Eq. 7)

    c0_i = sqrt(alpha_bar_{i-1}) beta_i / (1 - alpha_bar_i),
    ct_i = sqrt(alpha_i) (1 - alpha_bar_{i-1}) / (1 - alpha_bar_i),
    beta_tilde_i = (1 - alpha_bar_{i-1}) / (1 - alpha_bar_i) beta_i.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .base import LinearSDE
from .vp import VPSDE

__all__ = ["DDPMSchedule", "index_to_time", "time_to_index"]


def index_to_time(i: Tensor | int, N: int, T: float = 1.0) -> Tensor:
    """Continuous time t_i = (i + 1) T / N of DDPM step i in 0..N-1 (the one conversion helper)."""
    return (torch.as_tensor(i, dtype=torch.float64) + 1) * (T / N)


def time_to_index(t: Tensor | float, N: int, T: float = 1.0) -> Tensor:
    """The nearest DDPM step index i with t_i = (i + 1) T / N, clamped to 0..N-1."""
    tt = torch.as_tensor(t, dtype=torch.float64)
    return torch.clamp(torch.round(tt * N / T - 1), 0, N - 1).long()


@dataclass(frozen=True)
class DDPMSchedule:
    """Every discrete quantity of an N-step DDPM chain, as float64 tensors of shape ``(N,)``.

    Build with :meth:`from_betas`, :meth:`from_alpha_bars` or :meth:`from_sde`.
    """

    betas: Tensor
    alphas: Tensor
    alpha_bars: Tensor
    alpha_bars_prev: Tensor
    posterior_coef_x0: Tensor
    posterior_coef_xt: Tensor
    beta_tildes: Tensor
    snr: Tensor
    times: Tensor

    @property
    def N(self) -> int:
        """Number of steps."""
        return int(self.betas.numel())

    @classmethod
    def from_betas(cls, betas: Tensor | list[float], T: float = 1.0) -> DDPMSchedule:
        """From a beta table beta_0..beta_{N-1}, each in (0, 1)."""
        b = torch.as_tensor(betas, dtype=torch.float64).detach().cpu()
        if b.ndim != 1 or b.numel() < 1:
            raise ValueError(
                f"DDPMSchedule: expected a 1-D beta table, received shape {tuple(b.shape)}"
            )
        if not bool(torch.isfinite(b).all()) or not bool(((b > 0) & (b < 1)).all()):
            raise ValueError(
                f"DDPMSchedule: expected every beta in (0, 1), received values in "
                f"[{float(b.min()):.4g}, {float(b.max()):.4g}]"
            )
        log_alpha_bars = torch.cumsum(torch.log1p(-b), 0)
        return cls._build(b, torch.exp(log_alpha_bars), T)

    @classmethod
    def from_alpha_bars(cls, alpha_bars: Tensor | list[float], T: float = 1.0) -> DDPMSchedule:
        """From alpha_bar_0..alpha_bar_{N-1}, strictly decreasing in (0, 1]."""
        ab = torch.as_tensor(alpha_bars, dtype=torch.float64).detach().cpu()
        if ab.ndim != 1 or ab.numel() < 1:
            raise ValueError(
                f"DDPMSchedule: expected a 1-D alpha_bar table, received shape {tuple(ab.shape)}"
            )
        prev = torch.cat([ab.new_ones(1), ab[:-1]])
        if not bool(((ab > 0) & (ab < prev)).all()):
            raise ValueError("DDPMSchedule: alpha_bar must be strictly decreasing in (0, 1)")
        betas = -torch.expm1(torch.log(ab) - torch.log(prev))
        if not bool((betas < 1).all()):
            raise ValueError(
                "DDPMSchedule: alpha_bar gives beta_i = 1 to rounding at steps "
                f"{(betas >= 1).nonzero().flatten().tolist()} (the step erases x_0 and the VLB is "
                "infinite); clip beta, e.g. scoresde.sde.betas_from_alpha_bar(..., max_beta=0.999)"
            )
        return cls._build(betas, ab, T)

    @classmethod
    def from_sde(cls, sde: LinearSDE, N: int, exact: bool = True) -> DDPMSchedule:
        """The N-step chain of a VP SDE.

        Args:
            sde: A :class:`~scoresde.sde.VPSDE`.
            N: Number of steps.
            exact: If True (the default), alpha_bar_i = alpha_{t_i}^2 exactly: the chain matches
                the SDE's marginals, which the samplers, the likelihood and ``HybridLoss`` read
                from the SDE, so a model trained on the chain and sampled through the SDE sees
                one alpha_bar. If False (the DDPM discretization, Song et al. 2021 Appendix B),
                beta_i = beta(t_i) T / N and alpha_bar_{N-1} -> alpha_T^2 only as N grows
                (0.925 alpha_T^2 at N = 1000 for the default VP SDE): a different chain.
        """
        if not isinstance(sde, VPSDE):
            raise TypeError(
                f"DDPMSchedule.from_sde: expected a VPSDE, received {type(sde).__name__}"
            )
        if isinstance(N, bool) or not isinstance(N, int) or N < 1:
            raise ValueError(f"DDPMSchedule.from_sde: expected an integer N >= 1, received {N!r}")
        t = index_to_time(torch.arange(N), N, sde.T)
        if exact:
            alpha, _ = sde.marginal(t)
            return cls.from_alpha_bars(alpha**2, sde.T)
        return cls.from_betas(sde.schedule.beta(t) * (sde.T / N), sde.T)

    @classmethod
    def _build(cls, betas: Tensor, alpha_bars: Tensor, T: float) -> DDPMSchedule:
        N = betas.numel()
        prev = torch.cat([alpha_bars.new_ones(1), alpha_bars[:-1]])
        one_minus = -torch.expm1(torch.log(alpha_bars))
        alphas = 1 - betas
        return cls(
            betas=betas,
            alphas=alphas,
            alpha_bars=alpha_bars,
            alpha_bars_prev=prev,
            posterior_coef_x0=torch.sqrt(prev) * betas / one_minus,
            posterior_coef_xt=torch.sqrt(alphas) * (1 - prev) / one_minus,
            beta_tildes=(1 - prev) / one_minus * betas,
            snr=alpha_bars / one_minus,
            times=index_to_time(torch.arange(N), N, T),
        )
