"""Checkpoints that never lose work and never run code.

* Contents: state dicts only (model, EMA, optimizer, LR schedule), the step, every RNG state
  (torch CPU/CUDA, numpy, Python), the model config (network and SDE, see :func:`model_config`),
  the data scaling and the caller's metadata, as plain tensors, numbers, strings, lists and dicts.
* Writing is atomic: the bytes go to a temporary file in the same folder, are flushed and
  ``fsync``-ed, then ``os.replace`` renames it over the old file (atomic on POSIX), and the folder
  is ``fsync``-ed. A crash at any point leaves either the old or the new checkpoint.
* Every checkpoint carries ``sha256``, the :func:`content_hash` of everything else in it
  (tensors, counters, RNG states, the model config with its SDE and network settings, the
  scaler, the metadata); :func:`load_checkpoint` recomputes it and refuses a mismatch with
  "checkpoint is corrupt or was edited: ...". A checkpoint written before hashes existed (no
  ``sha256``) still loads, with an :class:`UnverifiedCheckpointWarning`: refusing it would strand
  every earlier run, and the hash guards against corruption and accidental edits, not against
  someone who rewrites the file on purpose (``weights_only`` guards against code).
* Reading uses ``torch.load(weights_only=True)``: a pickle that would build arbitrary objects (and
  so could run code) is refused before anything in it runs; truncated or foreign files raise
  :class:`CheckpointError` with a clear message.
"""

from __future__ import annotations

import hashlib
import pickle
import random
import warnings
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch

from scoresde.distributed.atomic import atomic_save_torch

if TYPE_CHECKING:
    from scoresde.data import Scaler
    from scoresde.parameterization import ScoreModel

__all__ = [
    "FORMAT",
    "CheckpointError",
    "get_rng_state",
    "load_checkpoint",
    "save_checkpoint",
    "set_rng_state",
    "load_model",
    "HASH_KEY",
    "UnverifiedCheckpointWarning",
    "content_hash",
    "model_config",
    "model_from_config",
    "TrainedModel",
]

FORMAT = "scoresde-checkpoint-v2"  # v2: model_config instead of a run config
HASH_KEY = "sha256"  #: the key of the content hash in a checkpoint


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, truncated, foreign, corrupt, edited or unsafe."""


class UnverifiedCheckpointWarning(UserWarning):
    """A checkpoint written before content hashes: it loads, but corruption cannot be detected."""


def content_hash(state: dict[str, Any]) -> str:
    """SHA-256 (hex) of a checkpoint's contents, its ``sha256`` entry aside.

    Every tensor (dtype, shape and bytes) and every stored value (the step, RNG states, the
    model config with its network and SDE settings, the scaler, the metadata) is fed in a fixed
    order with type tags, so a flipped bit or an edited value changes the hash. Lists and tuples
    hash alike (a reader may return either).
    """
    h = hashlib.sha256()
    _feed(h, {k: v for k, v in state.items() if k != HASH_KEY})
    return h.hexdigest()


def _feed(h: Any, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous().reshape(-1)
        h.update(f"T{t.dtype}{tuple(value.shape)}:".encode())
        if t.numel():
            h.update(t.view(torch.uint8).numpy())
    elif isinstance(value, dict):
        h.update(f"D{len(value)}:".encode())
        for k in sorted(value, key=lambda k: (type(k).__name__, str(k))):
            _feed(h, k)
            _feed(h, value[k])
    elif isinstance(value, (list, tuple)):
        h.update(f"L{len(value)}:".encode())
        for v in value:
            _feed(h, v)
    elif isinstance(value, (str, bytes)):
        data = value.encode() if isinstance(value, str) else value
        h.update(f"{type(value).__name__[0]}{len(data)}:".encode())
        h.update(data)
    else:  # numbers, booleans, None, torch.Size ...: their exact repr
        h.update(f"{type(value).__name__}:{value!r};".encode())


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Atomically write ``state`` (plain containers of tensors/numbers/strings) to ``path``.

    The file carries ``sha256``, the :func:`content_hash` of everything else in it, which
    :func:`load_checkpoint` verifies.

    Raises:
        WriteError: If the disk is full or the write fails (the previous checkpoint is kept).
    """
    payload = {
        "format": FORMAT,
        **{k: v for k, v in state.items() if k not in ("format", HASH_KEY)},
    }
    payload[HASH_KEY] = content_hash(payload)
    atomic_save_torch(Path(path), payload)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        CheckpointError: If the file is truncated/corrupt, holds objects other than tensors and
            plain containers (refused without executing anything), or is not a scoresde checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; anything else is foreign
        with path.open("rb") as fh:
            head = fh.read(8)
        raise CheckpointError(
            f"{path} is not a scoresde checkpoint: expected a zip archive written by torch.save, "
            f"received {path.stat().st_size} bytes starting with {head!r} (empty, truncated or "
            "corrupt, or another format)"
        )
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"refusing to load {path}: expected only tensors and plain containers, received "
            "other objects (torch.load(weights_only=True) refused them: loading them could run "
            "code)"
        ) from err
    except Exception as err:  # noqa: BLE001 (any failure of the reader is a corrupt file)
        raise CheckpointError(
            f"{path} is truncated or corrupt ({type(err).__name__}: {err})"
        ) from err
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        found = obj.get("format") if isinstance(obj, dict) else type(obj).__name__
        raise CheckpointError(
            f"{path} is not a scoresde checkpoint: expected format {FORMAT!r}, found {found!r}"
        )
    stored = obj.pop(HASH_KEY, None)
    if stored is None:
        warnings.warn(
            f"{path} has no content hash (written before scoresde checked them), so corruption "
            "cannot be detected; it is loaded as it is, and the next save adds the hash",
            UnverifiedCheckpointWarning,
            stacklevel=2,
        )
        return obj
    actual = content_hash(obj)
    if actual != stored:
        raise CheckpointError(
            f"checkpoint is corrupt or was edited: {path} (expected contents with the sha256 the "
            f"file records, {str(stored)[:16]}..., received contents hashing to {actual[:16]}...);"
            " use an intact copy or retrain"
        )
    return obj


def get_rng_state() -> dict[str, Any]:
    """Every global RNG state as weights-only-loadable values."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002 (global state)
    mt_keys = torch.from_numpy(np.asarray(keys).astype(np.int64))
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, mt_keys, pos, has_gauss, cached],
        "python": list(_to_lists(random.getstate())),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the states saved by :func:`get_rng_state`."""
    torch.set_rng_state(state["torch"].cpu())
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))  # noqa: NPY002
    random.setstate(_to_tuples(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def _to_lists(x: Any) -> Any:
    return [_to_lists(v) for v in x] if isinstance(x, tuple) else x


def _to_tuples(x: Any) -> Any:
    return tuple(_to_tuples(v) for v in x) if isinstance(x, list) else x


def model_config(model: ScoreModel, class_names: list[str] | None = None) -> dict[str, Any] | None:
    """What :func:`model_from_config` needs to rebuild ``model`` (weights aside), or ``None``.

    ``{"net": net.config(), "sde": sde.config(), "predicts", "time_input", "sigma_data",
    "x0_clip"}``, plus for a class-conditional model its label set ``"labels": {"num_classes",
    "names"}`` (``class_names``, else ``model.class_names``, else ``None``): plain JSON, so a checkpoint rebuilds its model through the network and SDE
    registries (:func:`scoresde.nets.net_from_config`, :func:`scoresde.sde.sde_from_config`) and
    never unpickles code. ``None`` for a network outside ``scoresde.nets.NETS`` (no ``config()``),
    an SDE that ``sde_from_config`` cannot rebuild (e.g. a custom schedule), a learned schedule
    (an ``nn.Module``) not registered on the model as ``model.schedule`` (its weights would be
    missing from the state dict) or a callable ``time_input``: such a model is rebuilt by its
    owner, who then loads the weights. :func:`model_from_config` registers a learned schedule
    as ``model.schedule``, so the state dict restores it.
    """
    from scoresde.sde import sde_from_config

    config = getattr(model.net, "config", None)
    if not callable(config) or callable(model.time_input):
        return None
    schedule = model.sde.schedule
    if isinstance(schedule, torch.nn.Module) and getattr(model, "schedule", None) is not schedule:
        return None  # a learned schedule outside the model's state dict cannot be restored
    try:
        sde_from_config(model.sde.config())
    except (ValueError, TypeError, KeyError):
        return None
    out = {
        "net": config(),
        "sde": model.sde.config(),
        "predicts": model.predicts,
        "time_input": model.time_input,
        "sigma_data": model.sigma_data,
        "x0_clip": model.x0_clip,
    }
    if model.num_classes is not None:  # unconditional configs keep exactly their keys
        names = class_names if class_names is not None else model.class_names
        out["labels"] = {"num_classes": model.num_classes, "names": names}
    return out


def model_from_config(config: dict[str, Any]) -> ScoreModel:
    """Rebuild a :class:`~scoresde.parameterization.ScoreModel` from :func:`model_config`.

    A conditional model's label set (``"labels"``) must match its network's ``num_classes``;
    its class names become ``model.class_names``.

    Raises:
        ValueError: If ``config`` lacks a key, names an unknown network or SDE, or holds a
            label set that disagrees with the network.
    """
    from scoresde.nets import net_from_config
    from scoresde.parameterization import ScoreModel
    from scoresde.sde import sde_from_config

    keys = {"net", "sde", "predicts", "time_input", "sigma_data", "x0_clip"}
    if not isinstance(config, dict) or set(config) - {"labels"} != keys:
        got = sorted(config) if isinstance(config, dict) else type(config).__name__
        raise ValueError(f"model config: expected the keys {sorted(keys)}, received {got}")
    model = ScoreModel(
        net_from_config(config["net"]),
        sde_from_config(config["sde"]),
        predicts=config["predicts"],
        time_input=config["time_input"],
        sigma_data=config["sigma_data"],
        x0_clip=config["x0_clip"],
    )
    if isinstance(model.sde.schedule, torch.nn.Module):  # learned: its weights are in the state
        model.add_module("schedule", model.sde.schedule)
    model.class_names = _label_names(config.get("labels"), model.num_classes)
    return model


def _label_names(labels: Any, num_classes: int | None) -> list[str] | None:
    """The class names of a model config's label set, checked against the network."""
    if labels is None and num_classes is None:
        return None
    if not isinstance(labels, dict) or labels.get("num_classes") != num_classes:
        stored = labels.get("num_classes") if isinstance(labels, dict) else labels
        raise ValueError(
            f"model config: expected a label set with num_classes = {num_classes} (the "
            f"network's), received {stored!r}"
        )
    names = labels.get("names")
    if names is not None and (
        not isinstance(names, list)
        or len(names) != num_classes
        or not all(isinstance(n, str) for n in names)
    ):
        raise ValueError(
            f"model config: expected {num_classes} class names (strings) or null, received {names!r}"
        )
    return names


class TrainedModel(NamedTuple):
    """What :func:`load_model` returns."""

    model: ScoreModel  #: the score model in eval mode
    scaler: Scaler  #: data units -> model units
    shape: tuple[int, ...]  #: event shape of the training data
    metadata: dict[str, Any]  #: what the caller passed to ``train(metadata=...)``


def load_model(
    path: str | Path, use_ema: bool = True, device: str | torch.device = "cpu"
) -> TrainedModel:
    """Rebuild the trained :class:`~scoresde.parameterization.ScoreModel` from a checkpoint.

    The network and the SDE are rebuilt from the checkpoint's ``model_config`` through their
    registries (no run config, no code from the file), then the weights are loaded.

    Args:
        path: A checkpoint written by :func:`scoresde.training.train`.
        use_ema: Load the EMA weights (what samplers should use) instead of the raw weights.
        device: Where to put the model.

    Returns:
        ``(model, scaler, shape, metadata)`` as a :class:`TrainedModel`.

    Raises:
        CheckpointError: As :func:`load_checkpoint`, or if the checkpoint holds no model config
            (a network outside ``scoresde.nets.NETS``: rebuild it and load ``state["ema"]``).
    """
    from scoresde.data import Scaler

    state = load_checkpoint(path, map_location=device)
    if state.get("model_config") is None:
        raise CheckpointError(
            f"{path} holds no model config (its network is not in scoresde.nets.NETS): rebuild "
            "the ScoreModel yourself and load the weights of load_checkpoint(path)['ema']"
        )
    need = ["ema" if use_ema else "model", "scaler", "data_shape"]
    missing = [k for k in need if not isinstance(state.get(k), (dict, list))]
    if missing:
        raise CheckpointError(
            f"{path}: expected a checkpoint with {need}, received one without {missing}"
        )
    try:
        model = model_from_config(state["model_config"])
    except (ValueError, TypeError, KeyError) as err:
        raise CheckpointError(
            f"{path}: expected a model config scoresde can rebuild, received one that fails ({err})"
        ) from err
    if use_ema:
        weights = {
            k.removeprefix("module."): v for k, v in state["ema"].items() if k.startswith("module.")
        }
    else:
        weights = state["model"]
    try:
        model.load_state_dict(weights)
    except RuntimeError as err:
        first = str(err).splitlines()[-1].strip()
        raise CheckpointError(
            f"{path}: expected the weights of the model its config describes, received "
            f"mismatching ones ({first})"
        ) from err
    shape = tuple(state["data_shape"])
    meta = state.get("metadata") or {}
    return TrainedModel(model.to(device).eval(), Scaler.from_dict(state["scaler"]), shape, meta)
