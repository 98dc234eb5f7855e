"""Result files shared by the studies, the CLI and the experiments: summaries, CSV and JSON.

The one home of mean ± standard error over draws (:func:`mean_se`) and of JSON-safe values
(:func:`json_safe`: tensors to lists, non-finite floats to ``null``, paths to strings).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from .._utils import mean_se

__all__ = ["json_safe", "mean_se", "summarize", "write_csv", "write_json"]


def summarize(rows: Sequence[dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    """Mean and standard error over seeds of ``metric`` per (sampler, nfe_target).

    Returns:
        Rows with ``sampler``, ``nfe_target``, ``nfe`` (mean NFE used), ``mean``, ``se``, ``n``
        and the means of ``wall_time_s`` and ``us_per_sample`` (CPU time, where rows have it),
        in first-seen order.
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
        mean, se = (float(m) for m in mean_se(v))
        out.append(
            {
                "sampler": label,
                "nfe_target": target,
                "nfe": sum(nfe) / len(nfe) if nfe else None,
                "mean": mean,
                "se": se,
                "n": len(grp),
                "wall_time_s": sum(r["wall_time_s"] for r in grp) / len(grp),
                "us_per_sample": sum(r.get("us_per_sample", math.nan) for r in grp) / len(grp),
            }
        )
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


def json_safe(value: Any) -> Any:
    """``value`` with tensors as lists, non-finite floats as ``None`` and paths as strings.

    Dict keys become strings and tuples lists, so that ``json.dumps`` writes strict JSON.
    """
    if isinstance(value, torch.Tensor):
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(value: Any, path: str | Path) -> None:
    """Write :func:`json_safe` of ``value`` to ``path``, indented, with a final newline."""
    Path(path).write_text(json.dumps(json_safe(value), indent=2) + "\n")
