"""``--ckpt FILE`` or ``--model FORMAT:PATH``: the one place the CLI turns either into a model.

``--model diffusers:PATH | kdiffusion:PATH | scoresde:PATH`` loads a model trained elsewhere
(:mod:`scoresde.parameterization.pretrained`): a ScoreModel on its exact SDE, the scaler of its
data convention (images: level k -> the model's range), its event shape and metadata.
"""

from __future__ import annotations

import argparse
from typing import Any

import torch

__all__ = ["add_model_flag", "check_on_data", "likelihood_options", "load_source", "source_name"]


def add_model_flag(group: Any) -> None:
    """Add ``--model FORMAT:PATH`` to a parser or mutually exclusive group."""
    from ..parameterization.pretrained import FORMATS

    group.add_argument(
        "--model",
        metavar="FORMAT:PATH",
        help=f"a model trained elsewhere, FORMAT one of {', '.join(FORMATS)} (a local folder; "
        "docs/howto/own-model.md)",
    )


def source_name(args: argparse.Namespace) -> str:
    """The model as the user named it (for reports and errors)."""
    return getattr(args, "model", None) or args.ckpt


def load_source(args: argparse.Namespace, device: torch.device, levels: int | None = None) -> Any:
    """``(model, scaler, shape, metadata)`` from ``--model`` or ``--ckpt``.

    ``levels`` (the data's, when known) sets the scaler of a ``--model`` image convention, so
    level k of any data set maps to where the model saw it.
    """
    from .commands import _load

    spec = getattr(args, "model", None)
    if not spec:
        return _load(args.ckpt, device)
    from ..parameterization.pretrained import image_scaler, load_pretrained

    try:
        loaded = load_pretrained(spec, device)
    except FileNotFoundError as err:
        raise ValueError(f"--model: {err}") from None
    meta = loaded.metadata
    if levels is not None and "data_range" in meta and levels != meta.get("levels"):
        scaler = image_scaler(tuple(meta["data_range"]), levels)
        loaded = loaded._replace(scaler=scaler, metadata={**meta, "levels": levels})
    return loaded


def likelihood_options(metadata: dict[str, Any]) -> dict[str, Any]:
    """Options of the PF-ODE likelihood a loaded model asks for (e.g. log-SNR time)."""
    return dict(metadata.get("likelihood_options", {}))


def check_on_data(args: argparse.Namespace, model: Any, x: torch.Tensor, rank: int = 0) -> None:
    """For ``--model``: one warning line if the output fits another prediction type far better.

    Runs ``check_predicts`` on the first 64 points of ``x`` (model units).
    """
    import sys
    import warnings

    from ..parameterization import PREDICTS
    from ..parameterization.pretrained import PredictionTypeWarning, check_predicts

    if not getattr(args, "model", None) or model.predicts not in PREDICTS:
        return
    gen = torch.Generator().manual_seed(args.seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PredictionTypeWarning)
        check_predicts(model, x[:64].to(torch.float64), generator=gen)
    for w in caught if rank == 0 else []:
        sys.stderr.write(f"scoresde {args.command}: warning: {w.message}\n")
