"""Models trained elsewhere, as continuous-time score models that carry their exact SDE.

* :mod:`~scoresde.parameterization.pretrained.adapters`: the formulas. A DDPM network over
  integer steps with its beta table (:func:`from_discrete_model`, :func:`from_discrete_eps_model`,
  :func:`discrete_vp_sde`) and an EDM-style denoiser D(x, sigma) (:func:`from_denoiser`).
* Loaders of local folders (no network access, no code run from a file), each returning a
  :class:`Pretrained` ``(model, scaler, shape, metadata)``:
  :func:`load_diffusers` (a ``UNet2DModel`` and its scheduler config),
  :func:`load_kdiffusion` (a k-diffusion/EDM denoiser), :func:`load_score_sde` (a score_sde
  checkpoint); :func:`load_pretrained` reads ``FORMAT:PATH`` as the CLI's ``--model`` does.
* :func:`check_predicts`: on data, warn if the network's output fits another prediction type
  far better than the configured one (a wrong ``prediction_type``).

Samplers and likelihood code only see the resulting ``score_fn(x, t)`` (DESIGN.md, contract 3).
"""

from __future__ import annotations

from .adapters import (
    DenoiserScore,
    DiscreteEpsScore,
    DiscreteSteps,
    discrete_vp_sde,
    from_denoiser,
    from_discrete_eps_model,
    from_discrete_model,
)
from .check import PredictionTypeWarning, check_predicts, prediction_errors
from .diffusers_folder import DiffusersNet, inference_times, load_diffusers, scheduler_betas
from .files import Pretrained, dequantization_range, image_scaler
from .kdiffusion import from_kdiffusion, load_kdiffusion, ve_sde_over
from .resolve import FORMATS, load_pretrained
from .score_sde import from_score_sde, load_score_sde

__all__ = [
    "FORMATS",
    "DenoiserScore",
    "DiffusersNet",
    "DiscreteEpsScore",
    "DiscreteSteps",
    "PredictionTypeWarning",
    "Pretrained",
    "check_predicts",
    "dequantization_range",
    "discrete_vp_sde",
    "from_denoiser",
    "from_discrete_eps_model",
    "from_discrete_model",
    "from_kdiffusion",
    "from_score_sde",
    "image_scaler",
    "inference_times",
    "load_diffusers",
    "load_kdiffusion",
    "load_pretrained",
    "load_score_sde",
    "prediction_errors",
    "scheduler_betas",
    "ve_sde_over",
]
