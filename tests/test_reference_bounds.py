"""The variational bounds of ``likelihood/bounds.py`` term by term, with tolerances far tighter
than a wrong formula (issue 23).

* ELBO (Song, Durkan, Murray & Ermon 2021, Thm. 2): a score field built so that the integrand
  g^2 (2 div s + |s|^2) - 2 div f equals a constant C at every (t, x) (|s|^2 = (C + 2 a D) / g^2
  with VP's a = -beta / 2, g^2 = beta written out), so every draw must equal
  log pi(x_T) - (T - t_eps) C / 2 to rounding; the x_T handed to the prior must have the law
  N(alpha_T x, sigma_T^2 I); and with s = 0 the time average must be D int a dt (scipy quad of
  a(t) by autograd from the marginal, ``tests/reference.py``).
* DDPM decoder (Ho et al. 2020, Eq. 13): an eps model that puts the reverse mean at a chosen
  mu*, and L_0 against the Gaussian's mass on each bin integrated by scipy's quad; the prior
  term L_T against torch.distributions' Gaussian KL.
"""

from __future__ import annotations

import math

import pytest
import torch
from scipy.integrate import quad
from scipy.stats import norm
from torch.distributions import Normal, kl_divergence

from scoresde.likelihood import ddpm_vlb, elbo
from scoresde.sde import VPSDE, DDPMSchedule

from .reference import schedule_coefs

F64 = torch.float64
SDE = VPSDE(beta_max=3.0)  # alpha_T^2 = 0.21: alpha_T and sigma_T both far from 0 and 1
D = 2


def _constant_integrand_score(C: float):
    """s(x, t) = q(t) (1, ..., 1) / sqrt(D) with q^2 = (C + 2 a D) / g^2, div s = 0."""

    def score_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        beta = 0.1 + (3.0 - 0.1) * t  # VP: a = -beta / 2, g^2 = beta (Song et al. Eq. 32)
        q = torch.sqrt((C - beta * D) / beta).to(x)
        return q[:, None].expand_as(x) / math.sqrt(D) + 0 * x

    return score_fn


@pytest.mark.parametrize("t_eps", [None, 0.3])
def test_elbo_draws_are_the_prior_term_minus_the_interval_times_the_integrand(t_eps) -> None:
    C = 3.0 * D + 1.0  # > beta_max D = max of -2 a D
    x = torch.full((500, D), 3.0, dtype=F64)
    x[:, 1] = -1.5
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def prior(z: torch.Tensor) -> torch.Tensor:
        value = -0.5 * (z**2).sum(1) - 3.0 * z[:, 0]
        seen.append((z.clone(), value))
        return value

    g = torch.Generator().manual_seed(0)
    res = elbo(SDE, _constant_integrand_score(C), x, n_samples=8, generator=g, t_eps=t_eps,
               prior_log_prob=prior)  # fmt: skip
    lo = SDE.eps if t_eps is None else t_eps
    want = torch.stack([v for _, v in seen]) - 0.5 * (SDE.T - lo) * C
    torch.testing.assert_close(res.per_draw, want, rtol=1e-10, atol=1e-9)
    # the prior is evaluated at x_T = alpha_T x + sigma_T z, z ~ N(0, I), a fresh z per draw
    alpha_T, sigma_T = (float(v) for v in SDE.marginal(torch.tensor(SDE.T, dtype=F64)))
    z = torch.stack([(x_T - alpha_T * x) / sigma_T for x_T, _ in seen])
    assert abs(float(z.mean())) < 0.05 and abs(float(z.var()) - 1) < 0.06, (z.mean(), z.var())
    assert abs(float((z[1:] * z[:-1]).mean())) < 0.05


def test_elbo_time_average_against_quadrature() -> None:
    """s = 0 leaves -1/2 (T - t_eps) (-2 a(t) D) per draw, whose mean is D int a dt."""
    t_eps, B = 0.3, 4000
    x = torch.zeros(B, D, dtype=F64)
    res = elbo(SDE, lambda y, t: 0 * y, x, n_samples=1, generator=torch.Generator().manual_seed(1),
               t_eps=t_eps, prior_log_prob=lambda z: torch.zeros(z.shape[0], dtype=F64))  # fmt: skip
    exact = D * quad(lambda s: float(schedule_coefs(SDE, torch.tensor(s))[0]), t_eps, SDE.T)[0]
    est, se = float(res.per_draw.mean()), float(res.per_draw.std() / math.sqrt(B))
    assert abs(est - exact) < 4 * se and se < 0.01 * abs(exact), (est, exact, se)


@pytest.mark.parametrize("variance", ["beta", "beta_tilde"])
def test_ddpm_decoder_term_is_the_gaussian_mass_of_the_bin(variance: str) -> None:
    levels, lo, hi = 8, -1.0, 1.0
    beta = 0.01
    sched = DDPMSchedule.from_betas([beta])
    k = torch.tensor([[0, 3], [7, 4], [1, 6], [5, 0]])
    y = lo + (hi - lo) * k.to(F64) / (levels - 1)
    mu_star = y + torch.tensor([[0.05, -0.12], [-0.2, 0.02], [0.13, 0.0], [-0.07, 0.3]], dtype=F64)

    def eps_fn(x_0: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        # Ho Eq. 11 inverted: (x_0 - beta / sqrt(1 - alpha_bar) eps) / sqrt(alpha) = mu*
        return math.sqrt(beta) / beta * (x_0 - math.sqrt(1 - beta) * mu_star)

    res = ddpm_vlb(sched, eps_fn, k, levels=levels, model_range=(lo, hi), variance=variance,
                   generator=torch.Generator().manual_seed(0))  # fmt: skip
    std, half = math.sqrt(beta), (hi - lo) / (2 * (levels - 1))
    want = torch.zeros(k.shape[0], dtype=F64)
    for b in range(k.shape[0]):
        for d in range(k.shape[1]):
            a = -math.inf if k[b, d] == 0 else float(y[b, d]) - half
            c = math.inf if k[b, d] == levels - 1 else float(y[b, d]) + half
            pdf = norm(float(mu_star[b, d]), std).pdf
            mass = quad(pdf, a, c, epsabs=0, epsrel=1e-13, points=None if math.isinf(a + c)
                        else [float(mu_star[b, d])])[0]  # fmt: skip
            want[b] -= math.log(mass)
    got = res.per_term[-1] * (k[0].numel() * math.log(2))
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)
    # the prior term L_T = KL(q(x_{N-1} | y) || N(0, I)), alpha_bar_{N-1} = 1 - beta here
    q_T = Normal(math.sqrt(1 - beta) * y, math.sqrt(beta))
    L_T = kl_divergence(q_T, Normal(0.0, 1.0)).sum(1)
    torch.testing.assert_close(res.per_term[0] * (2 * math.log(2)), L_T, rtol=1e-12, atol=1e-12)
