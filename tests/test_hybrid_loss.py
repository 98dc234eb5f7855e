"""The learned reverse variance and hybrid loss of Nichol & Dhariwal (2021)."""

from __future__ import annotations

import pytest
import torch

from scoresde.analytic import GaussianMixture
from scoresde.losses import HybridLoss, learned_log_variance
from scoresde.samplers.analytic_dpm import analytic_dpm_variances
from scoresde.sde import VPSDE, DDPMSchedule, index_to_time

F64 = torch.float64
N = 20


def _setup(step: int, n: int = 4000):
    sde = VPSDE()
    sched = DDPMSchedule.from_sde(sde, N, exact=True)
    mix = GaussianMixture([1.0], [[0.3, -0.2, 0.1]], [[0.3] * 3], sde=sde)
    g = torch.Generator().manual_seed(step)
    x0 = mix.sample(n, generator=g).to(F64)
    noise = torch.randn(x0.shape, generator=g, dtype=F64)
    t = index_to_time(torch.full((n,), step), N).to(F64)
    return sde, sched, mix, x0, noise, t


def test_interpolation_end_points() -> None:
    sched = DDPMSchedule.from_sde(VPSDE(), N, exact=True)
    i = torch.tensor([0, 5, N - 1])
    one, zero = torch.ones(3, 2, dtype=F64), torch.zeros(3, 2, dtype=F64)
    torch.testing.assert_close(learned_log_variance(sched, i, one)[:, 0], sched.betas[i].log())
    want = sched.beta_tildes[torch.tensor([1, 5, N - 1])].log()  # beta_tilde_0 clipped to _1
    torch.testing.assert_close(learned_log_variance(sched, i, zero)[:, 0], want)


@pytest.mark.parametrize("step", [2, 3])
def test_vlb_term_is_minimised_at_the_analytic_dpm_variance(step: int) -> None:
    """With the exact eps, the v minimising the sample L_vlb gives Sigma = beta_tilde +
    mean||mu_q - mu||^2 / D (zero gradient there, exactly), which is Analytic-DPM's v* for
    Gaussian data within Monte Carlo error."""
    sde, sched, mix, x0, noise, t = _setup(step)
    loss = HybridLoss(sched)
    c0 = sched.posterior_coef_x0[step]
    ab = sched.alpha_bars[step]
    x_i = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
    eps = mix.eps(x_i, t)
    x0_hat = (x_i - (1 - ab).sqrt() * eps) / ab.sqrt()
    sigma_opt = sched.beta_tildes[step] + (c0**2 * (x0 - x0_hat) ** 2).mean()
    lb, lbt = sched.betas[step].log(), sched.beta_tildes[step].log()
    v_opt = ((sigma_opt.log() - lbt) / (lb - lbt)).clone().requires_grad_(True)
    _, vlb = loss.parts(lambda x, s: (mix.eps(x, s), v_opt.expand_as(x)), x0, t, noise)
    (grad,) = torch.autograd.grad(vlb.mean(), v_opt)
    assert abs(float(grad)) < 1e-10
    # the exact Gaussian Gamma = 1 / (alpha^2 c + sigma^2) at the step's time, one-step grid
    grid = torch.stack(
        [index_to_time(torch.tensor(step), N), index_to_time(torch.tensor(step - 1), N)]
    )
    a, s = sde.marginal(grid[:1].to(F64))
    v_star = analytic_dpm_variances(sde, grid.to(F64), 1 / (a**2 * 0.3 + s**2))
    assert abs(float(sigma_opt / v_star[0]) - 1) < 0.05, (float(sigma_opt), float(v_star[0]))


def test_stop_gradient_on_the_mean() -> None:
    """The L_vlb term sends no gradient to eps_hat: d L_hybrid / d eps = d L_simple / d eps."""
    _, sched, mix, x0, noise, t = _setup(7, n=64)
    eps_out = torch.randn(x0.shape, dtype=F64, requires_grad=True)
    v = torch.full(x0.shape, 0.3, dtype=F64, requires_grad=True)
    loss = HybridLoss(sched, lam=0.5)
    simple, vlb = loss.parts(lambda x, s: (eps_out, v), x0, t, noise)
    (g_h,) = torch.autograd.grad((simple + 0.5 * N * vlb).mean(), eps_out, retain_graph=True)
    (g_s,) = torch.autograd.grad(simple.mean(), eps_out)
    torch.testing.assert_close(g_h, g_s, rtol=0, atol=0)
    (g_v,) = torch.autograd.grad(loss.terms(lambda x, s: (eps_out, v), x0, t, noise).mean(), v)
    assert float(g_v.abs().max()) > 0  # v is trained by the L_vlb term


def test_validation_messages() -> None:
    with pytest.raises(TypeError, match="HybridLoss needs a DDPMSchedule, received VPSDE"):
        HybridLoss(VPSDE())
    with pytest.raises(ValueError, match="expected lam >= 0, received -1"):
        HybridLoss(DDPMSchedule.from_sde(VPSDE(), N, exact=True), lam=-1)
