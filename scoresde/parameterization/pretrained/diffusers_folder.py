"""A diffusers folder (a ``UNet2DModel`` and its scheduler config) as a score model on its SDE.

The conversion (Ho et al. 2020; Song et al. 2021, Eq. 29):

* The scheduler's beta table (``beta_schedule`` 'linear', 'scaled_linear', 'squaredcos_cap_v2',
  'sigmoid', or ``trained_betas``; ``num_train_timesteps`` = N), computed as diffusers does (in
  float32), gives alpha_bar_n, and :func:`~scoresde.parameterization.pretrained.discrete_vp_sde`
  the VP SDE with alpha_{t_n}^2 = alpha_bar_n exactly at t_n = (n + 1) / N.
* The UNet is called as ``unet(x, n(t), class_labels).sample`` with the step
  n(t) = t N - 1 (:class:`~scoresde.parameterization.pretrained.DiscreteSteps`); its output is
  ``prediction_type`` 'epsilon' (eps), 'v_prediction' (v = alpha_t eps - sigma_t x0) or 'sample'
  (x0), and becomes the score by :func:`~scoresde.parameterization.convert`. With a learned
  variance (``variance_type`` 'learned'/'learned_range') the first C of the 2C output channels
  are the prediction.
* ``timestep_spacing``/``steps_offset`` only choose the sampler's steps at inference
  (:func:`inference_times` gives them as continuous times); ``clip_sample`` and ``thresholding``
  are sampler settings too: neither changes the model or its score.
* Data: images enter as k / 127.5 - 1 (levels at the end points of [-1, 1]).

Only local folders are read (no network); weights are read by
:func:`~scoresde.parameterization.pretrained.files.read_weights` (never running code). The
network class is looked up by name in the ``diffusers`` package (a ``ModelMixin``), or passed in.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .adapters import from_discrete_model
from .files import Pretrained, image_scaler, load_state, read_json, read_weights

__all__ = ["DiffusersNet", "inference_times", "load_diffusers", "scheduler_betas"]

#: diffusers ``prediction_type`` -> what the network predicts here.
PREDICTION_TYPES = {"epsilon": "eps", "v_prediction": "v", "sample": "x0"}
#: Schedulers whose training noise is the DDPM chain of their beta config.
SCHEDULERS = (
    "DDPMScheduler",
    "DDIMScheduler",
    "DPMSolverMultistepScheduler",
    "DPMSolverSinglestepScheduler",
    "PNDMScheduler",
    "UniPCMultistepScheduler",
    "DEISMultistepScheduler",
    "EulerDiscreteScheduler",
    "EulerAncestralDiscreteScheduler",
    "HeunDiscreteScheduler",
    "LMSDiscreteScheduler",
)
_WEIGHTS = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")


def scheduler_betas(config: dict[str, Any]) -> Tensor:
    """The beta table of a diffusers scheduler config, as diffusers computes it (float32).

    Raises:
        ValueError: For an unknown ``beta_schedule``, or ``rescale_betas_zero_snr`` (alpha_bar
            reaches 0 at the last step, which no VP SDE with a Gaussian prior has).
    """
    N = int(config.get("num_train_timesteps", 1000))
    start, end = float(config.get("beta_start", 1e-4)), float(config.get("beta_end", 0.02))
    kind = config.get("beta_schedule", "linear")
    if config.get("rescale_betas_zero_snr"):
        raise ValueError(
            "scheduler config: rescale_betas_zero_snr=True makes alpha_bar = 0 at the last step "
            "(infinite noise); expected a finite-SNR schedule"
        )
    if config.get("trained_betas") is not None:
        return torch.tensor(config["trained_betas"], dtype=torch.float32)
    if kind == "linear":
        return torch.linspace(start, end, N, dtype=torch.float32)
    if kind == "scaled_linear":
        return torch.linspace(start**0.5, end**0.5, N, dtype=torch.float32) ** 2
    if kind == "squaredcos_cap_v2":  # Nichol & Dhariwal (2021), Eq. 17, betas capped at 0.999

        def abar(s: float) -> float:
            return math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2

        b = [min(1 - abar((i + 1) / N) / abar(i / N), 0.999) for i in range(N)]
        return torch.tensor(b, dtype=torch.float32)
    if kind == "sigmoid":
        return torch.sigmoid(torch.linspace(-6, 6, N)) * (end - start) + start
    raise ValueError(
        f"scheduler config: unknown beta_schedule {kind!r}; expected one of linear, "
        "scaled_linear, squaredcos_cap_v2, sigmoid (or trained_betas)"
    )


def inference_times(config: dict[str, Any], num_inference_steps: int) -> Tensor:
    """The steps diffusers' ``set_timesteps`` picks, as continuous times t_n = (n + 1) / N.

    ``timestep_spacing`` 'linspace', 'leading' (plus ``steps_offset``) or 'trailing', as in
    diffusers' DDIM/DDPM schedulers; decreasing, float64. Pass it as a sampler grid to step
    through the same noise levels as diffusers (its last step to t = 0 is the sampler's
    ``denoise`` option here).
    """
    import numpy as np

    N, n = int(config.get("num_train_timesteps", 1000)), int(num_inference_steps)
    if not 1 <= n <= N:
        raise ValueError(f"inference_times: expected 1 <= steps <= {N}, received {n}")
    spacing = config.get("timestep_spacing", "leading")
    if spacing == "linspace":
        steps = np.linspace(0, N - 1, n).round()[::-1].astype(np.int64)
    elif spacing == "leading":
        steps = (np.arange(0, n) * (N // n)).round()[::-1].astype(np.int64)
        steps = steps + int(config.get("steps_offset", 0))
    elif spacing == "trailing":
        steps = np.round(np.arange(N, 0, -N / n)).astype(np.int64) - 1
    else:
        raise ValueError(
            f"scheduler config: unknown timestep_spacing {spacing!r}; expected linspace, "
            "leading or trailing"
        )
    return (torch.as_tensor(steps.copy(), dtype=torch.float64) + 1) / N


class DiffusersNet(nn.Module):
    """``net(x, n)`` = the first C channels of ``unet(x, n, class_labels=...).sample``.

    Args:
        unet: A diffusers ``ModelMixin`` called as ``unet(x, timestep, class_labels=...)``.
        channels: C, the channels of x (the output may hold 2C with a learned variance).
        class_label: The class every call is conditioned on, or None (unconditional).
    """

    def __init__(self, unet: nn.Module, channels: int, class_label: int | None = None) -> None:
        super().__init__()
        self.unet, self.channels, self.class_label = unet, int(channels), class_label

    def forward(self, x: Tensor, n: Tensor) -> Tensor:
        """The prediction at ``x`` of shape ``(batch, C, H, W)`` and steps ``n`` ``(batch,)``."""
        kwargs: dict[str, Any] = {}
        if self.class_label is not None:
            kwargs["class_labels"] = torch.full(
                (x.shape[0],), self.class_label, dtype=torch.long, device=x.device
            )
        out = self.unet(x, n, **kwargs)
        out = out.sample if hasattr(out, "sample") else out
        return out[:, : self.channels]


def _folders(path: Path) -> tuple[Path, Path]:
    """(model folder, scheduler config file) of a pipeline folder or a single-model folder."""
    if not path.is_dir():
        raise FileNotFoundError(f"diffusers: expected a folder, received {path}")
    if (path / "unet" / "config.json").is_file():
        model_dir = path / "unet"
    elif (path / "config.json").is_file():
        model_dir = path
    else:
        raise FileNotFoundError(
            f"diffusers: expected {path}/unet/config.json (a pipeline) or {path}/config.json "
            "(a model saved with save_pretrained); found neither"
        )
    for sched in (path / "scheduler" / "scheduler_config.json", path / "scheduler_config.json"):
        if sched.is_file():
            return model_dir, sched
    raise FileNotFoundError(
        f"diffusers: expected a scheduler config ({path}/scheduler/scheduler_config.json or "
        f"{path}/scheduler_config.json); without it the noise schedule is unknown"
    )


def _weights(model_dir: Path) -> dict[str, Tensor]:
    for name in _WEIGHTS:
        if (model_dir / name).is_file():
            return read_weights(model_dir / name)
    index = model_dir / f"{_WEIGHTS[0]}.index.json"
    if index.is_file():  # sharded safetensors
        state: dict[str, Tensor] = {}
        for shard in sorted(set(read_json(index, "weights index")["weight_map"].values())):
            state.update(read_weights(model_dir / shard))
        return state
    raise FileNotFoundError(f"diffusers: expected weights {' or '.join(_WEIGHTS)} in {model_dir}")


def _model_class(config: dict[str, Any], model_cls: type | None) -> Any:
    if model_cls is not None:
        return model_cls
    name = config.get("_class_name")
    try:
        import diffusers
    except ImportError as err:
        raise ImportError(
            "loading a diffusers folder needs diffusers: pip install 'scoresde[diffusers]'"
        ) from err
    cls = getattr(diffusers, str(name), None)
    if not (isinstance(cls, type) and issubclass(cls, diffusers.ModelMixin)):
        raise ValueError(
            f"diffusers: expected _class_name to name a diffusers ModelMixin (e.g. UNet2DModel), "
            f"received {name!r}; pass model_cls= for your own class"
        )
    return cls


def load_diffusers(
    path: str | Path,
    *,
    model_cls: type | None = None,
    class_label: int | None = None,
    quantize: bool = False,
    levels: int = 256,
) -> Pretrained:
    """Load a diffusers folder as a :class:`~scoresde.parameterization.ScoreModel` on its VP SDE.

    Args:
        path: A pipeline folder (``unet/`` and ``scheduler/``) or a model folder
            (``config.json``, weights, ``scheduler_config.json``), local.
        model_cls: The network class (``from_config(dict)``), if not the diffusers class the
            config's ``_class_name`` names.
        class_label: The class to condition on, required if the UNet takes class labels.
        quantize: Feed the UNet integer steps (rounded n(t)); default: fractional steps, which
            diffusers' sinusoidal time embedding accepts and which keep the score continuous
            in t (adaptive ODE solvers need that).
        levels: Levels of the image data (for the scaler: level k -> 2k / (L - 1) - 1).

    Returns:
        A :class:`~scoresde.parameterization.pretrained.Pretrained` (model in eval mode).

    Raises:
        FileNotFoundError: For a missing config, scheduler config or weights.
        ValueError: For an unknown prediction_type / beta_schedule / scheduler, a class label
            missing or not accepted, or weights that do not fit the config.
    """
    model_dir, sched_file = _folders(Path(path))
    config = read_json(model_dir / "config.json", "diffusers model config")
    sched = read_json(sched_file, "diffusers scheduler config")
    cls_name = sched.get("_class_name", "DDPMScheduler")
    if cls_name not in SCHEDULERS:
        raise ValueError(
            f"diffusers: expected a scheduler on the DDPM chain ({', '.join(SCHEDULERS)}), "
            f"received {cls_name!r}"
        )
    kind = sched.get("prediction_type", "epsilon")
    if kind not in PREDICTION_TYPES:
        raise ValueError(
            f"diffusers: unknown prediction_type {kind!r}; expected one of "
            f"{', '.join(PREDICTION_TYPES)}"
        )
    cls = _model_class(config, model_cls)
    unet = cls.from_config(config)
    load_state(unet, _weights(model_dir), model_dir)
    C = int(config.get("in_channels", 3))
    size = config.get("sample_size", 32)
    H, W = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    takes_labels = config.get("num_class_embeds") is not None or config.get("class_embed_type")
    if takes_labels and class_label is None:
        raise ValueError(
            "diffusers: this UNet is class-conditional (num_class_embeds/class_embed_type); "
            "expected class_label=, received none"
        )
    if class_label is not None and not takes_labels:
        raise ValueError(f"diffusers: this UNet takes no class labels, received {class_label}")
    learned = sched.get("variance_type") in ("learned", "learned_range")
    out_c = int(config.get("out_channels", C))
    if out_c != (2 * C if learned else C):
        raise ValueError(
            f"diffusers: expected {2 * C if learned else C} output channels for in_channels={C} "
            f"and variance_type={sched.get('variance_type')!r}, received out_channels={out_c}"
        )
    net = DiffusersNet(unet, C, class_label)
    model = from_discrete_model(
        net, scheduler_betas(sched), PREDICTION_TYPES[kind], quantize=quantize
    ).eval()
    ignored = [k for k in ("clip_sample", "thresholding") if sched.get(k)]
    metadata = {
        "format": "diffusers",
        "path": str(path),
        "data_range": [-1.0, 1.0],
        "levels": levels,
        "levels_at": "endpoints",
        "scheduler": cls_name,
        "prediction_type": kind,
        "num_train_timesteps": int(sched.get("num_train_timesteps", 1000)),
        "timestep_spacing": sched.get("timestep_spacing", "leading"),
        "sampler_settings_ignored": ignored,
        "class_label": class_label,
        # beta(t) jumps at each of the N knots; in log-SNR time the PF-ODE does not see them
        "likelihood_options": {"time_variable": "log_snr"},
    }
    return Pretrained(model, image_scaler((-1.0, 1.0), levels), (C, H, W), metadata)
