"""CSV logs of a training run: running means per row, and the loss binned by t.

The per-t profile (``loss_t0`` .. ``loss_t{n-1}``: mean per-example loss for t in
``[i T / n, (i + 1) T / n)``) shows where a time schedule or weighting is off.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from scoresde.distributed.atomic import append_text, atomic_write_text

__all__ = ["CsvLog", "append_csv", "trim_csv"]


class CsvLog:
    """Running means since the last row: loss, grad norm, and the loss in ``t_bins`` bins of t."""

    def __init__(self, path: Path, n_bins: int, resume_step: int) -> None:
        self.path, self.n_bins, self.t0 = path, n_bins, time.perf_counter()
        self.cols = ["step", "loss", "lr", "grad_norm", "nan_skips", "seconds"] + [
            f"loss_t{i}" for i in range(n_bins)
        ]
        header = path.read_text().split("\n", 1)[0] if path.is_file() else ""
        if header and header.split(",") != self.cols:  # trimming would drop every row
            raise ValueError(
                f"train: {path} logs {len(header.split(',')) - 6} t-bins but this run asks for "
                f"t_bins={n_bins}; resume with the run's own t_bins (its rows would otherwise "
                "all be dropped), or train into a new out_dir"
            )
        if header:  # drop rows written after the checkpoint we resume from
            trim_csv(path, resume_step, len(self.cols))
        else:
            atomic_write_text(path, ",".join(self.cols) + "\n")
        self._reset()

    def _reset(self) -> None:
        self.loss: float | Tensor = 0.0
        self.gnorm: float | Tensor = 0.0
        self.n = 0
        self.bin_sum = torch.zeros(self.n_bins, dtype=torch.float64)
        self.bin_cnt = torch.zeros(self.n_bins, dtype=torch.float64)

    def state(self) -> dict[str, Any] | None:
        """The running sums since the last row (saved in the checkpoint for an exact resume)."""
        if self.n == 0:
            return None
        return {
            "loss": self.loss,
            "gnorm": self.gnorm,
            "n": self.n,
            "bin_sum": self.bin_sum.clone(),
            "bin_cnt": self.bin_cnt.clone(),
        }

    def load_state(self, state: dict[str, Any] | None) -> None:
        """Continue the running sums saved by :meth:`state` (``None``: start a new row)."""
        self._reset()
        if state:
            self.loss, self.gnorm, self.n = state["loss"], state["gnorm"], int(state["n"])
            self.bin_sum, self.bin_cnt = state["bin_sum"].cpu(), state["bin_cnt"].cpu()

    def add(self, loss: Tensor, terms: Tensor, t_frac: Tensor, gnorm: Tensor) -> None:
        """Accumulate one step: its loss, per-example ``terms`` at times ``t_frac`` T, grad norm."""
        self.loss, self.gnorm, self.n = self.loss + loss, self.gnorm + gnorm, self.n + 1
        idx = (t_frac.detach().cpu() * self.n_bins).long().clamp(0, self.n_bins - 1)
        self.bin_sum += torch.bincount(idx, terms.cpu().double(), self.n_bins)
        self.bin_cnt += torch.bincount(idx, minlength=self.n_bins).double()

    def flush(self, step: int, lr: float, nan_skips: int) -> dict[str, float]:
        """Append the running means as a row of ``log.csv``, reset them, return the row."""
        n = max(self.n, 1)
        bins = (self.bin_sum / self.bin_cnt.clamp_min(1)).tolist()
        row = {
            "step": step,
            "loss": float(self.loss) / n,
            "lr": lr,
            "grad_norm": float(self.gnorm) / n,
            "nan_skips": nan_skips,
            "seconds": time.perf_counter() - self.t0,
        }
        row.update({f"loss_t{i}": b for i, b in enumerate(bins)})
        cells = (f"{row[c]:.6g}" if isinstance(row[c], float) else str(row[c]) for c in self.cols)
        append_text(self.path, ",".join(cells) + "\n")
        self._reset()
        return row


def trim_csv(path: Path, last_step: int, n_cols: int | None = None) -> None:
    """Keep the header and the complete rows of ``path`` whose step is ``<= last_step``.

    Rows written after the checkpoint a run resumes from (and a row cut short by ``kill -9``)
    are dropped, so that the resumed run's rows continue the file exactly.
    """
    if not path.is_file():
        return
    lines = path.read_text().splitlines()
    if not lines:
        return
    width = n_cols or len(lines[0].split(","))

    def keep(line: str) -> bool:
        cells = line.split(",")
        return len(cells) == width and cells[0].isdigit() and int(cells[0]) <= last_step

    atomic_write_text(path, "\n".join([lines[0], *filter(keep, lines[1:])]) + "\n")


def append_csv(path: Path, row: dict[str, Any]) -> None:
    """Append ``row`` to the CSV file ``path`` (with a header line if the file is new)."""
    head = "" if path.is_file() else ",".join(row) + "\n"
    append_text(path, head + ",".join(str(v) for v in row.values()) + "\n")
