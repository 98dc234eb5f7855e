"""Weak orders of the stochastic fast solvers, measured exactly (no Monte Carlo).

For Gaussian data N(mu, v) the score is affine in x, so a sampler's output is affine in x_T and
in its standard normal draws z_1, z_2, ...: x_N = A x_T + b + sum_j c_j z_j. One batch recovers
A, b and every c_j: row 0 runs with x_T = 0 and all z = 0, row 1 with x_T = 1, and row 2 + j
with z_j = 1 only (an injected ``noise_sampler``). Starting from the exact p_T = N(m_T, v_T),
the output is N(A m_T + b, A^2 v_T + sum_j c_j^2), compared with the exact
p_eps = N(alpha_eps mu, alpha_eps^2 v + sigma_eps^2). The weak error |mean error| + |variance
error| then has no sampling noise, and its log-log slope is the weak order.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scoresde import VESDE, VPSDE, GaussianMixture, SubVPSDE
from scoresde.samplers import SAMPLERS, make_grid, sample_dpm_solver_pp_2m_sde, sample_edm

SDES = {"vp": VPSDE(eps=1e-3), "subvp": SubVPSDE(eps=1e-3), "ve": VESDE(sigma_max=10.0, eps=1e-3)}
MU, VAR = 0.7, 0.3
STEPS = (32, 64, 128, 256)


def weak_error(fn, sde, n_steps: int, kind: str, **kw: object) -> float:
    gm = GaussianMixture([1.0], [[MU]], [[VAR]], sde=sde)
    a_T, s_T = sde.marginal(torch.tensor(sde.T, dtype=torch.float64))
    a_e, s_e = sde.marginal(torch.tensor(sde.eps, dtype=torch.float64))
    m_T, v_T = a_T * MU, a_T**2 * VAR + s_T**2
    x_T = torch.zeros(n_steps + 2, 1, dtype=torch.float64)
    x_T[1, 0] = 1.0
    draws: list[int] = []

    def unit_noise(x: torch.Tensor, t: torch.Tensor, t_next: torch.Tensor) -> torch.Tensor:
        z = torch.zeros_like(x)
        z[2 + len(draws), 0] = 1.0  # the j-th draw is 1 in row 2 + j only
        draws.append(1)
        return z

    x, _ = fn(sde, gm, x_T, make_grid(sde, n_steps, kind), noise_sampler=unit_noise, **kw)
    b = x[0, 0]
    A, c = x[1, 0] - b, x[2 : 2 + len(draws), 0] - b
    mean, var = A * m_T + b, A**2 * v_T + (c**2).sum()
    return float((mean - a_e * MU).abs() + (var - (a_e**2 * VAR + s_e**2)).abs())


def slope(errors: list[float]) -> float:
    return float(-np.polyfit(np.log(STEPS), np.log(errors), 1)[0])


@pytest.mark.parametrize("kind", ["log_snr", "karras"])
@pytest.mark.parametrize("sde_name", sorted(SDES))
def test_dpm_solver_pp_2m_sde_weak_order(sde_name: str, kind: str) -> None:
    errs = [weak_error(sample_dpm_solver_pp_2m_sde, SDES[sde_name], n, kind) for n in STEPS]
    assert max(errs) < 1.0 and min(errs) > 1e-9, errs
    assert abs(slope(errs) - SAMPLERS["dpm_solver_pp_2m_sde"].weak_order) < 0.3, errs


@pytest.mark.parametrize("kind", ["log_snr", "karras"])
@pytest.mark.parametrize("sde_name", sorted(SDES))
def test_edm_with_churn_has_weak_order_two(sde_name: str, kind: str) -> None:
    """S_churn = 5: gamma = 5 / N is below the sqrt(2) - 1 cap for every N here, so the churn
    maps p_sigma to p_sigma_hat exactly and the Heun steps set the order."""
    errs = [weak_error(sample_edm, SDES[sde_name], n, kind, S_churn=5.0) for n in STEPS]
    assert max(errs) < 1.0 and min(errs) > 1e-9, errs
    assert abs(slope(errs) - 2.0) < 0.3, errs


def test_edm_churn_draws_once_per_churned_step() -> None:
    sde, draws = SDES["vp"], []
    gm = GaussianMixture([1.0], [[MU]], [[VAR]], sde=sde)
    grid = make_grid(sde, 8, "karras")
    sig = torch.exp(-0.5 * sde.log_snr(grid))
    s_tmin, s_tmax = float(sig[5]), float(sig[2])

    def noise(x, t, t_next):
        draws.append(float(t))
        return torch.zeros_like(x)

    sample_edm(sde, gm, torch.zeros(2, 1, dtype=torch.float64), grid, S_churn=2.0,
               S_tmin=s_tmin, S_tmax=s_tmax, noise_sampler=noise)  # fmt: skip
    assert draws == pytest.approx(grid[2:6].tolist())  # churn only for sigma in [S_tmin, S_tmax]
