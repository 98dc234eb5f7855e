"""Analytic-DPM (Bao et al. 2022): the optimal DDPM reverse variance against closed forms."""

from __future__ import annotations

import pytest
import torch

from scoresde.analytic import GaussianMixture
from scoresde.samplers import sample_ddpm
from scoresde.samplers.analytic_dpm import analytic_dpm_variances, score_norms
from scoresde.samplers.reverse_sde import sample_analytic_ddpm
from scoresde.sde import VESDE, VPSDE

F64 = torch.float64
GRID = torch.tensor([1.0, 0.7, 0.4, 0.2, 0.1, 0.03, 1e-3], dtype=F64)


def _gaussian_terms(sde: VPSDE, c: float, grid: torch.Tensor = GRID):
    """Exact Gamma_t = 1 / (alpha^2 c + sigma^2) and Var(x_s | x_t) for N(mu, c I) data."""
    a, s = sde.marginal(grid)
    v = a**2 * c + s**2
    gamma = 1 / v[:-1]
    a_t, a_s = a[:-1], a[1:]
    s2_s = s[1:] ** 2
    cov = a_s * a_t * c + (a_t / a_s) * s2_s  # Cov(x_s, x_t) per dim, x_t = (a_t/a_s) x_s + noise
    return gamma, v[1:] - cov**2 / v[:-1]


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_gaussian_data_gives_the_exact_reverse_variance(schedule: str) -> None:
    """For Gaussian data the true q(x_s | x_t) is Gaussian: v* equals its variance exactly."""
    sde = VPSDE(schedule=schedule)
    grid = GRID * sde.T
    gamma, exact = _gaussian_terms(sde, 0.3, grid)
    torch.testing.assert_close(analytic_dpm_variances(sde, grid, gamma), exact, rtol=1e-9, atol=0)


def test_score_norm_estimate_is_unbiased() -> None:
    """The Monte Carlo Gamma_t of the exact score matches 1 / (alpha^2 c + sigma^2)."""
    sde = VPSDE()
    mix = GaussianMixture([1.0], [[0.5, -0.2, 0.1]], [[0.3] * 3], sde=sde)
    x0 = mix.sample(4000, generator=torch.Generator().manual_seed(0)).to(F64)
    est, se = score_norms(sde, mix.score, x0, GRID[:-1], generator=torch.Generator().manual_seed(1))
    exact, _ = _gaussian_terms(sde, c=0.3)
    assert bool(((est - exact).abs() < 4 * se).all()), (est, exact, se)


def test_mixture_variance_is_the_mean_squared_error_of_the_posterior_mean() -> None:
    """On a mixture, v* from E||s||^2 equals E||x_s - mu(x_t, x0_hat)||^2 / D simulated from
    q(x_s | x_t, x0), the quantity it minimises (two independent Monte Carlo estimates)."""
    sde = VPSDE()
    mix = GaussianMixture(
        [0.4, 0.6], [[-1.0, 0.3], [0.8, -0.5]], [[0.05, 0.1], [0.08, 0.03]], sde=sde
    )
    g = torch.Generator().manual_seed(0)
    x0 = mix.sample(6000, generator=g).to(F64)
    gamma, _ = score_norms(sde, mix.score, x0, GRID[:-1], generator=g)
    v_star = analytic_dpm_variances(sde, GRID, gamma)
    a, s = sde.marginal(GRID)
    for i in range(len(GRID) - 1):
        t = GRID[i]
        a_t, a_s, s_t, s_s = a[i], a[i + 1], s[i], s[i + 1]
        a_ts, s2_ts = a_t / a_s, s_t**2 - (a_t / a_s) ** 2 * s_s**2  # x_t | x_s kernel
        c_x0, c_xt = a_s * s2_ts / s_t**2, a_ts * s_s**2 / s_t**2
        var_q = s2_ts * s_s**2 / s_t**2  # beta_tilde: q(x_s | x_t, x0)
        xt = a_t * x0 + s_t * torch.randn(x0.shape, generator=g, dtype=F64)
        xs = c_x0 * x0 + c_xt * xt + var_q.sqrt() * torch.randn(x0.shape, generator=g, dtype=F64)
        mu = c_x0 * mix.denoise(xt, t.expand(x0.shape[0])) + c_xt * xt
        err = ((xs - mu) ** 2).mean(dim=1)
        se = float(err.std() / err.numel() ** 0.5)
        assert abs(float(err.mean() - v_star[i])) < 4 * se + 1e-12, (
            i,
            float(err.mean()),
            v_star[i],
        )
        assert float(v_star[i]) >= float(var_q) * (1 - 1e-9)  # never below beta_tilde


def test_zero_covariance_term_reduces_to_ddpm_with_beta_tilde() -> None:
    """With 1 - sigma^2 Gamma clipped to 0, the sampler is DDPM with beta_tilde, draw for draw."""
    sde = VPSDE()
    mix = GaussianMixture([1.0], [[0.2, 0.1]], [[0.3, 0.3]], sde=sde)
    x_T = torch.randn(64, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    big = torch.full((len(GRID) - 1,), 1e12, dtype=F64)
    a, _ = sample_analytic_ddpm(
        sde, mix.score, x_T, GRID, gamma=big, generator=torch.Generator().manual_seed(1)
    )
    b, _ = sample_ddpm(sde, mix.score, x_T, GRID, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_validation_messages() -> None:
    with pytest.raises(TypeError, match="expected a VPSDE, received VESDE"):
        analytic_dpm_variances(VESDE(), GRID, torch.ones(6))
    with pytest.raises(ValueError, match=r"gamma of shape \(N,\), received \(7,\) and \(3,\)"):
        analytic_dpm_variances(VPSDE(), GRID, torch.ones(3))
    with pytest.raises(ValueError, match="expected x0 of shape"):
        score_norms(VPSDE(), lambda x, t: x, torch.ones(1, 2), GRID)
