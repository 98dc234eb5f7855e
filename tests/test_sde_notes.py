"""The study notes' schedules: sqrt / log-SNR-linear VP, named DDPM tables, SNR shift, prior check."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from scoresde.analytic import GaussianMixture
from scoresde.likelihood import ddpm_vlb
from scoresde.sde import (
    VESDE,
    VPSDE,
    CosineBeta,
    CustomBeta,
    DDPMSchedule,
    LogSNRLinearBeta,
    SqrtBeta,
    SubVPSDE,
    betas_from_alpha_bar,
    check_prior,
    continuous_schedule,
    ddpm_schedule,
    prior_kl,
    sde_from_config,
    shift_snr,
    snr_shift_for_resolution,
)
from scoresde.sde.prior import PriorMismatchWarning

F64 = torch.float64


def _new_sdes() -> dict:
    custom = VPSDE(schedule=CustomBeta(lambda t: 1 + 4 * t**3, lambda t: t + t**4))
    return {
        "vp_sqrt": VPSDE(schedule="sqrt"),
        "vp_log_snr_linear": VPSDE(schedule="log_snr_linear"),
        "subvp_sqrt": SubVPSDE(schedule=SqrtBeta(1e-3)),
        "shift_vp": shift_snr(VPSDE(), snr_shift_for_resolution(256, 64)),
        "shift_vp_cosine": shift_snr(VPSDE(schedule="cosine"), 1.3),
        "shift_subvp": shift_snr(SubVPSDE(), -1.7),
        "shift_ve": shift_snr(VESDE(), -2.0),
        "shift_custom": shift_snr(custom, 0.8),
    }


SDES = _new_sdes()


def _d_dt(fn, t: torch.Tensor) -> torch.Tensor:
    t = t.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(fn(t).sum(), t)
    return g


@pytest.mark.parametrize("name", sorted(SDES))
def test_moment_odes_and_log_snr(name: str) -> None:
    """Exact marginals: dm/dt = a m, dv/dt = 2 a v + g^2, d lambda/dt = -g^2/sigma^2, inverse."""
    sde = SDES[name]
    t = torch.linspace(0.01, sde.T * 0.98, 41, dtype=F64)
    a = sde.drift_coef(t)
    torch.testing.assert_close(_d_dt(lambda s: torch.log(sde.marginal(s)[0]), t), a)
    v = sde.marginal(t)[1] ** 2
    dv = _d_dt(lambda s: sde.marginal(s)[1] ** 2, t)
    torch.testing.assert_close(dv, 2 * a * v + sde.g2(t), rtol=1e-7, atol=1e-9)
    lam = sde.log_snr(t)
    assert bool((lam.diff() < 0).all())
    torch.testing.assert_close(_d_dt(sde.log_snr, t), -sde.g2(t) / v, rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(sde.t_from_log_snr(lam), t, rtol=1e-8, atol=1e-10)


def test_log_snr_linear_schedule_is_exactly_linear() -> None:
    sde = VPSDE(schedule=LogSNRLinearBeta(lambda_max=15.0, lambda_min=-8.0))
    t = torch.linspace(0.0, 1.0, 101, dtype=F64)
    torch.testing.assert_close(sde.log_snr(t[1:]), 15.0 - 23.0 * t[1:], rtol=0, atol=1e-10)
    alpha, sigma = sde.marginal(t)
    torch.testing.assert_close(alpha**2 + sigma**2, torch.ones_like(t))  # still VP
    assert float(sigma[0]) == pytest.approx(math.sqrt(torch.sigmoid(torch.tensor(-15.0))), 1e-6)
    with pytest.raises(ValueError, match="expected lambda_min < lambda_max"):
        LogSNRLinearBeta(lambda_max=-1.0, lambda_min=2.0)


@pytest.mark.parametrize(
    "base", [VPSDE(), VPSDE(schedule="cosine"), SubVPSDE(), VESDE(), VPSDE(schedule="sqrt")]
)
def test_snr_shift_adds_a_constant(base) -> None:
    shift = snr_shift_for_resolution(128, 32)
    assert shift == pytest.approx(-2 * math.log(4.0))
    shifted = shift_snr(base, shift)
    assert type(shifted) is type(base) and shifted.T == base.T
    t = torch.linspace(1e-3, base.T, 50, dtype=F64)
    torch.testing.assert_close(shifted.log_snr(t), base.log_snr(t) + shift, rtol=0, atol=1e-9)
    if not isinstance(base, VESDE):  # same family: the N(0, I) prior and alpha(0) = 1 kept
        assert shifted.prior_std == 1.0
        assert float(shifted.marginal(torch.tensor(0.0, dtype=F64))[0]) == 1.0
    again = sde_from_config(shifted.config())
    torch.testing.assert_close(again.marginal(t)[1], shifted.marginal(t)[1])


def test_snr_shift_validation() -> None:
    with pytest.raises(TypeError, match="expected a VPSDE, SubVPSDE or VESDE, received str"):
        shift_snr("vp", 1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="expected a float shift, received str"):
        shift_snr(VPSDE(), "1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="expected a finite shift, received inf"):
        shift_snr(VPSDE(), math.inf)
    with pytest.raises(ValueError, match="expected d_ref > 0, received 0"):
        snr_shift_for_resolution(64, 0)


def _nichol_cosine_alpha_bar(N: int, s: float = 0.008) -> torch.Tensor:
    """alpha_bar_i = prod_j (1 - min(1 - f(j+1)/f(j), 0.999)), written out as in the paper."""
    f = [math.cos((j / N + s) / (1 + s) * math.pi / 2) ** 2 for j in range(N + 1)]
    betas = [min(1 - f[j + 1] / f[j], 0.999) for j in range(N)]
    return torch.tensor([math.prod(1 - b for b in betas[: i + 1]) for i in range(N)], dtype=F64)


@pytest.mark.parametrize("N", [10, 100, 1000])
def test_cosine_table_matches_the_paper_and_the_continuous_schedule(N: int) -> None:
    sched = ddpm_schedule("cosine", N)
    torch.testing.assert_close(sched.alpha_bars, _nichol_cosine_alpha_bar(N), rtol=1e-10, atol=0)
    assert float(sched.betas[-1]) == 0.999  # clipped: cos^2(pi/2) = 0 at t = 1
    cont = CosineBeta()
    unclipped = sched.betas < 0.999
    ab_cont = torch.exp(-cont.integral(sched.times))
    torch.testing.assert_close(sched.alpha_bars[unclipped], ab_cont[unclipped], rtol=1e-10, atol=0)


@pytest.mark.parametrize("N", [20, 1000])
def test_sqrt_table_matches_li_et_al_and_the_continuous_schedule(N: int) -> None:
    s = 1e-4
    sched = ddpm_schedule("sqrt", N)
    t = torch.arange(N + 1, dtype=F64) / N
    ab = 1 - torch.sqrt(t + s)  # Li et al. (2022): alpha_bar(t) = 1 - sqrt(t + s)
    unclipped = sched.betas < 0.999
    torch.testing.assert_close(sched.alpha_bars[unclipped], (ab[1:] / ab[0])[unclipped])
    assert not bool(unclipped[-1]) and float(ab[-1]) < 0  # the clip it needs: alpha_bar(1) < 0
    cont = continuous_schedule("sqrt")
    torch.testing.assert_close(
        sched.alpha_bars[unclipped], torch.exp(-cont.integral(sched.times))[unclipped]
    )


@pytest.mark.parametrize("name", ["linear", "cosine", "sqrt"])
def test_tables_are_valid_and_their_vlb_is_finite(name: str) -> None:
    sched = ddpm_schedule(name, 50)
    assert bool(((sched.betas > 0) & (sched.betas < 1)).all())
    assert bool((sched.alpha_bars.diff() < 0).all()) and bool((sched.snr.diff() < 0).all())
    gen = torch.Generator().manual_seed(0)
    k = torch.randint(0, 256, (8, 3), generator=gen)
    bpd = ddpm_vlb(sched, lambda x, i: torch.zeros_like(x), k, generator=gen)
    assert bool(torch.isfinite(bpd.per_term).all()) and bool(torch.isfinite(bpd.bpd).all())


def test_beta_of_one_is_rejected_everywhere() -> None:
    """The unclipped cosine table has beta_T = 1 to rounding: refused, with the fix named."""
    t = torch.arange(1, 101, dtype=F64) / 100
    ab = (torch.cos((t + 0.008) / 1.008 * math.pi / 2) / math.cos(0.008 / 1.008 * math.pi / 2)) ** 2
    with pytest.raises(ValueError, match=r"beta_i = 1 to rounding at steps \[99\].*max_beta"):
        DDPMSchedule.from_alpha_bars(ab)
    with pytest.raises(ValueError, match=r"expected every beta in \(0, 1\)"):
        DDPMSchedule.from_betas(torch.tensor([0.1, 1.0]))
    with pytest.raises(ValueError, match=r"expected every beta in \(0, 1\)"):
        DDPMSchedule.from_sde(VPSDE(schedule="sqrt"), 10, exact=False)  # beta T / N > 1
    with pytest.raises(ValueError, match="expected 0 < max_beta < 1, received 1.0"):
        betas_from_alpha_bar(lambda s: 1 - s, 10, max_beta=1.0)
    with pytest.raises(ValueError, match="unknown beta table 'quadratic'; expected one of"):
        ddpm_schedule("quadratic", 10)
    with pytest.raises(ValueError, match="exceeds where the SqrtBeta schedule is finite"):
        VPSDE(schedule="sqrt", T=1.0)


def test_prior_kl_bounds_bracket_the_exact_kl() -> None:
    """Moment-matched lower bound <= KL(p_T || N(0, I)) (Monte Carlo, exact p_T) <= upper bound."""
    sde = VPSDE(beta_min=0.01, beta_max=2.0)  # the notes' T = 100 chain: alpha_bar_T = 0.37
    gm = GaussianMixture([0.5, 0.5], [[-1.4, 0.3], [1.4, -0.3]], [[0.04, 0.04], [0.04, 0.04]])
    mean, cov = gm.mean, gm.covariance
    d = 2
    check = prior_kl(sde, float(cov.trace()) / d, float(mean.norm()) / math.sqrt(d))
    p_T = gm.with_sde(sde).marginal_mixture(sde.T)
    x = p_T.sample(200_000, generator=torch.Generator().manual_seed(0))
    gap = (p_T.log_prob(x) - sde.prior_log_prob(x)) / d
    kl, se = float(gap.mean()), float(gap.std()) / math.sqrt(x.shape[0])
    assert check.lower - 4 * se < kl < check.upper + 4 * se
    assert check.upper - check.lower > 0.05  # a real bracket, not a point
    # Gaussian data: the lower bound is the exact KL; standardised VP: upper = -1/2 log(1 - ab_T)
    a, sg = (float(v) for v in sde.marginal(torch.tensor(1.0, dtype=F64)))
    var_T, mean_T = a**2 * 2.0 + sg**2, a * 0.5  # data N(0.5, 2): p_T = N(mean_T, var_T)
    exact = 0.5 * (var_T + mean_T**2 - 1 - math.log(var_T))
    assert prior_kl(sde, 2.0, 0.5).lower == pytest.approx(float(exact), rel=1e-5)
    ab_T = float(sde.marginal(torch.tensor(1.0, dtype=F64))[0] ** 2)
    assert prior_kl(sde).upper == pytest.approx(-0.5 * math.log(1 - ab_T), rel=1e-9)
    assert prior_kl(ddpm_schedule("linear", 1000)).upper < 1e-4  # a DDPM chain is accepted
    assert float(sde.prior_mismatch(2.0)) == pytest.approx(prior_kl(sde, 2.0).upper)


def test_check_prior_warns_once_above_the_threshold() -> None:
    with pytest.warns(PriorMismatchWarning, match=r"KL\(p_T \|\| prior\) <= 0.228 nats/dim"):
        check_prior(VPSDE(beta_min=0.01, beta_max=2.0), context="test-once")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_prior(VPSDE(beta_min=0.01, beta_max=2.0), context="test-once")  # already said
        for sde in (VPSDE(), VPSDE(schedule="cosine"), SubVPSDE(), VESDE()):
            assert check_prior(sde, context="defaults").upper < 1e-3
    with pytest.raises(ValueError, match="expected data_var > 0, received -1"):
        prior_kl(VPSDE(), data_var=-1.0)
    with pytest.raises(TypeError, match="expected a LinearSDE or a DDPMSchedule, received int"):
        prior_kl(3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "sde",
    [VPSDE(schedule="sqrt"), SubVPSDE(schedule="log_snr_linear"), shift_snr(VESDE(), 0.5)],
)
def test_config_round_trip_of_new_schedules(sde) -> None:
    again = sde_from_config(sde.config())
    t = torch.linspace(0.01, sde.T, 7, dtype=F64)
    for a, b in zip(sde.marginal(t), again.marginal(t), strict=True):
        torch.testing.assert_close(a, b)


def test_four_gaussians_toy_set_is_the_notes_mixture() -> None:
    """The named set draws from four_gaussians_mixture, whose entropy is the registered one."""
    from scoresde.data import get_dataset
    from scoresde.data.toy import four_gaussians_mixture

    data, gm = get_dataset("4gaussians"), four_gaussians_mixture()
    x = data.sampler(40_000, torch.Generator().manual_seed(0)).double()
    torch.testing.assert_close(x.mean(0), gm.mean, atol=0.04, rtol=0)
    torch.testing.assert_close(torch.cov(x.T), gm.covariance, atol=0.08, rtol=0)
    nll = -gm.log_prob(x)
    se = float(nll.std()) / math.sqrt(x.shape[0])
    assert abs(float(nll.mean()) - data.entropy) < 4 * se
