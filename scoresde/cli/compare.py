"""``scoresde compare``: a sampler study from flags or a spec file, resumable in its run folder.

The flags (``--samplers``, ``--nfe``, ``--seeds``, ``--n``, ``--metrics``, ``--grid``,
``--denoise``) build the same :class:`~scoresde.studies.StudySpec` a ``--spec`` file holds;
the folder keeps it as ``spec.json``, so rerunning with the same ``--out`` resumes a killed
study. With ``--analytic`` the score and density are exact (CE gap, mode-mass error and the
floor from exact draws); with ``--ckpt``, ``--data`` (default: the training data) supplies the
reference set and the points beyond it the floor's draws; ``--class K`` (a class-conditional
checkpoint) compares samplers on s(x, t | K) against the class's data, and ``--guidance W,...``
makes the classifier-free guidance weight a study factor (:class:`~scoresde.studies.guided.
ModelGuidance`: w != 0 scored against its own guided PF-ODE's limit). Under ``torchrun`` (or with
``--timeout``) the same study runs with its cells shared out over the ranks (same rows at any
world size; rank 0 writes the report), spec, floor and factors included.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from .._utils import progress_bar
from ..conditional import LabeledMixture
from ..data import get_dataset
from ..distributed import env
from ..studies import Problem, StudySpec, data_pool_sampler, guided_problem, load_spec, run_study
from ..studies.guided import ModelGuidance
from ..studies.table import write_json
from .common import CLIError, parse_mixture, run_dir
from .guide import checked_class
from .model_source import load_source, source_name
from .nll import nll_data
from .study_report import write_study_report

__all__ = ["run_compare"]

#: Flag defaults when no ``--spec`` is given (a spec file and these flags are exclusive).
FLAG_DEFAULTS: dict[str, Any] = {
    "samplers": ["euler_maruyama", "ddim", "pf_heun"],
    "nfe": [10, 20, 50],
    "seeds": [0, 1, 2, 3, 4],
    "metrics": ["sw2", "mmd"],
    "n": 2000,
}


def compare_spec(args: argparse.Namespace) -> StudySpec:
    """The study spec of ``--spec FILE``, or the one the flags describe."""
    flags = [k for k in FLAG_DEFAULTS if getattr(args, k, None) is not None]
    flags += [k for k in ("grid", "denoise", "guidance") if getattr(args, k, None)]
    if args.spec:
        if flags:
            raise CLIError(
                f"--spec: the spec file sets the study; received also "
                f"{', '.join('--' + f for f in flags)} (expected the spec file or the "
                "study flags, not both)"
            )
        try:
            return load_spec(args.spec)
        except FileNotFoundError as err:
            raise CLIError(f"--spec: {err}") from None
    v: dict[str, Any] = {
        k: getattr(args, k) if getattr(args, k, None) is not None else d
        for k, d in FLAG_DEFAULTS.items()
    }
    v["nfe"] = [v.pop("nfe")] if isinstance(v["nfe"], int) else v.pop("nfe")
    kinds = [g for g in args.grid or [] if isinstance(g, str)]
    if len(kinds) > 1:
        raise CLIError(f"--grid: expected at most one grid kind, received {', '.join(kinds)}")
    factors: dict[str, list[Any]] = {"grid": kinds} if kinds else {}
    if args.denoise:
        factors["denoise"] = [True]
    if getattr(args, "guidance", None):
        factors["guidance"] = list(args.guidance)
    files = [str(g) for g in args.grid or [] if isinstance(g, Path)]
    return StudySpec(
        samplers=list(v["samplers"]),
        nfe=list(v["nfe"]),
        seeds=list(v["seeds"]),
        n=int(v["n"]),
        metrics=list(v["metrics"]),
        factors=factors,
        grid_files=files,
    )


def compare_problem(args: argparse.Namespace, device: torch.device, n: int) -> Problem:
    """Score, reference and floor draws from ``--analytic``, ``--ckpt`` or ``--model`` (+ ``--data``)."""
    if args.analytic:
        if args.data:
            raise CLIError(
                "--data: only with --ckpt or --model (--analytic has an exact reference)"
            )
        if getattr(args, "class_", None) is not None:
            raise CLIError(
                f"--class: only with --ckpt or --model (an --analytic mixture names its class "
                f'in its JSON, "class": K), received --class {args.class_}'
            )
        mixture = parse_mixture(args.analytic)
        if isinstance(mixture, tuple):  # labelled: the target class, for a guidance factor
            gm, labels, k = mixture
            prob = guided_problem(LabeledMixture(gm, labels), k, args.sde, n, 10_000 + args.seed)
        else:
            prob = Problem.analytic(mixture, args.sde, n, 10_000 + args.seed)
        prob.reference = prob.reference.to(device)
        return prob
    data = nll_data(args.data) if args.data else None
    model, scaler, shape, metadata = load_source(args, device, data and data.levels)
    if data is None:
        source = metadata.get("run_config", {}).get("data")
        if not source:
            flag = "--model" if getattr(args, "model", None) else "--ckpt"
            raise CLIError(
                f"{flag}: {source_name(args)} does not name its training data; pass --data"
            )
        data = get_dataset(source["name"], **source.get("kwargs", {}))
    points = data.test if data.train is None else torch.cat([data.test, data.train])
    if tuple(points.shape[1:]) != tuple(shape):
        raise CLIError(
            f"--data: expected points of shape {tuple(shape)} (the model's), received "
            f"{tuple(points.shape[1:])}"
        )
    k = checked_class(args, model, source_name(args))
    if k is not None:
        points = _class_points(data, points, k)
    points = scaler.transform(points).to(device)
    ref = points[:n]
    if k is None:
        return Problem(model.sde, model, ref, data_pool_sampler(points[n:]), None)
    guided = ModelGuidance(model, k, ref, 10_000 + args.seed)
    return Problem(
        model.sde, guided.score(0.0), ref, data_pool_sampler(points[n:]), None, guidance=guided
    )


def _class_points(data: Any, points: torch.Tensor, k: int) -> torch.Tensor:
    """The points of class ``k`` (``--class``): the reference and floor of a conditional model."""
    labels = data.labels
    if labels is None or (data.train is not None and labels.train is None):
        raise CLIError(
            f"--class: expected reference data with class labels (digits, mnist, 8gaussians, "
            f"checkerboard, a mixture with labels), received {data.name!r}, which has none"
        )
    y = labels.test if data.train is None else torch.cat([labels.test, labels.train])
    if not bool((y == k).any()):
        raise CLIError(f"--class: expected data of class {k}, received none in {data.name!r}")
    return points[y == k]


def run_compare(args: argparse.Namespace, device: torch.device) -> Path | None:
    """A sampler study on an exact mixture score (``--analytic``) or a checkpoint (``--ckpt``).

    Under ``torchrun``, or with ``--timeout``, the study's cells are shared out over the ranks
    (:func:`~scoresde.studies.run_study` with a world); rank 0 writes the files and the other
    ranks return None.
    """
    spec = compare_spec(args)
    if env.world_size() > 1 or args.timeout is not None:
        from .scaleout import cli_world, shared_run_dir

        args.timeout = 600.0 if args.timeout is None else args.timeout
        with cli_world(args, device) as world:
            problem = compare_problem(args, world.device, spec.n)
            out = shared_run_dir(world, args.out, "compare", args.force)
            study = run_study(spec, problem, out, world=world)
        if study is None:
            return None
    else:
        problem = compare_problem(args, device, spec.n)
        out = run_dir(args.out, "compare", getattr(args, "force", False))
        bar = progress_bar(desc="sampler study", disable=args.quiet, leave=False)
        try:
            study = run_study(
                spec, problem, out, progress=lambda m: (bar.set_postfix_str(m), bar.update())
            )
        finally:
            bar.close()
    assert study is not None
    write_study_report(out, study, "scoresde compare")
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    write_json({"command": "compare", **config, "device": str(device)}, out / "config.json")
    return out
