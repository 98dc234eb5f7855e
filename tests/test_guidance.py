"""Guidance and conditional ground truth against closed forms (issue: conditional models)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from scoresde import VESDE, VPSDE, GaussianMixture, log_likelihood, sample
from scoresde.conditional import LabeledMixture
from scoresde.samplers.guidance import (
    bind_label,
    classifier_free_guidance,
    classifier_guidance,
)

W = [0.2, 0.3, 0.5]
MU1 = [[-2.0], [0.5], [2.5]]
VAR1 = [[0.3], [0.05], [0.2]]
LABELS = [0, 1, 1]


def _labeled(sde, dim: int = 1) -> LabeledMixture:
    if dim == 1:
        gm = GaussianMixture(W, MU1, VAR1, sde=sde)
    else:
        cov = [[[0.3, 0.1], [0.1, 0.2]], [[0.05, 0.0], [0.0, 0.4]], [[0.2, -0.05], [-0.05, 0.1]]]
        gm = GaussianMixture(W, [[-2.0, 0.0], [0.5, 1.0], [2.5, -0.5]], cov, sde=sde)
    return LabeledMixture(gm, LABELS)


@pytest.mark.parametrize("sde", [VPSDE(), VESDE()], ids=["vp", "ve"])
def test_conditional_score_is_the_gradient_of_the_conditional_log_density(sde) -> None:
    lm = _labeled(sde, dim=2)
    x = torch.randn(64, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 2
    for t in (1e-3, 0.1, 0.5, 1.0):
        for y in (0, 1):
            xg = x.clone().requires_grad_(True)
            (g,) = torch.autograd.grad(lm.given(y).marginal_log_prob(xg, t).sum(), xg)
            assert torch.allclose(lm(x, t, y), g, atol=1e-9, rtol=1e-7)
    # a batch of mixed labels picks each point's class
    y = torch.tensor([0, 1] * 32)
    mixed = lm(x, 0.3, y)
    assert torch.allclose(mixed[y == 0], lm(x[y == 0], 0.3, 0))
    assert torch.allclose(mixed[y == 1], lm(x[y == 1], 0.3, 1))
    # p(y) and the given mixture's weights
    assert lm.class_prob(1) == pytest.approx(0.8) and lm.given(1).K == 2
    assert torch.allclose(lm.given(1).weights, torch.tensor([0.375, 0.625], dtype=torch.float64))


@pytest.mark.parametrize("name", ["ddim", "euler_maruyama", "dpm_solver_pp_2m"])
def test_w0_reproduces_conditional_sampling_draw_for_draw(name: str) -> None:
    sde = VPSDE()
    lm = _labeled(sde, dim=2)
    x_T = sde.prior_sample((200, 2), torch.Generator().manual_seed(1), dtype=torch.float64)
    a, _ = sample(name, sde, lm.guided_score(1, 0.0), x_T, 12, generator=torch.Generator().manual_seed(2))  # fmt: skip
    b, _ = sample(name, sde, lm.given(1), x_T, 12, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b)


def test_conditional_log_likelihood_through_a_bound_label() -> None:
    """log p(x | y) through the PF-ODE of the bound conditional score equals the closed form."""
    sde = VPSDE()
    lm = _labeled(sde, dim=2)
    x = lm.given(0).sample(8, torch.Generator().manual_seed(6))
    prior = lm.given(0).marginal_mixture(sde.T).log_prob
    res = log_likelihood(sde, bind_label(lm, 0), x, rtol=1e-6, atol=1e-6, prior_log_prob=prior)
    assert (res.log_prob - lm.given(0).log_prob(x)).abs().max() < 1e-3


def test_exact_classifier_guidance_equals_cfg_at_w_minus_one() -> None:
    sde = VPSDE()
    lm = _labeled(sde, dim=2)
    x = torch.randn(50, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    for gamma in (1.0, 2.5, 4.0):
        cg = classifier_guidance(lm.mixture, lm.log_prob_y(1), gamma)
        cfg = lm.guided_score(1, gamma - 1)
        for t in (0.05, 0.4, 0.9):
            assert torch.allclose(cg(x, t), cfg(x, t), atol=1e-8)


def test_guidance_interval_guides_only_inside() -> None:
    sde = VPSDE()
    lm = _labeled(sde)
    x = torch.linspace(-3, 3, 11, dtype=torch.float64)[:, None]
    field = lm.guided_score(0, 3.0, interval=(0.2, 0.6))
    t = torch.tensor([0.1] * 5 + [0.4] * 6, dtype=torch.float64)
    out = field(x, t)
    cond, guided = lm(x, t, 0), lm.guided_score(0, 3.0)(x, t)
    assert torch.allclose(out[:5], cond[:5]) and torch.allclose(out[5:], guided[5:])
    assert not torch.allclose(cond[5:], guided[5:])


def _np_mixture_score(x, t, weights, means, variances, beta=(0.1, 20.0)):
    """Independent 1-D VP reference: p_t = sum w N(alpha mu, alpha^2 v + sigma^2)."""
    b0, b1 = beta
    log_alpha = -0.25 * t**2 * (b1 - b0) - 0.5 * t * b0
    a2 = math.exp(2 * log_alpha)
    alpha, s2 = math.sqrt(a2), 1 - a2
    c = a2 * np.asarray(variances) + s2
    d = x[:, None] - alpha * np.asarray(means)[None, :]
    logr = np.log(weights)[None, :] - 0.5 * np.log(2 * math.pi * c)[None, :] - 0.5 * d**2 / c
    r = np.exp(logr - logr.max(1, keepdims=True))
    r /= r.sum(1, keepdims=True)
    return (r * (-d / c)).sum(1)


def test_guided_pf_ode_matches_a_scipy_reference_in_1d() -> None:
    sde = VPSDE()
    lm = _labeled(sde)
    w, y, t_end = 2.0, 1, 1e-3
    x_T = torch.linspace(-2.5, 2.5, 7, dtype=torch.float64)[:, None]
    ws = np.array(W)
    cls = np.array(LABELS) == y
    mus, vs = np.array(MU1)[:, 0], np.array(VAR1)[:, 0]

    def drift(t, x):
        s_c = _np_mixture_score(x, t, ws[cls] / ws[cls].sum(), mus[cls], vs[cls])
        s_u = _np_mixture_score(x, t, ws, mus, vs)
        beta = 0.1 + t * (20.0 - 0.1)
        return -0.5 * beta * x - 0.5 * beta * ((1 + w) * s_c - w * s_u)

    ref = solve_ivp(drift, (1.0, t_end), x_T[:, 0].numpy(), method="DOP853", rtol=1e-11, atol=1e-11)
    grid = torch.tensor([1.0, t_end], dtype=torch.float64)
    x, _ = sample("pf_adaptive", sde, lm.guided_score(y, w), x_T, grid, rtol=1e-9, atol=1e-9)
    assert np.abs(x[:, 0].numpy() - ref.y[:, -1]).max() < 1e-6
    # guidance moved the endpoints: the unguided conditional flow ends elsewhere
    x0, _ = sample("pf_adaptive", sde, lm.given(y), x_T, grid, rtol=1e-9, atol=1e-9)
    assert (x - x0).abs().max() > 1e-2


def test_tilted_target_normalises_and_reduces_to_the_class_at_w0() -> None:
    lm = _labeled(VPSDE(), dim=2)
    t0 = lm.tilted(1, 0.0)
    x = lm.given(1).sample(100, torch.Generator().manual_seed(4))
    assert torch.allclose(t0.log_prob(x), lm.given(1).log_prob(x), atol=1e-6)
    q = lm.tilted(1, 3.0)
    # normalised: E_{p(.|y)}[q / p(.|y)] = 1 by importance sampling from the class
    xs = lm.given(1).sample(200_000, torch.Generator().manual_seed(5))
    ratio = (q.log_prob(xs) - lm.given(1).log_prob(xs)).exp()
    assert float(ratio.mean()) == pytest.approx(1.0, abs=4 * float(ratio.std()) / math.sqrt(2e5))
    # the guided field at t -> 0 is grad log q
    xg = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(q.log_prob(xg).sum(), xg)
    assert torch.allclose(lm.guided_score(1, 3.0)(x, 1e-9), g, atol=1e-5, rtol=1e-5)


def test_cfg_is_not_the_score_of_the_diffused_tilted_target() -> None:
    """At t > 0 the guided field differs from grad log q_t, the forward marginal of q (1-D)."""
    sde = VPSDE()
    lm = _labeled(sde)
    q = lm.tilted(1, 3.0, points=8001)
    x0 = torch.linspace(-6, 7, 8001, dtype=torch.float64)[:, None]
    logq0 = q.log_prob(x0)
    t = 0.3
    alpha, sigma = (float(v) for v in sde.marginal(torch.tensor(t, dtype=torch.float64)))
    x = torch.linspace(-1.5, 2.5, 9, dtype=torch.float64)[:, None]

    def log_qt(z):  # q_t(z) = int q(x0) N(z; alpha x0, sigma^2) dx0
        k = -0.5 * (z - alpha * x0.T) ** 2 / sigma**2
        return torch.logsumexp(logq0[None, :] + k, 1)

    h = 1e-5
    score_qt = (log_qt(x + h) - log_qt(x - h)) / (2 * h)
    guided = lm.guided_score(1, 3.0)(x, t)[:, 0]
    assert (score_qt - guided).abs().max() > 0.05  # a clear gap, not quadrature noise
    # the same quadrature reproduces the true diffused score of the class (w = 0): it is exact
    q0 = lm.tilted(1, 0.0, points=8001)
    logq0 = q0.log_prob(x0)
    s0 = (log_qt(x + h) - log_qt(x - h)) / (2 * h)
    assert torch.allclose(s0, lm(x, t, 1)[:, 0], atol=1e-4)


def test_validation_messages() -> None:
    sde = VPSDE()
    lm = _labeled(sde)
    with pytest.raises(ValueError, match=r"unknown label 7; expected one of \[0, 1\]"):
        lm.given(7)
    with pytest.raises(ValueError, match="expected 3 integer labels"):
        LabeledMixture(lm.mixture, [0, 1])
    with pytest.raises(ValueError, match="expected a finite number, received nan"):
        classifier_free_guidance(lm.mixture, lm.mixture, float("nan"))
    with pytest.raises(ValueError, match="expected 0 <= t_lo < t_hi"):
        classifier_free_guidance(lm.mixture, lm.mixture, 1.0, interval=(0.5, 0.2))
    with pytest.raises(ValueError, match="expected a finite w > -1"):
        lm.tilted(0, -1.5)
    with pytest.raises(ValueError, match="labels of shape"):
        bind_label(lm, torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"labels of shape \(3,\) for a batch of 2"):
        bind_label(lm, torch.tensor([0, 1, 1]))(torch.zeros(2, 1), torch.tensor(0.5))
    with pytest.raises(ValueError, match="expected log_prob_y to return shape"):
        classifier_guidance(lm.mixture, lambda x, t: x, 1.0)(torch.zeros(3, 1), torch.tensor(0.5))
    big = LabeledMixture(GaussianMixture([1.0], [[0.0] * 3], [[1.0] * 3]), [0])
    with pytest.raises(ValueError, match="quadrature needs d <= 2"):
        big.tilted(0, 1.0)


def _pf_heun_guided_study(lm: LabeledMixture, n: int, ws: list[float]):
    """A one-sampler study (PF-Heun, 40 NFE, class 1) with the guidance weights ``ws``."""
    from scoresde.studies import StudySpec, guided_problem, run_study

    problem = guided_problem(lm, 1, n_reference=400, seed=5)
    spec = StudySpec(samplers=["pf_heun"], nfe=[40], seeds=[0], n=n, metrics=["sw2"],
                     factors={"guidance": ws}, floor_repeats=2)  # fmt: skip
    res = run_study(spec, problem, timing_repeats=1)
    assert res is not None
    return problem, res


def test_guidance_weight_is_a_study_factor_scored_against_its_own_guided_limit() -> None:
    from scoresde.metrics.distances import wasserstein
    from scoresde.studies import StudySpec

    lm = _labeled(VPSDE(), dim=2)
    problem, res = _pf_heun_guided_study(lm, 400, [0.0, 3.0])
    rows = {r["guidance"]: r for r in res.rows}
    assert set(rows) == {0.0, 3.0} and not any(r["error"] for r in rows.values())
    x3 = res.samples[("pf_heun [guidance=3.0]", 40)].double()
    ref3 = problem.guidance.reference(3.0).double()
    # w = 3 is scored against its own guided ODE limit, far from p(x | y) (the w = 0 reference)
    assert wasserstein(x3, ref3) < 0.5 * wasserstein(x3, problem.reference.double())
    with pytest.raises(ValueError, match="guidance values finite numbers > -1"):
        StudySpec(samplers=["ddim"], nfe=[5], factors={"guidance": [-1.0]})


def _overlapping() -> LabeledMixture:
    """Two classes that overlap, so that guidance moves the distribution visibly (2-D)."""
    cov = [[[0.3, 0.1], [0.1, 0.2]], [[0.05, 0.0], [0.0, 0.4]], [[0.2, -0.05], [-0.05, 0.1]]]
    means = [[-0.5, 0.0], [0.5, 0.5], [1.5, -0.5]]
    return LabeledMixture(GaussianMixture(W, means, cov, sde=VPSDE()), LABELS)


def test_tilted_ce_gap_is_zero_for_exact_tilted_draws_and_not_for_the_class() -> None:
    lm, n = _overlapping(), 4000
    q = lm.tilted(1, 3.0)
    gen = torch.Generator().manual_seed(11)
    gaps = [q.cross_entropy_gap_se(q.sample(n, gen)) for _ in range(8)]
    sd = q.floor_sd(n)
    # exact draws of q: mean zero, spread as the exact floor sd says, each SE near it
    assert abs(sum(g for g, _ in gaps) / len(gaps)) < 4 * sd / math.sqrt(len(gaps))
    assert all(se == pytest.approx(sd, rel=0.2) for _, se in gaps)
    # exact samples of p(x | y) (w = 0) are far from q_3, and exact for q_0
    x0 = lm.given(1).sample(n, gen)
    assert q.cross_entropy_gap(x0) > 5 * sd
    q0 = lm.tilted(1, 0.0)
    assert abs(q0.cross_entropy_gap(x0)) < 4 * q0.floor_sd(n)
    with pytest.raises(ValueError, match=r"expected samples of shape \(n, 2\), received \(3, 1\)"):
        q.cross_entropy_gap(torch.zeros(3, 1))


def test_guided_study_measures_each_w_against_its_own_tilted_target(tmp_path) -> None:
    from scoresde.cli.study_report import write_study_report

    lm = _overlapping()
    problem, res = _pf_heun_guided_study(lm, 2000, [0.0, 7.0])
    rows = {r["guidance"]: r for r in res.rows}
    for w in (0.0, 7.0):
        x = res.samples[(f"pf_heun [guidance={w}]", 40)]
        right, wrong = lm.tilted(1, w), lm.tilted(1, 7.0 - w)
        assert rows[w]["tilted_ce_gap"] == pytest.approx(right.cross_entropy_gap(x), abs=1e-9)
        assert abs(rows[w]["tilted_ce_gap"] - wrong.cross_entropy_gap(x)) > 0.02
        fl = res.floor[f"tilted_ce_gap[w={w:g}]"]
        assert fl["mean"] == 0.0 and fl["sd"] == pytest.approx(right.floor_sd(2000))
        assert len(fl["values"]) == 2
    # w = 0 samples p(x | y) within the floor (0.26 against q_7); the guided ODE misses q_7
    assert abs(rows[0.0]["tilted_ce_gap"]) < 3 * res.floor["tilted_ce_gap[w=0]"]["sd"]
    assert rows[7.0]["tilted_ce_gap"] > 3 * res.floor["tilted_ce_gap[w=7]"]["sd"]
    md = write_study_report(tmp_path, res)
    assert "## tilted_ce_gap" in md and "0 ± " in md
