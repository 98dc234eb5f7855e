"""Likelihoods of score-based models: exact log p(x) through the PF-ODE, bits/dim and bounds.

* :mod:`~scoresde.likelihood.divergence`: the score and the trace of its Jacobian from one
  evaluation (exact, chunked vector-Jacobian products; or Hutchinson probes).
* :mod:`~scoresde.likelihood.ode`: :func:`log_likelihood` and :func:`decode`, the probability-flow
  ODE as a continuous normalizing flow (Song et al. 2021, Sec. 4.3 and Eq. 39).
* :mod:`~scoresde.likelihood.coordinates`: the PF-ODE in t, sigma_t / alpha_t or log-SNR
  coordinates (Karras et al. 2022, Eq. 4), and the solver's error norms for a batch.
* :mod:`~scoresde.likelihood.bpd`: bits per dim with uniform dequantization.
* :mod:`~scoresde.likelihood.bounds`: the continuous ELBO (Song, Durkan, Murray & Ermon 2021,
  Theorem 2) and the DDPM L_vlb with the discretized Gaussian decoder (Ho et al. 2020).
"""

from __future__ import annotations

from .bounds import ELBOResult, ddpm_vlb, elbo
from .bpd import BitsPerDim, bits_per_dim, dequantized_bits_per_dim
from .coordinates import ERROR_NORMS, TIME_VARIABLES, PFCoordinates
from .divergence import PROBES, draw_probes, score_and_divergence, score_and_probe_products
from .ode import DIVERGENCES, SOLVERS, LikelihoodResult, decode, log_likelihood, per_sample_norm

__all__ = [
    "DIVERGENCES",
    "ERROR_NORMS",
    "PROBES",
    "SOLVERS",
    "TIME_VARIABLES",
    "BitsPerDim",
    "ELBOResult",
    "LikelihoodResult",
    "PFCoordinates",
    "bits_per_dim",
    "ddpm_vlb",
    "decode",
    "dequantized_bits_per_dim",
    "draw_probes",
    "elbo",
    "log_likelihood",
    "per_sample_norm",
    "score_and_divergence",
    "score_and_probe_products",
]
