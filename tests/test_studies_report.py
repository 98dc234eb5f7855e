"""Study tables (best per budget, Pareto front, factor pooling) and plain log-axis tick labels."""

from __future__ import annotations

import math

import pytest

from scoresde.cli.report import plain_log, pyplot
from scoresde.studies import best_per_budget, by_factor, pareto_front, study_summary


def _rows() -> list[dict]:
    out = []
    # (sampler, nfe, us per sample, metric per seed)
    for s, nfe, us, vals in [("a", 5, 1.0, (0.9, 1.1)), ("a", 10, 2.0, (0.5, 0.5)),
                             ("b", 5, 3.0, (0.6, 0.8)), ("b", 10, 6.0, (0.2, 0.4)),
                             ("c", 10, 1.5, (0.95, 1.05))]:  # fmt: skip
        for seed, v in enumerate(vals):
            out.append({"sampler": s, "method": s, "grid": "u" if s != "b" else "q",
                        "nfe_target": nfe, "nfe": nfe, "seed": seed, "wall_time_s": us,
                        "us_per_sample": us, "m": v})  # fmt: skip
    return out


def test_best_per_budget_pareto_and_floor_distance() -> None:
    floor = {"m": {"mean": 0.3, "sd": 0.1}}
    summary = study_summary(_rows(), "m", floor)
    by = {(s["sampler"], s["nfe_target"]): s for s in summary}
    assert by[("b", 10)]["mean"] == pytest.approx(0.3) and by[("b", 10)][
        "floor_sd"
    ] == pytest.approx(0, abs=1e-12)
    assert by[("a", 5)]["floor_sd"] == pytest.approx((1.0 - 0.3) / 0.1)
    best = {r["budget_nfe"]: (r["best"], r["within_noise"]) for r in best_per_budget(_rows(), "m")}
    # two seeds: b@5 (0.7) and a@5 (1.0) differ by 0.3 +- 0 (paired, same spread): b wins at 5;
    # at 10, b@10 (0.3) against a@10 (0.5, +-0) and b@5: the paired test with 1 df keeps ties
    assert best[5] == ("b", "none") and best[10][0] == "b"
    front = [(s["sampler"], s["nfe_target"]) for s in pareto_front(summary)]
    # c@10 (1.5 us, 1.0) ties a@5 at a higher cost; b@5 (3 us, 0.7) is worse than a@10 (2 us, 0.5).
    assert front == [("a", 5), ("a", 10), ("b", 10)]
    means = [by[k]["mean"] for k in front]
    assert means == sorted(means, reverse=True)


def test_by_factor_holds_the_rest_fixed() -> None:
    table = {(t["grid"], t["rest"], t["nfe_target"]): t for t in by_factor(_rows(), "m", "grid")}
    # grid u at NFE 10 is two samplers (a and c): two rows, never one pooled mean
    assert table[("u", "a", 10)]["n"] == 2 and table[("u", "a", 10)]["mean"] == pytest.approx(0.5)
    assert table[("u", "c", 10)]["mean"] == pytest.approx(1.0)
    assert table[("q", "b", 5)]["mean"] == pytest.approx(0.7)
    with pytest.raises(ValueError, match="no column 'eta'"):
        by_factor(_rows(), "m", "eta")


def test_log_axes_have_plain_tick_labels() -> None:
    plt = pyplot()
    fig, ax = plt.subplots()
    ax.plot([4, 5, 10, 20], [0.3, 0.2, 0.1, 0.05])
    plain_log(ax, "x", [4, 5, 10, 20])
    plain_log(ax, "y")
    fig.canvas.draw()
    xs = [t.get_text() for t in ax.get_xticklabels()]
    ys = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    plt.close(fig)
    assert xs == ["4", "5", "10", "20"]
    assert ys and all("10^" not in y and "times" not in y and "$" not in y for y in ys), ys
    assert all(not math.isnan(float(y)) for y in ys)
