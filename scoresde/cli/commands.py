"""``scoresde train | sample | compare``: each writes a run folder with config, results, report.

``nll`` lives in :mod:`scoresde.cli.nll`.

``sample``, ``nll`` and ``compare`` run sharded (:mod:`scoresde.cli.scaleout`): as one process,
or under ``torchrun`` with the same files and numbers.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..data import get_dataset
from ..distributed import atomic_write
from ..samplers import get_sampler, load_grid, plan_for_nfe
from ..samplers.defaults import recommended
from ..sde import get_sde
from ..studies import summarize
from . import report
from .common import CLIError, Interrupted, parse_mixture, run_dir, write_results
from .config import RunConfig
from .scaleout import atomic_save_npy, cli_world, shared_run_dir

if TYPE_CHECKING:
    from ..training import TrainedModel

__all__ = ["run_compare", "run_sample", "run_train"]


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
    from ..training.distributed import world_size
    from .build import train_from_config

    world, rank = world_size(), int(os.environ.get("RANK", "0"))
    if world > 1 and not args.out:
        raise CLIError("--out: required under torchrun (every rank must write to the same folder)")
    if world > 1 and device.type == "cuda" and device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))

    cfg = RunConfig.load(args.config) if args.config else _recipe(args)
    d = cfg.to_dict()
    for key, section, field in (("steps", "schedule", "steps"), ("batch_size", "schedule", "batch_size"),
                                ("lr", "optim", "lr"), ("seed", "schedule", "seed")):  # fmt: skip
        if getattr(args, key) is not None:
            d[section][field] = getattr(args, key)
    for key in ("data", "sde", "net"):
        if getattr(args, key) is not None:
            d[key]["name"] = getattr(args, key)
    cfg = RunConfig.from_dict(d)
    out = run_dir(args.out, "train", args.force) if rank == 0 else Path(args.out)
    started = time.perf_counter()
    res = train_from_config(cfg, out, device=device, progress=not args.quiet)
    if rank != 0:
        return out
    results = {"steps": res.step, "interrupted": res.interrupted, "nan_skips": res.nan_skips,
               "checkpoint": res.checkpoint, "seconds": time.perf_counter() - started}  # fmt: skip
    text = (f"# scoresde train\n\n{res.step} steps in {results['seconds']:.0f} s; checkpoint "
            f"`{res.checkpoint}`; loss log `log.csv`; resolved config `config.json`.\n")  # fmt: skip
    write_results(out, None, results, text)
    if res.interrupted:  # a checkpoint is saved; exit 128 + signal (130/143), never 0
        signum = res.stop_signal or signal.SIGINT
        raise Interrupted(
            f"stopped by {signal.Signals(signum).name} at step {res.step} of {cfg.schedule.steps};"
            f" checkpoint {res.checkpoint} saved. Resume with: scoresde train --out {out}",
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
        model, scaler, shape, _ = _load(args.ckpt, world.device)
        sde = model.sde
        dev = world.device
        _check_nfe(args.nfe, args.force, lambda: model(torch.zeros(args.n, *shape, device=dev),
                                                      torch.full((args.n,), sde.T, device=dev)))  # fmt: skip
        auto = (args.sampler or "auto") == "auto" and not isinstance(args.grid, Path)
        args.sampler, grid, opts = _sample_grid(args, sde)
        out = shared_run_dir(world, args.out, "sample")
        res = sharded_sample(
            args.sampler,
            sde,
            model,
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
            f"samples); nothing saved. The checkpoint {args.ckpt} may hold diverged weights"
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
        "files": ["samples.npy", fig.name],
    }
    text = (
        f"# scoresde sample\n\n{args.n} samples from `{args.ckpt}` with `{args.sampler}`"
        f"{' (picked by auto)' if auto else ''} ({nfe} score evaluations, {n_steps} steps).\n\n![samples](samples.png)\n"
    )
    write_results(out, _config("sample", args, device), results, text)
    return out


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
    """(sampler, grid, options) of ``sample`` from --sampler, --nfe, --grid and --denoise."""
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
        name = recommended(sde, args.nfe or 50)
        print(
            f"scoresde sample: auto picked {name} for {type(sde).__name__} at {args.nfe or 50} "
            "NFE (best on the problem family, docs/howto/sample.md)"
        )
    if get_sampler(name).adaptive:
        return name, torch.tensor([sde.T, sde.eps], dtype=torch.float64), opts
    grid, opts = plan_for_nfe(sde, name, args.nfe or 50, args.grid, exact=False, **opts)
    return name, grid, opts


def run_compare(args: argparse.Namespace, device: torch.device) -> Path | None:
    """A sampler study on an exact mixture score (``--analytic``) or a checkpoint (``--ckpt``).

    Its (seed, sampler) runs are shared out over ``torchrun`` ranks (one process otherwise);
    every row is the row of one process, and rank 0 writes the files.
    """
    from ..distributed import sharded_compare_samplers

    density: Any = None
    score_fn: Any = None
    with cli_world(args, device) as world:
        if args.analytic:
            sde = get_sde(args.sde)
            density = parse_mixture(args.analytic)
            score_fn = density.with_sde(sde)
            gen = torch.Generator().manual_seed(10_000 + args.seed)
            ref = density.sample(args.n, gen, dtype=torch.float32, device=world.device)
        else:
            model, scaler, _, metadata = _load(args.ckpt, world.device)
            sde, score_fn = model.sde, model
            source = metadata.get("run_config", {}).get("data")
            if not source:
                raise CLIError(
                    f"--ckpt: {args.ckpt} does not name its training data (no run config)"
                )
            data = get_dataset(source["name"], **source.get("kwargs", {}))
            ref = scaler.transform(data.test[: args.n]).to(world.device)
        n_ref = min(len(ref), 1000)
        _check_nfe(args.nfe, args.force, lambda: score_fn(ref[:n_ref], torch.full((n_ref,), sde.T, device=ref.device)))  # fmt: skip
        kinds = [g for g in args.grid if isinstance(g, str)]
        if len(kinds) > 1:
            raise CLIError(f"--grid: expected at most one grid kind, received {', '.join(kinds)}")
        paths = [g for g in args.grid if isinstance(g, Path)]
        grids = {
            f"{og.sampler}[{p.stem}]": og
            for og, p in zip([load_grid(p, sde) for p in paths], paths, strict=True)
        }
        out = shared_run_dir(world, args.out, "compare")
        study = sharded_compare_samplers(
            sde,
            score_fn,
            args.samplers,
            args.nfe,
            ref,
            args.metrics,
            seeds=args.seeds,
            density=density,
            world=world,
            shard_dir=out / "shards",
            progress=not args.quiet,
            grid_kind=kinds[0] if kinds else None,
            grids=grids,
            denoise=args.denoise,
        )
    if study is None:
        return None
    bad = [r for r in study.rows
           if any(isinstance(v, float) and not math.isfinite(v) for v in r.values())]  # fmt: skip
    if bad:
        raise CLIError(
            f"compare: expected finite metrics, received non-finite values in {len(bad)} of "
            f"{len(study.rows)} rows (e.g. {bad[0].get('sampler')}); check the scale of the "
            "mixture or the checkpoint"
        )
    ref = ref.cpu()
    atomic_write(out / "sampler_study.csv", study.to_csv)
    m = args.metrics[0]
    atomic_write(out / "quality_vs_nfe.png", lambda p: report.plot_quality_vs_nfe(study.rows, m, p))
    if ref.ndim == 2:
        panels = {
            f"{k[0]} (NFE {k[1]})": v for k, v in study.samples.items() if k[1] == max(args.nfe)
        }
        atomic_write(
            out / "samples_per_sampler.png", lambda p: report.plot_samples(panels, p, reference=ref)
        )
    summary = summarize(study.rows, m)
    results = {"metric": m, "summary": summary, "skipped": study.skipped, "rows": study.rows}
    text = (
        f"# scoresde compare\n\n{m}, mean over seeds {args.seeds}:\n\n"
        + report.markdown_table(summary, ["sampler", "nfe_target", "nfe", "mean", "se"])
        + "\n![quality vs NFE](quality_vs_nfe.png)\n"
    )
    write_results(out, _config("compare", args, device), results, text)
    return out
