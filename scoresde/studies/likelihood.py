"""Likelihood-estimator study: each estimator measured against a tight solve of the SAME model.

For one score model s_theta, every estimator of log p_theta(x) is compared with a reference: the
PF-ODE log-likelihood (Song et al. 2021, Sec. 4.3, Eq. 39) with the exact divergence at a tight
tolerance (rtol = atol = ``reference_tol``, 1e-7 by default; pass float64). The rows are

* ``exact`` at each solver tolerance (dopri5, rtol = atol): the solver's error;
* ``hutchinson`` at each tolerance and probe count k (Grathwohl et al. 2019): solver error plus
  the estimator's Monte Carlo error, which shrinks like 1 / sqrt(k);
* ``elbo`` for each number of Monte Carlo draws: the continuous ELBO (Song, Durkan, Murray &
  Ermon 2021, Thm. 2). It is a *bound*, not an estimate: a lower bound on log p of the model's
  reverse SDE, which is the ODE's log p when the score is exact. Its signed error
  ``nll_error`` = NLL_elbo - NLL_ref is then >= 0 up to its Monte Carlo error (``bias_se``);
* ``reference``: the tight solve itself, with its cost;
* ``model_gap`` (only with ``true_log_prob``): the model's own error, log p_ref - log p_data,
  kept apart so that it never hides the estimators' errors (it is usually far larger).

Error columns: ``bias`` = mean(log p_hat - log p_ref) with its standard error over points
``bias_se``, ``nll_error`` = -bias, ``mean_abs_error``, ``rmse``; cost columns: ``nfe``
(forward passes of s_theta), ``n_vjp`` (vector-Jacobian products for the divergence) and
``wall_time_s``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from ..sde import LinearSDE

__all__ = ["LIKELIHOOD_COLUMNS", "likelihood_study"]

#: Columns of every likelihood-study row.
LIKELIHOOD_COLUMNS = (
    "method",
    "kind",
    "against",
    "rtol",
    "n_probes",
    "mean_log_prob",
    "bias",
    "bias_se",
    "nll_error",
    "mean_abs_error",
    "rmse",
    "mean_stderr",
    "nfe",
    "n_vjp",
    "wall_time_s",
    "n_points",
)


def _check_counts(probes: Sequence[int], elbo_samples: Sequence[int]) -> None:
    for name, ks in (("probes", probes), ("elbo_samples", elbo_samples)):
        if any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in ks):
            raise ValueError(
                f"likelihood_study: expected positive integer {name}, received {list(ks)!r}"
            )


def likelihood_study(
    sde: LinearSDE,
    score_fn: Callable[[Tensor, Tensor], Tensor],
    x: Tensor,
    *,
    true_log_prob: Tensor | None = None,
    tolerances: Sequence[float] = (1e-2, 1e-3, 1e-4, 1e-5),
    probes: Sequence[int] = (1, 4, 16),
    elbo_samples: Sequence[int] = (1, 16),
    generator: torch.Generator | None = None,
    prior_log_prob: Callable[[Tensor], Tensor] | None = None,
    dtype: torch.dtype | None = None,
    reference_tol: float = 1e-7,
) -> list[dict[str, Any]]:
    """Exact divergence vs Hutchinson vs ELBO, each against a tight solve of the same model.

    Args:
        sde: The linear SDE.
        score_fn: ``score_fn(x, t)``.
        x: Points of shape ``(n, *dims)``.
        true_log_prob: Optional log p_data(x) (e.g. ``GaussianMixture.log_prob``), shape
            ``(n,)``: only for the ``model_gap`` row, never for the estimators' errors.
        tolerances: rtol = atol values of the adaptive ODE solver (dopri5).
        probes: Hutchinson probe counts.
        elbo_samples: Monte Carlo draws of the ELBO (which has no solver tolerance).
        generator: Generator for probes and ELBO draws.
        prior_log_prob: Optional exact log p_T (isolates the solver and estimator errors).
        dtype: Integration dtype of every row (``torch.float64`` for a meaningful reference).
        reference_tol: rtol = atol of the reference solve (exact divergence), below every
            tolerance in ``tolerances``.

    Returns:
        Rows with the columns of :data:`LIKELIHOOD_COLUMNS`: the estimators (in the order
        tolerance-major exact then Hutchinson per probe count, then the ELBO per draw count),
        then ``reference``, then ``model_gap`` if ``true_log_prob`` is given.

    Raises:
        ValueError: For tolerances outside (0, 1), a reference tolerance not below them,
            non-positive counts, or a ``true_log_prob`` of the wrong shape.
    """
    from ..likelihood import elbo, log_likelihood

    if not tolerances or any(not (0 < float(t) < 1) for t in tolerances):
        raise ValueError(
            f"likelihood_study: expected tolerances in (0, 1), received {tolerances!r}"
        )
    ref_ok = isinstance(reference_tol, (int, float)) and not isinstance(reference_tol, bool)
    if not (ref_ok and 0 < reference_tol < min(float(t) for t in tolerances)):
        raise ValueError(
            "likelihood_study: expected 0 < reference_tol < min(tolerances) = "
            f"{min(float(t) for t in tolerances):g}, received {reference_tol!r}"
        )
    _check_counts(probes, elbo_samples)
    if true_log_prob is not None and tuple(true_log_prob.shape) != (x.shape[0],):
        raise ValueError(
            f"likelihood_study: expected true_log_prob of shape ({x.shape[0]},), received "
            f"{tuple(true_log_prob.shape)}"
        )
    common: dict[str, Any] = {"prior_log_prob": prior_log_prob, "dtype": dtype}

    def timed(**kw: Any) -> tuple[Any, float]:
        start = time.perf_counter()
        res = log_likelihood(sde, score_fn, x, **kw, **common)
        return res, time.perf_counter() - start

    ref, ref_wall = timed(divergence="exact", rtol=float(reference_tol), atol=float(reference_tol))
    rows: list[dict[str, Any]] = []
    for tol in sorted((float(t) for t in tolerances), reverse=True):
        res, wall = timed(divergence="exact", rtol=tol, atol=tol)
        meta = {"method": "exact", "kind": "estimate", "rtol": tol, "n_probes": None}
        rows.append(_row(meta, res.log_prob, res.stderr, res.nfe, res.n_vjp, ref.log_prob, wall))
        for k in probes:
            res, wall = timed(
                divergence="hutchinson", rtol=tol, atol=tol, n_probes=k, generator=generator
            )
            meta = {"method": "hutchinson", "kind": "estimate", "rtol": tol, "n_probes": k}
            rows.append(
                _row(meta, res.log_prob, res.stderr, res.nfe, res.n_vjp, ref.log_prob, wall)
            )
    D = x[0].numel()
    for k in elbo_samples:
        start = time.perf_counter()
        e = elbo(
            sde,
            score_fn,
            x.to(dtype) if dtype else x,
            n_samples=k,
            generator=generator,
            prior_log_prob=prior_log_prob,
        )
        wall = time.perf_counter() - start
        meta = {"method": "elbo", "kind": "bound", "rtol": None, "n_probes": k}
        rows.append(_row(meta, e.elbo, e.stderr, k, k * D, ref.log_prob, wall))
    meta = {
        "method": "reference",
        "kind": "reference",
        "rtol": float(reference_tol),
        "n_probes": None,
    }
    rows.append(_row(meta, ref.log_prob, None, ref.nfe, ref.n_vjp, ref.log_prob, ref_wall))
    if true_log_prob is not None:
        meta = {
            "method": "model_gap",
            "kind": "model",
            "rtol": float(reference_tol),
            "n_probes": None,
        }
        row = _row(meta, ref.log_prob, None, 0, 0, true_log_prob, math.nan)
        rows.append({**row, "against": "true density", "nfe": None, "n_vjp": None})
    return rows


def _row(
    meta: dict[str, Any],
    log_prob: Tensor,
    stderr: Tensor | None,
    nfe: int,
    n_vjp: int,
    ref: Tensor,
    wall: float,
) -> dict[str, Any]:
    err = (log_prob.double() - ref.double().to(log_prob.device)).cpu()
    n = err.numel()
    bias_se = float(err.std() / math.sqrt(n)) if n > 1 else math.nan
    se = math.nan if stderr is None else float(stderr.double().nanmean())
    return {
        **meta,
        "against": "reference",
        "mean_log_prob": float(log_prob.double().mean()),
        "bias": float(err.mean()),
        "bias_se": bias_se,
        "nll_error": -float(err.mean()),
        "mean_abs_error": float(err.abs().mean()),
        "rmse": float(err.pow(2).mean().sqrt()),
        "mean_stderr": se,
        "nfe": int(nfe),
        "n_vjp": int(n_vjp),
        "wall_time_s": wall,
        "n_points": int(n),
    }
