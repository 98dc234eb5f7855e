"""The solver's part of a likelihood's error budget: Richardson checks on a fixed log-SNR grid.

On the fixed grids of :mod:`~scoresde.likelihood.grid` the solver error of the data set's mean
log p is measured, not assumed: the same samples are solved on ``n_steps`` and ``2 n_steps``
steps with the same probes held fixed along the path, and the paired difference, scaled by
Richardson's factor 2^p / (2^p - 1) for a method of order p (Hairer, Norsett & Wanner 1993,
Sec. II.4), estimates the error of the coarse solve; its standard error over the samples says
how well. :func:`choose_n_steps` doubles the grid until that estimate plus ``confidence``
standard errors is within the target. With fixed probes the paired difference is the exact
divergence's quadrature error plus a zero-mean probe term (the estimate is linear in the
outer product of the probes), so its mean over samples estimates the exact solve's error and
the refreshed-probe solve, which has the same expectation, shares it.

The other parts of the budget are reported by the callers: the probe noise per sample
(``LikelihoodResult.stderr``), the dequantization noise (``BitsPerDim.stderr`` over draws) and
the spread of the samples (the standard error of the mean over the data set).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

from ..sde import LinearSDE
from .grid import GRID_SOLVERS
from .ode import log_likelihood

__all__ = ["GridChoice", "SolverError", "choose_n_steps", "solver_error"]


@dataclass(frozen=True)
class SolverError:
    """The solver error of the mean log p on ``n_steps`` steps, from a re-solve on twice as many.

    Attributes:
        n_steps: Steps of the checked solve.
        error: Richardson estimate of the error of the checked solve's mean log p (nats):
            (mean(coarse - fine)) * 2^p / (2^p - 1).
        se: Standard error of ``error`` over the samples (nats).
        max_abs: Largest per-sample |coarse - fine| (nats).
        n: Number of samples checked.
        nfe: Drift evaluations of both solves.
        fine: Per-sample log p of the finer solve (nats), shape ``(n,)``.
    """

    n_steps: int
    error: float
    se: float
    max_abs: float
    n: int
    nfe: int
    fine: Tensor = field(repr=False)

    def bound(self, confidence: float = 2.0) -> float:
        """|error| + ``confidence`` standard errors."""
        return abs(self.error) + confidence * self.se


@dataclass(frozen=True)
class GridChoice:
    """The grid :func:`choose_n_steps` settled on, with the checks that led there.

    Attributes:
        n_steps: The chosen number of steps.
        check: The :class:`SolverError` of the chosen grid.
        history: Every check made, coarsest first.
        nfe: Drift evaluations spent on the choice.
    """

    n_steps: int
    check: SolverError
    history: tuple[SolverError, ...]
    nfe: int


def _solve(
    sde: LinearSDE, score_fn: Any, x: Tensor, n_steps: int, kwargs: dict[str, Any]
) -> tuple[Tensor, int]:
    res = log_likelihood(sde, score_fn, x, n_steps=n_steps, refresh_probes=False, **kwargs)
    return res.log_prob.double(), res.nfe


def solver_error(
    sde: LinearSDE,
    score_fn: Callable[[Tensor, Tensor], Tensor],
    x: Tensor,
    n_steps: int,
    *,
    solver: str = "rk4",
    coarse: Tensor | None = None,
    **likelihood_kwargs: Any,
) -> SolverError:
    """Richardson estimate of the solver error of the mean log p of ``x`` on ``n_steps`` steps.

    Args:
        sde: A linear SDE.
        score_fn: ``score_fn(x, t)``.
        x: Samples of shape ``(batch, *dims)``.
        n_steps: Steps of the checked grid (the finer solve takes twice as many).
        solver: A method of :data:`~scoresde.likelihood.GRID_SOLVERS`.
        coarse: The per-sample log p of the ``n_steps`` solve with the same fixed probes, if
            already computed (saves that solve).
        **likelihood_kwargs: Passed to :func:`~scoresde.likelihood.log_likelihood`
            (``divergence``, ``seeds``, ``time_variable``, ``dtype``, ...); Hutchinson probes
            are held fixed along the path and must be the same in both solves (pass ``seeds``).

    Returns:
        A :class:`SolverError`.

    Raises:
        ValueError: for an unknown solver, a Hutchinson check without ``seeds``, or fewer than
            two samples.
    """
    if solver not in GRID_SOLVERS:
        raise ValueError(
            f"solver_error: unknown solver {solver!r}; expected one of {sorted(GRID_SOLVERS)}"
        )
    if x.shape[0] < 2:
        raise ValueError(f"solver_error: expected at least 2 samples, received {x.shape[0]}")
    hutch = likelihood_kwargs.get("divergence", "exact") != "exact"
    if hutch and likelihood_kwargs.get("seeds") is None:
        raise ValueError(
            "solver_error: a Hutchinson check needs the same probes in both solves; pass seeds"
        )
    kw = dict(likelihood_kwargs, solver=solver)
    nfe = 0
    if coarse is None:
        coarse, nfe = _solve(sde, score_fn, x, n_steps, kw)
    fine, nfe_fine = _solve(sde, score_fn, x, 2 * n_steps, kw)
    p = GRID_SOLVERS[solver].order
    diff = (coarse - fine) * (2**p / (2**p - 1))
    n = x.shape[0]
    return SolverError(
        n_steps=n_steps,
        error=float(diff.mean()),
        se=float(diff.std(correction=1)) / math.sqrt(n),
        max_abs=float((coarse - fine).abs().max()),
        n=n,
        nfe=nfe + nfe_fine,
        fine=fine,
    )


def choose_n_steps(
    sde: LinearSDE,
    score_fn: Callable[[Tensor, Tensor], Tensor],
    x: Tensor,
    *,
    target: float,
    solver: str = "rk4",
    start: int = 4,
    max_steps: int = 512,
    confidence: float = 2.0,
    **likelihood_kwargs: Any,
) -> GridChoice:
    """The coarsest grid (``start`` doubled) whose mean log p error on ``x`` is within ``target``.

    The check of ``n`` steps re-solves on ``2 n``; that solve is then the coarse solve of the
    next check, so choosing N steps costs about 4 N steps' worth of evaluations on ``x``.

    Args:
        sde: A linear SDE.
        score_fn: ``score_fn(x, t)``.
        x: The pilot samples (choose on samples other than those you report on).
        target: The allowed solver error of the mean log p, in nats (> 0).
        solver: A method of :data:`~scoresde.likelihood.GRID_SOLVERS`.
        start: The first number of steps tried (>= 1).
        max_steps: Give up (``ValueError``) beyond this many steps.
        confidence: Standard errors added to the estimate before comparing with ``target``.
        **likelihood_kwargs: As for :func:`solver_error`.

    Returns:
        A :class:`GridChoice`.

    Raises:
        ValueError: for a target <= 0, start < 1, or no grid up to ``max_steps`` within the
            target.
    """
    if not (isinstance(target, (int, float)) and 0 < target < math.inf):
        raise ValueError(f"choose_n_steps: expected a target > 0 (nats), received {target!r}")
    if isinstance(start, bool) or not isinstance(start, int) or start < 1:
        raise ValueError(f"choose_n_steps: expected an integer start >= 1, received {start!r}")
    history: list[SolverError] = []
    n, coarse = start, None
    while n <= max_steps:
        check = solver_error(sde, score_fn, x, n, solver=solver, coarse=coarse, **likelihood_kwargs)
        history.append(check)
        if check.bound(confidence) <= target:
            return GridChoice(n, check, tuple(history), sum(h.nfe for h in history))
        n, coarse = 2 * n, check.fine
    last = history[-1] if history else None
    raise ValueError(
        f"choose_n_steps: no grid up to {max_steps} steps meets the target {target:g} nats; "
        f"the last check ({last.n_steps if last else start} steps) estimated "
        f"{last.error if last else math.nan:+.3g} +- {last.se if last else math.nan:.2g}"
    )
