"""Shared CLI plumbing: run folders, devices, list parsing, mixture specs, outputs."""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path
from typing import Any

import torch

from .._readers import read_json
from ..analytic import GaussianMixture
from ..data.toy import eight_gaussians_mixture
from ..studies import write_json
from .errors import CLIError, Interrupted
from .rundir import RUN_FILES, run_dir

__all__ = [
    "CLIError",
    "Interrupted",
    "RUN_FILES",
    "float_list",
    "grid_arg",
    "int_list",
    "parse_mixture",
    "resolve_device",
    "run_dir",
    "write_results",
]


def resolve_device(name: str | None) -> torch.device:
    """``--device``: default cuda if available; an unavailable or unknown device is an error."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as err:
        raise CLIError(
            f"--device: expected e.g. 'cpu', 'cuda', 'cuda:1', received {name!r}"
        ) from err
    if dev.type not in ("cpu", "cuda", "mps"):
        raise CLIError(f"--device: expected a cpu, cuda or mps device, received {name!r}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise CLIError(
            f"--device: expected an available device, received {name!r} (CUDA is not available "
            "on this machine; use --device cpu)"
        )
    return dev


def _no_empty_items(text: str) -> None:
    """Refuse ``'10,,20'``, ``',10'``, ``'10,'`` and ``''``: an empty item is a typo, not nothing."""
    if not text.strip() or any(not v.strip() for v in text.split(",")):
        raise CLIError(f"expected a comma-separated list without empty items, received {text!r}")


def int_list(text: str, minimum: int = 1) -> list[int]:
    """Parse '5,10,20' into integers >= ``minimum`` (argparse type)."""
    _no_empty_items(text)
    try:
        vals = [int(v) for v in text.split(",")]
    except ValueError as err:
        raise CLIError(f"expected comma-separated integers, received {text!r}") from err
    if not vals or any(v < minimum for v in vals):
        what = "positive integers" if minimum == 1 else f"integers >= {minimum}"
        raise CLIError(f"expected {what}, received {text!r}")
    return vals


def grid_arg(text: str) -> str | Path:
    """``--grid``: a grid kind name, or the path of a ``.json`` grid file (argparse type)."""
    from ..samplers import GRIDS

    text = text.strip()
    if text in GRIDS:
        return text
    if text.endswith(".json"):
        return Path(text)
    raise ValueError(
        f"expected a grid kind ({', '.join(sorted(GRIDS))}) or a .json grid file, received {text!r}"
    )


def float_list(text: str) -> list[float]:
    """Parse '1e-3,1e-5' into positive floats (argparse type)."""
    _no_empty_items(text)
    try:
        vals = [float(v) for v in text.split(",")]
    except ValueError as err:
        raise CLIError(f"expected comma-separated numbers, received {text!r}") from err
    if not vals or any(not (v > 0 and math.isfinite(v)) for v in vals):
        raise CLIError(f"expected positive numbers, received {text!r}")
    return vals


PRESETS = {
    "8gaussians": eight_gaussians_mixture,
    "2modes": lambda: GaussianMixture(
        [0.3, 0.7], [[-2.0, 0.0], [2.0, 1.0]], [[0.2, 0.2], [0.5, 0.1]]
    ),
}


def _non_number(value: object) -> object | None:
    """The first leaf of nested lists that is not a number (None if all are)."""
    if isinstance(value, list):
        for v in value:
            bad = _non_number(v)
            if bad is not None:
                return bad
        return None
    return None if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def parse_mixture(spec: str) -> Any:
    """``--analytic``: a preset name, a JSON object, or a JSON file with weights/means/covariances.

    With ``labels`` (one class per component) and ``class`` as well it returns
    ``(mixture, labels, class)``: a labelled mixture for a study's ``guidance`` factor.
    """
    if spec in PRESETS:
        return PRESETS[spec]()
    path = Path(spec)
    text = path.read_text() if path.suffix == ".json" and path.is_file() else spec
    try:
        d = read_json(text, "--analytic")
    except ValueError as err:
        if "malformed" not in str(err):
            raise CLIError(str(err)) from None
        raise CLIError(
            f"--analytic: expected a preset ({', '.join(PRESETS)}), a JSON object "
            '{"weights": [...], "means": [[...]], "covariances": [[...]]} or a .json file, '
            f"received {spec!r}"
        ) from None
    if not isinstance(d, dict) or set(d) - {"labels", "class"} != {
        "weights",
        "means",
        "covariances",
    }:
        got = sorted(d) if isinstance(d, dict) else type(d).__name__
        raise CLIError(
            f"--analytic: expected a JSON object with the keys weights, means, covariances "
            f"(and optionally labels, class), received {got}"
        )
    for key in ("weights", "means", "covariances"):
        bad = _non_number(d[key])
        if bad is not None:
            raise CLIError(f"--analytic: expected numbers in {key}, received {bad!r}")
    try:
        gm = GaussianMixture(d["weights"], d["means"], d["covariances"])
    except (ValueError, TypeError, RuntimeError) as err:
        raise CLIError(f"--analytic: {err}") from None
    # float64 keeps ~16 digits: far beyond 1e12 component widths, samples lose their noise and
    # the study's metrics degenerate (means of 1e30 gave NaN tables)
    cov = torch.as_tensor(d["covariances"], dtype=torch.float64)
    width = float((torch.linalg.eigvalsh(cov) if cov.ndim == 3 else cov).min().sqrt())
    scale = float(gm.means.abs().max())
    if scale > 1e12 * max(width, 1e-300):
        raise CLIError(
            "--analytic: expected means within 1e12 component widths of the origin (float64 "
            f"resolution), received means up to {scale:g} with the narrowest width {width:g}"
        )
    return _with_labels(gm, d) if "labels" in d or "class" in d else gm


def _with_labels(gm: GaussianMixture, d: dict) -> tuple[GaussianMixture, list[int], int]:
    """``(mixture, labels, class)`` of an ``--analytic`` object with ``labels`` and ``class``."""
    labels, k = d.get("labels"), d.get("class")
    if (
        not isinstance(labels, list)
        or len(labels) != gm.K
        or not all(isinstance(v, int) and v >= 0 for v in labels)
        or not isinstance(k, int)
        or k not in labels
    ):
        raise CLIError(
            f"--analytic: expected labels (one integer >= 0 per component, {gm.K}) and a class "
            f"among them, received labels {labels!r} and class {k!r}"
        )
    return gm, labels, k


def write_results(out: Path, config: dict | None, results: dict, report: str) -> None:
    """Write ``config.json`` (unless None), ``results.json`` and ``report.md``, each atomically."""
    from ..distributed import atomic_write

    files = {"results.json": results}
    if config is not None:
        files["config.json"] = config
    for name, value in files.items():  # each file whole or not at all
        atomic_write(out / name, partial(write_json, value))
    atomic_write(out / "report.md", lambda p: p.write_text(report))
