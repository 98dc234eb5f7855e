"""The sampler and likelihood studies: documented columns, honest NFE and timings, sane values."""

from __future__ import annotations

import math

import pytest
import torch

from scoresde.analytic import GaussianMixture
from scoresde.sde import VESDE, VPSDE
from scoresde.studies import (
    LIKELIHOOD_COLUMNS,
    SAMPLER_COLUMNS,
    compare_samplers,
    likelihood_study,
)


def _mixture(sde):
    return GaussianMixture(
        [0.4, 0.6], [[-1.5, 0.5], [1.0, -0.5]], [[0.2, 0.3], [0.3, 0.1]], sde=sde
    )


def test_sampler_study_table() -> None:
    sde = VPSDE(eps=1e-3)
    gm = _mixture(sde)
    ref = gm.sample(600, torch.Generator().manual_seed(9))
    study = compare_samplers(
        sde,
        gm,
        ["ddim", ("euler_maruyama", {}), "pf_heun"],
        [5, 41],  # Heun: 2 NFE per step and the final Tweedie step
        ref,
        ("sw2", "energy"),
        seeds=(0, 1),
        density=gm,
    )
    assert len(study.rows) == 3 * 2 * 2
    for row in study.rows:
        assert set(SAMPLER_COLUMNS) | {"sw2", "energy", "ce_gap", "ce_gap_se"} <= set(row)
        assert not row["error"]
        assert row["nfe"] == row["nfe_target"]  # all three hit 5 and 41 exactly
        assert row["wall_time_s"] > 0
        assert math.isfinite(row["sw2"]) and row["sw2"] >= 0
    # more score evaluations give better samples (deterministic sampler, same x_T)
    by = {(r["sampler"], r["nfe"], r["seed"]): r for r in study.rows}
    for seed in (0, 1):
        assert by[("ddim", 41, seed)]["sw2"] < by[("ddim", 5, seed)]["sw2"]
        assert abs(by[("pf_heun", 41, seed)]["ce_gap"]) < 0.15
    # same prior draws for every sampler: summaries have one row per (sampler, NFE)
    assert len(study.summary("sw2")) == 6
    assert set(study.samples) == {
        (s, n) for s in ("ddim", "euler_maruyama", "pf_heun") for n in (5, 41)
    }


def test_sampler_study_rejects_unsupported_pairs() -> None:
    sde = VESDE()
    with pytest.raises(ValueError, match="sampler 'ddpm' does not support VESDE"):
        compare_samplers(sde, _mixture(sde), ["ddpm"], [10], torch.zeros(10, 2))


def test_likelihood_study_table_and_timings() -> None:
    sde = VPSDE()
    gm = _mixture(sde)
    x = gm.sample(40, torch.Generator().manual_seed(2))
    rows = likelihood_study(
        sde,
        gm,
        x,
        true_log_prob=gm.log_prob(x),
        tolerances=(1e-3, 1e-6),
        probes=(1, 4),
        elbo_samples=(8,),
        prior_log_prob=gm.marginal_mixture(sde.T).log_prob,
        generator=torch.Generator().manual_seed(0),
    )
    methods = ["exact", "hutchinson", "hutchinson"] * 2 + ["elbo", "reference", "model_gap"]
    assert [r["method"] for r in rows] == methods
    for r in rows:
        assert set(LIKELIHOOD_COLUMNS) <= set(r) and r["n_points"] == 40
        assert r["wall_time_s"] > 0 or r["method"] == "model_gap"
    exact = [r for r in rows if r["method"] == "exact"]
    assert exact[1]["mean_abs_error"] < 1e-4 < exact[0]["mean_abs_error"] + 1e-4
    assert exact[1]["nfe"] > exact[0]["nfe"]
