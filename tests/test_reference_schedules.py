"""Discrete tables, the prior check and the index<->time helper against independent values
(issue 23).

* ``linear_betas(N)`` is Ho et al.'s table rescaled by 1000 / N (Nichol & Dhariwal 2021,
  Sec. 3.2): beta_i = beta(i / (N - 1)) / N for the continuous ``LinearBeta(0.1, 20)``, at N
  other than 1000.
* ``prior_kl`` for Gaussian data N(m, v), where p_T = N(alpha_T m, alpha_T^2 v + sigma_T^2) is
  Gaussian: the lower bound is then the exact KL (torch.distributions), the upper bound is
  E_x KL(N(alpha_T x, sigma_T^2) || N(0, s^2)) (Gauss-Hermite over x, exact for the quadratic);
  non-zero means on VP, VE and a DDPM chain.
* ``time_to_index(index_to_time(i))`` is i for every step when the time went through float32.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from scoresde.sde import VESDE, VPSDE, DDPMSchedule, LinearBeta, index_to_time, time_to_index
from scoresde.sde.prior import prior_kl
from scoresde.sde.tables import ddpm_schedule, linear_betas

F64 = torch.float64


@pytest.mark.parametrize("N", [40, 250, 2000, 4000])
def test_linear_table_is_the_continuous_linear_beta_over_n(N: int) -> None:
    cont = LinearBeta(0.1, 20.0)
    want = cont.beta(torch.arange(N, dtype=F64) / (N - 1)) / N
    torch.testing.assert_close(linear_betas(N), want, rtol=1e-13, atol=0)
    torch.testing.assert_close(ddpm_schedule("linear", N).betas, want, rtol=1e-13, atol=0)


def _exact_bounds(alpha: float, sigma: float, s: float, m: float, v: float) -> tuple[float, float]:
    p_T = Normal(torch.tensor(alpha * m, dtype=F64), math.sqrt(alpha**2 * v + sigma**2))
    lower = float(kl_divergence(p_T, Normal(0.0, s)))
    nodes, w = np.polynomial.hermite_e.hermegauss(4)
    x = torch.tensor(m + math.sqrt(v) * nodes, dtype=F64)
    per_x = kl_divergence(Normal(alpha * x, sigma), Normal(0.0, s))
    upper = float((per_x * torch.tensor(w / math.sqrt(2 * math.pi))).sum())
    return lower, upper


@pytest.mark.parametrize("mean", [0.0, 0.7, -2.0])
@pytest.mark.parametrize("which", ["vp", "ve", "ddpm"])
def test_prior_kl_against_the_exact_gaussian_kl(which: str, mean: float) -> None:
    var = 0.6
    sde = {
        "vp": VPSDE(beta_max=4.0),
        "ve": VESDE(sigma_max=3.0),
        "ddpm": DDPMSchedule.from_betas(torch.linspace(1e-3, 0.05, 40, dtype=F64)),
    }[which]
    if which == "ddpm":
        ab = math.prod(1 - float(b) for b in sde.betas)
        alpha, sigma, s = math.sqrt(ab), math.sqrt(1 - ab), 1.0
    elif which == "vp":
        alpha = math.exp(-0.5 * (0.1 + 0.5 * (4.0 - 0.1)))  # exp(-1/2 int_0^1 beta)
        alpha, sigma, s = alpha, math.sqrt(1 - alpha**2), 1.0
    else:
        # kernel and prior variance sigma(1)^2 - sigma(0)^2 = sigma_max^2 - sigma_min^2 (Eq. 30)
        alpha, sigma = 1.0, math.sqrt(3.0**2 - 0.01**2)
        s = sigma
    lower, upper = _exact_bounds(alpha, sigma, s, mean, var)
    res = prior_kl(sde, data_var=var, data_mean=mean)
    assert res.lower == pytest.approx(lower, rel=1e-6, abs=1e-9)
    assert res.upper == pytest.approx(upper, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("N", [1000, 4000])
def test_time_to_index_round_trip_through_float32(N: int) -> None:
    i = torch.arange(N)
    t32 = index_to_time(i, N).to(torch.float32)
    assert torch.equal(time_to_index(t32, N), i)
    assert torch.equal(time_to_index(t32.double(), N, T=1.0), i)
    t_half = index_to_time(i, N, T=0.5).to(torch.float32)
    assert torch.equal(time_to_index(t_half, N, T=0.5), i)
