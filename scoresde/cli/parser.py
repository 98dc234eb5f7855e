"""The ``scoresde`` argument parser: every command, option, default and help text.

``build_parser`` also renders the docs' CLI page; ``tests/test_cli_help.py`` checks that every
option explains itself and names its default.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, NoReturn

__all__ = ["build_parser"]


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
    from .guide import add_class_flags
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
    t.add_argument(
        "--labels",
        action="store_const",
        const=True,
        default=None,
        help="train a class-conditional model s(x, t | y) on the data's classes (digits, mnist, "
        "8gaussians, checkerboard; config data.labels), for sample --class K --guidance W "
        "(default: the config's, else unconditional)",
    )
    t.add_argument(
        "--label-dropout",
        type=float,
        metavar="P",
        help="with --labels: probability of replacing a label by the null label in training, so "
        "the same network learns s(x, t | null) for classifier-free guidance (Ho & Salimans "
        "2022; config data.label_dropout; default: the config's, else 0.1)",
    )
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
        help="'auto' (default: for a trained model, the stochastic sampler best for this SDE "
        "and NFE on the problem family; the output names it) or one of "
        f"{_names(SAMPLERS)} (a grid file fixes its own)",
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
    class_k = _types(lambda v: int_list(v, 0)[0])
    add_class_flags(s, class_k, guidance=True)
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
    add_class_flags(n, class_k, guidance=False)
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
        'object {"weights", "means", "covariances"}, or a .json file; add "labels" (a class per '
        'component) and "class" to sample that class, with --guidance W,... (or a spec factor '
        "guidance: [w, ...]) for classifier-free guidance (each w scored against its own "
        "guided ODE's limit, and against the tilted target p(x|y)^(1+w) p(x)^(-w) in 1-D/2-D)",
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
    add_class_flags(c, class_k, guidance=True, study=True)
    _common(c, nfe=True)
    return top
