"""A k-diffusion / EDM denoiser checkpoint as a score model on the VE SDE of its noise range.

k-diffusion (and EDM, Karras et al. 2022, Table 1) train an inner network F inside the
preconditioned denoiser

    D(x; sigma) = c_skip x + c_out F(c_in x, c_noise),
    c_skip = sd^2 / (sigma^2 + sd^2),  c_out = sigma sd / sqrt(sigma^2 + sd^2),
    c_in = 1 / sqrt(sigma^2 + sd^2),

with sd = ``sigma_data`` and c_noise = sigma (k-diffusion's inner models take sigma) or
log(sigma) / 4 (EDM's ``EDMPrecond``). This is :class:`~scoresde.parameterization.ScoreModel`'s
``predicts='edm'`` (one home for the formula) on the VE SDE x_t = x_0 + sigma_t eps
(alpha_t = 1, so the noise level is sigma_t itself): ``VESDE(sigma_min, sigma_max)`` with
``eps`` at sigma_t = sigma_min, so that likelihoods integrate over the model's noise range
[sigma_min, sigma_max] as k-diffusion's ``log_likelihood`` does. The score is Tweedie's
(D(x; sigma_t) - x) / sigma_t^2.

The checkpoint: a folder with k-diffusion's ``config.json`` (section ``model``: ``type``,
``input_channels``, ``input_size``, ``sigma_data``, ``sigma_min``, ``sigma_max``) and one
weights file (k-diffusion's ``.pth`` with ``model_ema``/``model`` state dicts of F, or a
``.safetensors`` of F), or that weights file itself beside its ``config.json``. F is a scoresde
network (``type: "scoresde"`` with ``net``: its ``config()``), or any module you build and pass
as ``net=`` (k-diffusion's ``image_v1`` needs its own code; its weights load into it here).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ...sde import VESDE, LinearSDE
from ..score_model import ScoreModel
from .files import Pretrained, build_net, image_scaler, load_state, read_json, read_weights

__all__ = ["LogSigmaQuarter", "from_kdiffusion", "load_kdiffusion", "ve_sde_over"]

#: ``c_noise`` conventions: what the inner network receives as its noise input.
C_NOISE = ("sigma", "log_sigma_4")


class LogSigmaQuarter:
    """Time input c_noise = log(sigma_t / alpha_t) / 4 (EDM's preconditioning, Table 1)."""

    def __call__(self, sde: LinearSDE, t: Tensor) -> Tensor:
        """c_noise at times ``t`` of shape ``(batch,)``."""
        alpha, sigma = sde.marginal(t)
        return torch.log(sigma / alpha) / 4

    def __repr__(self) -> str:
        return "LogSigmaQuarter()"


def ve_sde_over(sigma_min: float, sigma_max: float) -> VESDE:
    """``VESDE(sigma_min, sigma_max)`` whose ``eps`` is the time where sigma_t = sigma_min.

    sigma_t^2 = sigma(t)^2 - sigma_min^2 with sigma(t) = sigma_min (sigma_max / sigma_min)^t,
    so sigma_t = sigma_min at t = log(2) / (2 log(sigma_max / sigma_min)).
    """
    if not (0 < sigma_min < sigma_max < math.inf):
        raise ValueError(
            f"expected 0 < sigma_min < sigma_max, received sigma_min={sigma_min!r}, "
            f"sigma_max={sigma_max!r}"
        )
    eps = math.log(2) / (2 * math.log(sigma_max / sigma_min))
    return VESDE(sigma_min=sigma_min, sigma_max=sigma_max, eps=eps)


def from_kdiffusion(
    inner: nn.Module,
    sigma_data: float,
    sigma_min: float,
    sigma_max: float,
    c_noise: str = "sigma",
) -> ScoreModel:
    """The preconditioned denoiser around ``inner`` as a :class:`ScoreModel` (module docstring).

    Args:
        inner: F, called as ``inner(c_in x, c_noise)``.
        sigma_data: sd of the preconditioning.
        sigma_min: Smallest noise level (the SDE's ``eps`` sits there).
        sigma_max: Largest noise level (the prior's).
        c_noise: 'sigma' (k-diffusion) or 'log_sigma_4' (EDM).
    """
    if c_noise not in C_NOISE:
        raise ValueError(f"k-diffusion: expected c_noise in {C_NOISE}, received {c_noise!r}")
    time_input: Any = "sigma" if c_noise == "sigma" else LogSigmaQuarter()
    sde = ve_sde_over(float(sigma_min), float(sigma_max))
    return ScoreModel(inner, sde, predicts="edm", time_input=time_input, sigma_data=sigma_data)


def _files(path: Path) -> tuple[Path, Path]:
    """(config.json, weights file) of a checkpoint folder or a weights file."""
    if path.is_file():
        return path.parent / "config.json", path
    if not path.is_dir():
        raise FileNotFoundError(
            f"k-diffusion: expected a folder or a weights file, received {path}"
        )
    found = sorted(p for p in path.iterdir() if p.suffix in (".pth", ".pt", ".safetensors"))
    if len(found) != 1:
        raise ValueError(
            f"k-diffusion: expected one weights file (.pth/.pt/.safetensors) in {path}, found "
            f"{[p.name for p in found] or 'none'}; pass the file itself"
        )
    return path / "config.json", found[0]


def _config(config_file: Path, weights_file: Path, state: dict[str, Any]) -> dict[str, Any]:
    """config.json if present, else the config k-diffusion stores in the checkpoint itself.

    k-diffusion's training checkpoints (``.pth``) hold it under ``'config'``; its inference
    exports (``.safetensors``) in the file's metadata under ``'config'`` (a JSON string).
    """
    if config_file.is_file():
        return read_json(config_file, "k-diffusion config")
    if isinstance(state.get("config"), dict):
        return dict(state["config"])
    if weights_file.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(weights_file), framework="pt") as fh:
            text = (fh.metadata() or {}).get("config")
        if text:
            try:
                obj = json.loads(text)
            except ValueError:
                obj = None
            if isinstance(obj, dict):
                return obj
    raise FileNotFoundError(
        f"k-diffusion: expected {config_file}, or a config inside {weights_file.name}; found neither"
    )


def load_kdiffusion(
    path: str | Path, *, net: nn.Module | None = None, use_ema: bool = True, levels: int = 256
) -> Pretrained:
    """Load a k-diffusion checkpoint (see the module docstring) as a score model.

    Args:
        path: The checkpoint folder, or its weights file (``config.json`` beside it).
        net: The inner network F to load the weights into; default: built from the config
            (``model.type == "scoresde"``).
        use_ema: Load ``model_ema`` (k-diffusion's sampling weights) rather than ``model``.
        levels: Levels of the image data (level k -> 2k / (L - 1) - 1, k-diffusion's
            ``Normalize(0.5, 0.5)`` of ``ToTensor``).

    Raises:
        FileNotFoundError: For a missing config or weights file.
        ValueError: For a config without the noise range, an unknown network type, or weights
            that do not fit the network.
    """
    config_file, weights_file = _files(Path(path))
    state = read_weights(weights_file)
    cfg = _config(config_file, weights_file, state)
    m = cfg.get("model")
    need = ("input_channels", "input_size", "sigma_min", "sigma_max")
    if not isinstance(m, dict) or any(k not in m for k in need):
        have = sorted(m) if isinstance(m, dict) else None
        raise ValueError(
            f"k-diffusion config {config_file}: expected a 'model' section with {list(need)}, "
            f"received {have}"
        )
    if net is None:
        if m.get("type") != "scoresde":
            raise ValueError(
                f"k-diffusion: model type {m.get('type')!r} is k-diffusion's own network; build "
                "it with k-diffusion's code and pass it as net= (its weights load here), or use "
                "type 'scoresde' with a scoresde network config under 'net'"
            )
        net = build_net(m.get("net"), config_file)
    key = "model_ema" if use_ema else "model"
    if isinstance(state.get(key), dict):
        state = state[key]
    elif key in state or "model" in state:
        raise ValueError(f"{weights_file}: expected a state dict under {key!r}")
    load_state(net, state, weights_file)
    size = m["input_size"]
    H, W = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    model = from_kdiffusion(
        net,
        float(m.get("sigma_data", 1.0)),
        float(m["sigma_min"]),
        float(m["sigma_max"]),
        c_noise=str(m.get("c_noise", "sigma")),
    ).eval()
    metadata = {
        "format": "kdiffusion",
        "path": str(path),
        "data_range": [-1.0, 1.0],
        "levels": levels,
        "levels_at": "endpoints",
        "sigma_data": float(m.get("sigma_data", 1.0)),
        "sigma_min": float(m["sigma_min"]),
        "sigma_max": float(m["sigma_max"]),
    }
    shape = (int(m["input_channels"]), H, W)
    return Pretrained(model, image_scaler((-1.0, 1.0), levels), shape, metadata)
