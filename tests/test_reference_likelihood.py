"""Likelihood corners against closed forms.

* Bits/dim of discrete data: for a 1-D Gaussian model and uniform dequantization, the expected
  bound E_U[-log2 p(y)] - log2(cell volume) is closed-form (E[(y - m)^2] over a cell), and it
  lies above the exact -log2 P(k) (Jensen: the direction of the bound).
* A sample's ``log_likelihood`` does not depend on the rest of its batch (to the solver
  tolerance).
* The continuous ELBO is tight for the exact score and prior on sub-VP and VE too.
* ``ddpm_vlb`` on Gaussian data with the exact eps: every KL term has the closed-form mean
  1/2 (log(v / bt) + (bt + c0^2 P) / v - 1) per dim, P = Var(x_0 | x_i), for v = beta and for
  v = beta_tilde; the decoder term is 1/2 log(2 pi v_0) + P_0 / (2 v_0) - log(bin) per dim.
"""

from __future__ import annotations

import math

import pytest
import torch
from scipy.stats import norm

from scoresde import VPSDE, GaussianMixture, SubVPSDE
from scoresde.likelihood import ddpm_vlb, dequantized_bits_per_dim, elbo, log_likelihood
from scoresde.sde import DDPMSchedule

from .test_samplers_common import make_sdes, mixture

F64 = torch.float64
LN2 = math.log(2)


def test_bits_per_dim_of_a_known_discrete_distribution_and_the_bound_direction() -> None:
    m, s, levels, lo, hi = 0.1, 0.25, 17, -1.0, 1.0
    gm = GaussianMixture([1.0], [[m]], [[s**2]])
    k = torch.arange(4, 13, dtype=F64)[:, None]  # cells away from the open edge bins
    a, b = lo + (hi - lo) * k / levels, lo + (hi - lo) * (k + 1) / levels  # cell edges
    exact_p = torch.tensor(norm.cdf((b.numpy() - m) / s) - norm.cdf((a.numpy() - m) / s))[:, 0]
    mean_sq = ((b - m) ** 3 - (a - m) ** 3) / (3 * (b - a))  # E[(y - m)^2], y ~ U(a, b)
    e_log_p = -0.5 * math.log(2 * math.pi * s**2) - mean_sq / (2 * s**2)
    expected = (-(e_log_p[:, 0] + math.log((hi - lo) / levels)) / LN2).to(F64)
    res = dequantized_bits_per_dim(gm.log_prob, k.long(), levels=levels, model_range=(lo, hi),
                                   n_draws=4000, generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert bool(((res.bpd - expected).abs() < 4 * res.stderr).all()), (res.bpd, expected)
    assert bool((expected > -torch.log2(exact_p)).all())  # an upper bound on -log2 P(k)...
    assert float((expected + torch.log2(exact_p)).max()) < 0.1  # ...and close (cells of 0.47 s)


@pytest.mark.parametrize("sde_name", ["vp", "ve"])
def test_log_likelihood_of_a_sample_does_not_depend_on_its_batch(sde_name: str) -> None:
    sde = make_sdes()[sde_name]
    gm = mixture(sde)
    x = gm.sample(8, torch.Generator().manual_seed(1))
    x[0] = 4 * x[0]  # an outlier in the batch: the others must not pay for its steps
    kw = {"rtol": 1e-5, "atol": 1e-5}  # the defaults
    full = log_likelihood(sde, gm, x, **kw).log_prob
    alone = log_likelihood(sde, gm, x[4:5], **kw).log_prob
    torch.testing.assert_close(alone, full[4:5], rtol=0, atol=2e-5)


@pytest.mark.parametrize("sde", [SubVPSDE(), make_sdes()["ve"]], ids=["subvp", "ve"])
def test_elbo_is_tight_on_subvp_and_ve(sde) -> None:
    gm = GaussianMixture([0.5, 0.5], [[0.3] * 3, [-0.3] * 3], torch.full((2, 3), 0.15**2), sde=sde)
    x = gm.sample(64, torch.Generator().manual_seed(3))
    res = elbo(sde, gm, x, n_samples=16, generator=torch.Generator().manual_seed(4),
               prior_log_prob=gm.marginal_mixture(sde.T).log_prob)  # fmt: skip
    gap = gm.log_prob(x) - res.elbo
    se = float(res.stderr.pow(2).mean().sqrt()) / 8
    assert abs(float(gap.mean())) < 4 * se, (float(gap.mean()), se)

    # A constant score error +-delta costs J_SM = 1/2 delta^2 D int g^2 dt on average (Song,
    # Durkan, Murray & Ermon 2021, Thm. 1); int g^2 dt = [sigma^2 - 2 int a sigma^2]: closed
    # forms below. The +-delta pair (common random numbers) cancels the cross term.
    def bound(delta: float) -> torch.Tensor:
        return elbo(sde, lambda y, t: gm(y, t) + delta, x, n_samples=16,
                    generator=torch.Generator().manual_seed(4),
                    prior_log_prob=gm.marginal_mixture(sde.T).log_prob).elbo  # fmt: skip

    ends = torch.tensor([sde.eps, sde.T], dtype=F64)
    if isinstance(sde, SubVPSDE):  # g^2 = beta (1 - e^{-2B}): int = [B + e^{-2B} / 2]
        B = sde.schedule.integral(ends)
        int_g2 = float((B + 0.5 * torch.exp(-2 * B)).diff())
    else:  # VE: g^2 = d sigma_t^2 / dt
        int_g2 = float((sde.marginal(ends)[1] ** 2).diff())
    j_sm = 0.5 * 0.3**2 * 3 * int_g2
    measured = float((2 * res.elbo - bound(0.3) - bound(-0.3)).mean()) / 2
    assert abs(measured / j_sm - 1) < 0.05, (measured, j_sm)


@pytest.mark.parametrize("variance", ["beta", "beta_tilde"])
def test_ddpm_vlb_terms_have_their_closed_form_means(variance: str) -> None:
    s0, n, N = 0.2**2, 3000, 10  # few steps: beta_0 and beta_tilde_1 differ (0.10, 0.08)
    gm = GaussianMixture([1.0], [[0.05, -0.05]], [[s0, s0]], sde=VPSDE())
    sch = DDPMSchedule.from_sde(gm.sde, N, exact=True)
    k = ((gm.sample(n, torch.Generator().manual_seed(5)).clamp(-1, 1) + 1) * 127.5).round()

    def eps_fn(x_i, i):  # the exact E[eps | x_i] of the chain's Gaussian marginals
        return gm.eps(x_i, sch.times[i].to(F64))

    res = ddpm_vlb(sch, eps_fn, k, variance=variance, generator=torch.Generator().manual_seed(6))
    ab, bt, c0 = sch.alpha_bars, sch.beta_tildes, sch.posterior_coef_x0
    P = s0 * (1 - ab) / (ab * s0 + 1 - ab)  # Var(x_0 | x_i) per dim
    v = sch.betas.clone() if variance == "beta" else bt.clone()
    if variance == "beta_tilde":
        v[0] = bt[1]  # the decoder takes beta_tilde_1 (improved-diffusion's convention)
    i = torch.arange(N - 1, 0, -1)  # rows 1..N-1 of per_term are steps N-1, ..., 1
    kl = 0.5 * (torch.log(v[i] / bt[i]) + (bt[i] + c0[i] ** 2 * P[i]) / v[i] - 1) / LN2
    rows = res.per_term[1:N]
    se = rows.std(1) / n**0.5
    assert bool(((rows.mean(1) - kl).abs() < 5 * se + 1e-9).all()), (rows.mean(1) - kl) / se
    dec = (0.5 * torch.log(2 * math.pi * v[0]) + P[0] / (2 * v[0]) - math.log(2 / 255)) / LN2
    last = res.per_term[N]
    assert abs(float(last.mean() - dec)) < 5 * float(last.std()) / n**0.5 + 2e-3, (last.mean(), dec)
    total_se = float(res.per_term[1:].sum(0).std()) / n**0.5
    closed = float(kl.sum() + dec + res.per_term[0].mean())
    assert abs(float(res.bpd.mean()) - closed) < 5 * total_se + 2e-3
