"""Study tables: summaries with distance to the floor, best per budget (ties kept), Pareto, factors.

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
from .significance import rank_per_budget
from .table import summarize

__all__ = ["best_per_budget", "by_factor", "pareto_front", "study_summary"]


def study_summary(
    rows: Sequence[dict[str, Any]], metric: str, floor: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """:func:`summarize` plus ``floor_sd``, the distance to the floor.

    ``floor_sd = (mean - floor mean) / floor sd``: within a few units, the configuration cannot
    be told apart from exact sampling at this sample size.
    """
    out = summarize(rows, metric)
    fl = (floor or {}).get(metric)
    for s in out:
        s["floor_sd"] = (s["mean"] - fl["mean"]) / fl["sd"] if fl and fl["sd"] > 0 else math.nan
    return out


def best_per_budget(
    rows: Sequence[dict[str, Any]],
    metric: str,
    floor: Mapping[str, Any] | None = None,
    *,
    absolute: bool = False,
) -> list[dict[str, Any]]:
    """For each NFE budget, the best configuration on ``metric`` and those within noise of it.

    Budgets are the distinct target NFEs; a configuration is within budget B when the NFE it
    actually used is <= B (adaptive runs count at their own NFE). The ranking is
    :func:`~scoresde.studies.rank_per_budget` (paired test across seeds, ties kept): with one
    seed there is none, and the result is empty.

    Returns:
        Rows ``budget_nfe``, ``best``, ``nfe``, ``mean``, ``se`` and ``within_noise`` (the
        configurations tied with the best, comma-separated; ``none`` if it wins outright).
    """
    ranking = rank_per_budget(rows, metric, floor=floor, absolute=absolute)
    out = []
    for b in ranking["budgets"]:
        e = b["entries"][0]
        out.append(
            {
                "budget_nfe": b["budget_nfe"],
                "best": e["sampler"],
                "nfe": e["nfe"],
                "mean": e["mean"],
                "se": e["se"],
                "within_noise": ", ".join(b["ties"]) or "none",
            }
        )
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


def by_factor(
    rows: Sequence[dict[str, Any]], metric: str, factor: str, others: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """Mean ± s.e. over seeds of ``metric`` per factor value, with everything else held fixed.

    Nothing is pooled: each row of the result is one (factor value, sampler and ``others``
    factors' values, NFE target) cell, so the effect of ``factor`` is read within one setting
    of the rest (``rest``), never averaged over it.

    Args:
        rows: Study rows.
        metric: The column to summarise.
        factor: The factor whose values are compared.
        others: The study's other factor names (held fixed in ``rest``).
    """
    groups: dict[tuple[str, str, Any], list[float]] = {}
    for r in rows:
        if factor not in r:
            raise ValueError(f"by_factor: no column {factor!r}; have {sorted(r)}")
        v = r[metric]
        rest = ", ".join(
            [str(r.get("method", r["sampler"]))]
            + [f"{o}={r.get(o)}" for o in others if o != factor]
        )
        if v is not None and not (isinstance(v, float) and math.isnan(v)):
            groups.setdefault((str(r[factor]), rest, r["nfe_target"]), []).append(float(v))
    out = []
    for (value, rest, nfe), vals in groups.items():
        m, se = (float(t) for t in mean_se(torch.tensor(vals, dtype=torch.float64)))
        out.append(
            {factor: value, "rest": rest, "nfe_target": nfe, "mean": m, "se": se, "n": len(vals)}
        )
    return out
