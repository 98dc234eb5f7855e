"""``--class K`` and ``--guidance W``: the one place the CLI turns them into a score function.

A class-conditional checkpoint (trained with ``data.labels: true``) is a conditional score
s(x, t | y) whose null label gives s(x, t | ∅). ``--class K`` binds y = K
(:func:`~scoresde.samplers.guidance.bind_label`); ``--guidance W`` samples the classifier-free
guided score (1 + w) s(x, t | K) - w s(x, t | ∅) (Ho & Salimans 2022) through
:func:`~scoresde.samplers.guidance.classifier_free_guidance`.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any

from torch import Tensor

from .errors import CLIError

__all__ = ["add_class_flags", "class_score", "guidance_arg"]


def guidance_arg(text: str) -> float:
    """``--guidance``: a finite number w > -1 (argparse type)."""
    try:
        w = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number w > -1, received {text!r}") from None
    if not (math.isfinite(w) and w > -1):
        raise argparse.ArgumentTypeError(f"expected a finite number w > -1, received {text!r}")
    return w


def add_class_flags(p: argparse.ArgumentParser, class_type: Any, guidance: bool) -> None:
    """Add ``--class`` (and, for ``sample``, ``--guidance``) to a command's parser."""
    what = "sample from p(x | y = K)" if guidance else "evaluate log p(x | y = K)"
    p.add_argument(
        "--class",
        dest="class_",
        type=class_type,
        metavar="K",
        help=f"class label K of a class-conditional checkpoint (trained with data.labels: true; "
        f"K in 0..num_classes-1, e.g. the digit for digits and mnist): {what} through the "
        "network's s(x, t | K) (default: unconditional, the network's null label)",
    )
    if guidance:
        p.add_argument(
            "--guidance",
            type=guidance_arg,
            metavar="W",
            help="classifier-free guidance weight w (Ho & Salimans 2022), with --class: the "
            "sampler follows (1 + w) s(x, t | K) - w s(x, t | null); 0 samples p(x | K), larger w "
            "gives more typical and less varied samples of the class (default 0)",
        )


def class_score(
    args: argparse.Namespace, model: Any, source: str
) -> Callable[[Tensor, Tensor], Tensor]:
    """The score function of ``--class``/``--guidance`` for ``model`` (``model`` itself if none).

    Raises:
        CLIError: ``--guidance`` without ``--class``, ``--class`` for an unconditional model,
            or K out of range (each naming what was expected and what was received).
    """
    from ..samplers.guidance import bind_label, classifier_free_guidance

    k, w = getattr(args, "class_", None), getattr(args, "guidance", None)
    if k is None:
        if w is not None:
            raise CLIError(
                f"--guidance: expected --class K with it, received --guidance {w:g} alone"
            )
        return model
    num = getattr(model, "num_classes", None)
    if num is None:
        raise CLIError(
            f"--class: expected a class-conditional checkpoint (trained with data.labels: true), "
            f"received {source}, which is unconditional"
        )
    if not 0 <= k < num:
        names = getattr(model, "class_names", None)
        shown = f" ({', '.join(names)})" if names else ""
        raise CLIError(
            f"--class: expected a class in 0..{num - 1}{shown} ({source} has {num} classes), "
            f"received {k}"
        )
    cond = bind_label(model, k)
    return cond if not w else classifier_free_guidance(cond, model, w)
