"""A time grid saved as JSON: what :func:`~scoresde.samplers.grid_opt.optimize_grid` returns.

A grid file records the times t_0 = T > ... > t_N = eps together with what they were made for
(the sampler, its options, the NFE they spend and the SDE), so that loading one checks it is
used with the same SDE and sampler. The format, version 1::

    {"format": "scoresde-grid", "version": 1, "sampler": "ddim", "nfe": 10,
     "options": {}, "sde": "VPSDE(schedule={...}, T=1, eps=0.001)",
     "times": [1.0, ..., 0.001], "info": {...}}

``info`` is free-form provenance (objective before and after, evaluations, seed).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..sde import LinearSDE
from .budget import expected_nfe
from .register import get_sampler
from .registry import sample
from .run import SampleInfo, check_grid

__all__ = ["GRID_FORMAT", "OptimizedGrid", "load_grid"]

GRID_FORMAT = "scoresde-grid"
_KEYS = {"format", "version", "sampler", "nfe", "options", "sde", "times", "info"}


@dataclass
class OptimizedGrid:
    """A time grid for one sampler at one NFE, with its provenance.

    Attributes:
        sampler: Registry name of the sampler the grid was made for.
        nfe: Score evaluations the sampler spends on it (with its options).
        times: Float64 grid of shape ``(n_steps + 1,)``, strictly decreasing from T to eps.
        sde: ``repr`` of the SDE it was made for (checked on use).
        options: The sampler options it was made with (e.g. ``{"denoise": True}``).
        info: Provenance: objective before/after, evaluations, seed, teacher NFE.
    """

    sampler: str
    nfe: int
    times: Tensor
    sde: str
    options: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def check_sde(self, sde: LinearSDE) -> None:
        """Raise ValueError unless ``sde`` is the SDE the grid was made for."""
        if repr(sde) != self.sde:
            raise ValueError(f"grid: made for {self.sde}, received {sde!r}")
        check_grid(self.times, sde, name="grid")

    def sample(
        self, sde: LinearSDE, score_fn: Any, x_T: Tensor, **kw: Any
    ) -> tuple[Tensor, SampleInfo]:
        """Run the grid's sampler on it: ``sample(self.sampler, sde, score_fn, x_T, times)``."""
        self.check_sde(sde)
        return sample(self.sampler, sde, score_fn, x_T, self.times, **{**self.options, **kw})

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict of the file format."""
        return {
            "format": GRID_FORMAT,
            "version": 1,
            "sampler": self.sampler,
            "nfe": self.nfe,
            "options": self.options,
            "sde": self.sde,
            "times": self.times.tolist(),
            "info": self.info,
        }

    def save(self, path: str | Path) -> Path:
        """Write the grid as JSON to ``path`` (parents created); return the path."""
        from ..distributed.atomic import atomic_write_text

        return atomic_write_text(path, json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def from_dict(cls, d: Any, source: str = "grid") -> OptimizedGrid:
        """Validate a dict of the file format (see the module docstring) and build the grid."""
        if not isinstance(d, dict):
            raise ValueError(f"{source}: expected a JSON object, received {type(d).__name__}")
        if d.get("format") != GRID_FORMAT or d.get("version") != 1:
            raise ValueError(
                f"{source}: expected format {GRID_FORMAT!r} version 1, received format "
                f"{d.get('format')!r} version {d.get('version')!r}"
            )
        missing, extra = _KEYS - set(d), set(d) - _KEYS
        if missing or extra:
            raise ValueError(
                f"{source}: expected keys {sorted(_KEYS)}, missing {sorted(missing)}, "
                f"unexpected {sorted(extra)}"
            )
        get_sampler(d["sampler"])
        nfe, times = d["nfe"], d["times"]
        if isinstance(nfe, bool) or not isinstance(nfe, int) or nfe < 1:
            raise ValueError(f"{source}: expected an integer nfe >= 1, received {nfe!r}")
        ok = isinstance(times, list) and len(times) >= 2
        if not ok or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in times
        ):
            raise ValueError(f"{source}: expected 'times' to be a list of >= 2 numbers")
        if not all(math.isfinite(v) for v in times):
            raise ValueError(f"{source}: expected finite times, received NaN/Inf")
        t = torch.tensor(times, dtype=torch.float64)
        if not bool((t[1:] < t[:-1]).all()):
            raise ValueError(f"{source}: expected strictly decreasing times")
        for key, typ in (("options", dict), ("info", dict), ("sde", str)):
            if not isinstance(d[key], typ):
                raise ValueError(
                    f"{source}: expected {key!r} to be a {typ.__name__}, received "
                    f"{type(d[key]).__name__}"
                )
        spent = expected_nfe(d["sampler"], t.numel() - 1, **d["options"])
        if spent is not None and spent != nfe:
            raise ValueError(
                f"{source}: {d['sampler']} spends {spent} NFE on {t.numel() - 1} steps, but the "
                f"file says nfe={nfe}"
            )
        return cls(d["sampler"], nfe, t, d["sde"], dict(d["options"]), dict(d["info"]))


def load_grid(path: str | Path, sde: LinearSDE | None = None) -> OptimizedGrid:
    """Read and validate a grid file; with ``sde``, also check it was made for that SDE.

    Args:
        path: A ``.json`` file written by :meth:`OptimizedGrid.save`.
        sde: Optional SDE the grid will be used with.

    Returns:
        The :class:`OptimizedGrid`.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If the file is not valid JSON of the grid format, or was made for another SDE.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"grid file not found: {path} (expected an existing file)")
    try:
        d = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err}); expected a JSON grid file") from None
    grid = OptimizedGrid.from_dict(d, str(path))
    if sde is not None:
        grid.check_sde(sde)
    return grid
