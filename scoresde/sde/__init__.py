"""SDEs of score-based generative modelling: VP, sub-VP and VE (Song et al. 2021, Sec. 3.4).

Each SDE and each schedule writes and reads its own settings (``to_config`` / ``from_config``);
:func:`sde_from_config` and :func:`schedule_from_config` dispatch on the registered name or
kind (:data:`SDES`, :data:`SCHEDULES`). A new SDE is one module with its class decorated by
``@register_sde(name)`` (a new schedule: ``@register_schedule(kind)``), plus its import here.
"""

from __future__ import annotations

from typing import Any

from .._utils import names_list
from .base import SDE, SDES, LinearSDE, ScoreFn, sde_from_config
from .ddpm import DDPMSchedule, index_to_time, time_to_index
from .learned import LearnedLogSNR
from .prior import PriorCheck, PriorMismatchWarning, check_prior, check_prior_for_data, prior_kl
from .reverse import ProbabilityFlowODE, ReverseSDE
from .schedules import (
    SCHEDULES,
    BetaSchedule,
    CosineBeta,
    CustomBeta,
    CustomSigma,
    GeometricSigma,
    LinearBeta,
    PiecewiseLinearIntegral,
    Schedule,
    SigmaSchedule,
    schedule_from_config,
)
from .shift import ShiftedBeta, ShiftedSigma, shift_snr, snr_shift_for_resolution
from .snr_schedules import LogSNRLinearBeta, SqrtBeta
from .tables import (
    BETA_TABLES,
    betas_from_alpha_bar,
    continuous_schedule,
    cosine_betas,
    ddpm_schedule,
    linear_betas,
    sqrt_betas,
)
from .ve import VESDE
from .vp import BETA_SCHEDULES, VPSDE, SubVPSDE

__all__ = [
    "BETA_SCHEDULES",
    "BETA_TABLES",
    "SDE",
    "SDES",
    "SCHEDULES",
    "BetaSchedule",
    "CosineBeta",
    "CustomBeta",
    "CustomSigma",
    "DDPMSchedule",
    "GeometricSigma",
    "LinearBeta",
    "LearnedLogSNR",
    "LinearSDE",
    "LogSNRLinearBeta",
    "PiecewiseLinearIntegral",
    "PriorCheck",
    "PriorMismatchWarning",
    "ProbabilityFlowODE",
    "ReverseSDE",
    "Schedule",
    "ScoreFn",
    "ShiftedBeta",
    "ShiftedSigma",
    "SigmaSchedule",
    "SqrtBeta",
    "SubVPSDE",
    "VESDE",
    "VPSDE",
    "betas_from_alpha_bar",
    "check_prior",
    "check_prior_for_data",
    "continuous_schedule",
    "cosine_betas",
    "ddpm_schedule",
    "get_sde",
    "index_to_time",
    "linear_betas",
    "prior_kl",
    "schedule_from_config",
    "sde_from_config",
    "shift_snr",
    "snr_shift_for_resolution",
    "sqrt_betas",
    "time_to_index",
]


def get_sde(name: str, **kwargs: Any) -> LinearSDE:
    """Build an SDE by registry name ('vp', 'subvp', 've') with constructor keyword arguments."""
    if name not in SDES:
        raise ValueError(f"unknown SDE {name!r}; expected one of {names_list(SDES)}")
    return SDES[name](**kwargs)
