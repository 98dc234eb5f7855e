"""Rankings that respect noise: ties stay ties, one seed does not rank, disagreements are flagged.

The rows here are scored exactly as a study scores them (sliced W2 against one reference), for
"configurations" that are exact draws of the training mixture ``2modes`` (a law known to
every row), so the right answer is known: same law -> tie, shifted law -> worse.
"""

from __future__ import annotations

import torch

from scoresde.cli.common import PRESETS
from scoresde.metrics import get_metric
from scoresde.studies import best_per_budget, disagreements, paired_test, rank_per_budget

TWO = PRESETS["2modes"]()
SW2 = get_metric("sw2")
REF = TWO.sample(400, torch.Generator().manual_seed(99), dtype=torch.float32)


def _rows(configs: dict[str, tuple[int, float]], seeds: range) -> list[dict]:
    """Rows of exact draws: config -> (stream, shift); one row per seed, NFE 10."""
    out = []
    for label, (stream, shift) in configs.items():
        for s in seeds:
            x = TWO.sample(400, torch.Generator().manual_seed(1000 * stream + s)).float() + shift
            out.append({"sampler": label, "nfe_target": 10, "nfe": 10, "seed": s,
                        "sw2": SW2(x, REF, torch.Generator().manual_seed(s))})  # fmt: skip
    return out


def test_same_law_different_seeds_is_a_tie_and_a_shift_is_not() -> None:
    rows = _rows({"a": (1, 0.0), "b": (2, 0.0), "shifted": (3, 0.4)}, range(5))
    rank = rank_per_budget(rows, "sw2")
    assert rank["ranked"] and rank["note"] is None
    (budget,) = rank["budgets"]
    verdict = {e["sampler"]: e["verdict"] for e in budget["entries"]}
    assert verdict["shifted"] == "worse"
    assert sorted(verdict[k] for k in ("a", "b")) == ["best", "tie"], verdict
    (table,) = best_per_budget(rows, "sw2")
    assert table["best"] in ("a", "b") and table["within_noise"] in ("a", "b")
    assert table["within_noise"] != table["best"]


def test_paired_test_holds_its_level_and_sees_a_real_difference() -> None:
    """Same law: a difference is called in about alpha = 5% of trials; a shift almost always."""
    gen = torch.Generator().manual_seed(0)
    same = shifted = 0
    for _ in range(400):
        a, b = torch.randn(2, 5, generator=gen).tolist()
        per_a, per_b = dict(enumerate(a)), dict(enumerate(b))
        same += bool(paired_test(per_a, per_b)["significant"])
        shifted += bool(paired_test(per_a, {s: v + 3.0 for s, v in per_b.items()})["significant"])
    assert 8 <= same <= 36, same  # binomial(400, 0.05) = 20 +- 4.4
    assert shifted >= 350, shifted  # power about 0.95 at this effect size (3 / sqrt 2 sd)


def test_one_seed_does_not_rank_and_says_why() -> None:
    rows = _rows({"a": (1, 0.0), "shifted": (3, 0.4)}, range(1))
    rank = rank_per_budget(rows, "sw2")
    assert not rank["ranked"] and rank["budgets"] == []
    assert "one seed: no estimate of noise" in rank["reason"]
    assert best_per_budget(rows, "sw2") == []
    few = rank_per_budget(_rows({"a": (1, 0.0), "b": (2, 0.0)}, range(3)), "sw2")
    assert few["ranked"] and "3 seeds: the paired test is weak" in few["note"]


def test_floor_ties_and_metric_disagreement_are_flagged() -> None:
    rows = []
    # "sharp": best sliced W2 but a CE gap far below zero (over-concentrated); "fair": a little
    # worse in W2, CE gap near zero. Per-seed values with small noise.
    for s in range(5):
        e = 0.001 * (s - 2)
        rows.append({"sampler": "sharp", "nfe_target": 10, "nfe": 10, "seed": s, "sw2": 0.10 + e,
                     "ce_gap": -0.25 + e})  # fmt: skip
        rows.append({"sampler": "fair", "nfe_target": 10, "nfe": 10, "seed": s,
                     "sw2": 0.12 + 0.5 * e, "ce_gap": 0.01 - e})  # fmt: skip
    sw2 = rank_per_budget(rows, "sw2")
    ce = rank_per_budget(rows, "ce_gap", absolute=True)
    assert sw2["budgets"][0]["best"] == "sharp" and ce["budgets"][0]["best"] == "fair"
    assert ce["metric"] == "|ce_gap|"
    (d,) = disagreements(sw2, ce)
    assert d == {"budget_nfe": 10, "sw2": "sharp", "|ce_gap|": "fair", "agree": False}
    # both within the exact-sample floor: a significant difference there is still a tie
    floor = {"sw2": {"mean": 0.11, "sd": 0.01}}
    at_floor = rank_per_budget(rows, "sw2", floor=floor)
    assert at_floor["budgets"][0]["entries"][1]["verdict"] == "tie (at floor)"
    assert (
        rank_per_budget(rows, "sw2", floor={"sw2": {"mean": 0.05, "sd": 0.01}})["budgets"][0][
            "entries"
        ][1]["verdict"]
        == "worse"
    )
