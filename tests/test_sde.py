"""SDE closed forms checked against their defining equations (Song et al. 2021, Eqs. 5, 29)."""

from __future__ import annotations

import math

import pytest
import torch

from scoresde.sde import (
    VESDE,
    VPSDE,
    DDPMSchedule,
    SubVPSDE,
    sde_from_config,
)

from .helpers import all_sdes
from .reference import affine_law

SDES = all_sdes()
NAMES = sorted(SDES)


def _d_dt(fn, t: torch.Tensor) -> torch.Tensor:
    t = t.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(fn(t).sum(), t)
    return g


@pytest.mark.parametrize("name", NAMES)
def test_moment_odes(name: str) -> None:
    """Mean m = alpha_t m0 and variance v = sigma_t^2 solve dm/dt = a m, dv/dt = 2 a v + g^2."""
    sde = SDES[name]
    t = torch.linspace(0.01, sde.T * 0.98, 41, dtype=torch.float64)
    a = sde.drift_coef(t)
    dlog_alpha = _d_dt(lambda s: torch.log(sde.marginal(s)[0]), t)
    torch.testing.assert_close(dlog_alpha, a, rtol=1e-9, atol=1e-9)
    v = sde.marginal(t)[1] ** 2
    dv = _d_dt(lambda s: sde.marginal(s)[1] ** 2, t)
    torch.testing.assert_close(dv, 2 * a * v + sde.g2(t), rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("name", NAMES)
def test_log_snr_derivative_and_inverse(name: str) -> None:
    """d lambda / dt = -g^2 / sigma^2 and t_from_log_snr inverts log_snr."""
    sde = SDES[name]
    t = torch.linspace(1e-4, sde.T, 57, dtype=torch.float64)
    lam = sde.log_snr(t)
    assert bool((lam.diff() < 0).all()), "log-SNR must decrease in t"
    dlam = _d_dt(sde.log_snr, t[:-1])
    sigma2 = sde.marginal(t[:-1])[1] ** 2
    torch.testing.assert_close(dlam, -sde.g2(t[:-1]) / sigma2, rtol=1e-7, atol=1e-7)
    torch.testing.assert_close(sde.t_from_log_snr(lam), t, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("name", ["vp_linear", "vp_cosine", "subvp", "ve"])
def test_float32_accuracy_near_zero(name: str) -> None:
    """Closed forms keep float32 relative accuracy at t = 1e-5 (expm1/log1p where it matters)."""
    sde = SDES[name]
    for t0 in (1e-5, 1e-3, 0.5):
        a32, s32 = sde.marginal(torch.tensor([t0], dtype=torch.float32))
        a64, s64 = sde.marginal(torch.tensor([t0], dtype=torch.float64))
        assert abs(float(a32.double() / a64) - 1) < 1e-6
        assert abs(float(s32.double() / s64) - 1) < 1e-5
        lam32 = sde.log_snr(torch.tensor([t0], dtype=torch.float32))
        assert (
            abs(float(lam32.double() - sde.log_snr(torch.tensor([t0], dtype=torch.float64)))) < 1e-4
        )
        t_back = sde.t_from_log_snr(lam32)
        assert abs(float(t_back) / t0 - 1) < 1e-5


@pytest.mark.parametrize("name", ["vp_linear", "subvp", "ve", "vp_cosine"])
def test_forward_euler_maruyama_matches_marginal(name: str) -> None:
    """Euler–Maruyama of dx = f dt + g dw (``sde.drift``, ``sde.diffusion``) reproduces
    alpha_t x0 and sigma_t^2 to O(dt). Its law is exact (affine in the noise: read off probe
    runs, no Monte Carlo), so 0.4% tells VP from sub-VP (2.7% apart at t = 0.6)."""
    sde, other = SDES[name], SDES["vp_linear" if name == "subvp" else "subvp"]
    t_end, n, x0 = 0.6 * sde.T, 2000, 1.5
    ts = torch.linspace(0, t_end, n + 1, dtype=torch.float64)

    def run(x, noise):
        x = x + x0
        for t0, t1 in zip(ts[:-1], ts[1:], strict=True):
            dt = float(t1 - t0)
            x = x + sde.drift(x, t0) * dt + sde.diffusion(t0) * math.sqrt(dt) * noise(x, t0, t1)
        return x

    mean, var = affine_law(run, n, 0.0, 0.0)
    alpha, sigma = (float(v) for v in sde.marginal(torch.tensor(t_end, dtype=torch.float64)))
    assert abs(mean / (alpha * x0) - 1) < 4e-3
    assert abs(var / sigma**2 - 1) < 4e-3
    if name != "ve":
        assert abs(var / float(other.marginal(torch.tensor(t_end))[1]) ** 2 - 1) > 0.02


def test_ddpm_chain_converges_to_continuous_alpha() -> None:
    """alpha_bar_{N-1} of the DDPM chain with beta_i = beta(t_i) / N tends to alpha_T^2."""
    sde = VPSDE()
    target = float(sde.marginal(torch.tensor(1.0, dtype=torch.float64))[0] ** 2)
    errors = []
    for N in (100, 1000, 10000):
        sched = DDPMSchedule.from_sde(sde, N, exact=False)
        errors.append(abs(math.log(float(sched.alpha_bars[-1])) - math.log(target)))
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 1e-2  # ~ (int beta^2 dt) / (2N) = 0.0077 at N = 10^4
    # first order in 1/N: the error shrinks by ~10 per decade of N
    assert 5 < errors[0] / errors[1] < 20


def test_ddpm_schedule_quantities() -> None:
    """Posterior coefficients and beta_tilde agree with Ho et al. (2020), Eq. 7."""
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    s = DDPMSchedule.from_betas(betas)
    ab = torch.cumprod(1 - betas, 0)
    torch.testing.assert_close(s.alpha_bars, ab, rtol=1e-12, atol=0)
    prev = torch.cat([torch.ones(1, dtype=torch.float64), ab[:-1]])
    torch.testing.assert_close(s.beta_tildes, (1 - prev) / (1 - ab) * betas)
    torch.testing.assert_close(s.posterior_coef_x0, prev.sqrt() * betas / (1 - ab))
    torch.testing.assert_close(s.posterior_coef_xt, (1 - betas).sqrt() * (1 - prev) / (1 - ab))
    torch.testing.assert_close(s.snr, ab / (1 - ab))
    # The posterior mean of x_{i-1} is consistent: E[x_{i-1}] = sqrt(ab_{i-1}) x0 for x_i's mean.
    mean_prev = s.posterior_coef_x0 + s.posterior_coef_xt * ab.sqrt()
    torch.testing.assert_close(mean_prev, prev.sqrt())
    exact = DDPMSchedule.from_sde(VPSDE(), 50, exact=True)
    alpha, _ = VPSDE().marginal(exact.times)
    torch.testing.assert_close(exact.alpha_bars, alpha**2)


def test_ve_discretize_is_smld_chain() -> None:
    """Summing the SMLD chain's variances recovers sigma_T^2 exactly."""
    sde = VESDE()
    N = 50
    ts = torch.arange(1, N + 1, dtype=torch.float64) / N
    x = torch.zeros(N, 2, dtype=torch.float64)
    f, G = sde.discretize(x, ts, 1.0 / N)
    assert float(f.abs().max()) == 0.0
    total = float((G**2).sum())
    assert abs(total - sde.prior_std**2) / sde.prior_std**2 < 1e-12


# VPSDE.discretize and the reverse / probability-flow objects are tested through their
# consequences in test_reference_sde.py (the chain's alpha_bar -> alpha_t^2, reverse-SDE and
# reverse-chain marginals, the PF-ODE's exact transport map), not by restating their formulas.


@pytest.mark.parametrize("name", ["vp_linear", "subvp", "ve"])
def test_prior(name: str) -> None:
    sde = SDES[name]
    gen = torch.Generator().manual_seed(1)
    z = sde.prior_sample((20000, 3), generator=gen, dtype=torch.float64)
    assert abs(float(z.std()) / sde.prior_std - 1) < 0.02
    lp = sde.prior_log_prob(z[:10])
    normal = torch.distributions.Normal(0.0, sde.prior_std)
    torch.testing.assert_close(lp, normal.log_prob(z[:10]).sum(1))
    img = sde.prior_sample((2, 1, 4, 4), generator=gen)
    assert sde.prior_log_prob(img).shape == (2,)


@pytest.mark.parametrize(
    "sde", [VPSDE(beta_max=15.0), VPSDE(schedule="cosine"), SubVPSDE(), VESDE(sigma_max=10.0)]
)
def test_config_round_trip(sde) -> None:
    again = sde_from_config(sde.config())
    t = torch.linspace(0.01, sde.T, 7, dtype=torch.float64)
    for a, b in zip(sde.marginal(t), again.marginal(t), strict=True):
        torch.testing.assert_close(a, b)


def test_perturb() -> None:
    sde = VPSDE()
    x0 = torch.randn(3, 2, dtype=torch.float64)
    noise = torch.randn(3, 2, dtype=torch.float64)
    t = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
    alpha, sigma = sde.marginal(t)
    torch.testing.assert_close(
        sde.perturb(x0, t, noise), alpha[:, None] * x0 + sigma[:, None] * noise
    )


def test_torch_func_transforms_over_time() -> None:
    """vmap/grad over t work: range checks are skipped inside torch.func transforms (they cannot
    read values) and still run on plain tensors."""
    sde = VPSDE()
    t = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
    sig = torch.func.vmap(lambda s: sde.marginal(s)[1])(t)
    torch.testing.assert_close(sig, sde.marginal(t)[1])
    dsig2 = torch.func.vmap(torch.func.grad(lambda s: sde.marginal(s)[1] ** 2))(t)
    a = sde.drift_coef(t)
    torch.testing.assert_close(dsig2, 2 * a * sde.marginal(t)[1] ** 2 + sde.g2(t))
    with pytest.raises(ValueError, match=r"expected times in \[0, 1\]"):
        sde.marginal(torch.tensor([1.5]))
