"""scoresde: continuous-time score-based diffusion models in PyTorch.

One model seen four ways (Song et al. 2021): the forward SDE, the reverse SDE, the
probability-flow ODE, and their discretizations DDPM and DDIM.

* :mod:`scoresde.sde`: ``VPSDE``, ``SubVPSDE``, ``VESDE``, schedules, ``DDPMSchedule``.
* :mod:`scoresde.parameterization`: eps / x0 / v / score conversions, ``ScoreModel``, adapters
  for discrete DDPM eps-models and EDM denoisers.
* :mod:`scoresde.analytic`: ``GaussianMixture``, an exact score function for tests and studies.
* :mod:`scoresde.samplers`: the sampler registry (reverse SDE, DDPM, DDIM, PF-ODE, DPM-Solver,
  predictor-corrector, torchsde) and time grids.
* :mod:`scoresde.likelihood`: exact log-likelihood through the PF-ODE, bits/dim, ELBO bounds.
* :mod:`scoresde.losses`, :mod:`scoresde.nets`, :mod:`scoresde.data`, :mod:`scoresde.training`:
  denoising score matching and a trainer that never loses work.
* :mod:`scoresde.metrics`, :mod:`scoresde.studies`: sample-quality metrics and sampler /
  likelihood studies. The CLI (``scoresde ...``) lives in :mod:`scoresde.cli`.
"""

from __future__ import annotations

from . import adapters, analytic, likelihood, metrics, parameterization, samplers, sde, studies
from ._utils import append_dims
from .adapters import from_denoiser, from_discrete_eps_model
from .analytic import GaussianMixture
from .likelihood import bits_per_dim, decode, elbo, log_likelihood
from .parameterization import ScoreModel, convert
from .samplers import SAMPLERS, SampleInfo, grid_for_nfe, make_grid, sample
from .sde import SDE, VESDE, VPSDE, DDPMSchedule, LinearSDE, SubVPSDE, get_sde
from .studies import compare_samplers, likelihood_study
from .training import train

__version__ = "0.1.0"

__all__ = [
    "SAMPLERS",
    "SDE",
    "VESDE",
    "VPSDE",
    "DDPMSchedule",
    "GaussianMixture",
    "LinearSDE",
    "SampleInfo",
    "ScoreModel",
    "SubVPSDE",
    "__version__",
    "adapters",
    "analytic",
    "append_dims",
    "bits_per_dim",
    "compare_samplers",
    "convert",
    "decode",
    "elbo",
    "from_denoiser",
    "from_discrete_eps_model",
    "get_sde",
    "grid_for_nfe",
    "likelihood",
    "likelihood_study",
    "log_likelihood",
    "make_grid",
    "metrics",
    "parameterization",
    "sample",
    "samplers",
    "sde",
    "studies",
    "train",
]
