"""Likelihood study: exact divergence vs Hutchinson (1..k probes) vs ELBO, against tolerance.

For each solver tolerance (rtol = atol of dopri5), log p(x) through the PF-ODE (Song et al. 2021,
Sec. 4.3) with the exact divergence and with Hutchinson's estimator for each probe count, plus
the continuous ELBO (Song, Durkan, Murray & Ermon 2021, Thm. 2) for each number of Monte Carlo
draws. Each row reports the error per point against a reference and the cost (NFE,
vector-Jacobian products, wall time).
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
    "method", "rtol", "n_probes", "mean_log_prob", "bias", "mean_abs_error", "rmse",
    "mean_stderr", "nfe", "n_vjp", "wall_time_s", "n_points",
)  # fmt: skip


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
) -> list[dict[str, Any]]:
    """Exact divergence vs Hutchinson (per probe count) vs ELBO: error and cost per tolerance.

    Errors are per point against ``true_log_prob`` (e.g. ``GaussianMixture.log_prob``), or, if
    it is not given, against the exact-divergence result at the smallest tolerance.

    Args:
        sde: The linear SDE.
        score_fn: ``score_fn(x, t)``.
        x: Points of shape ``(n, *dims)``.
        true_log_prob: Optional exact log p(x), shape ``(n,)``.
        tolerances: rtol = atol values of the adaptive ODE solver (dopri5).
        probes: Hutchinson probe counts.
        elbo_samples: Monte Carlo draws of the ELBO (which has no solver tolerance).
        generator: Generator for probes and ELBO draws.
        prior_log_prob: Optional exact log p_T (isolates the solver and estimator errors).
        dtype: Integration dtype (e.g. ``torch.float64``).

    Returns:
        Rows with the columns of :data:`LIKELIHOOD_COLUMNS`.
    """
    from ..likelihood import elbo, log_likelihood

    if not tolerances or any(not (0 < float(t) < 1) for t in tolerances):
        raise ValueError(
            f"likelihood_study: expected tolerances in (0, 1), received {tolerances!r}"
        )
    if any(
        isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in (*probes, *elbo_samples)
    ):
        raise ValueError("likelihood_study: expected positive integer probe and ELBO-sample counts")
    common = {"prior_log_prob": prior_log_prob, "dtype": dtype}
    runs: list[tuple[dict[str, Any], Any, float]] = []  # (metadata, result, wall seconds)
    for tol in sorted(tolerances, reverse=True):
        kw: dict[str, Any] = {"rtol": float(tol), "atol": float(tol), **common}
        start = time.perf_counter()
        res = log_likelihood(sde, score_fn, x, divergence="exact", **kw)
        wall = time.perf_counter() - start
        runs.append(({"method": "exact", "rtol": tol, "n_probes": None}, res, wall))
        for k in probes:
            start = time.perf_counter()
            res = log_likelihood(sde, score_fn, x, divergence="hutchinson", n_probes=k,
                                 generator=generator, **kw)  # fmt: skip
            wall = time.perf_counter() - start
            runs.append(({"method": "hutchinson", "rtol": tol, "n_probes": k}, res, wall))
    ref = true_log_prob if true_log_prob is not None else runs[-1 - len(probes)][1].log_prob
    rows = [_ll_row(meta, r.log_prob, r.stderr, r.nfe, r.n_vjp, ref, w) for meta, r, w in runs]
    for k in elbo_samples:
        start = time.perf_counter()
        e = elbo(sde, score_fn, x.to(dtype) if dtype else x, n_samples=k, generator=generator,
                 prior_log_prob=prior_log_prob)  # fmt: skip
        wall = time.perf_counter() - start
        D = x[0].numel()
        meta = {"method": "elbo", "rtol": None, "n_probes": k}
        rows.append(_ll_row(meta, e.elbo, e.stderr, k, k * D, ref, wall))
    return rows


def _ll_row(
    meta: dict[str, Any],
    log_prob: Tensor,
    stderr: Tensor | None,
    nfe: int,
    n_vjp: int,
    ref: Tensor,
    wall: float,
) -> dict[str, Any]:
    err = (log_prob.double() - ref.double().to(log_prob.device)).cpu()
    se = math.nan if stderr is None else float(stderr.double().nanmean())
    return {
        **meta, "mean_log_prob": float(log_prob.double().mean()), "bias": float(err.mean()),
        "mean_abs_error": float(err.abs().mean()), "rmse": float(err.pow(2).mean().sqrt()),
        "mean_stderr": se, "nfe": int(nfe), "n_vjp": int(n_vjp), "wall_time_s": wall,
        "n_points": int(log_prob.numel()),
    }  # fmt: skip
