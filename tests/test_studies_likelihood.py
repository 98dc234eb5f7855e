"""The likelihood-estimator study measures each estimator against a tight solve of the same model.

On an analytic mixture (exact score, exact p_T) the reference equals the true log-density, the
exact-divergence error falls with the solver tolerance, Hutchinson's error falls like
1 / sqrt(probes), and the ELBO is a bound (NLL_elbo >= NLL_ref up to its Monte Carlo error).
"""

from __future__ import annotations

import math

import pytest
import torch

from scoresde.analytic import GaussianMixture
from scoresde.sde import VPSDE
from scoresde.studies import LIKELIHOOD_COLUMNS, likelihood_study

F64 = torch.float64


def _mixture(sde: VPSDE) -> GaussianMixture:
    # full covariances: the score's Jacobian has off-diagonal terms, so Hutchinson has variance
    cov = [[[0.30, 0.12], [0.12, 0.10]], [[0.15, -0.08], [-0.08, 0.20]]]
    return GaussianMixture([0.4, 0.6], [[-1.5, 0.5], [1.0, -0.5]], cov, sde=sde)


@pytest.fixture(scope="module")
def study() -> tuple[list[dict], GaussianMixture, torch.Tensor]:
    sde = VPSDE(eps=1e-3)
    gm = _mixture(sde)
    x = gm.sample(60, torch.Generator().manual_seed(3)).to(F64)
    rows = likelihood_study(
        sde, gm, x, true_log_prob=gm.marginal_log_prob(x, sde.eps),
        tolerances=(1e-2, 1e-4, 1e-6), probes=(1, 16), elbo_samples=(128,),
        prior_log_prob=gm.marginal_mixture(sde.T).log_prob, dtype=F64,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    return rows, gm, x


def _by(rows: list[dict], method: str, **kw: object) -> list[dict]:
    return [r for r in rows if r["method"] == method and all(r[k] == v for k, v in kw.items())]


def test_rows_columns_and_labels(study) -> None:
    rows, _, x = study
    methods = [r["method"] for r in rows]
    assert methods == ["exact", "hutchinson", "hutchinson"] * 3 + ["elbo", "reference", "model_gap"]
    for r in rows:
        assert set(LIKELIHOOD_COLUMNS) <= set(r) and r["n_points"] == x.shape[0]
    kinds = {r["method"]: r["kind"] for r in rows}
    assert kinds == {"exact": "estimate", "hutchinson": "estimate", "elbo": "bound",
                     "reference": "reference", "model_gap": "model"}  # fmt: skip
    assert {r["against"] for r in rows if r["kind"] != "model"} == {"reference"}
    assert _by(rows, "model_gap")[0]["against"] == "true density"
    ref = _by(rows, "reference")[0]
    assert ref["rtol"] == 1e-7 and ref["mean_abs_error"] == 0 and ref["nfe"] > 0
    for r in rows:
        if r["kind"] != "model":
            assert r["wall_time_s"] > 0 and r["nll_error"] == -r["bias"]


def test_reference_is_the_true_log_density(study) -> None:
    rows, _, _ = study
    gap = _by(rows, "model_gap")[0]  # the exact score: the model is the data
    assert gap["mean_abs_error"] < 1e-5, gap


def test_exact_error_falls_with_tolerance(study) -> None:
    rows, _, _ = study
    exact = _by(rows, "exact")
    tols = [r["rtol"] for r in exact]
    errs = [r["mean_abs_error"] for r in exact]
    assert tols == sorted(tols, reverse=True)
    slope = (math.log(errs[0]) - math.log(errs[-1])) / (math.log(tols[0]) - math.log(tols[-1]))
    assert slope > 0.5, (tols, errs)  # error ~ tol^p with p > 0.5 (dopri5: about 1)
    assert errs[-1] < 1e-4 < errs[0] and errs == sorted(errs, reverse=True)
    nfe = [r["nfe"] for r in exact]
    assert nfe == sorted(nfe) and nfe[-1] > nfe[0]  # tighter costs more


def test_hutchinson_error_falls_like_one_over_sqrt_probes(study) -> None:
    rows, _, _ = study
    one, sixteen = (_by(rows, "hutchinson", rtol=1e-6, n_probes=k)[0] for k in (1, 16))
    ratio = one["rmse"] / sixteen["rmse"]
    assert 2.5 < ratio < 6.5, (one["rmse"], sixteen["rmse"])  # sqrt(16) = 4
    assert sixteen["n_vjp"] > one["n_vjp"]
    # its reported standard error matches the error it makes
    assert 0.5 < sixteen["mean_stderr"] / sixteen["mean_abs_error"] < 3, sixteen


def test_elbo_row_is_a_bound(study) -> None:
    rows, _, _ = study
    e = _by(rows, "elbo")[0]
    assert e["kind"] == "bound" and e["rtol"] is None and e["bias_se"] > 0
    # NLL_elbo - NLL_ref >= 0 up to Monte Carlo error, and (exact score) tight in expectation
    assert e["nll_error"] > -3 * e["bias_se"], e
    assert e["nll_error"] < 3 * e["bias_se"] + 0.02, e


def test_validation_messages() -> None:
    sde = VPSDE()
    gm, x = _mixture(sde), torch.zeros(4, 2, dtype=F64)
    with pytest.raises(ValueError, match=r"expected 0 < reference_tol < min\(tolerances\) = 1e-05"):
        likelihood_study(sde, gm, x, tolerances=(1e-3, 1e-5), reference_tol=1e-5)
    with pytest.raises(ValueError, match=r"expected tolerances in \(0, 1\), received \(2.0,\)"):
        likelihood_study(sde, gm, x, tolerances=(2.0,))
    with pytest.raises(ValueError, match=r"positive integer probes, received \[0\]"):
        likelihood_study(sde, gm, x, probes=(0,))
    with pytest.raises(ValueError, match=r"true_log_prob of shape \(4,\), received \(3,\)"):
        likelihood_study(sde, gm, x, true_log_prob=torch.zeros(3))
