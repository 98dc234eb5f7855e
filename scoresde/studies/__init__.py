"""Studies: samplers compared on a grid of NFEs, and likelihood estimators against tolerance.

* :func:`compare_samplers` runs every (sampler, NFE, seed) from the *same* prior draws x_T (per
  seed) and scores the samples against reference samples with the metrics of
  :mod:`scoresde.metrics`. It returns a :class:`SamplerStudy`, a tidy table with one row per
  sampler x NFE x seed (columns in :data:`SAMPLER_COLUMNS` plus one per metric).
* :func:`likelihood_study` compares log p(x) from the PF-ODE with exact divergence, Hutchinson's
  estimator with 1..k probes, and the continuous ELBO, reporting error and cost (NFE,
  vector-Jacobian products, wall time) per solver tolerance (:data:`LIKELIHOOD_COLUMNS`).

Plots of both tables live in :mod:`scoresde.cli.report`.
"""

from __future__ import annotations

from .likelihood import LIKELIHOOD_COLUMNS, likelihood_study
from .samplers import SAMPLER_COLUMNS, SamplerStudy, compare_samplers
from .table import json_safe, mean_se, summarize, write_csv, write_json

__all__ = [
    "LIKELIHOOD_COLUMNS",
    "SAMPLER_COLUMNS",
    "SamplerStudy",
    "compare_samplers",
    "json_safe",
    "likelihood_study",
    "mean_se",
    "summarize",
    "write_csv",
    "write_json",
]
