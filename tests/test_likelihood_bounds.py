"""Bits/dim with dequantization, the continuous ELBO and the DDPM L_vlb, against exact values."""

from __future__ import annotations

import math

import pytest
import torch

from scoresde import VPSDE, GaussianMixture
from scoresde.likelihood import bits_per_dim, ddpm_vlb, dequantized_bits_per_dim, elbo
from scoresde.sde import DDPMSchedule

F64 = torch.float64


def _bimodal(d: int = 3) -> GaussianMixture:
    means = torch.tensor([[0.3] * d, [-0.3] * d], dtype=F64)
    return GaussianMixture([0.5, 0.5], means, torch.full((2, d), 0.15**2, dtype=F64), sde=VPSDE())


@pytest.mark.parametrize(("levels", "model_range"), [(17, (0.0, 1.0)), (256, (-1.0, 1.0))])
def test_uniform_levels_give_log2_levels(levels: int, model_range) -> None:
    g = torch.Generator().manual_seed(0)
    k = torch.randint(0, levels, (64, 1, 4, 4), generator=g)
    lo, hi = model_range
    uniform = lambda y: torch.full((y.shape[0],), -y[0].numel() * math.log(hi - lo), dtype=F64)  # noqa: E731
    res = dequantized_bits_per_dim(uniform, k, levels=levels, model_range=model_range, n_draws=3)
    torch.testing.assert_close(res.bpd, torch.full((64,), math.log2(levels), dtype=F64))
    assert res.per_draw.shape == (3, 64)


def test_bits_per_dim_through_the_ode_matches_the_density() -> None:
    gm = _bimodal(2)
    sde = gm.sde
    k = torch.randint(80, 176, (16, 2), generator=torch.Generator().manual_seed(1))
    kw = {"levels": 256, "n_draws": 2}
    ode = bits_per_dim(
        sde, gm, k, generator=torch.Generator().manual_seed(2),
        prior_log_prob=gm.marginal_mixture(sde.T).log_prob, **kw,
    )  # fmt: skip
    ref = dequantized_bits_per_dim(gm.log_prob, k, generator=torch.Generator().manual_seed(2), **kw)
    assert float((ode.bpd - ref.bpd).abs().max()) < 1e-3
    assert ode.nfe > 0 and bool(torch.isfinite(ode.stderr).all())


def test_bits_per_dim_validation() -> None:
    f = lambda y: torch.zeros(y.shape[0])  # noqa: E731
    with pytest.raises(ValueError, match=r"integer levels in \[0, 16\]"):
        dequantized_bits_per_dim(f, torch.tensor([[0.0, 17.0]]), levels=17)
    with pytest.raises(ValueError, match="non-integers: 1"):
        dequantized_bits_per_dim(f, torch.tensor([[0.5, 3.0]]), levels=17)
    with pytest.raises(ValueError, match="levels >= 2"):
        dequantized_bits_per_dim(f, torch.tensor([[0.0]]), levels=1)
    with pytest.raises(ValueError, match="lo < hi"):
        dequantized_bits_per_dim(f, torch.tensor([[0.0]]), model_range=(1.0, -1.0))
    with pytest.raises(ValueError, match="n_draws >= 1"):
        dequantized_bits_per_dim(f, torch.tensor([[0.0]]), n_draws=0)


def test_elbo_is_tight_for_the_exact_score_and_prior_and_gap_is_j_sm() -> None:
    gm = _bimodal(3)
    sde = gm.sde
    x = gm.sample(64, torch.Generator().manual_seed(3))
    pT = gm.marginal_mixture(sde.T).log_prob

    def bound(score_fn):
        gen = torch.Generator().manual_seed(4)  # common random numbers across scores
        return elbo(sde, score_fn, x, n_samples=16, generator=gen, prior_log_prob=pT)

    exact = bound(gm)
    gap = gm.log_prob(x) - exact.elbo
    assert abs(float(gap.mean())) < 4 * float(exact.stderr.pow(2).mean().sqrt()) / 8
    # A constant score error delta*c costs J_SM = 1/2 delta^2 |c|^2 int g^2 dt on average
    # (Song, Durkan, Murray & Ermon 2021, Theorem 1); the +-delta pair cancels the cross term.
    c, delta = torch.ones(3, dtype=F64), 0.3
    plus = bound(lambda y, t: gm(y, t) + delta * c).elbo
    minus = bound(lambda y, t: gm(y, t) - delta * c).elbo
    B = sde.schedule.integral(torch.tensor([sde.eps, sde.T], dtype=F64))
    j_sm = 0.5 * delta**2 * 3 * float(B[1] - B[0])
    assert abs(float((2 * exact.elbo - plus - minus).mean()) / 2 / j_sm - 1) < 0.05
    assert float(plus.mean()) < float(gm.log_prob(x).mean())  # below the exact log p
    hutch = elbo(
        sde,
        gm,
        x,
        n_samples=16,
        divergence="hutchinson",
        generator=torch.Generator().manual_seed(4),
        prior_log_prob=pT,
    )
    assert (
        abs(float((hutch.elbo - exact.elbo).mean()))
        < 4 * float(hutch.stderr.pow(2).mean().sqrt()) / 8
    )


def test_elbo_validation() -> None:
    gm = _bimodal(2)
    x = gm.sample(4)
    with pytest.raises(ValueError, match="unknown divergence"):
        elbo(gm.sde, gm, x, divergence="skilling")
    with pytest.raises(ValueError, match="n_samples >= 1"):
        elbo(gm.sde, gm, x, n_samples=0)
    with pytest.raises(ValueError, match="NaN/Inf"):
        elbo(gm.sde, gm, x * math.inf)


def test_ddpm_vlb_bounds_the_discrete_nll() -> None:
    gm = _bimodal(3)
    sch = DDPMSchedule.from_sde(gm.sde, 200, exact=True)
    x = gm.sample(600, torch.Generator().manual_seed(5))
    k = ((x.clamp(-1, 1) + 1) * 127.5).round()

    def eps_fn(x_i, i):  # the exact E[eps | x_i] of the chain's marginals
        return gm.eps(x_i, sch.times[i].to(F64))

    res = ddpm_vlb(sch, eps_fn, k, generator=torch.Generator().manual_seed(6))
    assert res.per_term.shape == (201, 600) and res.nfe == 200
    # Exact discrete NLL (bins of width 2/255 are narrow: P(k) ~ p(centre) * width^d).
    y = k / 127.5 - 1
    ref = -(gm.log_prob(y) + 3 * math.log(2 / 255)) / (3 * math.log(2))
    diff = res.bpd - ref
    se = float(diff.std()) / math.sqrt(600)
    assert -3 * se < float(diff.mean())  # an upper bound on the NLL (direction)...
    # ...and equal to its expectation: with v_i = beta_i, E[L_i] = 1/2 (log(v / bt) + (bt + c0^2
    # m_i) / v - 1) per dim and E[L_0] = 1/2 log(2 pi v_0) + m_0 / (2 v_0) - log(bin), where
    # m_i = E|y - E[y | x_i]|^2 / d is the mixture's MMSE, estimated here with its exact denoiser.
    y0 = gm.sample(2000, torch.Generator().manual_seed(7))
    z = torch.randn(y0.shape, generator=torch.Generator().manual_seed(8), dtype=F64)
    ab, bt, v, c0 = sch.alpha_bars, sch.beta_tildes, sch.betas, sch.posterior_coef_x0
    mmse = torch.stack([((y0 - gm.denoise(ab[i].sqrt() * y0 + (1 - ab[i]).sqrt() * z,
                                          sch.times[i].expand(2000))) ** 2).mean()
                        for i in range(200)])  # fmt: skip
    kl = 0.5 * (torch.log(v / bt) + (bt + c0**2 * mmse) / v - 1)[1:].sum()
    dec = 0.5 * math.log(2 * math.pi * float(v[0])) + float(mmse[0]) / (2 * float(v[0]))
    expected = (float(kl) + dec - math.log(2 / 255)) / math.log(2) + float(res.per_term[0].mean())
    vlb_se = float(res.bpd.std()) / math.sqrt(600)
    assert abs(float(res.bpd.mean()) - expected) < 4 * vlb_se + 0.01, (res.bpd.mean(), expected)
    ab = float(sch.alpha_bars[-1])  # L_T in closed form
    lt = 0.5 * (ab * y**2 + (1 - ab) - 1 - math.log1p(-ab)).sum(1) / (3 * math.log(2))
    torch.testing.assert_close(res.per_term[0], lt)
    with pytest.raises(ValueError, match="unknown variance"):
        ddpm_vlb(sch, eps_fn, k, variance="learned")
