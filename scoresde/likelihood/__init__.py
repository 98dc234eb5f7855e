"""Likelihoods of score-based models: exact log p(x) through the PF-ODE, bits/dim and bounds.

* :mod:`~scoresde.likelihood.divergence`: the score and the trace of its Jacobian from one
  evaluation (exact, chunked vector-Jacobian products; or Hutchinson probes).
* :mod:`~scoresde.likelihood.ode`: :func:`log_likelihood` and :func:`decode`, the probability-flow
  ODE as a continuous normalizing flow (Song et al. 2021, Sec. 4.3 and Eq. 39).
* :mod:`~scoresde.likelihood.coordinates`: the PF-ODE in t, sigma_t / alpha_t or log-SNR
  coordinates (Karras et al. 2022, Eq. 4), and the solver's error norms for a batch.
* :mod:`~scoresde.likelihood.grid`: the same ODE on a fixed grid equally spaced in log-SNR,
  with Hutchinson probes drawn anew at every evaluation and a per-sample standard error.
* :mod:`~scoresde.likelihood.budget`: the solver's error measured by Richardson re-solves
  (:func:`solver_error`), and the coarsest grid within a target (:func:`choose_n_steps`).
* :mod:`~scoresde.likelihood.result`: :class:`LikelihoodResult`.
* :mod:`~scoresde.likelihood.bpd`: bits per dim of discrete data with uniform dequantization
  (:func:`bits_per_dim`); ``LikelihoodResult.continuous_bits_per_dim()`` is the same unit for
  continuous data, and :func:`ddpm_vlb` the DDPM bound in bits per dim (a :class:`VLBResult`).
* :mod:`~scoresde.likelihood.bounds`: the continuous ELBO (Song, Durkan, Murray & Ermon 2021,
  Theorem 2) and the DDPM L_vlb with the discretized Gaussian decoder (Ho et al. 2020).
* the continuous-time VLB of VDM (Kingma et al. 2021), :class:`VDMLoss` and :func:`vdm_vlb`,
  lives with the other objectives in :mod:`scoresde.losses.vdm` (re-exported here).
"""

from __future__ import annotations

from ..losses.vdm import VDMLoss, VDMTerms, vdm_vlb
from .bounds import ELBOResult, VLBResult, ddpm_vlb, elbo
from .bpd import BitsPerDim, bits_per_dim, dequantized_bits_per_dim
from .budget import GridChoice, SolverError, choose_n_steps, solver_error
from .coordinates import ERROR_NORMS, SOLVERS, TIME_VARIABLES, PFCoordinates
from .divergence import PROBES, draw_probes, score_and_divergence, score_and_probe_products
from .grid import GRID_SOLVERS, Tableau
from .ode import DIVERGENCES, decode, log_likelihood
from .result import LikelihoodResult

__all__ = [
    "DIVERGENCES",
    "ERROR_NORMS",
    "GRID_SOLVERS",
    "PROBES",
    "SOLVERS",
    "TIME_VARIABLES",
    "BitsPerDim",
    "ELBOResult",
    "GridChoice",
    "LikelihoodResult",
    "PFCoordinates",
    "SolverError",
    "Tableau",
    "VDMLoss",
    "VDMTerms",
    "VLBResult",
    "bits_per_dim",
    "choose_n_steps",
    "ddpm_vlb",
    "decode",
    "dequantized_bits_per_dim",
    "draw_probes",
    "elbo",
    "log_likelihood",
    "score_and_divergence",
    "score_and_probe_products",
    "solver_error",
    "vdm_vlb",
]
