"""The fixed log-SNR grid: order, refreshed probes with honest standard errors, the budget."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

from scoresde import VPSDE, GaussianMixture
from scoresde.likelihood import (
    GRID_SOLVERS,
    bits_per_dim,
    choose_n_steps,
    log_likelihood,
    solver_error,
)

F64 = torch.float64


def _mixture(d: int, sde, K: int = 3, seed: int = 0) -> GaussianMixture:
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(K, d, d, generator=g, dtype=F64) / d**0.5
    cov = 0.5 * A @ A.transpose(-1, -2) + 0.1 * torch.eye(d, dtype=F64)
    return GaussianMixture(
        torch.ones(K) / K, 2 * torch.randn(K, d, generator=g, dtype=F64), cov, sde=sde
    )


def _problem(d: int = 2, n: int = 32):
    sde = VPSDE()
    gm = _mixture(d, sde)
    x = gm.sample(n, torch.Generator().manual_seed(1))
    return sde, gm, x, gm.marginal_mixture(sde.T).log_prob, gm.marginal_log_prob(x, sde.eps)


@pytest.mark.parametrize("solver", sorted(GRID_SOLVERS))
def test_grid_converges_at_its_order(solver: str) -> None:
    sde, gm, x, prior, exact = _problem()
    p = GRID_SOLVERS[solver].order
    n = {2: 48, 3: 32, 4: 24, 5: 16}[p]
    errs = []
    for steps in (n, 2 * n):
        r = log_likelihood(sde, gm, x, n_steps=steps, solver=solver, time_variable="log_snr",
                           prior_log_prob=prior)  # fmt: skip
        tab = GRID_SOLVERS[solver]
        assert r.nfe == steps * tab.evals_per_step + int(tab.fsal)
        errs.append(float((r.log_prob - exact).abs().mean()))
    # doubling the steps divides the error by about 2^p (pre-asymptotic: allow 2^(p - 1))
    assert errs[0] / errs[1] > 2 ** (p - 1), errs


def test_sigma_path_with_log_snr_quadrature() -> None:
    """In sigma~ the stage weights integrate polynomials in log-SNR exactly, and rk4 converges."""
    from scoresde.likelihood.grid import _stage_weights

    tab = GRID_SOLVERS["rk4"]
    r0, h = 0.3, 0.2  # sigma~ from 0.3 to 0.5
    lam = [-2 * math.log(r0 + c * h) for c in tab.c]
    # the weights multiply d ell / d sigma~; feed f(lambda) * d lambda / d sigma~ = -2 f / sigma~
    w = _stage_weights(tab, r0, h, "sigma")
    for f in (lambda v: 1.0, lambda v: v, lambda v: v**2):
        approx = sum(wj * f(lj) * (-2 / (r0 + c * h)) for wj, lj, c in zip(w, lam, tab.c))
        a, b = lam[0], lam[-1]
        exact = {0: b - a, 1: (b**2 - a**2) / 2, 2: (b**3 - a**3) / 3}[
            0 if f(2.0) == 1.0 else (1 if f(2.0) == 2.0 else 2)
        ]
        assert approx == pytest.approx(exact, rel=1e-10)
    sde, gm, x, prior, exact_lp = _problem()
    errs = [float((log_likelihood(sde, gm, x, n_steps=n, solver="rk4", time_variable="sigma",
                                  prior_log_prob=prior).log_prob - exact_lp).abs().mean())
            for n in (24, 48)]  # fmt: skip
    assert errs[0] / errs[1] > 8, errs


def test_refreshed_probes_are_unbiased_and_their_stderr_covers() -> None:
    """Hutchinson with new probes at every stage vs the exact divergence on the same grid."""
    sde, gm, x, prior, _ = _problem(d=6, n=400)
    kw = {"n_steps": 6, "solver": "rk4", "time_variable": "log_snr", "prior_log_prob": prior}
    ref = log_likelihood(sde, gm, x, **kw).log_prob
    g = torch.Generator().manual_seed(5)
    r = log_likelihood(sde, gm, x, divergence="hutchinson", n_probes=2, generator=g, **kw)
    assert r.stderr is not None and r.per_probe is not None and r.per_probe.shape == (2, 400)
    assert r.dof is not None and bool((r.dof > 1).all())
    err = r.log_prob - ref
    ratio = float(err.pow(2).mean() / r.stderr.pow(2).mean())
    assert 0.8 < ratio < 1.25, ratio  # the variance estimate is unbiased
    assert abs(float((err / r.stderr).mean())) < 0.2  # and the estimate too: mean z ~ N(0, 1/400)
    # few effective degrees of freedom per sample: intervals use Student's t (Satterthwaite)
    z = (err / r.stderr).abs().numpy()
    for level, lo, hi in ((0.95, 0.92, 0.985), (0.6827, 0.63, 0.74)):
        cover = float((z < stats.t.ppf(0.5 + level / 2, r.dof.numpy())).mean())
        assert lo < cover < hi, (level, cover)


def test_refreshed_probes_have_less_variance_than_fixed_ones() -> None:
    sde, gm, x, prior, _ = _problem(d=6, n=200)
    kw = {"n_steps": 6, "solver": "rk4", "time_variable": "log_snr", "prior_log_prob": prior,
          "divergence": "hutchinson", "n_probes": 2}  # fmt: skip
    spread = {}
    for refresh in (True, False):
        g = torch.Generator().manual_seed(6)
        r = log_likelihood(sde, gm, x, refresh_probes=refresh, generator=g, **kw)
        assert r.per_probe is not None
        spread[refresh] = float((r.per_probe[0] - r.per_probe[1]).pow(2).mean())
    assert spread[True] < 0.5 * spread[False], spread


def test_seeded_refreshed_probes_do_not_depend_on_the_batch() -> None:
    sde, gm, x, prior, _ = _problem(d=3, n=6)
    kw = {"n_steps": 3, "solver": "heun2", "prior_log_prob": prior, "divergence": "hutchinson",
          "n_probes": 2}  # fmt: skip
    whole = log_likelihood(sde, gm, x, seeds=list(range(6)), **kw).log_prob
    part = log_likelihood(sde, gm, x[3:], seeds=[3, 4, 5], **kw).log_prob
    torch.testing.assert_close(whole[3:], part)


def test_solver_error_estimate_matches_the_actual_error() -> None:
    sde, gm, x, prior, exact = _problem(d=2, n=32)
    kw = {"time_variable": "log_snr", "prior_log_prob": prior}
    check = solver_error(sde, gm, x, 12, solver="rk4", **kw)
    coarse = log_likelihood(sde, gm, x, n_steps=12, solver="rk4", **kw).log_prob
    actual = float((coarse - exact).mean())
    assert abs(check.error - actual) < 0.2 * abs(actual), (check.error, actual)
    choice = choose_n_steps(sde, gm, x, target=3e-3, solver="rk4", start=4, **kw)
    assert choice.n_steps == choice.check.n_steps and choice.check.bound() <= 3e-3
    assert [h.n_steps for h in choice.history] == [4 * 2**i for i in range(len(choice.history))]
    chosen = log_likelihood(sde, gm, x, n_steps=choice.n_steps, solver="rk4", **kw).log_prob
    assert abs(float((chosen - exact).mean())) < 3e-3


def test_bits_per_dim_reports_its_budget() -> None:
    sde = VPSDE()
    gm = _mixture(3, sde)  # full covariances: Rademacher probes have a spread
    k = torch.randint(0, 16, (8, 3), generator=torch.Generator().manual_seed(7))
    out = bits_per_dim(sde, gm, k, levels=16, solver_error=0.05, pilot=4, solver="rk4",
                       divergence="hutchinson", n_probes=2, time_variable="log_snr",
                       generator=torch.Generator().manual_seed(8))  # fmt: skip
    assert out.n_steps is not None and out.solver_error is not None
    assert abs(out.solver_error) + 2 * (out.solver_error_se or 0.0) <= 0.05
    assert out.probe_stderr is not None and out.probe_stderr.shape == (8,)
    assert bool((out.probe_stderr > 0).all()) and math.isfinite(out.mean)


def test_grid_bad_inputs() -> None:
    sde, gm, x, _, _ = _problem(n=4)
    with pytest.raises(ValueError, match="n_steps"):
        log_likelihood(sde, gm, x, n_steps=0)
    with pytest.raises(ValueError, match="unknown solver 'bogus'"):
        log_likelihood(sde, gm, x, n_steps=4, solver="bogus")
    with pytest.raises(ValueError, match="pass seeds"):
        solver_error(sde, gm, x, 4, divergence="hutchinson")
    with pytest.raises(ValueError, match="target"):
        choose_n_steps(sde, gm, x, target=0.0)
    with pytest.raises(ValueError, match="no grid up to 4 steps"):
        choose_n_steps(sde, gm, x, target=1e-12, start=2, max_steps=4)
