"""Likelihood-grade losses against values derived here by hand (issue 23).

* VDM (Kingma et al. 2021): each term of the bound for Gaussian data x ~ N(m, diag c) and the
  exact eps_hat = E[eps | z_t], in closed form. Per dimension, with SNR v = e^{-gamma}:
  prior = KL(N(alpha_1 x, sigma_1^2) || N(0, 1)) (torch.distributions), recon = E_eps[-log
  N(x; z_0 / alpha_0, e^{gamma_0})] (Gauss-Hermite, exact for the quadratic), and by the
  I-MMSE identity (x - x_hat = ((x - m) - c sqrt(v) n) / (1 + c v))

      L_inf(x) = 1/2 int_{v_1}^{v_0} E|x - x_hat|^2 dv
               = 1/2 [ (x - m)^2 / c (1/(1 + c v_1) - 1/(1 + c v_0))
                       + log((1 + c v_0) / (1 + c v_1)) + 1/(1 + c v_0) - 1/(1 + c v_1) ],

  so that E_x L(x) = H(x) + 1/2 log(1 + e^{gamma_0} / c) + KL(N(alpha_1 m, alpha_1^2 c +
  sigma_1^2) || N(0, 1)): the exact -log p(x) plus two gaps that vanish as gamma_0 -> -inf,
  gamma_1 -> inf. The library's one-sample diffusion term is integrated by Gauss-Legendre in t
  and exact two-point quadrature in eps.
* Hybrid loss (Nichol & Dhariwal 2021, Eq. 16): ``terms()`` on a 1-D, 5-step chain against
  L_simple + lambda N L_i computed from the betas with ``math.prod`` and torch.distributions
  (the KL for i >= 1, the Gaussian NLL with its log 2 pi for i = 0).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.distributions import Normal, kl_divergence

from scoresde.losses.hybrid import HybridLoss
from scoresde.losses.vdm import vdm_vlb
from scoresde.sde import DDPMSchedule
from scoresde.sde.learned import LearnedLogSNR

F64 = torch.float64
M = torch.tensor([0.5, -1.0], dtype=F64)  # data mean
C = torch.tensor([0.3, 0.8], dtype=F64)  # data variance per dimension


def _schedule() -> LearnedLogSNR:
    """A fixed, non-linear schedule with gamma_0 = -6 (a visible reconstruction gap)."""
    g = torch.Generator().manual_seed(5)
    return LearnedLogSNR(gamma_min=-6.0, gamma_max=4.0, init_scale=2.0, generator=g).double()


def _exact_eps(sched: LearnedLogSNR):
    """eps_hat(z, t) = E[eps | z_t = z] = sigma (z - alpha m) / (alpha^2 c + sigma^2)."""

    def eps_fn(z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        gamma = sched.gamma(t)[:, None]
        a2, s2 = torch.sigmoid(-gamma), torch.sigmoid(gamma)
        return s2.sqrt() * (z - a2.sqrt() * M) / (a2 * C + s2)

    return eps_fn


def _points() -> torch.Tensor:
    return torch.tensor([[0.5, -1.0], [2.0, 0.3], [-1.2, -2.5], [0.9, 1.4]], dtype=F64)


def _diffusion_integral(sched: LearnedLogSNR, x: torch.Tensor, n_t: int = 32) -> torch.Tensor:
    """E_{t ~ U(0,1), eps} of vdm_vlb's diffusion term per x: Gauss-Legendre in t (``n_t``
    nodes), nodes eps = +-1 in every dimension (exact: the term is quadratic in each eps_d)."""
    nodes, weights = np.polynomial.legendre.leggauss(n_t)
    eps_fn = _exact_eps(sched)
    total = torch.zeros(x.shape[0], dtype=F64)
    with torch.no_grad():
        for u, w in zip(nodes, weights):
            t = torch.full((x.shape[0],), 0.5 * (u + 1), dtype=F64)
            for sign in (1.0, -1.0):
                noise = torch.full_like(x, sign)
                d = vdm_vlb(eps_fn, sched, x, t, noise, variance_grad=False).diffusion
                total += 0.5 * w * 0.5 * d  # 0.5 * w: [-1, 1] -> [0, 1]; 0.5: two eps nodes
    return total


def _diffusion_closed_form(x: torch.Tensor, g0: float, g1: float) -> torch.Tensor:
    v0, v1 = math.exp(-g0), math.exp(-g1)
    p0, p1 = 1 / (1 + C * v0), 1 / (1 + C * v1)
    per_dim = 0.5 * ((x - M) ** 2 / C * (p1 - p0) + torch.log(p1 / p0) + p0 - p1)
    return per_dim.sum(1)


def test_vdm_terms_against_closed_forms_for_gaussian_data() -> None:
    sched = _schedule()
    g0, g1 = (float(v.detach()) for v in sched.ends(F64))
    x = _points()
    t = torch.full((x.shape[0],), 0.37, dtype=F64)
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(0), dtype=F64)
    with torch.no_grad():
        out = vdm_vlb(_exact_eps(sched), sched, x, t, noise, variance_grad=False)
    # prior: KL(q(z_1 | x) || N(0, I)) by torch.distributions
    a1, s1 = math.sqrt(1 / (1 + math.exp(g1))), math.sqrt(1 / (1 + math.exp(-g1)))
    prior = kl_divergence(Normal(a1 * x, s1), Normal(0.0, 1.0)).sum(1)
    torch.testing.assert_close(out.prior, prior, rtol=1e-12, atol=1e-12)
    # reconstruction: E_eps[-log N(x; z_0 / alpha_0, e^{gamma_0})], Gauss-Hermite in eps
    a0, s0 = math.sqrt(1 / (1 + math.exp(g0))), math.sqrt(1 / (1 + math.exp(-g0)))
    he_nodes, he_w = np.polynomial.hermite_e.hermegauss(3)
    recon = torch.zeros(x.shape[0], dtype=F64)
    for e, w in zip(he_nodes, he_w / math.sqrt(2 * math.pi)):
        z0 = a0 * x + s0 * float(e)
        recon -= w * Normal(z0 / a0, math.exp(0.5 * g0)).log_prob(x).sum(1)
    torch.testing.assert_close(out.recon, recon, rtol=1e-12, atol=1e-12)
    # diffusion: E over t and eps against the I-MMSE closed form (ends only)
    torch.testing.assert_close(
        _diffusion_integral(sched, x), _diffusion_closed_form(x, g0, g1), rtol=1e-10, atol=1e-10
    )


def test_vdm_bound_averaged_over_gaussian_data_is_the_entropy_plus_its_gaps() -> None:
    """E_x L(x) = H(x) + sum_d [1/2 log(1 + e^{gamma_0}/c) + KL(p(z_1) || N(0, 1))]: x on the
    nodes m +- sqrt(c) (exact: the bound is quadratic in x)."""
    sched = _schedule()
    g0, g1 = (float(v.detach()) for v in sched.ends(F64))
    x = torch.stack([M + C.sqrt(), M - C.sqrt()])
    t = torch.full((2,), 0.5, dtype=F64)
    with torch.no_grad():
        fixed = vdm_vlb(_exact_eps(sched), sched, x, t, torch.zeros_like(x), variance_grad=False)
    mean_bound = float((fixed.prior + fixed.recon + _diffusion_integral(sched, x)).mean())
    entropy = float((0.5 * torch.log(2 * math.pi * math.e * C)).sum())
    a1sq = 1 / (1 + math.exp(g1))
    marg_1 = Normal(math.sqrt(a1sq) * M, torch.sqrt(a1sq * C + (1 - a1sq)))
    gaps = (0.5 * torch.log1p(math.exp(g0) / C) + kl_divergence(marg_1, Normal(0.0, 1.0))).sum()
    assert abs(mean_bound - (entropy + float(gaps))) < 1e-8, (mean_bound, entropy, float(gaps))
    assert 0 < float(gaps) < 0.05  # the bound is the exact -log p(x) up to small, known gaps


# -- hybrid loss ---------------------------------------------------------------------------------
BETAS = [0.05, 0.1, 0.2, 0.3, 0.4]


def _eps_v(x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed (wrong) model: eps_hat = 0.7 x + 0.1 t, v = 0.25 + 0.5 t."""
    return 0.7 * x + 0.1 * t[:, None], (0.25 + 0.5 * t[:, None]).expand_as(x)


def _hybrid_by_hand(x0: float, noise: float, i: int, lam: float) -> float:
    n = len(BETAS)
    b = BETAS[i]
    ab = math.prod(1 - bj for bj in BETAS[: i + 1])
    ab_prev = math.prod(1 - bj for bj in BETAS[:i])
    t = (i + 1) / n
    x_i = math.sqrt(ab) * x0 + math.sqrt(1 - ab) * noise
    eps, v = 0.7 * x_i + 0.1 * t, 0.25 + 0.5 * t
    simple = (eps - noise) ** 2
    x0_hat = (x_i - math.sqrt(1 - ab) * eps) / math.sqrt(ab)
    c0 = math.sqrt(ab_prev) * b / (1 - ab)
    ct = math.sqrt(1 - b) * (1 - ab_prev) / (1 - ab)

    def beta_tilde(j: int) -> float:
        p, a = math.prod(1 - bk for bk in BETAS[:j]), math.prod(1 - bk for bk in BETAS[: j + 1])
        return (1 - p) / (1 - a) * BETAS[j]

    bt_clip = beta_tilde(max(i, 1))  # beta_tilde_0 = 0 is replaced by beta_tilde_1
    var = math.exp(v * math.log(b) + (1 - v) * math.log(bt_clip))
    mu_p = Normal(torch.tensor(c0 * x0_hat + ct * x_i, dtype=F64), math.sqrt(var))
    if i == 0:
        vlb = -float(mu_p.log_prob(torch.tensor(x0, dtype=F64)))
    else:
        q = Normal(torch.tensor(c0 * x0 + ct * x_i, dtype=F64), math.sqrt(beta_tilde(i)))
        vlb = float(kl_divergence(q, mu_p))
    return simple + lam * n * vlb


def test_hybrid_loss_value_on_a_one_dimensional_chain() -> None:
    sched = DDPMSchedule.from_betas(BETAS)
    x0 = torch.tensor([[0.8], [-1.3], [0.2], [1.7], [-0.4]], dtype=F64)
    noise = torch.tensor([[0.3], [-1.1], [2.0], [-0.6], [0.9]], dtype=F64)
    steps = [0, 1, 2, 3, 4]
    t = torch.tensor([(i + 1) / len(BETAS) for i in steps], dtype=F64)
    for lam in (1e-3, 0.5):
        got = HybridLoss(sched, lam=lam).terms(_eps_v, x0, t, noise)
        want = torch.tensor(
            [_hybrid_by_hand(float(x0[j]), float(noise[j]), i, lam) for j, i in enumerate(steps)],
            dtype=F64,
        )
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
