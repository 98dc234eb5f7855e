"""Optimized time grids: place a few-step sampler's grid points to follow a teacher solution.

For a deterministic sampler Phi_grid (a discretization of the PF-ODE, Song et al. 2021, Eq. 13)
and calibration starting points x_T^(1..M), :func:`optimize_grid` minimizes the distance to a
fine-grid (teacher) solution from the same starting points,

    L(grid) = mean_m ||Phi_grid(x_T^(m)) - Phi_fine(x_T^(m))||^2 / d,

over grids with fixed endpoints (T and the sampler's end time) and the sampler's step count for
the target NFE (:func:`~scoresde.samplers.plan_for_nfe`, whose options, e.g. a default final
denoising step, are kept).
Only the score function is used (no density), so it works on trained models; this is the
"teacher trajectory" criterion of learned-schedule work such as Watson et al. (2021) and
Sabour et al. (2024, "Align Your Steps"), minimized here without gradients.

Parameterization (monotone by construction): the log-SNR lambda = log(alpha_t^2 / sigma_t^2)
runs from lambda(T) to lambda(eps) in N increments lambda_{i+1} - lambda_i =
(lambda(eps) - lambda(T)) softmax(theta)_i, theta in R^N with theta_0 = 0; the times are
t_i = lambda^{-1}(lambda_i). It starts from the best fixed grid kind (or a given one), and
Nelder–Mead (scipy) with a seeded initial simplex runs at most ``max_evals`` evaluations, so
the cost is bounded by ``max_evals * nfe * M`` score evaluations plus the teacher's.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .._utils import names_list
from ..sde import LinearSDE
from .budget import plan_for_nfe
from .grid_file import OptimizedGrid
from .grids import GRIDS
from .register import get_sampler
from .registry import sample
from .run import check_state

__all__ = ["grid_from_params", "grid_objective", "optimize_grid", "params_from_grid"]


def params_from_grid(sde: LinearSDE, grid: Tensor) -> Tensor:
    """theta with theta_0 = 0 such that :func:`grid_from_params` gives back ``grid``."""
    lam = sde.log_snr(grid.to(torch.float64))
    inc = lam[1:] - lam[:-1]
    return torch.log(inc / inc[0])


def grid_from_params(sde: LinearSDE, theta: Tensor, t_end: float | None = None) -> Tensor:
    """The grid whose log-SNR increments are proportional to softmax(theta), from T to t_end.

    ``t_end`` defaults to ``sde.eps``.
    """
    t_end = sde.eps if t_end is None else float(t_end)
    ends = sde.log_snr(torch.tensor([sde.T, t_end], dtype=torch.float64))
    w = torch.softmax(theta.to(torch.float64), 0)
    lam = ends[0] + (ends[1] - ends[0]) * torch.cat([w.new_zeros(1), torch.cumsum(w, 0)])
    t = sde.t_from_log_snr(lam).clone()
    t[0], t[-1] = sde.T, t_end
    return t


def grid_objective(
    sde: LinearSDE,
    score_fn: Any,
    sampler: str,
    grid: Tensor,
    x_T: Tensor,
    target: Tensor,
    options: dict[str, Any] | None = None,
) -> float:
    """Mean squared distance per dimension between the sampler's output on ``grid`` and ``target``.

    Returns ``inf`` when the grid is invalid (e.g. times not distinct) or the sampler diverges.
    """
    try:
        with torch.no_grad():
            x, _ = sample(sampler, sde, score_fn, x_T, grid, **(options or {}))
    except ValueError:
        return math.inf
    err = (x - target).reshape(x.shape[0], -1).to(torch.float64)
    val = float(err.square().mean())
    return val if math.isfinite(val) else math.inf


def _check(
    sde: object,
    sampler: str,
    nfe: int,
    x_T: Tensor,
    max_evals: int,
    teacher_nfe: int,
    init: str,
) -> None:
    """Validate :func:`optimize_grid`'s arguments (ValueError/TypeError naming what was wrong)."""
    spec = get_sampler(sampler)
    if spec.stochastic or spec.adaptive:
        raise ValueError(
            f"optimize_grid: expected a deterministic fixed-step sampler, received {sampler!r} "
            f"({'stochastic' if spec.stochastic else 'adaptive'}); a teacher trajectory is "
            "defined only for the probability-flow ODE"
        )
    if not isinstance(sde, LinearSDE):
        raise TypeError(f"optimize_grid: expected a LinearSDE, received {type(sde).__name__}")
    check_state(x_T, name="x_T_calibration")
    for name, v, lo in (
        ("nfe", nfe, 1),
        ("max_evals", max_evals, 0),
        ("teacher_nfe", teacher_nfe, 2),
    ):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ValueError(f"optimize_grid: expected an integer {name} >= {lo}, received {v!r}")
    if teacher_nfe <= nfe:
        raise ValueError(
            f"optimize_grid: expected teacher_nfe > nfe, received {teacher_nfe} <= {nfe}"
        )
    if init != "best" and init not in GRIDS:
        raise ValueError(
            f"optimize_grid: unknown init {init!r}; expected 'best' or one of {names_list(GRIDS)}"
        )


def optimize_grid(
    sde: LinearSDE,
    score_fn: Any,
    sampler: str,
    nfe: int,
    x_T_calibration: Tensor,
    *,
    options: dict[str, Any] | None = None,
    init: str = "best",
    max_evals: int = 300,
    teacher_nfe: int = 500,
    teacher: Tensor | None = None,
    seed: int = 0,
    step: float = 0.5,
) -> OptimizedGrid:
    """Optimize the time grid of a deterministic sampler at a given NFE (see the module docstring).

    Args:
        sde: The linear SDE (VP, sub-VP, VE).
        score_fn: ``score_fn(x, t)``: an exact score or a trained model.
        sampler: A deterministic registered sampler, e.g. 'ddim', 'dpm_solver_pp_2m'.
        nfe: The budget (score evaluations, a final ``denoise`` step included).
        x_T_calibration: Starting points, shape ``(M, *dims)`` (e.g. 256-1024 prior draws);
            use float64 for a smooth objective.
        options: Sampler options (e.g. ``{"denoise": True}``), saved with the grid.
        init: Starting grid kind, or 'best': the best kind of :data:`GRIDS` on the calibration
            points.
        max_evals: Bound on objective evaluations (each one sampler run on the M points).
        teacher_nfe: NFE of the teacher: the same sampler on a log-SNR grid.
        teacher: Optional precomputed teacher solutions shaped like ``x_T_calibration``.
        seed: Seed of the initial simplex.
        step: Size of the initial simplex in theta (log-increment units).

    Returns:
        An :class:`OptimizedGrid`; ``info`` holds the objective of the starting grid and of the
        result (mean squared distance per dimension), the starting kind and the evaluations.
    """
    from scipy.optimize import minimize

    _check(sde, sampler, nfe, x_T_calibration, max_evals, teacher_nfe, init)
    opts = dict(options or {})
    x_T = x_T_calibration
    kinds = list(GRIDS) if init == "best" else [init]
    base = {k: plan_for_nfe(sde, sampler, nfe, k, **opts)[0] for k in kinds}
    user, opts = opts, plan_for_nfe(sde, sampler, nfe, kinds[0], **opts)[1]  # + its defaults
    t_end = float(base[kinds[0]][-1])
    if teacher is None:
        fine, fine_opts = plan_for_nfe(sde, sampler, teacher_nfe, "log_snr", exact=False, **user)
        with torch.no_grad():
            teacher, _ = sample(sampler, sde, score_fn, x_T, fine, **fine_opts)
    elif not isinstance(teacher, Tensor) or teacher.shape != x_T.shape:
        raise ValueError(
            f"optimize_grid: expected teacher shaped like x_T_calibration {tuple(x_T.shape)}, "
            f"received {tuple(teacher.shape) if isinstance(teacher, Tensor) else teacher!r}"
        )
    start = {
        k: grid_objective(sde, score_fn, sampler, g, x_T, teacher, opts) for k, g in base.items()
    }
    kind = min(start, key=lambda k: start[k])
    theta0 = params_from_grid(sde, base[kind])[1:].numpy()
    n_evals = 0

    def f(th: np.ndarray) -> float:
        nonlocal n_evals
        n_evals += 1
        full = torch.cat([torch.zeros(1, dtype=torch.float64), torch.as_tensor(th)])
        grid = grid_from_params(sde, full, t_end)
        return grid_objective(sde, score_fn, sampler, grid, x_T, teacher, opts)

    best_theta, best = theta0, start[kind]
    if theta0.size and max_evals > 0:
        g = torch.Generator().manual_seed(seed)
        simplex = (
            theta0
            + step
            * torch.randn(theta0.size + 1, theta0.size, generator=g, dtype=torch.float64).numpy()
        )
        simplex[0] = theta0
        res = minimize(
            f,
            theta0,
            method="Nelder-Mead",
            options={
                "maxfev": max_evals,
                "initial_simplex": simplex,
                "adaptive": True,
                "xatol": 1e-4,
                "fatol": 0.0,
            },
        )
        if res.fun < best:
            best_theta, best = res.x, float(res.fun)
    full = torch.cat([torch.zeros(1, dtype=torch.float64), torch.as_tensor(best_theta)])
    times = grid_from_params(sde, full, t_end) if best < start[kind] else base[kind]
    info = {
        "objective": "mean squared distance per dimension to the teacher",
        "start_kind": kind,
        "start": start,
        "final": best,
        "evals": n_evals,
        "teacher_nfe": teacher_nfe,
        "n_calibration": int(x_T.shape[0]),
        "seed": seed,
    }
    return OptimizedGrid(sampler, nfe, times, repr(sde), opts, info)
