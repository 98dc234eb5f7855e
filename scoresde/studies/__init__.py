"""Studies: samplers compared on a grid of NFEs, and likelihood estimators against tolerance.

* :func:`compare_samplers` runs every (sampler, NFE, seed) from the *same* prior draws x_T (per
  seed) and scores the samples against reference samples with the metrics of
  :mod:`scoresde.metrics`: a front of :func:`run_study` (below), returning its
  :class:`StudyResult` (``SamplerStudy`` is the same class), one row per sampler x NFE x seed
  (columns in :data:`SAMPLER_COLUMNS` plus one per metric).
* :func:`likelihood_study` compares log p(x) from the PF-ODE with exact divergence, Hutchinson's
  estimator with 1..k probes, and the continuous ELBO, reporting error and cost (NFE,
  vector-Jacobian products, wall time) per solver tolerance (:data:`LIKELIHOOD_COLUMNS`).

* :func:`run_study` runs a :class:`StudySpec` (samplers x NFEs x seeds x factors such as grid,
  end time, eta or SDE; crossed or zipped) on a :class:`Problem`, with the noise floor of exact
  samples, the CE gap, mode-mass error and per-component precision/recall
  (:mod:`~scoresde.studies.coverage`), saving each cell so that a killed study resumes; under
  ``torchrun`` its cells are shared out over the ranks (same rows at any world size).
  :mod:`~scoresde.studies.significance` ranks configurations per NFE budget with paired tests
  across seeds (ties stay ties; one seed does not rank), and
  :mod:`~scoresde.studies.budget` turns the rows into best-per-budget, Pareto and factor tables.

Plots of both tables live in :mod:`scoresde.cli.report`.
"""

from __future__ import annotations

from .budget import best_per_budget, by_factor, pareto_front, study_summary
from .coverage import below_floor, precision_recall
from .guided import guided_problem
from .likelihood import LIKELIHOOD_COLUMNS, likelihood_study
from .quality import data_pool_sampler, mode_mass, noise_floor_table, score_samples
from .runner import Problem, StudyResult, run_study
from .samplers import SAMPLER_COLUMNS, SamplerStudy, compare_samplers
from .significance import disagreements, paired_test, rank_per_budget
from .spec import Cell, StudySpec, load_spec
from .table import json_safe, mean_se, summarize, write_csv, write_json

__all__ = [
    "guided_problem",
    "LIKELIHOOD_COLUMNS",
    "SAMPLER_COLUMNS",
    "Cell",
    "Problem",
    "SamplerStudy",
    "StudyResult",
    "StudySpec",
    "below_floor",
    "best_per_budget",
    "by_factor",
    "compare_samplers",
    "data_pool_sampler",
    "disagreements",
    "json_safe",
    "likelihood_study",
    "load_spec",
    "mean_se",
    "mode_mass",
    "noise_floor_table",
    "paired_test",
    "pareto_front",
    "precision_recall",
    "rank_per_budget",
    "run_study",
    "score_samples",
    "study_summary",
    "summarize",
    "write_csv",
    "write_json",
]
