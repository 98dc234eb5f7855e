"""The study spec: samplers x NFEs x seeds x factors, crossed or zipped, from YAML/JSON or Python.

A spec is plain data, saved as ``spec.json`` in the run folder, so a study is rerun (or resumed)
from that file alone. Factors are the questions users ask beyond sampler and NFE:

* ``grid``: a grid kind (:data:`scoresde.samplers.GRIDS`) or a ``.json`` grid file (that file's
  own sampler, options and NFE replace the cell's);
* ``t_end``: the grid's last time (Song et al. 2021 sample to eps, not 0);
* ``sde``: ``vp``, ``subvp`` or ``ve`` (exact mixture scores only);
* ``corrector_steps``: Langevin corrector steps per predictor step (option ``n_steps``);
* ``guidance``: the classifier-free guidance weight w of a labelled exact mixture
  (:func:`scoresde.studies.guided_problem`; each w scored against its guided ODE's limit);
* any other name (``denoise``, ``eta``, ``snr``, ``order``, ...) is passed as a sampler option.

Example (YAML)::

    samplers: [dpm_solver_2]
    nfe: [5, 10, 20]
    seeds: [0, 1]
    factors: {grid: [uniform, quadratic, log_snr, edm], t_end: [0.001, 0.0001]}
    combine: cross
"""

from __future__ import annotations

import itertools
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["FACTOR_OPTIONS", "MAX_N", "Cell", "StudySpec", "check_spec", "load_spec"]

#: Factor names that map to a sampler option of another name.
FACTOR_OPTIONS = {"corrector_steps": "n_steps"}
_STRUCTURAL = ("grid", "t_end", "sde", "guidance")
_FIELDS = (
    "samplers",
    "nfe",
    "seeds",
    "n",
    "metrics",
    "factors",
    "combine",
    "floor_repeats",
    "grid_files",
)


@dataclass(frozen=True)
class Cell:
    """One run: a sampler with options at one NFE and seed, under one factor setting."""

    label: str
    name: str
    options: dict[str, Any]
    factors: dict[str, Any]
    nfe: int | None
    seed: int
    varying: tuple[str, ...] = ()
    grid_file: str | None = None

    @property
    def config(self) -> str:
        """Sampler label and the varying factors' values: the row label seeds are averaged over."""
        extra = ", ".join(
            f"{k}={_short(self.factors[k])}"
            for k in self.varying
            if not (k == "grid" and self.grid_file)
        )
        return f"{self.label} [{extra}]" if extra else self.label

    @property
    def key(self) -> str:
        """A stable identity (JSON) for resuming."""
        return json.dumps(
            [self.label, self.factors, self.nfe, self.seed, self.grid_file], sort_keys=True
        )


def _short(v: Any) -> str:
    return Path(v).stem if isinstance(v, str) and v.endswith(".json") else str(v)


@dataclass
class StudySpec:
    """What a sampler study runs (see the module docstring for factors).

    Attributes:
        samplers: Registry names, ``{"name": ..., "options": {...}}`` or ``[name, options]``.
        nfe: Target NFEs.
        seeds: Seeds; for seed s every cell starts from the same prior draws (generator s). Five
            by default: rankings pair cells across seeds, and one seed does not rank.
        n: Samples per run.
        metrics: Names in :data:`scoresde.metrics.METRICS`.
        factors: ``{factor: [values]}``.
        combine: ``"cross"`` (every combination) or ``"zip"`` (the i-th values together).
        floor_repeats: Exact-sample draws behind each metric's noise floor.
        grid_files: Saved grids (:func:`~scoresde.samplers.optimize_grid`): each adds its own
            sampler at its own NFE, row label ``sampler[file stem]``, under every setting.
    """

    samplers: list[Any]
    nfe: list[int]
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    n: int = 2000
    metrics: list[str] = field(default_factory=lambda: ["sw2", "mmd"])
    factors: dict[str, list[Any]] = field(default_factory=dict)
    combine: str = "cross"
    floor_repeats: int = 5
    grid_files: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not isinstance(self.samplers, list) or not self.samplers:
            raise ValueError(
                f"StudySpec: expected a non-empty list of samplers, received {self.samplers!r}"
            )
        self.samplers = [_sampler_entry(s) for s in self.samplers]
        for name, vals, lo in (("nfe", self.nfe, 1), ("seeds", self.seeds, 0)):
            if (
                not isinstance(vals, list)
                or not vals
                or any(isinstance(v, bool) or not isinstance(v, int) or v < lo for v in vals)
            ):
                raise ValueError(
                    f"StudySpec: expected {name} as a non-empty list of integers "
                    f">= {lo}, received {vals!r}"
                )
        for name, v, lo in (("n", self.n, 2), ("floor_repeats", self.floor_repeats, 2)):
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ValueError(f"StudySpec: expected {name} >= {lo}, received {v!r}")
        if not isinstance(self.metrics, list) or not all(isinstance(m, str) for m in self.metrics):
            raise TypeError(
                f"StudySpec: expected metrics as a list of names, received {self.metrics!r}"
            )
        if not isinstance(self.factors, dict) or not all(
            isinstance(k, str) and isinstance(v, list) and v for k, v in self.factors.items()
        ):
            raise ValueError(
                "StudySpec: expected factors as {name: [values, ...]} with "
                f"non-empty lists, received {self.factors!r}"
            )
        if not isinstance(self.grid_files, list) or not all(
            isinstance(f, str) and f.endswith(".json") for f in self.grid_files
        ):
            raise ValueError(
                f"StudySpec: expected grid_files as a list of .json paths, received "
                f"{self.grid_files!r}"
            )
        if self.combine not in ("cross", "zip"):
            raise ValueError(
                f"StudySpec: expected combine 'cross' or 'zip', received {self.combine!r}"
            )
        if self.combine == "zip" and len({len(v) for v in self.factors.values()}) > 1:
            lens = {k: len(v) for k, v in self.factors.items()}
            raise ValueError(
                f"StudySpec: zipped factors need equal lengths, received {lens}; expected one "
                "length for all"
            )
        check_spec(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StudySpec:
        """Build from a dict (unknown keys are an error)."""
        if not isinstance(d, dict):
            raise TypeError(f"StudySpec: expected a mapping, received {type(d).__name__}")
        unknown = sorted(set(d) - set(_FIELDS))
        if unknown:
            raise ValueError(f"StudySpec: unknown keys {unknown}; expected some of {list(_FIELDS)}")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-ready), as saved in ``spec.json``."""
        return asdict(self)

    def settings(self) -> list[dict[str, Any]]:
        """The factor settings: every combination (cross) or the i-th values together (zip)."""
        names = list(self.factors)
        if not names:
            return [{}]
        vals = [self.factors[k] for k in names]
        rows = itertools.product(*vals) if self.combine == "cross" else zip(*vals, strict=True)
        return [dict(zip(names, r, strict=True)) for r in rows]

    def cells(self, adaptive: set[str] | frozenset[str] = frozenset()) -> list[Cell]:
        """Every run, seed-major (so an interrupted study has whole seeds first).

        Args:
            adaptive: Sampler names that pick their own steps (run once, ``nfe`` None).
        """
        out: list[Cell] = []
        varying = tuple(k for k, v in self.factors.items() if len({json.dumps(x) for x in v}) > 1)
        for seed in self.seeds:
            for setting in self.settings():
                for entry in self.samplers:
                    name, opts = entry["name"], dict(entry["options"])
                    inner = ", ".join(f"{k}={v}" for k, v in sorted(opts.items()))
                    label = f"{name}({inner})" if inner else name
                    nfes = [None] if name in adaptive else sorted(set(self.nfe))
                    out += [Cell(label, name, opts, dict(setting), n, seed, varying) for n in nfes]
                out += [
                    Cell(f, "", {}, dict(setting), None, seed, varying, f) for f in self.grid_files
                ]
        return out

    @staticmethod
    def run_options(cell: Cell) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(structural, options)``: grid/t_end/sde, and the sampler options of a cell."""
        structural = {k: v for k, v in cell.factors.items() if k in _STRUCTURAL}
        opts = dict(cell.options)
        for k, v in cell.factors.items():
            if k not in _STRUCTURAL:
                opts[FACTOR_OPTIONS.get(k, k)] = v
        return structural, opts


def _sampler_entry(s: Any) -> dict[str, Any]:
    if isinstance(s, str):
        return {"name": s, "options": {}}
    if isinstance(s, dict) and set(s) <= {"name", "options"} and isinstance(s.get("name"), str):
        return {"name": s["name"], "options": dict(s.get("options") or {})}
    if isinstance(s, (list, tuple)) and len(s) == 2 and isinstance(s[1], dict):
        return {"name": str(s[0]), "options": dict(s[1])}
    raise TypeError(
        f"StudySpec: expected a sampler name, {{name, options}} or [name, options], received {s!r}"
    )


def load_spec(path: str | Path) -> StudySpec:
    """Read a spec from a ``.json``, ``.yaml`` or ``.yml`` file (strictly: no tags, no key twice)."""
    from .._readers import read_json, read_yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"study spec: expected an existing file, received {path}")
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        return StudySpec.from_dict(read_yaml(text, f"study spec {path.name}"))
    if path.suffix == ".json":
        return StudySpec.from_dict(read_json(text, f"study spec {path.name}"))
    raise ValueError(f"study spec: expected a .json, .yaml or .yml file, received {path.name!r}")


#: The most samples per run a spec may ask for (a run holds a few copies of them in memory).
MAX_N = 10_000_000


def check_spec(spec: StudySpec) -> None:
    """Check every name, factor value and sampler option of ``spec`` before any work.

    * samplers and metrics are registered names; ``n`` is at most :data:`MAX_N`;
    * ``grid`` values are grid kinds or existing ``.json`` files, ``t_end`` a number in
      (0, 1) (every registered SDE has T = 1), ``sde`` a registered SDE, ``corrector_steps``
      an integer >= 0;
    * any other factor and every sampler's own options must be keyword options of each sampler
      it applies to (its signature, plus the options every sampler takes), with a value of the
      type of that option's default (a number for a numeric default, ``true``/``false`` for a
      flag), finite.

    Raises:
        ValueError: Naming the factor or option, what was expected and what was received.
        TypeError: For a value of the wrong type.
    """
    import inspect
    import math

    from .._utils import names_list
    from ..metrics import METRICS
    from ..samplers import GRIDS, SAMPLERS
    from ..samplers.signature import COMMON_OPTIONS
    from ..sde import SDES

    where = "StudySpec"
    if spec.n > MAX_N:
        raise ValueError(f"{where}: expected n <= {MAX_N:.0e} samples per run, received {spec.n}")
    for m in spec.metrics:
        if m not in METRICS:
            raise ValueError(
                f"{where}: unknown metric {m!r}; expected one of {names_list(METRICS)}"
            )
    names = [e["name"] for e in spec.samplers]
    for name in names:
        if name not in SAMPLERS:
            raise ValueError(
                f"{where}: unknown sampler {name!r}; expected one of {names_list(SAMPLERS)}"
            )

    def number(what: str, v: Any, integer: bool = False) -> float:
        ok = not isinstance(v, bool) and isinstance(v, int if integer else (int, float))
        if not ok or not math.isfinite(float(v)):
            kind = "an integer" if integer else "a finite number"
            raise ValueError(f"{where}: expected {what} {kind}, received {v!r}")
        return float(v)

    for factor, values in spec.factors.items():
        for v in values:
            if factor == "grid":
                if not isinstance(v, str) or (v not in GRIDS and not v.endswith(".json")):
                    raise ValueError(
                        f"{where}: expected grid values from {names_list(GRIDS)} or "
                        f".json grid files, received {v!r}"
                    )
                if v.endswith(".json") and not Path(v).is_file():
                    raise ValueError(f"{where}: expected an existing grid file, received {v!r}")
            elif factor == "t_end":
                if not 0 < number("t_end", v) < 1:
                    raise ValueError(f"{where}: expected t_end in (0, 1) (T = 1), received {v!r}")
            elif factor == "sde":
                if v not in SDES:
                    raise ValueError(
                        f"{where}: unknown sde {v!r}; expected one of {names_list(SDES)}"
                    )
            elif factor == "guidance":
                from .guided import check_guidance

                check_guidance(v)
            elif factor == "corrector_steps" and number(factor, v, integer=True) < 0:
                raise ValueError(f"{where}: expected corrector_steps >= 0, received {v!r}")

    def flag(key: str, v: Any) -> None:  # the common options that are switches
        if key in ("denoise", "return_trajectory") and not isinstance(v, bool):
            raise ValueError(f"{where}: expected {key} true or false, received {v!r}")

    def option(name: str, key: str, v: Any) -> None:
        fn = SAMPLERS[name].fn
        params = inspect.signature(fn).parameters
        if any(p.kind is p.VAR_KEYWORD for p in params.values()) and key not in params:
            if key in COMMON_OPTIONS:
                return
        own = {k for k, p in params.items() if p.kind is p.KEYWORD_ONLY}
        valid = sorted((own - {"generator", "callback"}) | set(COMMON_OPTIONS))
        if key not in valid:
            raise ValueError(
                f"{where}: sampler {name!r} takes no option {key!r}; expected one "
                f"of {names_list(valid)}"
            )
        default = params[key].default if key in params else None
        if isinstance(default, bool):
            if not isinstance(v, bool):
                raise ValueError(
                    f"{where}: expected {name} option {key} true or false, received {v!r}"
                )
        elif isinstance(default, (int, float)) and not isinstance(v, str):
            number(f"{name} option {key}", v, integer=isinstance(default, int))
            if default >= 0 and v < 0:
                raise ValueError(f"{where}: expected {name} option {key} >= 0, received {v!r}")
        elif isinstance(default, (int, float)):
            raise ValueError(f"{where}: expected {name} option {key} a number, received {v!r}")

    for entry in spec.samplers:
        for key, v in entry["options"].items():
            flag(key, v)
            option(entry["name"], key, v)
    for factor, values in spec.factors.items():
        if factor in _STRUCTURAL:
            continue
        for v in values:
            flag(factor, v)
        for name in names:
            for v in values:
                option(name, FACTOR_OPTIONS.get(factor, factor), v)
