"""scoresde: continuous-time score-based diffusion models in PyTorch.

One model seen four ways (Song et al. 2021): the forward SDE, the reverse SDE, the
probability-flow ODE, and their discretizations DDPM and DDIM.

The top level holds what a user needs to train, sample and evaluate (listed with one line each
in ``docs/api/index.md``): the SDEs (:class:`VPSDE`, :class:`SubVPSDE`, :class:`VESDE`), a score
function (:class:`ScoreModel` for a network, :class:`GaussianMixture` for an exact one), the
loss (:class:`DSMLoss`), :func:`train` / :func:`load_model`, :func:`sample` with the
:data:`SAMPLERS` registry and :func:`make_grid`, and :func:`log_likelihood`,
:func:`bits_per_dim` and :func:`elbo`. Everything else lives in its subpackage:

* :mod:`scoresde.sde`: SDEs, schedules, reverse SDE / PF-ODE, ``DDPMSchedule``.
* :mod:`scoresde.parameterization`: eps / x0 / v / score conversions, ``ScoreModel``, adapters
  for discrete DDPM eps-models and EDM denoisers.
* :mod:`scoresde.analytic`: ``GaussianMixture``, an exact score function for tests and studies.
* :mod:`scoresde.samplers`: the sampler registry (reverse SDE, DDPM, DDIM, PF-ODE, DPM-Solver,
  predictor-corrector, torchsde) and time grids.
* :mod:`scoresde.likelihood`: exact log-likelihood through the PF-ODE, bits/dim, ELBO bounds.
* :mod:`scoresde.losses`, :mod:`scoresde.nets`, :mod:`scoresde.data`, :mod:`scoresde.training`:
  denoising score matching and a trainer that never loses work.
* :mod:`scoresde.metrics`, :mod:`scoresde.studies`: sample-quality metrics and sampler /
  likelihood studies. The CLI (``scoresde ...``) and run configs live in :mod:`scoresde.cli`.
"""

from __future__ import annotations

from . import _launcher  # noqa: F401 (first: the launcher pid, before anything slow)
from .analytic import GaussianMixture
from .likelihood import bits_per_dim, elbo, log_likelihood
from .losses import DSMLoss
from .parameterization import ScoreModel
from .samplers import SAMPLERS, make_grid, sample
from .sde import VESDE, VPSDE, SubVPSDE
from .training import load_model, train

__version__ = "0.1.0"

__all__ = [
    "SAMPLERS",
    "VESDE",
    "VPSDE",
    "DSMLoss",
    "GaussianMixture",
    "ScoreModel",
    "SubVPSDE",
    "__version__",
    "bits_per_dim",
    "elbo",
    "load_model",
    "log_likelihood",
    "make_grid",
    "sample",
    "train",
]
