"""Reading others' model files safely, and the data convention a loaded model carries.

Nothing here runs code from a file: configs are JSON, weights are ``.safetensors`` (through the
``safetensors`` package) or PyTorch files read with ``torch.load(weights_only=True)``, which
refuses any pickle that would build objects other than tensors and plain containers.

Every loader returns a :class:`Pretrained`: the :class:`~scoresde.parameterization.ScoreModel`
(which carries its exact SDE), the :class:`~scoresde.data.Scaler` from data units (integer
levels 0..L-1 for images) to the model's units, the event shape and a metadata dict that states
the model's data convention (``data_range``, ``levels``, ``levels_at``), read by
:func:`dequantization_range`.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from ...data import Scaler
    from ..score_model import ScoreModel

__all__ = [
    "Pretrained",
    "build_net",
    "dequantization_range",
    "image_scaler",
    "load_state",
    "read_json",
    "read_weights",
]

#: Weight-file suffixes read by :func:`read_weights`.
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")


class Pretrained(NamedTuple):
    """A loaded model: the fields of :class:`~scoresde.training.TrainedModel`, so the CLI treats both alike."""

    model: ScoreModel  #: the score model in eval mode (its ``sde`` is the exact SDE)
    scaler: Scaler  #: data units -> model units
    shape: tuple[int, ...]  #: event shape, e.g. ``(C, H, W)``
    metadata: dict[str, Any]  #: format, path and the data convention (see module docstring)


def read_json(path: Path, what: str) -> dict[str, Any]:
    """A JSON object from ``path``; ``what`` names the file in errors."""
    if not path.is_file():
        raise FileNotFoundError(f"{what}: expected the file {path}, which does not exist")
    try:
        obj = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(
            f"{what}: expected JSON in {path}, received unreadable text ({err})"
        ) from None
    if not isinstance(obj, dict):
        raise ValueError(f"{what}: expected a JSON object in {path}, received {type(obj).__name__}")
    return obj


def read_weights(path: Path) -> dict[str, Any]:
    """A state dict (or a dict of plain containers) from a weights file, never running code.

    Raises:
        FileNotFoundError: If ``path`` is missing.
        ValueError: For an unknown suffix, or a pickle holding objects other than tensors and
            plain containers (refused before anything in it runs).
        ImportError: For ``.safetensors`` without the ``safetensors`` package.
    """
    if not path.is_file():
        raise FileNotFoundError(f"weights: expected the file {path}, which does not exist")
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError as err:
            raise ImportError(
                f"reading {path.name} needs the safetensors package: pip install safetensors"
            ) from err
        return dict(load_file(str(path), device="cpu"))
    if path.suffix not in WEIGHT_SUFFIXES:
        raise ValueError(
            f"weights: expected a file ending in {', '.join(WEIGHT_SUFFIXES)}, received {path.name}"
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"refusing to load {path}: it holds objects other than tensors and plain containers "
            f"(loading it could run code). Details: {str(err).splitlines()[0]}"
        ) from None
    except Exception as err:  # noqa: BLE001 (any failure of the reader is a corrupt file)
        raise ValueError(f"{path} is truncated or corrupt ({type(err).__name__}: {err})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"weights: expected a dict in {path}, received {type(obj).__name__}")
    return obj


def load_state(module: torch.nn.Module, state: dict[str, Tensor], source: Path) -> None:
    """``module.load_state_dict(state)`` (strict) with a one-line error naming the file."""
    try:
        module.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).splitlines()[-1].strip()
        raise ValueError(
            f"{source}: expected the weights of the network its config describes, received "
            f"mismatching ones ({first})"
        ) from None


def build_net(spec: Any, source: Path) -> nn.Module:
    """A scoresde network from its ``config()`` dict, with errors naming ``source``."""
    from ...nets import net_from_config

    try:
        return net_from_config(spec)
    except (ValueError, TypeError) as err:
        raise ValueError(
            f"{source}: expected a scoresde network config, received {spec!r} ({err})"
        ) from None


def image_scaler(data_range: tuple[float, float], levels: int) -> Scaler:
    """Scaler sending integer levels k in 0..L-1 to lo + (hi - lo) k / (L - 1) (the end points).

    This is how diffusers, k-diffusion and score_sde feed 8-bit images: k / 127.5 - 1 in
    [-1, 1] (or k / 255 in [0, 1]).
    """
    from ...data import Scaler

    lo, hi = (float(v) for v in data_range)
    scale = (levels - 1) / (hi - lo)
    return Scaler(shift=-lo * scale, scale=scale)


def dequantization_range(metadata: dict[str, Any], levels: int) -> tuple[float, float]:
    """The interval [lo, hi] whose ``levels`` equal cells dequantized bits/dim uses for a model.

    * no ``data_range`` in ``metadata`` (scoresde's own checkpoints): (-1, 1), the cells the
      model was trained on (level k fills [-1 + 2k / L, -1 + 2 (k + 1) / L)).
    * ``levels_at == "cells"`` (score_sde's evaluation): ``data_range`` itself, so level k fills
      [lo + (hi - lo) k / L, lo + (hi - lo) (k + 1) / L) (Song et al. 2021, App. D.2).
    * ``levels_at == "endpoints"`` (diffusers, k-diffusion): the model saw level k at
      lo + (hi - lo) k / (L - 1), so each cell is centred there, of width (hi - lo) / (L - 1):
      the range grows by half a cell at each end.
    """
    if "data_range" not in metadata:
        return (-1.0, 1.0)
    lo, hi = (float(v) for v in metadata["data_range"])
    if metadata.get("levels_at") == "cells":
        return (lo, hi)
    half = (hi - lo) / (2 * (levels - 1))
    return (lo - half, hi + half)
