"""A score_sde (Song et al. 2021) checkpoint as a score model on its exact SDE.

score_sde's ``get_score_fn`` fixes what its networks see and return; here each becomes a
:class:`~scoresde.parameterization.ScoreModel` (one home for every conversion):

==========================  ===========================  =========================================
``training.sde``            network input (label)        output -> score
==========================  ===========================  =========================================
vpsde, continuous           999 t                        eps: score = -out / sigma_t (Eq. 29)
subvpsde, continuous        999 t                        eps: score = -out / sigma_t (sub-VP sigma)
vpsde, discrete (DDPM)      step n (DDPM chain, N steps)  eps, on the chain's own SDE (exact at knots)
vesde, continuous           sigma_t                      the score itself
==========================  ===========================  =========================================

The SDEs: ``VPSDE``/``SubVPSDE(beta_min, beta_max)`` (linear beta(t), Eqs. 11 and 17) with
score_sde's ``eps`` = 1e-5; for discrete VP, the DDPM chain with betas
linspace(beta_min / N, beta_max / N, N) (:func:`~scoresde.parameterization.pretrained.
discrete_vp_sde`); for VE, ``VESDE(sigma_min, sigma_max)`` with ``eps`` where sigma_t = sigma_min
(the labels are the marginal noise std, as in training). Discrete VE (SMLD/NCSN labels) is not
read.

The checkpoint: a folder with ``config.json`` (score_sde's ``ml_collections`` config dumped by
``config.to_json()``: sections ``training``, ``model``, ``data``) and ``checkpoint.pth``
(``{'model', 'ema', 'step', ...}``: the ``model`` state dict with DataParallel's ``module.``
prefix, and EMA ``shadow_params`` in parameter order). Data: ``data.centered`` gives [-1, 1],
else [0, 1], with levels at k / 255 in training and score_sde's bits/dim cells
[k / 256, (k + 1) / 256) (its ``run_lib.evaluate``). The network is a scoresde network
(``model.name == "scoresde"`` with ``model.net``: its ``config()``) or any module passed as
``net=`` (score_sde's own NCSN++/DDPM++ need score_sde's code).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ...sde import VPSDE, LinearSDE, SubVPSDE
from ..score_model import ScoreModel
from .adapters import from_discrete_model
from .files import Pretrained, build_net, image_scaler, load_state, read_json, read_weights
from .kdiffusion import ve_sde_over

__all__ = ["Labels999", "from_score_sde", "load_score_sde"]

SDE_NAMES = ("vpsde", "subvpsde", "vesde")


class Labels999:
    """Time input 999 t: score_sde's label of continuous VP/sub-VP models."""

    def __call__(self, sde: LinearSDE, t: Tensor) -> Tensor:
        """The label 999 t for times ``t`` of shape ``(batch,)``."""
        return 999 * t

    def __repr__(self) -> str:
        return "Labels999()"


def _section(config: dict[str, Any], name: str) -> dict[str, Any]:
    sec = config.get(name, {})
    if not isinstance(sec, dict):
        raise ValueError(f"score_sde config: expected section {name!r} to be an object")
    return sec


def from_score_sde(net: nn.Module, config: dict[str, Any]) -> ScoreModel:
    """Wrap a score_sde network as a :class:`ScoreModel` on the SDE its config describes.

    Args:
        net: The network, called as ``net(x, label)`` (see the module docstring's table).
        config: score_sde's config as a dict (``training.sde``, ``training.continuous``,
            ``model.beta_min/beta_max/sigma_min/sigma_max/num_scales``).

    Raises:
        ValueError: For an unknown ``training.sde`` or discrete VE.
    """
    tr, m = _section(config, "training"), _section(config, "model")
    name, continuous = tr.get("sde"), bool(tr.get("continuous", True))
    if name not in SDE_NAMES:
        raise ValueError(
            f"score_sde config: expected training.sde in {SDE_NAMES}, received {name!r}"
        )
    b0, b1 = float(m.get("beta_min", 0.1)), float(m.get("beta_max", 20.0))
    if name == "vesde":
        if not continuous:
            raise ValueError(
                "score_sde config: discrete VE (SMLD/NCSN labels) is not supported; expected "
                "training.continuous = true for vesde"
            )
        sde = ve_sde_over(float(m.get("sigma_min", 0.01)), float(m.get("sigma_max", 50.0)))
        return ScoreModel(net, sde, predicts="score", time_input="sigma")
    if continuous:
        cls = VPSDE if name == "vpsde" else SubVPSDE
        return ScoreModel(net, cls(b0, b1, eps=1e-5), predicts="eps", time_input=Labels999())
    if name == "subvpsde":
        raise ValueError("score_sde config: discrete sub-VP does not exist; expected continuous")
    N = int(m.get("num_scales", 1000))
    betas = torch.linspace(b0 / N, b1 / N, N, dtype=torch.float64)
    return from_discrete_model(net, betas, "eps", quantize=True)


def _ema_into(net: nn.Module, ema: dict[str, Any], source: Path) -> None:
    """Copy score_sde's EMA ``shadow_params`` (trainable parameters, in order) into ``net``."""
    shadow = ema.get("shadow_params")
    params = [p for p in net.parameters() if p.requires_grad]
    if not isinstance(shadow, list) or len(shadow) != len(params):
        n = len(shadow) if isinstance(shadow, list) else None
        raise ValueError(
            f"{source}: expected ema.shadow_params with {len(params)} tensors (the network's "
            f"parameters), received {n}"
        )
    with torch.no_grad():
        for i, (p, s) in enumerate(zip(params, shadow, strict=True)):
            if tuple(p.shape) != tuple(s.shape):
                raise ValueError(
                    f"{source}: EMA parameter {i} has shape {tuple(s.shape)}, expected "
                    f"{tuple(p.shape)}"
                )
            p.copy_(s)


def load_score_sde(
    path: str | Path, *, net: nn.Module | None = None, use_ema: bool = True, levels: int = 256
) -> Pretrained:
    """Load a score_sde checkpoint folder (see the module docstring) as a score model.

    Args:
        path: Folder with ``config.json`` and ``checkpoint.pth`` (or a ``.pth`` file with
            ``config.json`` beside it).
        net: The network to load the weights into; default: built from ``model.net``
            (``model.name == "scoresde"``).
        use_ema: Load the EMA weights (what score_sde samples and evaluates with).
        levels: Levels of the image data.
    """
    path = Path(path)
    folder, ckpt = (path.parent, path) if path.is_file() else (path, path / "checkpoint.pth")
    config = read_json(folder / "config.json", "score_sde config")
    m, data = _section(config, "model"), _section(config, "data")
    if net is None:
        if m.get("name") != "scoresde":
            raise ValueError(
                f"score_sde: network {m.get('name')!r} is score_sde's own; build it with "
                "score_sde's code and pass it as net= (its weights load here), or use model.name "
                "'scoresde' with a scoresde network config under model.net"
            )
        net = build_net(m.get("net"), folder / "config.json")
    state = read_weights(ckpt)
    if not isinstance(state.get("model"), dict):
        raise ValueError(f"{ckpt}: expected score_sde's checkpoint with a 'model' state dict")
    load_state(net, {k.removeprefix("module."): v for k, v in state["model"].items()}, ckpt)
    if use_ema:
        if not isinstance(state.get("ema"), dict):
            raise ValueError(f"{ckpt}: expected an 'ema' entry (or pass use_ema=False)")
        _ema_into(net, state["ema"], ckpt)
    model = from_score_sde(net, config).eval()
    lo = -1.0 if data.get("centered", True) else 0.0
    size = int(data.get("image_size", 32))
    metadata = {
        "format": "score_sde",
        "path": str(path),
        "data_range": [lo, 1.0],
        "levels": levels,
        "levels_at": "cells",
        "sde": config["training"]["sde"],
        "continuous": bool(config["training"].get("continuous", True)),
        "step": int(state.get("step", 0)) if isinstance(state.get("step"), (int, Tensor)) else None,
    }
    if not metadata["continuous"]:  # the DDPM chain's beta(t) jumps at each knot
        metadata["likelihood_options"] = {"time_variable": "log_snr"}
    shape = (int(data.get("num_channels", 3)), size, size)
    return Pretrained(model, image_scaler((lo, 1.0), levels), shape, metadata)
