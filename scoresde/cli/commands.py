"""``scoresde train | sample``: each writes a run folder with config, results, report.

``nll`` lives in :mod:`scoresde.cli.nll`, ``compare`` in :mod:`scoresde.cli.compare`.

``sample``, ``nll`` and ``compare`` run sharded (:mod:`scoresde.cli.scaleout`): as one process,
or under ``torchrun`` with the same files and numbers.
"""

from __future__ import annotations

import argparse
import math
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..distributed import atomic_save_npy, atomic_write, env
from ..samplers import get_sampler, load_grid, plan_for_nfe
from ..samplers.defaults import recommended
from . import report
from .common import CLIError, Interrupted, run_dir, write_results
from .config import RunConfig
from .guide import class_score
from .model_source import load_source, source_name
from .scaleout import cli_world, shared_run_dir
from .validate import check_memory

if TYPE_CHECKING:
    from ..training import TrainedModel

__all__ = ["run_sample", "run_train"]


def _recipe(args: argparse.Namespace) -> RunConfig:
    """Without ``--config``: the measured recipe (:mod:`scoresde.cli.recipe`) on the flags' data."""
    from .build import build_data
    from .recipe import data_sigma, recipe_config

    data = args.data or "8gaussians"
    sigma = data_sigma(build_data(RunConfig.from_dict({"data": {"name": data}})))
    net = args.net or ("mlp" if data not in ("digits", "mnist", "folder") else "unet")
    steps, batch = (2500, 64) if net == "unet" else (4000, 512)  # MNIST-5000's / the demo's
    return recipe_config(
        data, args.sde or "vp", sigma_data=sigma, net=net, steps=steps, batch_size=batch
    )


def run_train(args: argparse.Namespace, device: torch.device) -> Path:
    """Train from ``--config`` (JSON/YAML) with flag overrides; resume if the folder has a checkpoint.

    Works under ``torchrun`` (then ``--out`` is required, so that every rank writes to the same
    folder, and rank 0 alone writes the results).
    """
    from .build import train_from_config

    world, rank = env.world_size(), env.rank()
    if world > 1 and not args.out:
        raise CLIError("--out: required under torchrun (every rank must write to the same folder)")
    if world > 1 and device.type == "cuda" and device.index is None:
        device = torch.device("cuda", env.local_rank())

    cfg = RunConfig.load(args.config) if args.config else _recipe(args)
    d = cfg.to_dict()
    for key, section, field in (
        ("steps", "schedule", "steps"),
        ("batch_size", "schedule", "batch_size"),
        ("lr", "optim", "lr"),
        ("seed", "schedule", "seed"),
        ("labels", "data", "labels"),
        ("label_dropout", "data", "label_dropout"),
    ):
        if getattr(args, key) is not None:
            d[section][field] = getattr(args, key)
    for key in ("data", "sde", "net"):
        if getattr(args, key) is not None:
            d[key]["name"] = getattr(args, key)
    cfg = RunConfig.from_dict(d)
    if args.label_dropout is not None and not cfg.data.labels:
        raise CLIError(
            f"--label-dropout: expected --labels with it (or data.labels: true in the config), "
            f"received --label-dropout {args.label_dropout:g} for an unconditional run"
        )
    out = run_dir(args.out, "train", args.force) if rank == 0 else Path(args.out)
    started = time.perf_counter()
    res = train_from_config(cfg, out, device=device, progress=not args.quiet)
    if rank != 0:
        return out
    results = {
        "steps": res.step,
        "interrupted": res.interrupted,
        "nan_skips": res.nan_skips,
        "checkpoint": res.checkpoint,
        "seconds": time.perf_counter() - started,
    }
    text = (
        f"# scoresde train\n\n{res.step} steps in {results['seconds']:.0f} s; checkpoint "
        f"`{res.checkpoint}`; loss log `log.csv`; resolved config `config.json`.\n"
    )
    write_results(out, None, results, text)
    if res.interrupted:  # a checkpoint is saved; exit 128 + signal (130/143), never 0
        signum = res.stop_signal or signal.SIGINT
        raise Interrupted(
            f"stopped by {signal.Signals(signum).name} at step {res.step} of {cfg.schedule.steps};"
            f" checkpoint {res.checkpoint} saved.",
            int(signum),
        )
    return out


def _load(ckpt: str, device: torch.device) -> TrainedModel:
    from ..training import load_model

    if not Path(ckpt).is_file():
        raise CLIError(f"--ckpt: expected an existing checkpoint file, received {ckpt}")
    return load_model(ckpt, device=device)


def run_sample(args: argparse.Namespace, device: torch.device) -> Path | None:
    """Draw ``--n`` samples with ``--sampler`` at ``--nfe``; save .npy (data units) and a figure.

    Sample i starts from its own seeds (``scoresde.distributed.item_seed``), so the samples are
    the same under ``torchrun`` with any number of ranks; rank 0 writes the files.
    """
    from ..distributed import sharded_sample

    with cli_world(args, device) as world:
        model, scaler, shape, _ = load_source(args, world.device)
        score_fn = class_score(args, model, source_name(args))
        sde = model.sde
        dev = world.device
        size = args.n * math.prod(shape) * 4
        check_memory(
            4 * size,
            "-n",
            args.n,
            f"{args.n} samples of shape {tuple(shape)} in "
            "float32, about 4 copies (gathered, unscaled, saved)",
        )
        _check_nfe(
            args.nfe,
            args.force,
            lambda: model(
                torch.zeros(args.n, *shape, device=dev), torch.full((args.n,), sde.T, device=dev)
            ),
        )
        auto = (args.sampler or "auto") == "auto" and not isinstance(args.grid, Path)
        args.sampler, grid, opts = _sample_grid(args, sde)
        out = shared_run_dir(world, args.out, "sample", args.force)
        res = sharded_sample(
            args.sampler,
            sde,
            score_fn,
            tuple(shape),
            args.n,
            grid,
            world=world,
            seed=args.seed,
            shard_size=args.shard_size,
            shard_dir=out / "shards",
            progress=not args.quiet,
            **opts,
        )
    if res is None:
        return None
    x, info = res
    x_data = scaler.inverse(x)
    if not torch.isfinite(x_data).all():
        bad = int((~torch.isfinite(x_data)).sum())
        raise CLIError(
            f"sampling produced {bad} non-finite values of {x_data.numel()} (expected finite "
            f"samples); nothing saved. The model {source_name(args)} may hold diverged weights"
        )
    atomic_save_npy(out / "samples.npy", x_data.numpy())
    fig = out / "samples.png"
    atomic_write(
        fig,
        lambda p: (
            report.save_image_grid(x, p)
            if x.ndim == 4
            else report.plot_samples({args.sampler: x}, p)
        ),
    )
    nfe, n_steps = max(info["nfe_per_shard"]), max(info["n_steps"])
    results = {
        "sampler": args.sampler,
        "auto": auto,
        "denoise": bool(opts.get("denoise")),
        "nfe": nfe,
        "n_steps": n_steps,
        "n": args.n,
        "class": getattr(args, "class_", None),
        "guidance": getattr(args, "guidance", None),
        "files": ["samples.npy", fig.name],
    }
    text = (
        f"# scoresde sample\n\n{args.n} samples from `{source_name(args)}` with `{args.sampler}`"
        f"{' (picked by auto)' if auto else ''}{_class_text(args)} ({nfe} score evaluations, "
        f"{n_steps} steps).\n\n![samples](samples.png)\n"
    )
    write_results(out, _config("sample", args, device), results, text)
    return out


def _class_text(args: argparse.Namespace) -> str:
    """``", class K, guidance w"`` for the report of a conditional run ('' otherwise)."""
    k, w = getattr(args, "class_", None), getattr(args, "guidance", None)
    return "" if k is None else f", class {k}" + (f", guidance w = {w:g}" if w else "")


def _config(command: str, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """The resolved options of a run (the same at any world size: no rank-specific fields)."""
    return {"command": command, **vars(args), "device": str(device)}


#: The largest --nfe run without --force (about 1e4: beyond it no sampler here still improves).
MAX_NFE = 10_000


def _check_nfe(nfe: int | list[int] | None, force: bool, evaluate: Any) -> None:
    """Refuse an NFE above :data:`MAX_NFE` unless ``--force``, with an estimate of the time."""
    top = max(nfe) if isinstance(nfe, list) else nfe
    if top is None or top <= MAX_NFE or force:
        return
    with torch.no_grad():
        evaluate()  # warm-up
        t0 = time.perf_counter()
        evaluate()
        dt = time.perf_counter() - t0
    raise CLIError(
        f"--nfe: expected at most {MAX_NFE} score evaluations, received {top} (about "
        f"{dt * top / 3600:.3g} h at {dt * 1e3:.3g} ms per evaluation); pass --force to run it"
    )


def _sample_grid(args: argparse.Namespace, sde: Any) -> tuple[str, torch.Tensor, dict[str, Any]]:
    """(sampler, grid, options) of ``sample`` from --sampler, --nfe, --grid and --no-denoise."""
    if isinstance(args.grid, Path):  # a grid file fixes the sampler, the NFE and the options
        og = load_grid(args.grid, sde)
        for flag, given, own in (
            ("--sampler", args.sampler, og.sampler),
            ("--nfe", args.nfe, og.nfe),
        ):
            if given is not None and given != own:
                raise CLIError(f"{flag}: the grid file {args.grid} is for {own}, received {given}")
        if not args.denoise and og.options.get("denoise"):
            raise CLIError(f"--no-denoise: the grid file {args.grid} was made with denoise")
        return og.sampler, og.times, dict(og.options)
    name, opts = args.sampler or "auto", {"denoise": args.denoise}
    if name == "auto":
        name = recommended(sde, args.nfe or 50, "learned")
        print(
            f"scoresde sample: auto picked {name} for {type(sde).__name__} at {args.nfe or 50} "
            "NFE (for a learned score: the best stochastic sampler on the problem family, "
            "docs/howto/sample.md)"
        )
    if get_sampler(name).adaptive:
        return name, torch.tensor([sde.T, sde.eps], dtype=torch.float64), opts
    grid, opts = plan_for_nfe(sde, name, args.nfe or 50, args.grid, exact=False, **opts)
    return name, grid, opts
