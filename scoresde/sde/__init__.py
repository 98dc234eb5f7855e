"""SDEs of score-based generative modelling: VP, sub-VP and VE (Song et al. 2021, Sec. 3.4)."""

from __future__ import annotations

from typing import Any

from .._utils import names_list
from .base import SDE, LinearSDE, ScoreFn
from .ddpm import DDPMSchedule, index_to_time, time_to_index
from .learned import LearnedLogSNR
from .prior import PriorCheck, PriorMismatchWarning, check_prior, check_prior_for_data, prior_kl
from .reverse import ProbabilityFlowODE, ReverseSDE
from .schedules import (
    BetaSchedule,
    CosineBeta,
    CustomBeta,
    CustomSigma,
    GeometricSigma,
    LinearBeta,
    PiecewiseLinearIntegral,
    SigmaSchedule,
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
    "sde_from_config",
    "shift_snr",
    "snr_shift_for_resolution",
    "sqrt_betas",
    "time_to_index",
]

#: Registry of SDE classes by name.
SDES: dict[str, type[LinearSDE]] = {"vp": VPSDE, "subvp": SubVPSDE, "ve": VESDE}


def get_sde(name: str, **kwargs: Any) -> LinearSDE:
    """Build an SDE by registry name ('vp', 'subvp', 've') with constructor keyword arguments."""
    if name not in SDES:
        raise ValueError(f"unknown SDE {name!r}; expected one of {names_list(SDES)}")
    return SDES[name](**kwargs)


def sde_from_config(config: dict[str, Any]) -> LinearSDE:
    """Rebuild an SDE from ``sde.config()``.

    Linear/cosine/sqrt/log-SNR-linear/geometric schedules and their SNR shifts, and the learned
    log-SNR schedule's shape (load its weights with ``sde.schedule.load_state_dict``).
    """
    if not isinstance(config, dict) or "name" not in config:
        raise ValueError(f"sde_from_config: expected a dict with a 'name' key, received {config!r}")
    cfg = dict(config)
    name = cfg.pop("name")
    sched = dict(cfg.pop("schedule", {}) or {})
    kind = sched.pop("kind", None)
    if kind == "snr_shift":
        return shift_snr(sde_from_config(sched["base"]), float(sched["shift"]))
    kwargs: dict[str, Any] = {k: v for k, v in cfg.items() if k in ("T", "eps")}
    if name in ("vp", "subvp"):
        if kind == "sqrt":
            kwargs.update(schedule=SqrtBeta(sched.get("s", 1e-4)))
        elif kind == "log_snr_linear":
            kwargs.update(schedule=LogSNRLinearBeta(sched["lambda_max"], sched["lambda_min"]))
        elif kind == "learned_log_snr":  # the shape; the learned weights come from a state dict
            kwargs.update(schedule=LearnedLogSNR.from_dict({"kind": kind, **sched}))
        elif kind == "cosine":
            kwargs.update(schedule="cosine", cosine_s=sched.get("s", 0.008))
        elif kind in (None, "linear"):
            kwargs.update({k: sched[k] for k in ("beta_min", "beta_max") if k in sched})
        else:
            raise ValueError(f"sde_from_config: cannot rebuild a {kind!r} beta schedule from JSON")
    elif name == "ve":
        if kind not in (None, "geometric"):
            raise ValueError(f"sde_from_config: cannot rebuild a {kind!r} sigma schedule from JSON")
        kwargs.update({k: sched[k] for k in ("sigma_min", "sigma_max") if k in sched})
    return get_sde(name, **kwargs)
