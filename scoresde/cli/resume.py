"""Resuming a training run with a config that may differ from the one that ran.

A run folder's checkpoint keeps the config that produced it (``metadata["run_config"]``). On
resume the new config is compared with it field by field (DESIGN.md, contract 13):

* fields that define the model or the problem (data, SDE, network, loss, batch, seed, ...) cannot
  change: the resume is refused with one line listing them;
* :data:`MUTABLE` fields (the length of the run, the learning rate, the logging, checkpoint and
  evaluation cadence, the NaN guard) may change: they are applied from the checkpoint's step on,
  printed as a one-line notice and appended to the run's ``history.jsonl``, so that
  ``config.json`` (the latest config) and the history together tell what ran.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from scoresde.cli.common import CLIError
from scoresde.cli.config import RunConfig
from scoresde.distributed.atomic import append_text
from scoresde.training.checkpoint import load_checkpoint

__all__ = ["MUTABLE", "check_resume", "config_changes"]

#: Fields that may change when a run is resumed.
MUTABLE = frozenset(
    {
        "schedule.steps",
        "schedule.log_every",
        "schedule.ckpt_every",
        "schedule.eval_every",
        "schedule.max_nan_steps",
        "optim.lr",
    }
)


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v and prefix == "":
            out.update(_flat(v, f"{key}."))
        else:
            out[key] = list(v) if isinstance(v, tuple) else v
    return out


def config_changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``{"section.field": (old, new)}`` for every field that differs between two config dicts.

    A field the stored config lacks (added to the config after that run) counts as its default.
    """
    a, b = {**_flat(RunConfig().to_dict()), **_flat(old)}, _flat(new)
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def check_resume(config: RunConfig, out: str | Path, announce: bool = True) -> dict[str, Any]:
    """Compare ``config`` with the config of the checkpoint in ``out`` (if any).

    Args:
        config: The config of the new call.
        out: The run folder.
        announce: Print a one-line notice and append the change to ``history.jsonl`` (rank 0).

    Returns:
        The changed mutable fields ``{"section.field": (old, new)}`` (empty for a fresh run).

    Raises:
        CLIError: If fields outside :data:`MUTABLE` changed (each named, with stored and new
            values), or the checkpoint holds no run config.
    """
    ckpt = Path(out) / "checkpoint.pt"
    if not ckpt.is_file():
        return {}
    state = load_checkpoint(ckpt)
    stored = (state.get("metadata") or {}).get("run_config")
    if not isinstance(stored, dict):
        raise CLIError(f"cannot resume {ckpt}: it holds no run config to compare with")
    old = RunConfig.from_dict(stored).to_dict()
    changes = config_changes(old, config.to_dict())
    fixed = {k: v for k, v in changes.items() if k not in MUTABLE}
    if fixed:
        listed = "; ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in fixed.items())
        raise CLIError(
            f"cannot resume {ckpt}: expected the run's own data, SDE, network and loss (only "
            f"{', '.join(sorted(MUTABLE))} may change), received a changed {listed}; use a new "
            "--out for a new run"
        )
    if changes and announce:
        step = int(state["step"])
        listed = ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in changes.items())
        sys.stderr.write(
            f"scoresde train: resuming at step {step} with {listed} (recorded in history.jsonl)\n"
        )
        entry = {
            "step": step,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "changed": {k: list(v) for k, v in changes.items()},
        }
        append_text(Path(out) / "history.jsonl", json.dumps(entry) + "\n")
    return changes
