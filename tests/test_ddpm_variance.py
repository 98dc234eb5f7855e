"""The reverse variance of DDPM ancestral sampling: beta, beta_tilde, Analytic-DPM and learned v.

Identities (draw for draw): v = 0 is beta_tilde and v = 1 is beta on any (respaced) grid; the
respaced chain is improved DDPM's; Analytic-DPM's v* on a 1-D mixture equals Bao et al.'s
Theorem 1 and the posterior-covariance form, both evaluated by quadrature of the exact density.
"""

from __future__ import annotations

import math

import pytest
import torch

from scoresde.analytic import GaussianMixture
from scoresde.likelihood import ddpm_vlb
from scoresde.losses import learned_log_variance
from scoresde.parameterization import EpsVModel
from scoresde.samplers import sample, sample_ddpm
from scoresde.samplers.analytic_dpm import (
    analytic_dpm_chain_variances,
    analytic_dpm_variances,
)
from scoresde.samplers.reverse_sde import ddpm_table, sample_analytic_ddpm
from scoresde.sde import VPSDE, DDPMSchedule, index_to_time

F64 = torch.float64
LN2 = math.log(2)
N_TRAIN = 1000
KEPT = torch.tensor([999, 870, 700, 512, 300, 120, 40, 9, 0])  # a respaced subset, decreasing


def _mixture(sde: VPSDE) -> GaussianMixture:
    return GaussianMixture(
        [0.3, 0.7], [[-1.0, 0.5], [1.2, -0.4]], [[0.05, 0.2], [0.1, 0.03]], sde=sde
    )


def _respaced_grid() -> torch.Tensor:
    return index_to_time(KEPT, N_TRAIN).to(F64)


@pytest.mark.parametrize(("v", "fixed"), [(0.0, "beta_tilde"), (1.0, "beta")])
def test_learned_v_at_its_ends_is_beta_tilde_and_beta(v: float, fixed: str) -> None:
    sde = VPSDE()
    mix, grid = _mixture(sde), _respaced_grid()
    x_T = torch.randn(256, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    a, info = sample_ddpm(sde, mix.score, x_T, grid, variance="learned",
                          v_fn=lambda x, t: torch.full_like(x, v),
                          generator=torch.Generator().manual_seed(1))  # fmt: skip
    b, _ = sample_ddpm(sde, mix.score, x_T, grid, variance=fixed,
                       generator=torch.Generator().manual_seed(1))  # fmt: skip
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert info.nfe == len(KEPT) - 1


def test_respaced_chain_is_improved_ddpms_and_v_interpolates_its_pair() -> None:
    """beta'_k = 1 - alpha_bar[S_k] / alpha_bar[S_{k-1}] over the kept steps S (Nichol &
    Dhariwal 2021, Sec. 4; alpha_bar_{-1} = 1), and per element Sigma = beta'^v beta_tilde'^(1-v)."""
    sde = VPSDE()
    train = DDPMSchedule.from_sde(sde, N_TRAIN, exact=True)
    ab = train.alpha_bars[KEPT.flip(0)]  # ascending times
    betas = 1 - ab / torch.cat([ab.new_ones(1), ab[:-1]])
    respaced = DDPMSchedule.from_betas(betas)
    table = ddpm_table(sde, _respaced_grid())
    torch.testing.assert_close(table.betas, respaced.betas, rtol=1e-10, atol=0)
    torch.testing.assert_close(table.beta_tildes, respaced.beta_tildes, rtol=1e-10, atol=0)
    # one step from kept index 512 to 300, score 0 and x_T = 0: the sample is sqrt(Sigma) z
    k = 3
    pair = _respaced_grid()[k : k + 2]
    zero = torch.zeros(4096, 2, dtype=F64)
    v = torch.tensor([0.25, 0.8], dtype=F64)
    out, _ = sample_ddpm(sde, lambda x, t: torch.zeros_like(x), zero, pair, variance="learned",
                         v_fn=lambda x, t: v.expand_as(x),
                         generator=torch.Generator().manual_seed(2))  # fmt: skip
    ref, _ = sample_ddpm(sde, lambda x, t: torch.zeros_like(x), zero, pair, variance="beta",
                         generator=torch.Generator().manual_seed(2))  # fmt: skip
    j = len(KEPT) - 1 - k  # the step's index in the respaced table
    b, bt = respaced.betas[j], respaced.beta_tildes[j]
    assert float(bt / b) < 0.9  # the pair differs here
    want = torch.exp(0.5 * (v * b.log() + (1 - v) * bt.log())) / b.sqrt()
    torch.testing.assert_close(out, ref * want, rtol=1e-10, atol=1e-14)


def _quadrature_terms(sde: VPSDE, t: float):
    """Gamma_t and E tr Cov(x0 | x_t) / D of a 1-D mixture by quadrature of the exact density."""
    w = torch.tensor([0.35, 0.65], dtype=F64)
    mu, c = torch.tensor([-1.0, 0.8], dtype=F64), torch.tensor([0.02, 0.09], dtype=F64)
    alpha, sigma = (v.to(F64) for v in sde.marginal(torch.tensor(t, dtype=F64)))
    var = alpha**2 * c + sigma**2
    x = torch.linspace(-8, 8, 400_001, dtype=F64)[:, None]
    comp = w * torch.exp(-((x - alpha * mu) ** 2) / (2 * var)) / torch.sqrt(2 * math.pi * var)
    q = comp.sum(1)
    r = comp / q[:, None]  # responsibilities
    score = (r * (-(x - alpha * mu) / var)).sum(1)
    post_var = 1 / (1 / c + alpha**2 / sigma**2)  # x0 | x_t, component k
    post_mean = post_var * (mu / c + alpha * x / sigma**2)
    m = (r * post_mean).sum(1)
    cov = (r * (post_var + post_mean**2)).sum(1) - m**2
    dx = float(x[1] - x[0])
    return float((q * score**2).sum() * dx), float((q * cov).sum() * dx)


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_analytic_dpm_is_the_closed_form_optimal_variance_on_a_mixture(schedule: str) -> None:
    """v* from Gamma_t (quadrature) equals Bao et al.'s Theorem 1 written in their notation and
    beta_tilde + c_x0^2 E tr Cov(x0 | x_t) / D from the exact mixture posterior."""
    sde = VPSDE(schedule=schedule)
    grid = torch.tensor([0.9, 0.6, 0.35, 0.2, 0.08, 0.02], dtype=F64) * sde.T
    terms = [_quadrature_terms(sde, float(t)) for t in grid[:-1]]
    gamma = torch.tensor([g for g, _ in terms], dtype=F64)
    cov = torch.tensor([c for _, c in terms], dtype=F64)
    v_star = analytic_dpm_variances(sde, grid, gamma)
    a, s = sde.marginal(grid)
    a_t, a_s, s2_t, s2_s = a[:-1], a[1:], s[:-1] ** 2, s[1:] ** 2
    # Bao et al. (2022), Thm. 1 with lambda_n^2 = beta_tilde_n, alpha_n = abar_n / abar_{n-1}
    abar_n, abar_p = a_t**2, a_s**2
    lam2 = (1 - abar_p) / (1 - abar_n) * (1 - abar_n / abar_p)
    bao = lam2 + (torch.sqrt(s2_t / (abar_n / abar_p)) - torch.sqrt(s2_s - lam2)) ** 2 * (
        1 - s2_t * gamma
    )
    torch.testing.assert_close(v_star, bao, rtol=1e-10, atol=0)
    c_x0 = a_s * (s2_t - (a_t / a_s) ** 2 * s2_s) / s2_t
    posterior = lam2 + c_x0**2 * cov
    torch.testing.assert_close(v_star, posterior, rtol=1e-6, atol=0)
    assert bool((v_star > 1.5 * lam2).any())  # the covariance term matters at some steps


def test_analytic_sampling_through_the_registry_and_gaussian_decoder_variance() -> None:
    sde = VPSDE()
    mix, grid = _mixture(sde), _respaced_grid()
    gamma = torch.linspace(0.5, 3.0, len(grid) - 1, dtype=F64)
    x_T = torch.randn(64, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    a, _ = sample("ddpm", sde, mix.score, x_T, grid, variance="analytic", gamma=gamma,
                  generator=torch.Generator().manual_seed(1))  # fmt: skip
    b, _ = sample_analytic_ddpm(sde, mix.score, x_T, grid, gamma=gamma,
                                generator=torch.Generator().manual_seed(1))  # fmt: skip
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    # decoder step of a chain (alpha_bar_{-1} = 1): v*_0 = Var(x0 | x_0) for N(mu, c) data
    table, c = DDPMSchedule.from_sde(sde, 20, exact=True), 0.3
    ab = table.alpha_bars
    v = analytic_dpm_chain_variances(table, 1 / (ab * c + 1 - ab))
    torch.testing.assert_close(v[0], c * (1 - ab[0]) / (ab[0] * c + 1 - ab[0]), rtol=1e-12, atol=0)


def test_ddpm_vlb_at_the_analytic_variance_has_its_closed_form_kl() -> None:
    """Gaussian data, exact eps: with Sigma_i = v*_i every KL term's mean is 1/2 log(v* /
    beta_tilde) (the minimum over Sigma), below both fixed choices; a tensor of betas and a
    var_fn of learned v = 1 reproduce variance='beta' draw for draw."""
    s0, n, N = 0.2**2, 3000, 10
    gm = GaussianMixture([1.0], [[0.05, -0.05]], [[s0, s0]], sde=VPSDE())
    sch = DDPMSchedule.from_sde(gm.sde, N, exact=True)
    k = ((gm.sample(n, torch.Generator().manual_seed(5)).clamp(-1, 1) + 1) * 127.5).round()

    def eps_fn(x_i, i):
        return gm.eps(x_i, sch.times[i].to(F64))

    ab = sch.alpha_bars
    v_star = analytic_dpm_chain_variances(sch, 1 / (ab * s0 + 1 - ab))

    def vlb(variance):
        return ddpm_vlb(
            sch, eps_fn, k, variance=variance, generator=torch.Generator().manual_seed(6)
        )

    res = vlb(v_star)
    i = torch.arange(N - 1, 0, -1)
    kl = 0.5 * torch.log(v_star[i] / sch.beta_tildes[i]) / LN2
    rows = res.per_term[1:N]
    se = rows.std(1) / n**0.5
    assert bool(((rows.mean(1) - kl).abs() < 5 * se + 1e-9).all()), (rows.mean(1) - kl) / se
    for fixed in ("beta", "beta_tilde"):
        assert float(res.bpd.mean()) < float(vlb(fixed).bpd.mean())
    beta = vlb("beta").bpd
    torch.testing.assert_close(vlb(sch.betas).bpd, beta, rtol=1e-12, atol=0)
    learned = vlb(lambda x, i: learned_log_variance(sch, i, torch.ones_like(x)).exp())
    torch.testing.assert_close(learned.bpd, beta, rtol=1e-10, atol=0)


class _Counting(torch.nn.Module):
    """eps = a x + b t and v = 0.5 + 0.1 x, as one (B, 2D) output; counts its calls."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return torch.cat([0.3 * x + t[:, None], 0.5 + 0.1 * x], dim=1)


def test_eps_v_model_evaluates_once_per_step() -> None:
    sde = VPSDE()
    net = _Counting()
    model = EpsVModel(net, sde)
    x_T = torch.randn(32, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    grid = _respaced_grid()
    x, info = sample_ddpm(sde, model.score_fn, x_T, grid, variance="learned", v_fn=model.v_fn,
                          generator=torch.Generator().manual_seed(1))  # fmt: skip
    assert net.calls == info.nfe == len(grid) - 1
    assert bool(torch.isfinite(x).all())
    t = torch.full((32,), 0.4, dtype=F64)
    eps, v = model(x_T, t)
    torch.testing.assert_close(eps, 0.3 * x_T + 0.4)
    torch.testing.assert_close(v, 0.5 + 0.1 * x_T)
    _, sigma = sde.marginal(t)
    torch.testing.assert_close(model.score_fn(x_T, t), -eps / sigma[:, None])
    y, _ = sample("ddpm", sde, model.score_fn, x_T, 8, variance="learned", v_fn=model.v_fn)
    assert y.shape == x_T.shape


def test_validation_messages() -> None:
    sde, grid = VPSDE(), _respaced_grid()
    mix, x_T = _mixture(sde), torch.zeros(4, 2, dtype=F64)
    with pytest.raises(ValueError, match="unknown variance 'optimal'; expected one of"):
        sample_ddpm(sde, mix.score, x_T, grid, variance="optimal")
    with pytest.raises(TypeError, match="gamma goes with variance='analytic'.*received variance="):
        sample_ddpm(sde, mix.score, x_T, grid, variance="analytic")
    with pytest.raises(TypeError, match="v_fn goes with variance='learned'.*v_fn=function"):
        sample_ddpm(sde, mix.score, x_T, grid, v_fn=lambda x, t: x)
    with pytest.raises(TypeError, match="expected a callable v_fn"):
        sample_ddpm(sde, mix.score, x_T, grid, variance="learned", v_fn=3)
    with pytest.raises(ValueError, match=r"v_fn's output shaped like x \(4, 2\), received \(4,\)"):
        sample_ddpm(sde, mix.score, x_T, grid, variance="learned", v_fn=lambda x, t: t)
    with pytest.raises(TypeError, match="EpsVModel: expected a VPSDE, received VESDE"):
        from scoresde.sde import VESDE

        EpsVModel(_Counting(), VESDE())
    with pytest.raises(ValueError, match=r"twice its channels, received \(4, 3\)"):
        EpsVModel(lambda x, t: torch.zeros(4, 3), sde)(x_T, torch.ones(4))
    sch = DDPMSchedule.from_sde(sde, 5, exact=True)
    k = torch.zeros(3, 2)
    with pytest.raises(ValueError, match=r"variance of shape \(5,\) with finite positive"):
        ddpm_vlb(sch, lambda x, i: x, k, variance=torch.ones(4))
    with pytest.raises(ValueError, match="var_fn to return finite positive variances"):
        ddpm_vlb(sch, lambda x, i: x, k, variance=lambda x, i: -torch.ones_like(x))
    with pytest.raises(TypeError, match="expected a DDPMSchedule, received VPSDE"):
        analytic_dpm_chain_variances(sde, torch.ones(5))
    with pytest.raises(ValueError, match=r"expected gamma of shape \(5,\), received \(4,\)"):
        analytic_dpm_chain_variances(sch, torch.ones(4))
