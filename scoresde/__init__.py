"""scoresde: continuous-time score-based diffusion models in PyTorch.

One model seen four ways (Song et al. 2021): the forward SDE, the reverse SDE, the
probability-flow ODE, and their discretizations DDPM and DDIM.

Public API of the spine:

* :mod:`scoresde.sde`: ``VPSDE``, ``SubVPSDE``, ``VESDE``, schedules, ``DDPMSchedule``.
* :mod:`scoresde.parameterization`: eps / x0 / v / score conversions, ``ScoreModel``, and the
  discrete DDPM eps-model adapter.
* :mod:`scoresde.analytic`: ``GaussianMixture``, an exact score function for tests and studies.
"""

from __future__ import annotations

from . import analytic, parameterization, sde
from ._utils import append_dims
from .analytic import GaussianMixture
from .parameterization import ScoreModel, convert, from_discrete_eps_model
from .sde import SDE, VESDE, VPSDE, DDPMSchedule, LinearSDE, SubVPSDE, get_sde

__version__ = "0.1.0"

__all__ = [
    "SDE",
    "VESDE",
    "VPSDE",
    "DDPMSchedule",
    "GaussianMixture",
    "LinearSDE",
    "ScoreModel",
    "SubVPSDE",
    "__version__",
    "analytic",
    "append_dims",
    "convert",
    "from_discrete_eps_model",
    "get_sde",
    "parameterization",
    "sde",
]
