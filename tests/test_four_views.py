"""The numbers of docs/concepts/four-views.md: identities to tolerance, W2 within the noise floor.

``check_four_views`` runs on the committed results.json (the page's numbers, full size) here,
and on a fresh ``--fast`` run in tests/test_experiments.py (one run of the script per suite).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

RESULTS = Path(__file__).resolve().parent.parent / "docs/experiments/four_views/results.json"


def check_four_views(res: dict) -> None:
    """Assert the mathematical claims of the four-views page on a results dict."""
    steps = res["steps"]
    for key, r in res["mixtures"].items():
        floor = r["noise_floor_w2"]
        limit = floor["mean"] + 3 * floor["std"]
        for row in r["table"]:  # every view samples p_{t_eps}: W2 within the noise floor
            assert row["w2_a"] < limit and row["w2_b"] < limit, (key, row, floor)
        by_view = {row["view"]: row for row in r["table"]}
        # DDIM(eta=1) == DDPM(beta_tilde) with the same noise: rounding, growing at most ~N eps
        for s in r["series"]:
            assert s["identity_max_diff"] < 1e-10, (key, s)
            assert s["identity_max_diff"] < 2e-14 * s["n_steps"] + 1e-13, (key, s)
        assert by_view["identity"]["w2_a"] == pytest.approx(by_view["identity"]["w2_b"], abs=1e-9)
        # the pairs converge to each other: DDIM(eta=0) -> PF-ODE at order 1; DDPM and EM on one
        # Brownian path (additive noise: strong order 1, pre-asymptotic here)
        assert abs(r["orders"]["ode_pair"] - 1) < 0.15, (key, r["orders"])
        assert 0.6 < r["orders"]["sde_pair"] < 1.2, (key, r["orders"])
        errs = [s["ode_pair_error"] for s in r["series"]]
        assert all(b < a for a, b in zip(errs, errs[1:])), (key, errs)
        assert len(r["series"]) == len(steps)
        # same law, different couplings: the ODE is a (near-)monotone map of x_T, the SDE forgets
        rc = r["rank_corr"]
        assert rc["ddim_vs_ode_endpoints"] > 0.999, (key, rc)
        assert rc["x_T_vs_ode"] > 0.85 and abs(rc["x_T_vs_sde"]) < 0.25, (key, rc)
        assert abs(rc["sde_vs_ode_endpoints"]) < 0.25, (key, rc)
        # forward then backward: the PF-ODE round trip returns the data point, the SDE does not
        rt = r["round_trip"]
        assert rt["pf_ode_max_error"] < 1e-5, (key, rt)
        assert rt["forward_then_reverse_sde_mean_error"] > 0.5, (key, rt)


def test_committed_results_hold() -> None:
    res = json.loads(RESULTS.read_text())
    assert res["fast"] is False and res["steps"][-1] >= 1000
    assert set(res["mixtures"]) == {"1d", "2d"}
    check_four_views(res)


def test_check_can_fail() -> None:
    res = json.loads(RESULTS.read_text())
    res["mixtures"]["1d"]["series"][0]["identity_max_diff"] = 1e-6
    with pytest.raises(AssertionError):
        check_four_views(res)
    res = json.loads(RESULTS.read_text())
    row = res["mixtures"]["2d"]["table"][1]
    row["w2_a"] = 10.0
    with pytest.raises(AssertionError):
        check_four_views(res)
