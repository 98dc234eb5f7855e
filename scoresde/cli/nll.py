"""``scoresde nll``: per-point log p(x) and bits/dim of a data set through the PF-ODE."""

from __future__ import annotations

import argparse
import math
import pickle
from pathlib import Path
from typing import Any

import torch

from .._utils import mean_se
from ..data import get_dataset, load_array, load_image_folder
from ..distributed import atomic_write
from ..parameterization.pretrained import dequantization_range
from . import report
from .commands import _config
from .common import CLIError, write_results
from .guide import class_score
from .model_source import check_on_data, likelihood_options, load_source, source_name
from .scaleout import cli_world, shared_run_dir

__all__ = ["nll_data", "run_nll"]


def run_nll(args: argparse.Namespace, device: torch.device) -> Path | None:
    """Per-point log p(x) and bits/dim through the PF-ODE; CSV plus a summary with s.e.

    Sharded over ``torchrun`` ranks (one process otherwise): the points' Hutchinson probes and
    the shards' dequantization noise have their own seeds, so the numbers do not depend on the
    number of ranks; rank 0 writes the files.
    """
    from ..distributed import sharded_bits_per_dim, sharded_log_likelihood
    from ..studies import write_csv

    with cli_world(args, device) as world:
        data = nll_data(args.data)
        model, scaler, shape, metadata = load_source(args, world.device, data.levels)
        if args.split == "train" and data.train is None:
            raise CLIError(
                f"--split train: expected a data set with a stored train split, received "
                f"{args.data!r}, which has only a test split; use --split test"
            )
        x = data.test if args.split == "test" else data.train
        x = x[: args.n]
        if tuple(x.shape[1:]) != tuple(shape):
            raise CLIError(
                f"--data: expected points of shape {tuple(shape)} (the model's), "
                f"received {tuple(x.shape[1:])}"
            )
        check_on_data(args, model.double(), scaler.transform(x).to(world.device), world.rank)
        score_fn = class_score(args, model.double(), source_name(args))
        D = math.prod(shape)
        far = _far_from_data(scaler.transform(x.double()), world.rank)
        out = shared_run_dir(world, args.out, "nll", args.force)
        kw = {
            "rtol": args.rtol,
            "atol": args.rtol,
            "divergence": args.divergence,
            "n_probes": args.probes,
            "world": world,
            "seed": args.seed,
            "shard_size": args.shard_size,
            "shard_dir": out / "shards",
            "progress": not args.quiet,
            **likelihood_options(metadata),
        }
        if data.levels:  # discrete data: dequantized bits/dim on the model's own cells
            cells = dequantization_range(metadata, data.levels)
            res = far(
                sharded_bits_per_dim,
                model.sde,
                score_fn,
                x.round().long(),
                levels=data.levels,
                model_range=cells,
                **kw,
            )
            if res is None:
                return None
            bpd = res.bpd.cpu()
            logp = -bpd * D * math.log(2)
        else:
            r = far(
                sharded_log_likelihood,
                model.sde,
                score_fn,
                scaler.transform(x).double(),
                **kw,
            )
            if r is None:
                return None
            logp = r.log_prob.cpu() + scaler.log_abs_det(shape)
            bpd = -logp / (D * math.log(2))
    bad = ~torch.isfinite(logp)
    if bool(bad.any()):
        first = int(bad.nonzero()[0])
        raise CLIError(
            f"nll: expected finite log-likelihoods, received {int(bad.sum())} non-finite of "
            f"{logp.numel()} (first: point {first}); nothing saved. Check the data's range or "
            "the checkpoint"
        )
    rows = [
        {"index": i, "log_prob": float(a), "bits_per_dim": float(b)}
        for i, (a, b) in enumerate(zip(logp, bpd, strict=True))
    ]
    atomic_write(out / "nll.csv", lambda p: write_csv(rows, p))
    se = float(mean_se(logp.double())[1])
    results = {
        "n": logp.numel(),
        "nll_mean": float(-logp.mean()),
        "nll_se": se,
        "bpd_mean": float(bpd.mean()),
        "bpd_se": se / (D * math.log(2)),
        "entropy": data.entropy,
        "class": getattr(args, "class_", None),
    }
    fig = out / "nll_histogram.png"
    atomic_write(fig, lambda p: report.plot_nll_histogram(-logp, p, data.entropy))
    text = (
        f"# scoresde nll\n\n{results['n']} points: NLL {results['nll_mean']:.4f} ± {se:.4f} "
        f"nats, {results['bpd_mean']:.4f} bits/dim.\n\n![NLL]({fig.name})\n"
    )
    write_results(out, _config("nll", args, device), results, text)
    return out


def _far_from_data(z: torch.Tensor, rank: int) -> Any:
    """Print one warning line for points far outside the data range (model units ``z``).

    Returns a caller that runs a likelihood job without repeating the warning per shard.
    """
    import sys
    import warnings

    from ..checks import FarFromDataWarning, far_from_data

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FarFromDataWarning)
        msg = far_from_data(z, "--data")
    if msg and rank == 0:
        sys.stderr.write(f"scoresde nll: warning: {msg}\n")

    def run(job: Any, *args: Any, **kwargs: Any) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FarFromDataWarning)
            return job(*args, **kwargs)

    return run


def nll_data(spec: str) -> Any:
    """``--data`` of ``nll``/``compare``: a data set name, an array file or a folder of PNGs."""
    path = Path(spec)
    if path.is_dir():
        return load_image_folder(path)
    if path.suffix in (".npy", ".npz", ".pt"):
        if not path.is_file():
            raise CLIError(f"--data: expected an existing file, received {spec}")
        try:
            return load_array(path)
        except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as err:
            raise CLIError(
                f"--data: expected an array file (.npy/.npz, or .pt of tensors), "
                f"received {spec} ({type(err).__name__})"
            ) from None
    return get_dataset(spec)
