"""Exact and Hutchinson log-likelihoods through the PF-ODE, against closed forms."""

from __future__ import annotations

import math

import pytest
import torch

from scoresde import VESDE, VPSDE, GaussianMixture, SubVPSDE
from scoresde.likelihood import (
    ERROR_NORMS,
    SOLVERS,
    TIME_VARIABLES,
    PFCoordinates,
    decode,
    draw_probes,
    log_likelihood,
    score_and_divergence,
    score_and_probe_products,
)

F64 = torch.float64


def _mixture(d: int, sde, K: int = 3, seed: int = 0, event_shape=None) -> GaussianMixture:
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(K, d, d, generator=g, dtype=F64) / d**0.5
    cov = 0.5 * A @ A.transpose(-1, -2) + 0.1 * torch.eye(d, dtype=F64)
    means = 2 * torch.randn(K, d, generator=g, dtype=F64)
    return GaussianMixture(torch.ones(K) / K, means, cov, sde=sde, event_shape=event_shape)


@pytest.mark.parametrize("d", [2, 16])
def test_exact_divergence_matches_mixture_log_prob(d: int) -> None:
    sde = VPSDE()
    gm = _mixture(d, sde)
    x = gm.sample(48, torch.Generator().manual_seed(1))
    res = log_likelihood(sde, gm, x, prior_log_prob=gm.marginal_mixture(sde.T).log_prob)
    mae = float((res.log_prob - gm.log_prob(x)).abs().mean())
    assert mae < 1e-3, mae
    assert res.stderr is None and res.nfe > 0 and res.n_vjp == res.nfe * d
    assert res.z.shape == x.shape and res.log_prob.shape == (48,)


@pytest.mark.parametrize("sde", [VPSDE(), SubVPSDE(), VESDE(sigma_max=20.0)], ids=repr)
def test_gaussian_closed_form_every_sde(sde) -> None:
    gm = GaussianMixture([1.0], [[0.5, -1.0, 0.2]], [[0.3, 1.5, 0.8]], sde=sde)
    x = gm.sample(32, torch.Generator().manual_seed(2))
    res = log_likelihood(
        sde, gm, x, rtol=1e-6, atol=1e-6, prior_log_prob=gm.marginal_mixture(sde.T).log_prob
    )
    assert float((res.log_prob - gm.log_prob(x)).abs().max()) < 2e-4
    # With the SDE's own N(0, prior_std^2 I) prior the error is the documented prior mismatch.
    plain = log_likelihood(sde, gm, x, rtol=1e-6, atol=1e-6)
    assert float((plain.log_prob - gm.log_prob(x)).abs().mean()) < 0.05


def test_images_and_float32() -> None:
    sde = VPSDE()
    gm = _mixture(4, sde, event_shape=(1, 2, 2))
    x = gm.sample(8, torch.Generator().manual_seed(3))
    assert x.shape == (8, 1, 2, 2)
    ref = gm.log_prob(x)
    r64 = log_likelihood(
        sde, gm, x.float(), dtype=F64, prior_log_prob=gm.marginal_mixture(1.0).log_prob
    )
    assert r64.log_prob.dtype == F64 and r64.z.shape == x.shape
    assert float((r64.log_prob - ref).abs().max()) < 1e-3
    r32 = log_likelihood(sde, gm, x.float(), rtol=1e-4, atol=1e-4)
    assert r32.log_prob.dtype == torch.float32
    assert float((r32.log_prob.double() - ref).abs().mean()) < 0.05


def test_exact_divergence_is_the_jacobian_trace() -> None:
    W = torch.randn(6, 6, dtype=F64, generator=torch.Generator().manual_seed(4))

    def score_fn(x, t):  # a nonlinear, non-symmetric field on images (B, 1, 2, 3)
        flat = x.flatten(1)
        return (torch.tanh(flat @ W) * (1 + t) + flat**3).reshape(x.shape)

    x = torch.randn(5, 1, 2, 3, dtype=F64, generator=torch.Generator().manual_seed(5))
    t = torch.tensor(0.3, dtype=F64)
    jac = torch.autograd.functional.jacobian(lambda y: score_fn(y, t).flatten(1), x)
    ref = torch.stack([jac[b, :, b].reshape(6, 6).trace() for b in range(5)])
    for chunk, vm in ((None, True), (1, True), (4, False)):
        s, div = score_and_divergence(score_fn, x, t, chunk_size=chunk, use_vmap=vm)
        torch.testing.assert_close(div, ref)
        torch.testing.assert_close(s, score_fn(x, t))


@pytest.mark.parametrize("kind", ["gaussian", "rademacher"])
def test_hutchinson_unbiased_with_the_stated_variance(kind: str) -> None:
    g = torch.Generator().manual_seed(6)
    M = torch.randn(5, 5, generator=g, dtype=F64)  # Jacobian of s(x) = x M^T, not symmetric
    x = torch.randn(1, 5, dtype=F64, generator=g)
    probes = draw_probes(kind, (40000, 1, 5), generator=g, dtype=F64)
    s, est = score_and_probe_products(lambda y, t: y @ M.T, x, torch.tensor(0.5), probes)
    est = est[:, 0]
    S = 0.5 * (M + M.T)
    fro2 = float((S**2).sum())
    var = 2 * fro2 if kind == "gaussian" else 2 * (fro2 - float((torch.diagonal(S) ** 2).sum()))
    se = math.sqrt(var / est.numel())
    assert abs(float(est.mean()) - float(M.trace())) < 4 * se
    assert abs(float(est.var()) / var - 1) < 0.05


def test_hutchinson_loglik_unbiased_and_honest() -> None:
    sde = VPSDE()
    gm = _mixture(4, sde, K=2, seed=7)
    x = gm.sample(24, torch.Generator().manual_seed(8))
    exact = gm.log_prob(x)
    pT = gm.marginal_mixture(sde.T).log_prob
    kw = {"divergence": "hutchinson", "prior_log_prob": pT, "rtol": 1e-4, "atol": 1e-4}
    r4 = log_likelihood(sde, gm, x, n_probes=4, generator=torch.Generator().manual_seed(9), **kw)
    r64 = log_likelihood(sde, gm, x, n_probes=64, generator=torch.Generator().manual_seed(9), **kw)
    assert r64.per_probe.shape == (64, 24) and r64.n_vjp == 64 * r64.nfe
    # Averaged, not summed: the mean error over points sits within its standard error.
    err = r64.log_prob - exact
    assert abs(float(err.mean())) < 4 * float(r64.stderr.pow(2).mean().sqrt()) / math.sqrt(24)
    # Honest standard errors: ~68% of the points within 1 SE and ~95% within 2 SE (binomial
    # slack for 24 points), neither too narrow nor inflated.
    cover = [float((err.abs() < k * r64.stderr).double().mean()) for k in (1, 2)]
    assert 0.45 < cover[0] < 0.9 and cover[1] >= 0.85, cover
    ratio = float(r4.stderr.mean() / r64.stderr.mean())
    assert 3.0 < ratio < 5.3  # 1 / sqrt(n_probes): sqrt(64 / 4) = 4
    one = log_likelihood(sde, gm, x, n_probes=1, generator=torch.Generator().manual_seed(9), **kw)
    assert bool(torch.isnan(one.stderr).all())


def test_hutchinson_reproducible_with_generator() -> None:
    sde = VPSDE()
    gm = _mixture(3, sde)
    x = gm.sample(4, torch.Generator().manual_seed(10))
    kw = {
        "divergence": "hutchinson",
        "n_probes": 2,
        "probe": "gaussian",
        "rtol": 1e-3,
        "atol": 1e-3,
    }
    a = log_likelihood(sde, gm, x, generator=torch.Generator().manual_seed(3), **kw)
    b = log_likelihood(sde, gm, x, generator=torch.Generator().manual_seed(3), **kw)
    torch.testing.assert_close(a.log_prob, b.log_prob, rtol=0, atol=0)


@pytest.mark.parametrize("variable", TIME_VARIABLES)
@pytest.mark.parametrize("sde", [VPSDE(), VESDE(sigma_max=20.0)], ids=repr)
def test_encode_then_decode_is_identity(sde, variable: str) -> None:
    gm = _mixture(3, sde, seed=11)
    x = gm.sample(16, torch.Generator().manual_seed(12))
    kw = {"rtol": 1e-8, "atol": 1e-8, "time_variable": variable}
    res = log_likelihood(sde, gm, x, **kw)
    back, nfe = decode(sde, gm, res.z, **kw)
    assert nfe > 0
    assert float((back - x).abs().max()) < 1e-4


@pytest.mark.parametrize("sde", [VPSDE(), SubVPSDE(), VESDE(sigma_max=20.0)], ids=repr)
def test_time_variables_give_the_same_log_prob(sde) -> None:
    gm = _mixture(3, sde, seed=13)
    x = gm.sample(16, torch.Generator().manual_seed(14))
    pT = gm.marginal_mixture(sde.T).log_prob
    ref = gm.marginal_log_prob(x, sde.eps)  # log p_{t_eps}: no truncation bias
    out = {}
    for variable in TIME_VARIABLES:
        res = log_likelihood(
            sde, gm, x, rtol=1e-7, atol=1e-7, prior_log_prob=pT, time_variable=variable
        )
        out[variable] = res
        assert float((res.log_prob - ref).abs().max()) < 2e-4, variable
    # Same latent z = x(T) whatever the coordinates (x / alpha_T scaled back).
    torch.testing.assert_close(out["sigma"].z, out["t"].z, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out["log_snr"].log_prob, out["t"].log_prob, rtol=0, atol=3e-4)


def test_coordinates_map_the_end_points() -> None:
    sde = VPSDE()
    alpha, sigma = sde.marginal(torch.tensor([sde.eps, sde.T], dtype=F64))
    for variable in TIME_VARIABLES:
        pf = PFCoordinates(sde, sde.eps, sde.T, variable, F64, torch.device("cpu"))
        for end in (0, 1):
            t, c_in, c_lin, c_s = pf.coefficients(pf.span[end])
            assert abs(float(t) - (sde.eps, sde.T)[end]) < 1e-9
            if variable == "t":
                assert float(c_in) == 1.0 and float(c_s) == -0.5 * float(sde.g2(t))
            else:  # dx~/dsigma~ = -sigma_t s; dx~/dlambda = sigma_t^2 / (2 alpha_t) s
                assert abs(float(c_in) - float(alpha[end])) < 1e-9 and float(c_lin) == 0.0
        assert pf.linear_log_det(3) == pytest.approx(3 * float(torch.log(alpha[1] / alpha[0])))
    sigma_tilde = PFCoordinates(sde, sde.eps, sde.T, "sigma", F64, torch.device("cpu")).span
    torch.testing.assert_close(sigma_tilde, sigma / alpha)


def test_error_norms_and_default_accuracy() -> None:
    y = torch.tensor([[3.0, 4.0], [0.0, 0.0]], dtype=F64)  # per-sample RMS 3.54 and 0
    ell = torch.tensor([0.5, 1.0], dtype=F64)
    assert float(ERROR_NORMS["sample_max"]((y, ell))) == pytest.approx(12.5**0.5)
    assert float(ERROR_NORMS["sample_rms"]((y, ell))) == pytest.approx((13.5 / 2) ** 0.5)
    assert float(ERROR_NORMS["batch_rms"]((y, ell))) == pytest.approx(12.5**0.5 / 2**0.5)
    # Adaptive steps land on T (no kink from stepping past it): tolerance 1e-5 meets the t_eps
    # truncation floor at d = 2 (it was ~2e-4 when dopri5 stepped past T) with every norm, and
    # the default (3e-5, sample_max) stays within 1e-4 nats.
    sde = VPSDE()
    gm = _mixture(2, sde, K=4)
    x = gm.sample(64, torch.Generator().manual_seed(15))
    pT = gm.marginal_mixture(sde.T).log_prob
    ref = gm.marginal_log_prob(x, sde.eps)
    for norm in ERROR_NORMS:
        res = log_likelihood(sde, gm, x, prior_log_prob=pT, error_norm=norm, rtol=1e-5, atol=1e-5)
        assert float((res.log_prob - ref).abs().mean()) < 5e-5, norm
    res = log_likelihood(sde, gm, x, prior_log_prob=pT)
    assert float((res.log_prob - ref).abs().mean()) < 1e-4


def test_validation_errors() -> None:
    sde = VPSDE()
    gm = _mixture(2, sde)
    x = gm.sample(4)
    with pytest.raises(ValueError, match="unknown solver 'rk45'.*'dopri5'"):
        log_likelihood(sde, gm, x, solver="rk45")
    assert "dopri5" in SOLVERS
    with pytest.raises(ValueError, match="unknown divergence"):
        log_likelihood(sde, gm, x, divergence="skilling")
    with pytest.raises(ValueError, match="unknown probe"):
        log_likelihood(sde, gm, x, divergence="hutchinson", probe="sphere")
    with pytest.raises(ValueError, match="rtol > 0"):
        log_likelihood(sde, gm, x, rtol=0.0)
    with pytest.raises(ValueError, match="atol > 0"):
        decode(sde, gm, x, atol=-1.0)
    with pytest.raises(ValueError, match="n_probes >= 1"):
        log_likelihood(sde, gm, x, divergence="hutchinson", n_probes=0)
    with pytest.raises(ValueError, match="NaN/Inf"):
        log_likelihood(sde, gm, torch.full_like(x, math.nan))
    with pytest.raises(ValueError, match=r"shape \(batch, \*dims\)"):
        log_likelihood(sde, gm, x[0])
    with pytest.raises(ValueError, match="t_eps"):
        log_likelihood(sde, gm, x, t_eps=1.5)
    with pytest.raises(ValueError, match="log_likelihood: unknown time_variable 'lambda'.*'t'"):
        log_likelihood(sde, gm, x, time_variable="lambda")
    with pytest.raises(ValueError, match="decode: unknown error_norm 'max'.*'sample_max'"):
        decode(sde, gm, x, error_norm="max")
    with pytest.raises(ValueError, match="shaped like x"):
        log_likelihood(sde, lambda y, t: y[:, :1], x)
    with pytest.raises(ValueError, match="prior_log_prob"):
        log_likelihood(sde, gm, x, prior_log_prob=lambda z: z, rtol=1e-3, atol=1e-3)
    with pytest.raises(TypeError, match="LinearSDE"):
        log_likelihood(object(), gm, x)
    with pytest.raises(TypeError, match="floating-point"):
        log_likelihood(sde, gm, x.long())


def test_a_score_function_carrying_another_sde_is_refused() -> None:
    vp, ve = VPSDE(), VESDE()
    gm = GaussianMixture([1.0], [[0.0, 0.0]], [[1.0, 1.0]], sde=vp)
    x = torch.zeros(3, 2, dtype=F64)
    for fn in (gm, gm.score):  # the mixture and its bound method both carry vp
        with pytest.raises(ValueError, match="log_likelihood: score_fn carries the SDE VPSDE"):
            log_likelihood(ve, fn, x)
        with pytest.raises(ValueError, match="decode: score_fn carries the SDE VPSDE"):
            decode(ve, fn, x)
    from scoresde.likelihood import elbo

    with pytest.raises(ValueError, match="elbo: score_fn carries the SDE VPSDE.*used with VESDE"):
        elbo(ve, gm, x)
    # an equal SDE (same class and config) is the same SDE; plain functions carry none
    res = log_likelihood(VPSDE(), gm, x, solver="rk4", options={"step_size": 0.1})
    assert torch.isfinite(res.log_prob).all()
    log_likelihood(ve, lambda y, t: -y, x, solver="rk4", options={"step_size": 0.1})
    assert torch.allclose(res.continuous_bits_per_dim(), -res.log_prob / (2 * math.log(2)))
