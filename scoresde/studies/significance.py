"""Rankings that hold beyond noise: paired comparisons across seeds (DESIGN.md, contract 14).

For seed s every configuration of a study starts from the same prior draws x_T, its sampler
noise comes from the same seed and the metrics use the same projections, so the per-seed
difference d_s = m_A(s) - m_B(s) cancels the noise the two share. :func:`rank_per_budget`
ranks, per NFE budget B, the configurations that spent at most B NFE on a stated primary
metric:

* the **best** is the lowest mean over seeds;
* every other configuration is a **tie** with it when a paired two-sided t-test of
  mean(d) = 0 does not reject at level ``alpha`` (|mean d| <= t_{1 - alpha/2, S - 1} se(d),
  S common seeds; no normality is assumed beyond the test's), or when both lie within the
  noise floor of exact samples (mean <= floor mean + ``floor_z`` floor sd): neither can then be
  told from exact sampling at this sample size. Otherwise it is **worse**.
* With fewer than two common seeds there is no estimate of noise: nothing is ranked, and the
  table says why. Fewer than :data:`RECOMMENDED_SEEDS` seeds rank with a wide t quantile and
  a note.

Signed columns such as the CE gap rank by their absolute value (``absolute=True``): zero is
exact, and a negative gap (over-concentrated samples) is no better than a positive one.
:func:`disagreements` flags budgets where two metrics' rankings disagree (each one's best is
not tied with the other's).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["FLOOR_TIE_Z", "RECOMMENDED_SEEDS", "disagreements", "paired_test", "rank_per_budget"]

#: Seeds below which a ranking carries a "few seeds" note (the t quantile is wide).
RECOMMENDED_SEEDS = 5
#: Both configurations are "at the floor" when mean <= floor mean + FLOOR_TIE_Z floor sd.
#: Chosen on training problems, never the ``8gaussians`` reported in the docs
#: (experiments/sampler_study.py: ``2modes`` and two 3-component mixtures at n = 500, 2000,
#: 5000, 40 exact draws each against a floor of 5 draws, as a study has): exact draws lay above
#: floor mean + 3 sd in 13 of 360 trials (39 at 2 sd, 7 at 4 sd).
FLOOR_TIE_Z = 3.0


def _value(row: Mapping[str, Any], metric: str, absolute: bool) -> float:
    v = row.get(metric)
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return math.nan
    return abs(float(v)) if absolute else float(v)


def paired_test(a: Mapping[int, float], b: Mapping[int, float], alpha: float = 0.05) -> dict:
    """Paired two-sided t-test of mean(a_s - b_s) = 0 over the seeds both have.

    Returns:
        ``{"diff", "diff_se", "n", "significant"}``; ``significant`` is None with fewer than
        two common seeds.
    """
    from scipy.stats import t as student_t

    seeds = sorted(s for s in a if s in b and not math.isnan(a[s]) and not math.isnan(b[s]))
    d = [a[s] - b[s] for s in seeds]
    n = len(d)
    if n < 2:
        return {"diff": d[0] if d else math.nan, "diff_se": math.nan, "n": n, "significant": None}
    mean = sum(d) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in d) / (n - 1))
    se = sd / math.sqrt(n)
    crit = float(student_t.ppf(1 - alpha / 2, n - 1))
    return {"diff": mean, "diff_se": se, "n": n, "significant": abs(mean) > crit * se}


def rank_per_budget(
    rows: Sequence[Mapping[str, Any]],
    metric: str,
    *,
    floor: Mapping[str, Any] | None = None,
    alpha: float = 0.05,
    absolute: bool = False,
    floor_z: float = FLOOR_TIE_Z,
) -> dict[str, Any]:
    """Per NFE budget, the best configuration on ``metric`` and every one tied with it.

    Args:
        rows: Study rows (``sampler``, ``nfe_target``, ``nfe``, ``seed`` and ``metric``).
        metric: The primary metric (lower is better).
        floor: The study's floor table (``{column: {"mean", "sd"}}``), for floor ties.
        alpha: Level of the paired test.
        absolute: Rank |metric| (signed columns such as ``ce_gap``).
        floor_z: Floor sds under which a configuration counts as at the floor.

    Returns:
        ``{"metric", "ranked", "reason", "seeds", "note", "budgets": [...]}``; each budget is
        ``{"budget_nfe", "best", "ties", "entries"}`` with one entry per configuration within
        the budget (``sampler``, ``nfe``, ``mean``, ``se``, ``diff``, ``diff_se``, ``verdict``
        in ``best`` / ``tie`` / ``tie (at floor)`` / ``worse``), best first.
    """
    per: dict[tuple[str, Any], dict[str, Any]] = {}
    for r in rows:
        e = per.setdefault((r["sampler"], r["nfe_target"]), {"values": {}, "nfe": []})
        e["values"][r["seed"]] = _value(r, metric, absolute)
        if r.get("nfe") is not None:
            e["nfe"].append(r["nfe"])
    seeds = sorted({r["seed"] for r in rows})
    name = f"|{metric}|" if absolute else metric
    out: dict[str, Any] = {
        "metric": name,
        "ranked": len(seeds) >= 2,
        "seeds": len(seeds),
        "reason": None,
        "note": None,
        "alpha": alpha,
        "budgets": [],
    }
    if not out["ranked"]:
        out["reason"] = (
            f"one seed: no estimate of noise, so no ranking of {name} (run >= 2 "
            f"seeds, {RECOMMENDED_SEEDS} recommended)"
        )
        return out
    if len(seeds) < RECOMMENDED_SEEDS:
        out["note"] = (
            f"{len(seeds)} seeds: the paired test is weak (t quantile with "
            f"{len(seeds) - 1} df); {RECOMMENDED_SEEDS} or more recommended"
        )
    fl = (floor or {}).get(metric)
    at_floor_max = None
    if fl and fl.get("sd", 0) > 0:
        centre = abs(fl["mean"]) if absolute else fl["mean"]
        at_floor_max = centre + floor_z * fl["sd"]
    configs = []
    for (label, target), e in per.items():
        vals = [v for v in e["values"].values() if not math.isnan(v)]
        if not vals or not e["nfe"]:
            continue
        mean = sum(vals) / len(vals)
        sd = (
            math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1))
            if len(vals) > 1
            else math.nan
        )
        configs.append(
            {
                "sampler": label,
                "nfe_target": target,
                "nfe": max(e["nfe"]),
                "mean": mean,
                "se": sd / math.sqrt(len(vals)),
                "values": e["values"],
            }
        )
    budgets = sorted({c["nfe_target"] for c in configs if c["nfe_target"] is not None})
    for b in budgets:
        within = sorted((c for c in configs if c["nfe"] <= b), key=lambda c: c["mean"])
        if not within:
            continue
        best = within[0]
        entries = []
        for c in within:
            test = paired_test(c["values"], best["values"], alpha)
            both_floor = at_floor_max is not None and max(c["mean"], best["mean"]) <= at_floor_max
            if c is best:
                verdict = "best"
            elif test["significant"] is None or not test["significant"]:
                verdict = "tie"
            elif both_floor:
                verdict = "tie (at floor)"
            else:
                verdict = "worse"
            entries.append(
                {k: c[k] for k in ("sampler", "nfe_target", "nfe", "mean", "se")}
                | {"diff": test["diff"], "diff_se": test["diff_se"], "verdict": verdict}
            )
        ties = [
            e["sampler"] if e["nfe_target"] == b else f"{e['sampler']}@{e['nfe']}"
            for e in entries
            if e["verdict"].startswith("tie")
        ]
        out["budgets"].append(
            {
                "budget_nfe": b,
                "best": best["sampler"],
                "best_nfe": best["nfe"],
                "ties": ties,
                "entries": entries,
            }
        )
    return out


def disagreements(first: Mapping[str, Any], second: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Budgets where the two rankings' bests are not tied in the other ranking.

    Args:
        first: :func:`rank_per_budget` of one metric (e.g. ``sw2``).
        second: :func:`rank_per_budget` of another (e.g. ``ce_gap`` with ``absolute=True``).

    Returns:
        One row per budget: ``budget_nfe``, each metric's best, and ``agree`` (bool).
    """
    if not (first.get("ranked") and second.get("ranked")):
        return []
    b2 = {b["budget_nfe"]: b for b in second["budgets"]}
    out = []
    for b in first["budgets"]:
        o = b2.get(b["budget_nfe"])
        if o is None:
            continue
        top1 = {(e["sampler"], e["nfe"]) for e in b["entries"] if e["verdict"] != "worse"}
        top2 = {(e["sampler"], e["nfe"]) for e in o["entries"] if e["verdict"] != "worse"}
        agree = (b["best"], b["best_nfe"]) in top2 and (o["best"], o["best_nfe"]) in top1
        out.append(
            {
                "budget_nfe": b["budget_nfe"],
                first["metric"]: b["best"],
                second["metric"]: o["best"],
                "agree": agree,
            }
        )
    return out
