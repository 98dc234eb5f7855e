"""Study tables: summaries with distance to the floor, best per budget, Pareto front, factors.

Every function takes the tidy rows of :func:`~scoresde.studies.run_study` (or
:func:`~scoresde.studies.compare_samplers`) and returns rows for
:func:`scoresde.cli.report.markdown_table`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from .._utils import mean_se
from .table import summarize

__all__ = ["best_per_budget", "by_factor", "pareto_front", "study_summary"]


def study_summary(
    rows: Sequence[dict[str, Any]], metric: str, floor: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """:func:`summarize` plus ``us_per_sample`` and ``floor_sd``, the distance to the floor.

    ``floor_sd = (mean - floor mean) / floor sd``: within a few units, the configuration cannot
    be told apart from exact sampling at this sample size.
    """
    out = summarize(rows, metric)
    per: dict[tuple[str, Any], list[float]] = {}
    for r in rows:
        per.setdefault((r["sampler"], r["nfe_target"]), []).append(r.get("us_per_sample", math.nan))
    fl = (floor or {}).get(metric)
    for s in out:
        v = per[(s["sampler"], s["nfe_target"])]
        s["us_per_sample"] = sum(v) / len(v)
        s["floor_sd"] = (s["mean"] - fl["mean"]) / fl["sd"] if fl and fl["sd"] > 0 else math.nan
    return out


def best_per_budget(summary: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """For each NFE budget, the configuration with the lowest mean among those within it.

    Budgets are the distinct target NFEs; a configuration is within budget B when the NFE it
    actually used is <= B (adaptive runs count at their own NFE).
    """
    ok = [s for s in summary if s["nfe"] is not None and not math.isnan(s["mean"])]
    budgets = sorted({s["nfe_target"] for s in summary if s["nfe_target"] is not None})
    out = []
    for b in budgets:
        within = [s for s in ok if s["nfe"] <= b]
        if within:
            best = min(within, key=lambda s: s["mean"])
            out.append({"budget_nfe": b, **best})
    return out


def pareto_front(summary: Sequence[dict[str, Any]], cost: str = "us_per_sample") -> list[dict]:
    """Configurations no other beats on both ``cost`` and mean quality (sorted by cost)."""
    ok = sorted(
        (s for s in summary if not math.isnan(s["mean"]) and not math.isnan(s[cost])),
        key=lambda s: (s[cost], s["mean"]),
    )
    front, best = [], math.inf
    for s in ok:
        if s["mean"] < best:
            front.append(s)
            best = s["mean"]
    return front


def by_factor(rows: Sequence[dict[str, Any]], metric: str, factor: str) -> list[dict[str, Any]]:
    """Mean ± s.e. of ``metric`` per (factor value, NFE target), over everything else.

    The marginal effect of one factor: the other factors, samplers and seeds are pooled.
    """
    groups: dict[tuple[str, Any], list[float]] = {}
    for r in rows:
        if factor not in r:
            raise ValueError(f"by_factor: no column {factor!r}; have {sorted(r)}")
        v = r[metric]
        if v is not None and not (isinstance(v, float) and math.isnan(v)):
            groups.setdefault((str(r[factor]), r["nfe_target"]), []).append(float(v))
    out = []
    for (value, nfe), vals in groups.items():
        m, se = (float(t) for t in mean_se(torch.tensor(vals, dtype=torch.float64)))
        out.append({factor: value, "nfe_target": nfe, "mean": m, "se": se, "n": len(vals)})
    return out
