"""Analytic-DPM: the optimal reverse variance of DDPM ancestral sampling from a trained score.

Bao, Li, Zhu & Zhang (2022), "Analytic-DPM", Theorem 1, in continuous VP notation. A DDPM step
from t to s < t draws x_s ~ N(mu(x_t), v I) with the posterior mean
mu = c_x0 x0_hat + c_xt x_t (Ho et al. 2020, Eq. 7; x0_hat = E[x0 | x_t] by Tweedie). For that
mean, the variance that minimises KL(q(x_s | x_t) || p(x_s | x_t)) averaged over q(x_t) is

    v* = beta_tilde + c_x0^2 E tr Cov(x0 | x_t) / D,
    E tr Cov(x0 | x_t) / D = (sigma_t^2 / alpha_t^2) (1 - sigma_t^2 Gamma_t),
    Gamma_t = E_{q(x_t)} || grad log q_t(x_t) ||^2 / D,

because Cov(x0 | x_t) = (sigma_t^2 / alpha_t^2)(I + sigma_t^2 grad^2 log q_t) (second-order
Tweedie) and E[tr grad^2 log q_t] = -E||grad log q_t||^2 (integration by parts). With
alpha_bar = alpha_t^2, beta_bar = sigma_t^2 this is Bao et al.'s
lambda^2 + (sqrt(beta_bar_n / alpha_n) - sqrt(beta_bar_{n-1} - lambda^2))^2 (1 - beta_bar_n Gamma_n).

Gamma_t is estimated once per grid time by Monte Carlo from data and the trained score
(:func:`score_norms`), with no retraining; 1 - sigma_t^2 Gamma_t is clipped to [0, 1], which
keeps v* between beta_tilde and beta_tilde + c_x0^2 sigma_t^2 / alpha_t^2 (Bao et al., Thm. 2).
For Gaussian data v* is the exact variance of q(x_s | x_t). The sampler is
:func:`~scoresde.samplers.reverse_sde.sample_analytic_ddpm` (DDPM with ``variance="analytic"``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..sde import VPSDE, DDPMSchedule, ScoreFn

__all__ = [
    "analytic_dpm_chain_variances",
    "analytic_dpm_variances",
    "check_vp",
    "score_norms",
]


def check_vp(sde: object, what: str) -> None:
    """Raise ``TypeError`` unless ``sde`` is a :class:`~scoresde.sde.VPSDE` (``what`` names the caller)."""
    if not isinstance(sde, VPSDE):
        raise TypeError(f"{what}: expected a VPSDE, received {type(sde).__name__}")


@torch.no_grad()
def score_norms(
    sde: VPSDE,
    score_fn: ScoreFn,
    x0: Tensor,
    times: Tensor,
    *,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Gamma_t = E ||s(x_t, t)||^2 / D for x_t = alpha_t x0 + sigma_t eps, at each time.

    Args:
        sde: The VP SDE of the score.
        score_fn: The (trained) score ``score_fn(x, t)``.
        x0: Data samples in model units, shape ``(M, *dims)``: one noise draw each per time.
        times: Times in (0, T], shape ``(K,)``.
        generator: Seeds the noise.

    Returns:
        ``(gamma, stderr)``, both of shape ``(K,)``: the Monte Carlo means and standard errors.
    """
    check_vp(sde, "score_norms")
    if not isinstance(x0, Tensor) or x0.ndim < 2 or x0.shape[0] < 2:
        raise ValueError(f"score_norms: expected x0 of shape (M >= 2, *dims), received {x0!r}")
    times = torch.as_tensor(times, dtype=x0.dtype)
    if times.ndim != 1:
        raise ValueError(
            f"score_norms: expected times of shape (K,), received {tuple(times.shape)}"
        )
    m, d = x0.shape[0], x0[0].numel()
    means, ses = [], []
    for t in times:
        eps = torch.randn(x0.shape, generator=generator, dtype=x0.dtype).to(x0.device)
        tt = t.expand(m).to(x0.device)
        xt = sde.perturb(x0, tt, eps)
        sq = (score_fn(xt, tt).reshape(m, -1) ** 2).sum(dim=1) / d
        means.append(sq.mean())
        ses.append(sq.std() / m**0.5)
    return torch.stack(means).cpu(), torch.stack(ses).cpu()


def analytic_dpm_chain_variances(schedule: DDPMSchedule, gamma: Tensor) -> Tensor:
    """v*_i of every step i -> i - 1 of a DDPM chain, the decoder step i = 0 included.

    v*_i = beta_tilde_i + c0_i^2 (1 - alpha_bar_i) / alpha_bar_i (1 - (1 - alpha_bar_i) Gamma_i)
    (module docstring, with alpha_t^2 = alpha_bar_i). At i = 0 (alpha_bar_{-1} = 1) beta_tilde_0
    = 0 and c0_0 = 1: v*_0 = E tr Cov(x0 | x_0) / D, the optimal variance of a Gaussian decoder
    with mean x0_hat (used by :func:`~scoresde.likelihood.ddpm_vlb`).

    Args:
        schedule: The N-step chain.
        gamma: Gamma at the chain's states x_0, ..., x_{N-1}, shape ``(N,)``.

    Returns:
        v*, float64 of shape ``(N,)`` (clipped as Bao et al., Thm. 2).
    """
    if not isinstance(schedule, DDPMSchedule):
        raise TypeError(
            "analytic_dpm_chain_variances: expected a DDPMSchedule, received "
            f"{type(schedule).__name__}"
        )
    gam = torch.as_tensor(gamma, dtype=torch.float64).detach().cpu()
    if gam.shape != (schedule.N,):
        raise ValueError(
            f"analytic_dpm_chain_variances: expected gamma of shape ({schedule.N},), received "
            f"{tuple(gam.shape)}"
        )
    ab = schedule.alpha_bars
    cov_x0 = ((1 - ab) / ab) * (1 - (1 - ab) * gam).clamp(0.0, 1.0)  # E tr Cov(x0 | x_i) / D
    return schedule.beta_tildes + schedule.posterior_coef_x0**2 * cov_x0


def analytic_dpm_variances(sde: VPSDE, grid: Tensor, gamma: Tensor) -> Tensor:
    """The optimal variance v*_i of each DDPM step t_i -> t_{i+1} of a decreasing ``grid``.

    Args:
        sde: The VP SDE.
        grid: Decreasing times t_0 > ... > t_N, shape ``(N + 1,)``.
        gamma: Gamma at t_0, ..., t_{N-1} (from :func:`score_norms`), shape ``(N,)``.

    Returns:
        v*, float64 of shape ``(N,)`` (module docstring; clipped as Bao et al.).
    """
    check_vp(sde, "analytic_dpm_variances")
    g = torch.as_tensor(grid, dtype=torch.float64).cpu()
    gam = torch.as_tensor(gamma, dtype=torch.float64).detach().cpu()
    if g.ndim != 1 or g.numel() < 2 or gam.shape != (g.numel() - 1,):
        raise ValueError(
            f"analytic_dpm_variances: expected a grid of shape (N + 1,) and gamma of shape (N,), "
            f"received {tuple(g.shape)} and {tuple(gam.shape)}"
        )
    alpha, _ = sde.marginal(g.flip(0))  # ascending: table index j is time t_{N - j}
    table = DDPMSchedule.from_alpha_bars(alpha.detach() ** 2, sde.T)
    # table index j = N - i holds step i (time t_i); index 0 (time t_N) starts no step
    full = torch.cat([gam.new_zeros(1), gam.flip(0)])
    return analytic_dpm_chain_variances(table, full)[1:].flip(0)
