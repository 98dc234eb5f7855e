"""The analytic Gaussian mixture: exact score, denoiser and densities under every linear SDE."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

from scoresde.analytic import GaussianMixture
from scoresde.sde import VPSDE

from .helpers import all_sdes, random_spd

SDES = all_sdes()


def _mixture(d: int, k: int = 3, diagonal: bool = False, seed: int = 0) -> GaussianMixture:
    gen = torch.Generator().manual_seed(seed)
    w = torch.rand(k, generator=gen, dtype=torch.float64) + 0.2
    means = 2 * torch.randn(k, d, generator=gen, dtype=torch.float64)
    if diagonal:
        cov = 0.2 + torch.rand(k, d, generator=gen, dtype=torch.float64)
    else:
        cov = random_spd(k, d, gen)
    return GaussianMixture(w / w.sum(), means, cov)


@pytest.mark.parametrize("name", sorted(SDES))
@pytest.mark.parametrize("diagonal", [False, True])
def test_score_is_gradient_of_marginal_log_prob(name: str, diagonal: bool) -> None:
    gm = _mixture(4, diagonal=diagonal).with_sde(SDES[name])
    gen = torch.Generator().manual_seed(1)
    x = 2 * torch.randn(16, 4, generator=gen, dtype=torch.float64)
    t = torch.linspace(0.01, gm.sde.T, 16, dtype=torch.float64)
    x.requires_grad_(True)
    (grad,) = torch.autograd.grad(gm.marginal_log_prob(x, t).sum(), x)
    torch.testing.assert_close(gm.score(x.detach(), t), grad, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", sorted(SDES))
def test_tweedie_and_eps(name: str) -> None:
    """denoise = (x + sigma^2 score) / alpha (Tweedie) and eps = -sigma score."""
    gm = _mixture(3).with_sde(SDES[name])
    x = torch.randn(10, 3, dtype=torch.float64)
    t = torch.linspace(0.02, gm.sde.T * 0.9, 10, dtype=torch.float64)
    alpha, sigma = gm.sde.marginal(t)
    s = gm.score(x, t)
    torch.testing.assert_close(gm.denoise(x, t), (x + sigma[:, None] ** 2 * s) / alpha[:, None])
    torch.testing.assert_close(gm.eps(x, t), -sigma[:, None] * s)
    torch.testing.assert_close(gm(x, t), s)


def test_denoiser_is_posterior_mean_by_monte_carlo() -> None:
    """E[x0 | x_t] estimated by binning joint samples agrees with the closed form (1-D)."""
    sde = VPSDE()
    gm = GaussianMixture([0.4, 0.6], [[-2.0], [1.5]], [[0.3], [0.5]], sde=sde)
    gen = torch.Generator().manual_seed(0)
    x0 = gm.sample(400_000, gen)
    t = 0.4
    xt = sde.perturb(
        x0,
        torch.tensor(t, dtype=torch.float64),
        torch.randn(x0.shape, generator=gen, dtype=torch.float64),
    )
    centre = torch.tensor([[0.0]], dtype=torch.float64)
    near = (xt - centre).abs()[:, 0] < 0.02
    mc = float(x0[near].mean())
    exact = float(gm.denoise(centre, t))
    assert abs(mc - exact) < 4 * float(x0[near].std()) / math.sqrt(int(near.sum())) + 0.01


def test_marginal_log_prob_tends_to_log_prob() -> None:
    gm = _mixture(3).with_sde(VPSDE())
    x = torch.randn(20, 3, dtype=torch.float64)
    exact = gm.log_prob(x)
    errs = [float((gm.marginal_log_prob(x, t) - exact).abs().max()) for t in (1e-2, 1e-3, 1e-4)]
    assert errs[0] > errs[1] > errs[2] and errs[2] < 1e-3
    torch.testing.assert_close(gm.marginal_log_prob(x, 0.0), exact)


def test_log_prob_matches_scipy() -> None:
    gm = _mixture(3, k=2)
    x = torch.randn(50, 3, dtype=torch.float64)
    dens = sum(
        float(w) * multivariate_normal(m.numpy(), c.numpy()).pdf(x.numpy())
        for w, m, c in zip(gm.weights, gm.means, gm.covariances, strict=True)
    )
    np.testing.assert_allclose(gm.log_prob(x).numpy(), np.log(dens), rtol=1e-10)


def test_marginal_mixture_is_p_t() -> None:
    gm = _mixture(3).with_sde(VPSDE())
    x = torch.randn(20, 3, dtype=torch.float64)
    torch.testing.assert_close(gm.marginal_mixture(0.7).log_prob(x), gm.marginal_log_prob(x, 0.7))


@pytest.mark.parametrize("diagonal", [False, True])
def test_sample_moments(diagonal: bool) -> None:
    gm = _mixture(3, diagonal=diagonal)
    x = gm.sample(200_000, torch.Generator().manual_seed(3))
    cov = gm.covariance
    se = torch.sqrt(torch.diagonal(cov) / x.shape[0])
    assert bool(((x.mean(0) - gm.mean).abs() < 5 * se).all())
    # entries of the sample covariance have standard error ~ sqrt((c_ii c_jj + c_ij^2) / n)
    se_cov = torch.sqrt(
        (torch.outer(torch.diagonal(cov), torch.diagonal(cov)) + cov**2) / x.shape[0]
    )
    assert bool(((torch.cov(x.T) - cov).abs() < 6 * se_cov + 1e-3).all())
    a = gm.sample(7, torch.Generator().manual_seed(4))
    torch.testing.assert_close(a, gm.sample(7, torch.Generator().manual_seed(4)))


def test_float32_matches_float64() -> None:
    gm = _mixture(5).with_sde(VPSDE())
    x = torch.randn(100, 5, dtype=torch.float64)
    t = torch.rand(100, dtype=torch.float64) * 0.9 + 0.05
    s64 = gm.score(x, t)
    s32 = gm.score(x.float(), t.float())
    assert s32.dtype == torch.float32
    assert float((s32.double() - s64).abs().max() / s64.abs().max()) < 1e-4


def test_large_batch_high_dimension() -> None:
    """1e5 points in d = 200 go through in chunks (bounded memory)."""
    d, k = 200, 4
    gen = torch.Generator().manual_seed(0)
    gm = GaussianMixture(
        torch.full((k,), 1 / k),
        torch.randn(k, d, generator=gen),
        0.5 + torch.rand(k, d, generator=gen),
        sde=VPSDE(),
    )
    x = torch.randn(100_000, d, generator=gen)
    s = gm.score(x, 0.3)
    assert s.shape == x.shape and bool(torch.isfinite(s).all())
    lp = gm.marginal_log_prob(x, 0.3)
    assert lp.shape == (100_000,)


def test_image_event_shape() -> None:
    gm = GaussianMixture(
        [1.0], torch.zeros(1, 16), torch.ones(1, 16), sde=VPSDE(), event_shape=(1, 4, 4)
    )
    x = gm.sample(3, dtype=torch.float32)
    assert x.shape == (3, 1, 4, 4)
    assert gm.score(x, 0.5).shape == (3, 1, 4, 4)
    # standard normal data under VP: p_t = N(0, I) at every t, so score = -x
    torch.testing.assert_close(gm.score(x, 0.5), -x, rtol=1e-5, atol=1e-5)
