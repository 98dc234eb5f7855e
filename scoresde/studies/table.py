"""Tidy-table helpers shared by the studies: per-group summaries and CSV output."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

__all__ = ["summarize", "write_csv"]


def summarize(rows: Sequence[dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    """Mean and standard error over seeds of ``metric`` per (sampler, nfe_target).

    Returns:
        Rows with ``sampler``, ``nfe_target``, ``nfe`` (mean NFE used), ``mean``, ``se``, ``n``
        and ``wall_time_s`` (mean), in first-seen order.
    """
    groups: dict[tuple[str, Any], list[dict[str, Any]]] = {}
    for r in rows:
        if metric not in r:
            raise ValueError(f"summarize: unknown column {metric!r}; have {sorted(r)}")
        groups.setdefault((r["sampler"], r["nfe_target"]), []).append(r)
    out = []
    for (label, target), grp in groups.items():
        v = torch.tensor([float(r[metric]) for r in grp], dtype=torch.float64)
        nfe = [r["nfe"] for r in grp if r["nfe"] is not None]
        se = float(v.std() / math.sqrt(len(grp))) if len(grp) > 1 else math.nan
        out.append({
            "sampler": label, "nfe_target": target, "nfe": sum(nfe) / len(nfe) if nfe else None,
            "mean": float(v.mean()), "se": se, "n": len(grp),
            "wall_time_s": sum(r["wall_time_s"] for r in grp) / len(grp),
        })  # fmt: skip
    return out


def write_csv(rows: Sequence[dict[str, Any]], path: str | Path) -> None:
    """Write dict rows as CSV with the union of their keys as header (first-seen order)."""
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
