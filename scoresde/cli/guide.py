"""``--class K`` and ``--guidance W``: the one place the CLI turns them into a score function.

A class-conditional checkpoint (trained with ``data.labels: true``) is a conditional score
s(x, t | y) whose null label gives s(x, t | ∅). ``--class K`` binds y = K
(:func:`~scoresde.samplers.guidance.bind_label`); ``--guidance W`` samples the classifier-free
guided score (1 + w) s(x, t | K) - w s(x, t | ∅) (Ho & Salimans 2022) through
:func:`~scoresde.samplers.guidance.classifier_free_guidance`. ``compare`` takes a comma list of
weights, a study factor (:func:`checked_class` validates K for it).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any

from torch import Tensor

from .errors import CLIError

__all__ = [
    "add_class_flags",
    "checked_class",
    "class_score",
    "guidance_arg",
    "guidance_list",
]


def guidance_arg(text: str) -> float:
    """``--guidance``: a finite number w > -1 (argparse type)."""
    try:
        w = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number w > -1, received {text!r}") from None
    if not (math.isfinite(w) and w > -1):
        raise argparse.ArgumentTypeError(f"expected a finite number w > -1, received {text!r}")
    return w


def guidance_list(text: str) -> list[float]:
    """``compare --guidance``: a comma list of finite numbers w > -1 (argparse type)."""
    items = text.split(",")
    if any(not v.strip() for v in items):
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, received {text!r}")
    return [guidance_arg(v.strip()) for v in items]


def add_class_flags(
    p: argparse.ArgumentParser, class_type: Any, guidance: bool, study: bool = False
) -> None:
    """Add ``--class`` (and, for ``sample`` and ``compare``, ``--guidance``) to a parser.

    ``study``: ``compare``'s form, where ``--guidance`` is a comma list (a study factor).
    """
    what = "evaluate log p(x | y = K)" if not guidance else "sample from p(x | y = K)"
    if study:
        what = "compare samplers on p(x | y = K), against the class's own data"
    p.add_argument(
        "--class",
        dest="class_",
        type=class_type,
        metavar="K",
        help=f"class label K of a class-conditional checkpoint (trained with data.labels: true; "
        f"K in 0..num_classes-1, e.g. the digit for digits and mnist): {what} through the "
        "network's s(x, t | K) (default: unconditional, the network's null label)",
    )
    if guidance and study:
        p.add_argument(
            "--guidance",
            type=guidance_list,
            metavar="W[,W...]",
            help="classifier-free guidance weights w (Ho & Salimans 2022) as a study factor, with "
            "--class K on a checkpoint (or with an --analytic mixture that has labels and class): "
            "each sampler follows (1 + w) s(x, t | K) - w s(x, t | null). w = 0 is scored "
            "against the class's data; every other w against its own guided PF-ODE's limit (an "
            "adaptive solve at tight tolerance from independent prior draws), since no data set "
            "has the guided distribution: the distance is then the sampler's error at that w",
        )
    elif guidance:
        p.add_argument(
            "--guidance",
            type=guidance_arg,
            metavar="W",
            help="classifier-free guidance weight w (Ho & Salimans 2022), with --class: the "
            "sampler follows (1 + w) s(x, t | K) - w s(x, t | null); 0 samples p(x | K), larger w "
            "gives more typical and less varied samples of the class (default 0)",
        )


def checked_class(args: argparse.Namespace, model: Any, source: str) -> int | None:
    """``--class`` K for ``model`` (None without it), checked against the model's label set.

    Raises:
        CLIError: ``--guidance`` without ``--class``, ``--class`` for an unconditional model,
            or K out of range (each naming what was expected and what was received).
    """
    k, w = getattr(args, "class_", None), getattr(args, "guidance", None)
    if k is None:
        if w is not None:
            shown = ",".join(f"{v:g}" for v in w) if isinstance(w, list) else f"{w:g}"
            raise CLIError(
                f"--guidance: expected --class K with it, received --guidance {shown} alone"
            )
    elif getattr(model, "num_classes", None) is None:
        raise CLIError(
            f"--class: expected a class-conditional checkpoint (trained with data.labels: true), "
            f"received {source}, which is unconditional"
        )
    elif not 0 <= k < model.num_classes:
        num, names = model.num_classes, getattr(model, "class_names", None)
        shown = f" ({', '.join(names)})" if names else ""
        raise CLIError(
            f"--class: expected a class in 0..{num - 1}{shown} ({source} has {num} classes), "
            f"received {k}"
        )
    return k


def class_score(
    args: argparse.Namespace, model: Any, source: str
) -> Callable[[Tensor, Tensor], Tensor]:
    """The score function of ``--class``/``--guidance`` for ``model`` (``model`` itself if none).

    Raises:
        CLIError: As :func:`checked_class`.
    """
    from ..samplers.guidance import bind_label, classifier_free_guidance

    k = checked_class(args, model, source)
    if k is None:
        return model
    cond, w = bind_label(model, k), getattr(args, "guidance", None)
    return cond if not w else classifier_free_guidance(cond, model, w)
