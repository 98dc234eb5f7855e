"""What a network predicts, how it becomes a score function, and models trained elsewhere.

* :mod:`~scoresde.parameterization.conversions`: exact eps <-> x0 <-> v <-> score conversions
  under x_t = alpha_t x_0 + sigma_t eps (Song et al. 2021, Eq. 29).
* :mod:`~scoresde.parameterization.score_model`: :class:`ScoreModel`, a network plus its SDE
  (with EDM preconditioning, Karras et al. 2022, Table 1).
* :mod:`~scoresde.parameterization.pretrained`: score functions from a discrete DDPM eps-model
  (:func:`from_discrete_eps_model`) or an EDM denoiser D(x, sigma) (:func:`from_denoiser`), and
  loaders of diffusers, k-diffusion/EDM and score_sde checkpoints (``load_pretrained``).
"""

from __future__ import annotations

from .conversions import (
    MODEL_OUTPUTS,
    PREDICTS,
    convert,
    eps_to_score,
    eps_to_x0,
    score_to_eps,
    to_eps,
    v_from,
    x0_to_eps,
)
from .eps_v import EpsVModel
from .pretrained import DenoiserScore, DiscreteEpsScore, from_denoiser, from_discrete_eps_model
from .score_model import TIME_INPUTS, ScoreModel

__all__ = [
    "EpsVModel",
    "MODEL_OUTPUTS",
    "PREDICTS",
    "TIME_INPUTS",
    "DenoiserScore",
    "DiscreteEpsScore",
    "ScoreModel",
    "convert",
    "eps_to_score",
    "eps_to_x0",
    "from_denoiser",
    "from_discrete_eps_model",
    "score_to_eps",
    "to_eps",
    "v_from",
    "x0_to_eps",
]
