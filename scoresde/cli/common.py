"""Shared CLI plumbing: run folders, devices, list parsing, mixture specs, outputs."""

from __future__ import annotations

import json
import math
import os
import secrets
import time
from pathlib import Path

import torch

from ..analytic import GaussianMixture
from ..data.toy import eight_gaussians_mixture
from ..studies import write_json

__all__ = [
    "CLIError",
    "Interrupted",
    "float_list",
    "grid_arg",
    "int_list",
    "parse_mixture",
    "resolve_device",
    "run_dir",
    "write_results",
]


class CLIError(ValueError):
    """A user error: printed as one line, exit status 2."""


class Interrupted(Exception):
    """A command stopped by a signal after saving its work; exit status ``128 + signum``."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.code = 128 + signum


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
        raise CLIError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    return dev


def int_list(text: str, minimum: int = 1) -> list[int]:
    """Parse '5,10,20' into integers >= ``minimum`` (argparse type)."""
    try:
        vals = [int(v) for v in text.split(",") if v.strip()]
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
    try:
        vals = [float(v) for v in text.split(",") if v.strip()]
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


def parse_mixture(spec: str) -> GaussianMixture:
    """``--analytic``: a preset name, a JSON object, or a JSON file with weights/means/covariances."""
    if spec in PRESETS:
        return PRESETS[spec]()
    path = Path(spec)
    text = path.read_text() if path.suffix == ".json" and path.is_file() else spec
    try:
        d = json.loads(text)
    except json.JSONDecodeError:
        raise CLIError(
            f"--analytic: expected a preset ({', '.join(PRESETS)}), a JSON object "
            '{"weights": [...], "means": [[...]], "covariances": [[...]]} or a .json file, '
            f"received {spec!r}"
        ) from None
    if not isinstance(d, dict) or set(d) != {"weights", "means", "covariances"}:
        got = sorted(d) if isinstance(d, dict) else type(d).__name__
        raise CLIError(
            f"--analytic: expected a JSON object with the keys weights, means, covariances, "
            f"received {got}"
        )
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
    return gm


#: Files a scoresde command writes into its run folder: a folder holding any of them belongs to a run.
RUN_FILES = ("config.json", "results.json", "report.md", "checkpoint.pt", "log.csv", "eval.csv",
             "samples.npy", "nll.csv", "sampler_study.csv", "history.jsonl")  # fmt: skip


def run_dir(out: str | None, command: str, force: bool = False) -> Path:
    """The run folder: ``--out`` or a new, unique ``runs/<command>-<timestamp>-<pid><random>``.

    A default folder is created with ``exist_ok=False`` (retried with a new suffix), so two
    commands started in the same second never share one. ``--out`` may be a new or empty folder,
    or the folder of a run of the same command (``train`` resumes it; ``sample``, ``nll`` and
    ``compare`` reuse its finished shards; a ``compare`` study folder with ``spec.json`` is
    resumed if the spec matches, else refused by ``run_study``); a folder holding another
    command's files is refused (naming them) unless ``force``.

    Raises:
        CLIError: If ``--out`` is a file, is not writable, or holds another run's files.
    """
    if not out:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        Path("runs").mkdir(exist_ok=True)
        for _ in range(100):
            path = Path("runs") / f"{command}-{stamp}-{os.getpid()}{secrets.token_hex(2)}"
            try:
                path.mkdir()
                return path
            except FileExistsError:
                continue
        raise CLIError(f"could not create a unique run folder under {Path('runs').resolve()}")
    path = Path(out)
    if path.resolve() in _CLAIMED:  # checked and created by this process already
        path.mkdir(parents=True, exist_ok=True)
        return path
    if path.exists() and not path.is_dir():
        raise CLIError(f"--out: expected a folder, received the existing file {out}")
    theirs = sorted(f for f in RUN_FILES if (path / f).exists()) if path.is_dir() else []
    own = _is_train_run(path) if command == "train" else _command_of(path) == command
    own = own or (command == "compare" and (path / "spec.json").is_file())  # run_study resumes
    if theirs and not force and not own:
        raise CLIError(
            f"--out: {out} holds another run's files ({', '.join(theirs)}), which {command} "
            "would overwrite; expected a new or empty folder (or pass --force)"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise CLIError(
            f"--out: expected a writable folder, received {out} ({err.strerror})"
        ) from None
    _CLAIMED.add(path.resolve())
    return path


_CLAIMED: set[Path] = set()  # run folders this process has checked (a command claims one early)


def _command_of(path: Path) -> str | None:
    """The command that wrote the run folder ``path`` (its ``config.json``), if any."""
    try:
        d = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return None
    return d.get("command") if isinstance(d, dict) else None


def _is_train_run(path: Path) -> bool:
    """Whether ``path`` is the folder of a ``train`` run (so ``train --out`` resumes it)."""
    if not ((path / "checkpoint.pt").exists() or (path / "log.csv").exists()):
        return (path / "config.json").is_file() and _train_config(path / "config.json")
    return not (path / "config.json").is_file() or _train_config(path / "config.json")


def _train_config(file: Path) -> bool:
    try:
        d = json.loads(file.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(d, dict) and "command" not in d and "schedule" in d


def write_results(out: Path, config: dict | None, results: dict, report: str) -> None:
    """Write ``config.json`` (unless None), ``results.json`` and ``report.md``, each atomically."""
    from ..distributed import atomic_write

    files = {"results.json": results}
    if config is not None:
        files["config.json"] = config
    for name, value in files.items():  # each file whole or not at all
        atomic_write(out / name, lambda p, value=value: write_json(value, p))
    atomic_write(out / "report.md", lambda p: p.write_text(report))
