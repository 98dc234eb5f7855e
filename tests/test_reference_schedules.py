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
* Every field of :class:`~scoresde.sde.DDPMSchedule` (from betas, alpha_bars or a VP SDE)
  against Ho et al.'s Eq. 7 computed from the betas with ``math.prod``.
* The SNR-shifted VE schedule: sigma'(t) = e^{-shift/2} sigma(t), against the base schedule.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from scoresde.sde import VESDE, VPSDE, DDPMSchedule, LinearBeta, index_to_time, time_to_index
from scoresde.sde.prior import prior_kl
from scoresde.sde.shift import shift_snr
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


def test_ddpm_schedule_fields_by_hand() -> None:
    """Every field of the chain (Ho et al. 2020, Eq. 7) from the betas with ``math.prod``, built
    from betas, from alpha_bars and from a linear VP SDE (beta_i = beta(t_i) T / N, or
    alpha_bar_i = exp(-int_0^{t_i} beta) when exact), t_i = (i + 1) T / N."""
    N = 40  # VPSDE(): beta(t) = 0.1 + 19.9 t, int_0^t beta = 0.1 t + 19.9 t^2 / 2
    for kind in ("betas", "alpha_bars", "sde", "sde_exact"):
        if kind == "sde_exact":
            ab_list = [
                math.exp(-(0.1 * t + 0.5 * 19.9 * t * t)) for t in ((i + 1) / N for i in range(N))
            ]
            betas = [1 - ab_list[0]] + [1 - ab_list[i] / ab_list[i - 1] for i in range(1, N)]
        elif kind == "sde":
            betas = [0.1 / N + 19.9 * (i + 1) / N / N for i in range(N)]
        else:
            betas = [0.02 + 0.4 * i / N for i in range(N)]
        ab = [math.prod(1 - b for b in betas[: i + 1]) for i in range(N)]
        prev = [1.0] + ab[:-1]
        if kind == "betas":
            sched = DDPMSchedule.from_betas(betas)
        elif kind == "alpha_bars":
            sched = DDPMSchedule.from_alpha_bars(ab)
        else:
            sched = DDPMSchedule.from_sde(VPSDE(), N, exact=kind == "sde_exact")
        want = {
            "betas": betas,
            "alphas": [1 - b for b in betas],
            "alpha_bars": ab,
            "alpha_bars_prev": prev,
            "posterior_coef_x0": [math.sqrt(p) * b / (1 - a) for p, b, a in zip(prev, betas, ab)],
            "posterior_coef_xt": [
                math.sqrt(1 - b) * (1 - p) / (1 - a) for p, b, a in zip(prev, betas, ab)
            ],
            "beta_tildes": [(1 - p) / (1 - a) * b for p, b, a in zip(prev, betas, ab)],
            "snr": [a / (1 - a) for a in ab],
            "times": [(i + 1) / N for i in range(N)],
        }
        for field, values in want.items():
            torch.testing.assert_close(
                getattr(sched, field),
                torch.tensor(values, dtype=F64),
                rtol=1e-11,
                atol=1e-14,
                msg=lambda m, f=field, k=kind: f"{k}: {f}: {m}",
            )


@pytest.mark.parametrize("shift", [-1.5, 2.0])
def test_shifted_ve_schedule_is_the_base_sigma_times_exp_of_minus_half_the_shift(
    shift: float,
) -> None:
    """sigma'(t) = e^{-shift/2} sigma(t) (Hoogeboom et al. 2023), so the log-SNR moves by
    ``shift`` and sigma'(t)^2 - sigma'(0)^2 is the shifted SDE's own variance increment."""
    base = VESDE(sigma_min=0.02, sigma_max=20.0)
    sde = shift_snr(base, shift)
    t = torch.linspace(0.05, 1.0, 9, dtype=F64)
    sig = base.schedule.sigma(t)
    torch.testing.assert_close(
        sde.schedule.sigma(t), math.exp(-shift / 2) * sig, rtol=1e-13, atol=0
    )
    torch.testing.assert_close(sde.log_snr(t), base.log_snr(t) + shift, rtol=1e-12, atol=1e-12)
    zero = torch.zeros(1, dtype=F64)
    inc = sde.schedule.sigma(t) ** 2 - sde.schedule.sigma(zero) ** 2
    torch.testing.assert_close(sde.marginal(t)[1] ** 2, inc, rtol=1e-12, atol=1e-14)
