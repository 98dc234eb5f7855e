"""Losses: the DSM identity with an exact score, unbiased importance sampling, DDPM, SMLD."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scoresde.analytic import GaussianMixture
from scoresde.losses import WEIGHTINGS, DDPMLoss, DSMLoss, SMLDLoss, dsm_loss, get_loss
from scoresde.nets import UNet
from scoresde.parameterization import PREDICTS, ScoreModel, convert
from scoresde.sde import VESDE, VPSDE, DDPMSchedule, SubVPSDE

from .reference import schedule_coefs

# A single correlated Gaussian N(mu, Sigma) in 2-D: E||eps_hat* - eps||^2 at time t is
# tr Cov(eps | x_t) = sum_i alpha^2 s_i / (alpha^2 s_i + sigma^2), s_i the eigenvalues of Sigma.
MU = [[0.5, -1.0]]
COV = [[[1.0, 0.6], [0.6, 0.8]]]
EIG = np.linalg.eigvalsh(np.array(COV[0]))
SDES = {
    "vp": lambda: VPSDE(eps=1e-3),
    "subvp": lambda: SubVPSDE(eps=1e-3),
    "ve": lambda: VESDE(sigma_min=0.01, sigma_max=10.0, eps=1e-3),
}


def exact_model(sde, predicts="eps"):
    gm = GaussianMixture([1.0], MU, COV, sde=sde)

    def net(x, c):
        alpha, sigma = sde.marginal(c)
        return convert(gm.eps(x, c), x, alpha, sigma, "eps", predicts)

    return gm, ScoreModel(net, sde, predicts=predicts)


def irreducible(sde, t):
    alpha, sigma = (v.numpy() for v in sde.marginal(torch.as_tensor(t, dtype=torch.float64)))
    a2s = alpha[..., None] ** 2 * EIG
    return (a2s / (a2s + sigma[..., None] ** 2)).sum(-1)


def mean_and_se(terms):
    return float(terms.mean()), float(terms.std() / np.sqrt(terms.numel()))


@pytest.mark.parametrize("sde_name", sorted(SDES))
@pytest.mark.parametrize("predicts", PREDICTS)
def test_dsm_identity_at_fixed_t(sde_name, predicts):
    sde = SDES[sde_name]()
    gm, model = exact_model(sde, predicts)
    g = torch.Generator().manual_seed(0)
    n = 20000
    loss = DSMLoss(sde, reduction="sum")
    for t_val in (0.01, 0.3, 0.9):
        x0 = gm.sample(n, g)
        t = torch.full((n,), t_val, dtype=torch.float64)
        noise = torch.randn(x0.shape, generator=g, dtype=torch.float64)
        m, se = mean_and_se(loss.terms(model, x0, t, noise))
        assert abs(m - irreducible(sde, t_val)) < 5 * se + 1e-9


def _lambda(sde, t, weighting, gamma=5.0):
    """The paper's lambda(t) of each weighting, from the marginal alone (not ``DSMLoss.weight``):
    sigma_t^2, g(t)^2 = d sigma^2/dt - 2 (d log alpha/dt) sigma^2 (autograd), 1, and
    sigma_t^2 min(SNR, gamma) / SNR with SNR = alpha^2 / sigma^2 (Hang et al. 2023)."""
    _, g2 = schedule_coefs(sde, t)
    alpha, sigma = sde.marginal(t)
    snr = alpha**2 / sigma**2
    return {
        "sigma2": sigma**2,
        "likelihood": g2,
        "uniform": torch.ones_like(t),
        "min_snr": sigma**2 * torch.clamp(snr, max=gamma) / snr,
    }[weighting]


@pytest.mark.parametrize("sde_name", ["vp", "subvp", "ve"])
@pytest.mark.parametrize("weighting", WEIGHTINGS)
@pytest.mark.parametrize("t_sampling", ["uniform", "importance"])
def test_dsm_identity_time_averaged(sde_name, weighting, t_sampling):
    """Exact score => the loss equals its irreducible constant
    (1/(T - eps)) int lambda(t) / sigma_t^2 E||eps - E[eps | x_t]||^2 dt per dim, a constant that
    differs per weighting; importance sampling is unbiased."""
    sde = SDES[sde_name]()
    gm, model = exact_model(sde)
    grid = torch.logspace(np.log10(sde.eps), np.log10(sde.T), 20001, dtype=torch.float64)
    sigma2 = sde.marginal(grid)[1] ** 2
    integrand = _lambda(sde, grid, weighting) / sigma2 * torch.as_tensor(irreducible(sde, grid))
    constant = float(torch.trapezoid(integrand, grid)) / (sde.T - sde.eps) / 2  # mean over dims
    loss = DSMLoss(sde, weighting=weighting, t_sampling=t_sampling)
    g = torch.Generator().manual_seed(1)
    x0 = gm.sample(40000, g)
    t, noise = loss.draw(x0, g)
    m, se = mean_and_se(loss.terms(model, x0, t, noise))
    assert abs(m - constant) < 5 * se, (m, constant, se)


def test_importance_sampling_is_uniform_in_log_snr():
    from scipy.stats import kstest

    sde = VPSDE()
    loss = DSMLoss(sde, weighting="likelihood", t_sampling="importance")
    t = loss.sample_t(4000, torch.Generator().manual_seed(0), "cpu", torch.float64)
    assert t.min() >= sde.eps and t.max() <= sde.T
    lam = sde.log_snr(t)
    lo, hi = float(sde.log_snr(torch.tensor(sde.T))), float(sde.log_snr(torch.tensor(sde.eps)))
    assert kstest(lam.numpy(), "uniform", args=(lo, hi - lo)).pvalue > 1e-3
    # Likelihood weighting + importance sampling: every term has the same weight Z / (T - eps).
    w = loss.weight(t) * loss.importance_weight(t)
    torch.testing.assert_close(w, torch.full_like(w, (hi - lo) / (sde.T - sde.eps)))


def test_dsm_gradient_vanishes_at_the_exact_score():
    sde = SDES["vp"]()
    gm, _ = exact_model(sde)
    theta = torch.zeros((), dtype=torch.float64, requires_grad=True)

    def eps_fn(x, t):  # exact eps plus theta times an arbitrary direction h(x, t)
        return gm.eps(x, t) + theta * (torch.sin(x) + t[:, None])

    loss = DSMLoss(sde, weighting="likelihood", t_sampling="importance")
    g = torch.Generator().manual_seed(2)
    x0 = gm.sample(40000, g)
    t, noise = loss.draw(x0, g)
    for th, expect_zero in ((0.0, True), (0.3, False)):
        theta.data.fill_(th)
        (grad,) = torch.autograd.grad(loss.terms(eps_fn, x0, t, noise).mean(), theta)

        def terms_of(s):
            return loss.terms(
                lambda x, tt: gm.eps(x, tt) + s * (torch.sin(x) + tt[:, None]), x0, t, noise
            )

        _, per = torch.func.jvp(terms_of, (theta.detach(),), (torch.ones_like(theta),))
        m, se = mean_and_se(per)  # per-example d(term)/d(theta), one forward-mode pass
        assert float(grad) == pytest.approx(m, rel=1e-6, abs=1e-12)
        assert (abs(m) < 5 * se) == expect_zero, (th, m, se)


@pytest.mark.parametrize("exact", [True])
def test_ddpm_l_simple_identity(exact):
    sde = VPSDE(eps=1e-3)
    gm, model = exact_model(sde)
    sched = DDPMSchedule.from_sde(sde, 10, exact=exact)  # alpha_bar_i = alpha_{t_i}^2
    loss = DDPMLoss(sched, reduction="sum")
    g = torch.Generator().manual_seed(3)
    x0 = gm.sample(40000, g)
    t, noise = loss.draw(x0, g)
    torch.testing.assert_close(torch.unique(t), sched.times)
    m, se = mean_and_se(loss.terms(model, x0, t, noise))
    assert abs(m - irreducible(sde, sched.times).mean()) < 5 * se


def test_smld_identity():
    sde = SDES["ve"]()
    gm, model = exact_model(sde, "score")
    loss = SMLDLoss(sde, num_scales=8, reduction="sum")
    g = torch.Generator().manual_seed(4)
    x0 = gm.sample(40000, g)
    t, noise = loss.draw(x0, g)
    assert torch.unique(t).numel() == 8
    m, se = mean_and_se(loss.terms(model, x0, t, noise))
    assert abs(m - irreducible(sde, loss.times).mean()) < 5 * se


def test_losses_on_images_with_a_unet_and_generator_reproducibility():
    sde = VPSDE()
    model = ScoreModel(UNet(base_channels=8, image_size=8), sde, predicts="v")
    x0 = torch.randn(4, 1, 8, 8)
    for name, kw in (("dsm", {}), ("ddpm", {"num_steps": 50})):
        loss = get_loss(name, sde, **kw)
        a = loss(model, x0, generator=torch.Generator().manual_seed(0))
        b = loss(model, x0, generator=torch.Generator().manual_seed(0))
        assert a.ndim == 0 and torch.equal(a, b)
        a.backward()
    smld = get_loss("smld", VESDE(), num_scales=10)
    assert torch.isfinite(smld(ScoreModel(UNet(base_channels=8), VESDE()), x0))
    assert torch.isfinite(dsm_loss(model, x0, weighting="min_snr"))


def test_loss_validation():
    sde = VPSDE()
    with pytest.raises(
        ValueError, match=r"valid: \['sigma2', 'likelihood', 'uniform', 'min_snr'\]"
    ):
        DSMLoss(sde, weighting="snr")
    with pytest.raises(ValueError, match="t_sampling"):
        DSMLoss(sde, t_sampling="stratified")
    with pytest.raises(ValueError, match="gamma"):
        DSMLoss(sde, weighting="min_snr", gamma=0.0)
    with pytest.raises(TypeError, match="VESDE"):
        SMLDLoss(sde)
    with pytest.raises(ValueError, match="valid"):
        get_loss("sliced", sde)
    model = ScoreModel(lambda x, c: x, sde)
    with pytest.raises(ValueError, match=r"shape \(batch, \*dims\)"):
        DSMLoss(sde)(model, torch.randn(5))
    with pytest.raises(ValueError, match="expected t of shape"):
        DSMLoss(sde)(model, torch.randn(5, 2), t=torch.rand(4), noise=torch.randn(5, 2))
