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
For Gaussian data v* is the exact variance of q(x_s | x_t).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..sde import VPSDE, DDPMSchedule, ScoreFn
from .reverse_sde import ancestral_step
from .run import Callback, SampleInfo, prepare

__all__ = ["analytic_dpm_variances", "sample_analytic_ddpm", "score_norms"]


def _check_vp(sde: object, what: str) -> None:
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
    _check_vp(sde, "score_norms")
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


def analytic_dpm_variances(sde: VPSDE, grid: Tensor, gamma: Tensor) -> Tensor:
    """The optimal variance v*_i of each DDPM step t_i -> t_{i+1} of a decreasing ``grid``.

    Args:
        sde: The VP SDE.
        grid: Decreasing times t_0 > ... > t_N, shape ``(N + 1,)``.
        gamma: Gamma at t_0, ..., t_{N-1} (from :func:`score_norms`), shape ``(N,)``.

    Returns:
        v*, float64 of shape ``(N,)`` (module docstring; clipped as Bao et al.).
    """
    _check_vp(sde, "analytic_dpm_variances")
    g = torch.as_tensor(grid, dtype=torch.float64).cpu()
    gam = torch.as_tensor(gamma, dtype=torch.float64).cpu()
    if g.ndim != 1 or g.numel() < 2 or gam.shape != (g.numel() - 1,):
        raise ValueError(
            f"analytic_dpm_variances: expected a grid of shape (N + 1,) and gamma of shape (N,), "
            f"received {tuple(g.shape)} and {tuple(gam.shape)}"
        )
    n = g.numel() - 1
    alpha, sigma = sde.marginal(g.flip(0))  # ascending: table index j is time t_{N - j}
    table = DDPMSchedule.from_alpha_bars(alpha.detach() ** 2, sde.T)
    j = torch.arange(n, 0, -1)  # step i runs from table index N - i (time t_i)
    a_t, s_t = alpha.detach().flip(0)[:n], sigma.detach().flip(0)[:n]  # at t_0, ..., t_{N-1}
    cov_x0 = (s_t**2 / a_t**2) * (1 - s_t**2 * gam).clamp(0.0, 1.0)
    return table.beta_tildes[j] + table.posterior_coef_x0[j] ** 2 * cov_x0


def sample_analytic_ddpm(
    sde: VPSDE,
    score_fn: ScoreFn,
    x_T: Tensor,
    grid: Tensor,
    *,
    gamma: Tensor,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    **options: Any,
) -> tuple[Tensor, SampleInfo]:
    """DDPM ancestral sampling with the Analytic-DPM variance (Bao et al. 2022, Alg. 1).

    Arguments and ``**options`` as :func:`~scoresde.samplers.sample_ddpm`, plus ``gamma``:
    Gamma_t at the step-start times ``grid[:-1]`` (:func:`score_norms`).
    """
    _check_vp(sde, "analytic_ddpm")
    run = prepare("analytic_ddpm", sde, score_fn, x_T, grid, generator, callback, options)
    var = analytic_dpm_variances(sde, run.grid64, gamma)
    alpha, _ = sde.marginal(run.grid64.flip(0))
    table = DDPMSchedule.from_alpha_bars(alpha.detach() ** 2, sde.T)
    j = torch.arange(run.n_steps, 0, -1)
    coefs = (table.posterior_coef_x0[j], table.posterior_coef_xt[j], torch.sqrt(var))
    return run.loop(x_T, ancestral_step(*(v.to(run.like) for v in coefs), run))
