"""The ``scoresde`` command line: ``demo | train | sample | nll | compare``.

The only place that reads registry names from the user (DESIGN.md, contract 7). Every run writes
a folder (``--out``, default ``runs/<command>-<time>``) with the resolved ``config.json``,
``results.json``, a Markdown ``report.md`` and PNG figures. User errors print one line and exit
with status 2; no tracebacks. ``sample``, ``nll`` and ``compare`` also run under ``torchrun
--nproc_per_node N``: rank 0 writes the same files as one process (docs/howto/scale-out.md);
a failed or stalled rank ends every rank with one line and exit status 1.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

__all__ = ["build_parser", "main"]

_DESCRIPTION = (
    "Score-based diffusion models from the command line: train s_theta(x, t) ~ grad log p_t(x), "
    "sample by integrating the reverse SDE or the probability-flow ODE, and evaluate exact "
    "likelihoods. Run 'scoresde COMMAND --help' for each command."
)
_EPILOG = "Song et al. (2021), Score-Based Generative Modeling through SDEs. Docs: docs/ (mkdocs)."


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        raise SystemExit(2)


def _names(registry: dict) -> str:
    return ", ".join(sorted(registry))


def _common(p: argparse.ArgumentParser, nfe: bool = False) -> None:
    p.add_argument("--out", help="run folder (default: runs/<command>-<timestamp>)")
    p.add_argument(
        "--device", help="torch device, e.g. cpu, cuda, cuda:1 (default: cuda if available)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of every torch.Generator (default 0)")
    p.add_argument(
        "--threads",
        type=int,
        help="torch CPU threads (default 1 on CPU: on a shared or 2-core machine more threads "
        "oversubscribe and run several times slower; raise it on an idle many-core machine)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument(
        "--force",
        action="store_true",
        help="write into an --out that holds another run"
        + ("; allow an --nfe above 10000" if nfe else ""),
    )


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (also used to render the docs' CLI page)."""
    from .._utils import names_list
    from ..data import DATASETS
    from ..metrics import METRICS
    from ..nets import NETS
    from ..samplers import GRIDS, SAMPLERS
    from ..sde import SDES
    from .common import float_list, grid_arg, int_list
    from .demo import BUDGETS
    from .model_source import add_model_flag
    from .scaleout import add_scaleout_flags

    def names(registry: dict) -> Callable[[str], list[str]]:  # argparse: comma list of names
        def parse(text: str) -> list[str]:
            vals = [v.strip() for v in text.split(",")]
            bad = [v for v in vals if v not in registry]
            if not vals or bad:
                raise argparse.ArgumentTypeError(
                    f"unknown name(s) {bad or text!r}; expected one of {names_list(registry)}"
                )
            return vals

        return parse

    def _types(f: Callable[[str], Any]) -> Callable[[str], Any]:
        def parse(text: str) -> Any:
            try:
                return f(text)
            except ValueError as err:
                raise argparse.ArgumentTypeError(str(err)) from None

        return parse

    top = _Parser(prog="scoresde", description=_DESCRIPTION, epilog=_EPILOG)
    sub = top.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")
    d = sub.add_parser(
        "demo",
        help="train on a 2-D toy set, compare samplers, evaluate NLL",
        description="The main job end to end: train a score model by denoising score "
        "matching on a 2-D toy set, run every sampler (reverse SDE, DDPM, DDIM, "
        "PF-ODE solvers) from the same prior draws at several NFEs, compute the "
        "test NLL through the probability-flow ODE and compare it with the data's "
        "exact entropy.",
    )
    d.add_argument(
        "--data",
        default="8gaussians",
        choices=[k for k in DATASETS if k not in ("mixture", "digits", "mnist", "array", "folder")],
        help="2-D toy set (default 8gaussians)",
    )
    d.add_argument("--sde", default="vp", choices=sorted(SDES), help="forward SDE (default vp)")
    d.add_argument(
        "--budget",
        default="small",
        choices=list(BUDGETS),
        help="tiny: CI smoke test (~1 min); small: minutes on 2 CPUs; full: longer (default small)",
    )
    _common(d)
    t = sub.add_parser(
        "train",
        help="train a score model from a config file and flags",
        description="Train s_theta(x, t) by denoising score matching (Song et al. "
        "2021, Eq. 7). Flags override the config; an existing checkpoint in --out "
        "is resumed exactly.",
    )
    t.add_argument(
        "--config",
        help="run config (.json/.yaml; examples in examples/); default: the "
        "measured recipe (EDM preconditioning, likelihood weighting with importance-"
        "sampled t, log-SNR time input, cosine decay; docs/howto/train.md)",
    )
    t.add_argument(
        "--data",
        choices=sorted(DATASETS),
        help="data set name (default: the config's, else 8gaussians)",
    )
    t.add_argument(
        "--sde",
        choices=sorted(SDES),
        help="forward SDE: vp, subvp or ve (default: the config's, else vp)",
    )
    t.add_argument(
        "--net",
        choices=sorted(NETS),
        help="network: mlp (vectors) or unet (images) "
        "(default: the config's, else unet for image sets and mlp otherwise)",
    )
    t.add_argument("--steps", type=int, help="optimizer steps (default: the config's, else 4000)")
    t.add_argument(
        "--batch-size", type=int, help="global batch size (default: the config's, else 512)"
    )
    t.add_argument("--lr", type=float, help="Adam learning rate (default: the config's, else 2e-3)")
    _common(t)
    t.set_defaults(seed=None)  # a flag not given never overrides the config file's seed
    s = sub.add_parser(
        "sample",
        help="draw samples from a checkpoint",
        description="Integrate the reverse SDE or the PF-ODE from the prior with a "
        "registered sampler; saves samples.npy (data units) and a figure.",
    )
    src = s.add_mutually_exclusive_group(required=True)
    src.add_argument("--ckpt", help="checkpoint.pt written by train/demo")
    add_model_flag(src)
    s.add_argument(
        "--sampler",
        choices=["auto", *sorted(SAMPLERS)],
        metavar="NAME",
        help="'auto' (default: the sampler best for this SDE and NFE on the problem family; "
        f"the output names it) or one of {_names(SAMPLERS)} (a grid file fixes its own)",
    )
    s.add_argument(
        "--nfe",
        type=_types(lambda v: int_list(v)[0]),
        help="score evaluations (default 50, or the grid file's; the grid is chosen "
        "to spend at most this many)",
    )
    s.add_argument(
        "--grid",
        type=_types(grid_arg),
        metavar="KIND|FILE.json",
        help=f"time grid: a kind ({_names(GRIDS)}; default: the sampler's own) or a "
        "grid file written by optimize_grid",
    )
    s.add_argument(
        "--no-denoise",
        dest="denoise",
        action="store_false",
        help="skip the final Tweedie denoising step (by default every run ends with it, "
        "1 NFE inside the budget)",
    )
    s.add_argument(
        "-n",
        "--n",
        type=_types(lambda v: int_list(v)[0]),
        default=1000,
        help="number of samples (default 1000; write -n under torchrun, which takes --n for its "
        "own --nnodes)",
    )
    add_scaleout_flags(s, 500, "samples")
    _common(s, nfe=True)
    n = sub.add_parser(
        "nll",
        help="per-point log-likelihood and bits/dim through the PF-ODE",
        description="Exact log p(x) by the instantaneous change of variables along "
        "the PF-ODE (Song et al. 2021, Sec. 4.3); discrete data are dequantized.",
    )
    src = n.add_mutually_exclusive_group(required=True)
    src.add_argument("--ckpt", help="checkpoint.pt written by train/demo")
    add_model_flag(src)
    n.add_argument(
        "--data",
        required=True,
        help="data set name, a .npy/.npz/.pt file or a folder of PNG images",
    )
    n.add_argument(
        "--split",
        default="test",
        choices=["test", "train"],
        help="which split of a named data set to evaluate (default test)",
    )
    n.add_argument(
        "-n",
        "--n",
        type=_types(lambda v: int_list(v)[0]),
        default=1000,
        help="number of points (default 1000; write -n under torchrun)",
    )
    n.add_argument(
        "--divergence",
        default="exact",
        choices=["exact", "hutchinson"],
        help="div of the PF drift: exact (one VJP per dimension; low-dimensional data) "
        "or hutchinson (unbiased, --probes VJPs per step, with a standard error) "
        "(default exact)",
    )
    n.add_argument(
        "--probes",
        type=_types(lambda v: int_list(v)[0]),
        default=1,
        help="Hutchinson probes per point (default 1; only with --divergence hutchinson)",
    )
    n.add_argument(
        "--rtol",
        type=_types(lambda v: float_list(v)[0]),
        default=1e-5,
        help="relative and absolute tolerance of the adaptive PF-ODE solve (default 1e-5)",
    )
    add_scaleout_flags(n, 250, "points")
    _common(n)
    c = sub.add_parser(
        "compare",
        help="sampler study on a checkpoint or an exact mixture score",
        description="Run samplers x NFEs x seeds (x factors, with --spec) from the "
        "same prior draws and score samples against reference samples, with the "
        "noise floor of exact samples. With --analytic the score is exact, so "
        "every error is the sampler's. Rerunning with the same --out resumes.",
    )
    src = c.add_mutually_exclusive_group(required=True)
    src.add_argument("--ckpt", help="checkpoint.pt written by train/demo")
    add_model_flag(src)
    src.add_argument(
        "--analytic",
        metavar="MIXTURE_SPEC",
        help="preset (8gaussians, 2modes), JSON "
        'object {"weights", "means", "covariances"}, or a .json file',
    )
    c.add_argument(
        "--spec",
        metavar="STUDY.yaml|json",
        help="study spec (samplers, nfe, seeds, factors, ...); excludes the study flags below",
    )
    c.add_argument(
        "--data",
        help="with --ckpt/--model: reference set (dataset name or .npy/.npz/.pt); "
        "default: the training data",
    )
    c.add_argument(
        "--sde", default="vp", choices=sorted(SDES), help="SDE for --analytic (default vp)"
    )
    c.add_argument(
        "--samplers",
        type=names(SAMPLERS),
        default=None,
        help=f"comma list from: {_names(SAMPLERS)} (default euler_maruyama,ddim,pf_heun)",
    )
    c.add_argument(
        "--nfe", type=_types(int_list), default=None, help="comma list of NFEs (default 10,20,50)"
    )
    c.add_argument(
        "--grid",
        type=_types(lambda v: [grid_arg(x) for x in v.split(",")]),
        default=[],
        metavar="KIND|FILE.json,...",
        help="a grid kind for every sampler and/or grid files (each adds its own "
        "sampler at its own NFE)",
    )
    c.add_argument(
        "--denoise",
        action="store_true",
        help="every sampler finishes with a Tweedie step (1 NFE, inside the budget)",
    )
    c.add_argument(
        "--seeds",
        type=_types(lambda v: int_list(v, 0)),
        default=None,
        help="comma list of seeds (default 0,1,2,3,4: five seeds for a paired ranking)",
    )
    c.add_argument(
        "--metrics",
        type=names(METRICS),
        default=None,
        help=f"comma list from: {_names(METRICS)} (default sw2,mmd)",
    )
    c.add_argument(
        "-n",
        "--n",
        type=_types(lambda v: int_list(v)[0]),
        default=None,
        help="samples per run (default 2000; write -n under torchrun)",
    )
    c.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds without progress before a rank counts as failed; given, or "
        "under torchrun, the study's cells are shared out over the ranks",
    )
    _common(c, nfe=True)
    return top


def _check_threads(value: int | None) -> int | None:
    from .common import CLIError

    top = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if value is not None and not 1 <= value <= (top or 1):
        raise CLIError(
            f"--threads: expected an integer in 1..{top} (the CPUs this process may use), "
            f"received {value}"
        )
    return value


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``scoresde`` console script and ``python -m scoresde``.

    Exit status: 0 on success; 2 for a user error (one line on stderr, no traceback); 1 when a
    file cannot be written (disk full, I/O error, no permission: one line) or a rank failed;
    130/143 when stopped by SIGINT/SIGTERM, with the command that resumes the run.
    """
    from .signals import Stopped, early_handlers, watch_launcher

    with early_handlers():  # before anything slow: a signal from here on is a clean stop
        argv = list(sys.argv[1:] if argv is None else argv)
        args = build_parser().parse_args(argv)
        watch_launcher(args.command)
        created: list[Path] = []
        try:
            try:
                return _run(args, argv, created)
            except KeyboardInterrupt as err:  # e.g. a second signal during training
                if isinstance(err, Stopped):
                    raise
                name = str(err.args[0]) if err.args else ""  # Stopper: the signal's name
                signum = signal.SIGTERM if name == "SIGTERM" else signal.SIGINT
                raise Stopped(signum) from None
        except Stopped as stop:
            from .rundir import release_locks

            release_locks(cleanup=True)
            _remove_if_empty(created, args.out)
            sys.stderr.write(f"scoresde {args.command}: {stop.describe(_resume(argv, args))}\n")
            return stop.code
        finally:
            from .rundir import release_locks

            release_locks()


def _run(args: argparse.Namespace, argv: list[str], created: list[Path]) -> int:
    import torch

    from ..distributed import RankFailedError, WriteError, env
    from ..distributed.atomic import as_write_error
    from ..training import CheckpointError, TrainingDiverged
    from .common import CLIError, Interrupted, resolve_device, run_dir
    from .rundir import release_locks

    try:
        device = resolve_device(args.device)
        threads = _check_threads(args.threads) or (1 if device.type == "cpu" else None)
        if threads:
            torch.set_num_threads(threads)
        from . import commands, compare, demo, nll
        from .validate import check_flags

        check_flags(args, argv)
        release_locks()  # one main() call, one run folder
        if env.world_size() == 1:  # claim the run folder before any work
            created[:] = _new_paths(args.out)
            default = args.out is None
            args.out = str(run_dir(args.out, args.command, args.force))
            created[:] = [Path(args.out)] * default + created
        run = {
            "demo": demo.run_demo,
            "train": commands.run_train,
            "sample": commands.run_sample,
            "nll": nll.run_nll,
            "compare": compare.run_compare,
        }[args.command]
        out = run(args, device)
    except Interrupted as err:
        sys.stderr.write(f"scoresde {args.command}: {err} Resume with: {_resume(argv, args)}\n")
        return err.code
    except WriteError as err:  # disk full, I/O error, no permission: the environment, not input
        sys.stderr.write(f"scoresde {args.command}: error: {err.strerror}\n")
        release_locks(cleanup=True)
        _remove_if_empty(created, args.out)
        return 1
    except RankFailedError as err:  # under torchrun: another rank failed or stalled
        sys.stderr.write(f"scoresde {args.command}: error: {err}\n")
        return 1
    except (
        CLIError,
        ValueError,
        TypeError,
        OSError,
        ImportError,
        CheckpointError,
        TrainingDiverged,
        RuntimeError,
    ) as err:
        written = as_write_error(err)
        raw = isinstance(err, RuntimeError) and not isinstance(
            err, (CheckpointError, TrainingDiverged)
        )
        if raw and written is None and env.world_size() > 1:
            first = str(err).strip().splitlines()[0][:200] if str(err).strip() else ""
            sys.stderr.write(
                f"scoresde {args.command} (rank {env.rank()}): error: expected "
                f"the other ranks and the rendezvous store to answer, received {type(err).__name__}"
                f" ({first})\n"
            )
            return 1
        if raw and written is None:
            raise
        text = written.strerror if written is not None else str(err)
        msg = text.splitlines()[0] if text else type(err).__name__
        sys.stderr.write(f"scoresde {args.command}: error: {msg}\n")
        release_locks(cleanup=True)
        _remove_if_empty(created, args.out)
        return 1 if written is not None else 2
    if out is not None:  # rank 0 (or one process) wrote the run folder
        print(f"wrote {out}")
    return 0


def _resume(argv: list[str], args: argparse.Namespace) -> str:
    """The command line that resumes this run: the same arguments, with its ``--out``."""
    import shlex

    words, skip = [], False
    for w in argv:
        if skip:
            skip = False
        elif w == "--out":
            skip = True
        elif not w.startswith("--out="):
            words.append(w)
    if args.out:
        words += ["--out", str(args.out)]
    return shlex.join(["scoresde", *words])


def _new_paths(out: str | None) -> list[Path]:
    """The folders that claiming ``out`` (or the default ``runs/...``) may create."""
    if out is None:
        return [Path("runs")] if not Path("runs").exists() else []
    path, new = Path(out), []
    while not path.exists() and path != path.parent:
        new.append(path)
        path = path.parent
    return new


def _remove_if_empty(created: list[Path], out: str | None) -> None:
    """After an error, remove the run folder (and parents) this call created, if still empty."""
    for path in created:
        try:
            path.rmdir()  # only succeeds for an empty folder
        except OSError:
            pass
