"""Exact log-likelihood through the probability-flow ODE, and the ODE run in reverse (decode).

Song et al. (2021), Sec. 4.3 and Appendix D.2: the PF-ODE dx/dt = v(x, t) (Eq. 13) is a
continuous normalizing flow, so by the instantaneous change of variables (Chen et al. 2018,
Theorem 1; Song et al. 2021, Eq. 39)

    log p_eps(x(eps)) = log p_T(x(T)) + int_eps^T div v(x(t), t) dt,

with div v = a(t) D - 1/2 g(t)^2 div s (see :mod:`scoresde.likelihood.divergence`). The a(t) D
part integrates in closed form to D (log alpha_T - log alpha_eps); torchdiffeq integrates the
augmented state (x, ell) with d ell / dt = -1/2 g(t)^2 div s from t_eps to T, in time t or
in the EDM / DPM-Solver coordinates x / alpha_t over sigma_t / alpha_t or log-SNR
(``time_variable``, :mod:`scoresde.likelihood.coordinates`). Adaptive steps are made to land on
T (torchdiffeq's ``step_t``) rather than step past it and interpolate back, and the error norm
is chosen per batch of independent samples (``error_norm``).

Measured on 4-component Gaussian mixtures under the VP SDE (``benchmarks/bench_likelihood.py``),
``time_variable="t"`` needs the fewest evaluations at equal accuracy: x / alpha_t grows to
~1 / alpha_T ~ 150 and the log-density integrand decays like D / sigma~ over a range of
sigma~ spanning five decades, which costs more steps than the nearly straight paths save.

What is computed is log p_{t_eps}(x), the density of x at time t_eps, through the model's p_T.
Two approximations are the user's to control:

* **Prior mismatch.** The SDE's prior N(0, prior_std^2 I) is not exactly p_T. For the default VP
  SDE alpha_T = exp(-B(1)/2) ~ 0.0066, so p_T = N(0, I) only up to terms of order
  alpha_T^2 |x_0|^2 ~ 4e-5 |x_0|^2: a few 1e-3 nats per point for a 64-d mixture with
  |x_0|^2 ~ 300. VE leaves the data mean in p_T: the error is of order |x_0|^2 / (2 sigma_max^2).
  Pass ``prior_log_prob`` (e.g. ``GaussianMixture.marginal_mixture(sde.T).log_prob``) for the
  exact p_T in comparisons with closed forms.
* **Truncation at t_eps.** log p_{t_eps} differs from log p_0 by O(sigma_{t_eps}^2 tr(Cov^-1))
  per point (about 1e-6 * D / (smallest data variance) for VP with t_eps = 1e-5).

Cost accounting: ``nfe`` counts evaluations of the augmented drift, each one forward pass of
``score_fn``; ``n_vjp`` counts the vector-Jacobian products spent on the divergence (D per
evaluation for exact divergence, ``n_probes`` for Hutchinson), each about one forward pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
import torchdiffeq
from torch import Tensor

from .._utils import check_finite, check_same_sde, mean_se, names_list, sde_of
from ..checks import far_from_data
from ..sde import LinearSDE, check_prior_for_data
from .coordinates import SOLVERS, pf_coordinates, solver_options
from .divergence import (
    PROBES,
    check_score,
    draw_probes,
    probes_from_seeds,
    score_and_divergence,
    score_and_probe_products,
)
from .grid import GRID_SOLVERS, grid_log_likelihood
from .result import LikelihoodResult

__all__ = ["DIVERGENCES", "RTOL_RANGE", "decode", "log_likelihood"]

DIVERGENCES: tuple[str, ...] = ("exact", "hutchinson")
#: The range of ``rtol`` an adaptive solve accepts: below 1e-12 the float64 ODE solver cannot
#: meet the tolerance and stalls; above 1e-1 the log-likelihood is not worth the name.
RTOL_RANGE = (1e-12, 1e-1)

ScoreFn = Callable[[Tensor, Tensor], Tensor]
PriorLogProb = Callable[[Tensor], Tensor]


def _check_inputs(
    sde: Any,
    score_fn: Any,
    x: Any,
    solver: str,
    rtol: float,
    atol: float,
    name: str,
    solvers: Sequence[str] = SOLVERS,
) -> None:
    """Validate the arguments shared by log_likelihood and decode (``name`` prefixes errors)."""
    if not isinstance(sde, LinearSDE):
        raise TypeError(f"{name}: expected a LinearSDE (VP, sub-VP, VE), received {type(sde)}")
    if not callable(score_fn):
        raise TypeError(f"{name}: expected a callable score_fn(x, t), received {score_fn!r}")
    check_same_sde(sde, sde_of(score_fn), what=f"{name}: score_fn")
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, received {type(x).__name__}")
    if x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(
            f"{name}: expected a tensor of shape (batch, *dims), received {tuple(x.shape)}"
        )
    check_finite(x, name=f"{name} input")
    if solver not in solvers:
        raise ValueError(
            f"{name}: unknown solver {solver!r}; expected one of {names_list(solvers)}"
        )
    for tol_name, tol in (("rtol", rtol), ("atol", atol)):
        if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 < tol < math.inf:
            raise ValueError(f"{name}: expected {tol_name} > 0, received {tol!r}")
    lo, hi = RTOL_RANGE
    if not lo <= rtol <= hi:
        raise ValueError(f"{name}: expected rtol in [{lo:g}, {hi:g}], received {rtol:g}")


def log_likelihood(
    sde: LinearSDE,
    score_fn: ScoreFn,
    x: Tensor,
    *,
    solver: str = "dopri5",
    rtol: float = 3e-5,
    atol: float = 3e-5,
    divergence: Literal["exact", "hutchinson"] | str = "exact",
    n_probes: int = 1,
    probe: Literal["rademacher", "gaussian"] | str = "rademacher",
    generator: torch.Generator | None = None,
    seeds: Sequence[int] | None = None,
    t_eps: float | None = None,
    dtype: torch.dtype | None = None,
    prior_log_prob: PriorLogProb | None = None,
    options: dict[str, Any] | None = None,
    chunk_size: int | None = None,
    time_variable: Literal["t", "sigma", "log_snr"] | str = "t",
    error_norm: Literal["sample_max", "sample_rms", "batch_rms"] | str | None = None,
    n_steps: int | None = None,
    refresh_probes: bool = True,
) -> LikelihoodResult:
    """log p(x) in nats through the PF-ODE (Song et al. 2021, Eq. 39), exact or Hutchinson.

    Runs without building an autograd graph (evaluation only).

    Args:
        sde: A linear SDE (VP, sub-VP or VE).
        score_fn: ``score_fn(x, t)`` approximating grad_x log p_t(x).
        x: Data of shape ``(batch, *dims)`` (vectors or images); let D = prod(dims).
        solver: A torchdiffeq method (``"dopri5"``, ``"rk4"``, ...).
        rtol: Relative tolerance of the adaptive solver (> 0). The default 3e-5 (with
            ``atol``) was chosen on 4-component VP mixtures in d = 2, 16, 64 (seeds 10 and 11 of
            ``benchmarks/bench_likelihood.py``'s family) as the loosest that keeps the mean
            |log p - exact| within 1e-4 nats (6e-5 at worst there), 7-22% fewer evaluations
            than 1e-5 (``benchmarks/bench_likelihood_cost.py`` reports the held-out seed 0).
        atol: Absolute tolerance of the adaptive solver (> 0).
        divergence: ``"exact"`` (D vector-Jacobian products per evaluation) or
            ``"hutchinson"`` (``n_probes`` of them).
        n_probes: Number of Hutchinson probes, drawn once and fixed along the trajectory;
            the estimates are averaged.
        probe: ``"rademacher"`` or ``"gaussian"``.
        generator: Generator for the probes.
        seeds: Hutchinson only: one integer seed per sample; sample i then draws its probes
            from its own generator (:func:`~scoresde.likelihood.divergence.probes_from_seeds`),
            so they do not depend on the batch it is in (exclusive with ``generator``).
        t_eps: Start time of the integration (default ``sde.eps``); see the module docstring.
        dtype: Integrate in this dtype (e.g. ``torch.float64``); default: that of ``x``.
        prior_log_prob: ``z -> (batch,)`` replacing ``sde.prior_log_prob`` (e.g. the exact p_T).
        options: Extra torchdiffeq options (``{"step_size": 0.01}`` for fixed-step solvers);
            they override ``error_norm`` (key ``"norm"``) and the landing on T (``"step_t"``).
        chunk_size: Basis vectors per vectorised VJP chunk (exact divergence).
        time_variable: Integration coordinates: ``"t"`` (x over t, Song et al. Eq. 13),
            ``"sigma"`` (x / alpha_t over sigma_t / alpha_t, Karras et al. 2022 Eq. 4) or
            ``"log_snr"`` (x / alpha_t over lambda_t); the same log p up to solver error.
        error_norm: How the solver combines the errors of the samples (see
            :mod:`~scoresde.likelihood.coordinates`): ``"sample_max"`` (every sample meets
            ``rtol``/``atol``; the log-density entry with ``atol`` in nats), ``"sample_rms"``
            (their RMS over the batch does) or ``"batch_rms"`` (torchdiffeq's default).
            ``None`` (default) picks ``"sample_max"`` for the exact divergence and
            ``"sample_rms"`` for Hutchinson, whose probe noise (~1 nat per point) dwarfs any
            integration error, so tighter step control there costs NFE and buys nothing.
        n_steps: Integrate on a fixed grid of ``n_steps`` steps equally spaced in log-SNR with
            the Runge-Kutta method ``solver`` of :data:`~scoresde.likelihood.GRID_SOLVERS`
            (:mod:`~scoresde.likelihood.grid`); ``rtol``, ``atol``, ``options`` and
            ``error_norm`` are then unused. ``None`` (default): torchdiffeq's adaptive solver.
        refresh_probes: Fixed grid and Hutchinson only: draw new probes at every evaluation
            (lower variance, and a standard error from the stage-wise spread), else fix them
            along the path.

    Returns:
        A :class:`LikelihoodResult`.

    Raises:
        TypeError: for a non-linear SDE, a non-callable ``score_fn`` or a non-float ``x``.
        ValueError: for NaN/Inf or badly shaped ``x``, unknown names, tolerances <= 0,
            ``n_probes < 1`` or ``t_eps`` outside (0, T).
    """
    name = "log_likelihood"
    if n_steps is not None and (
        isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 1
    ):
        raise ValueError(f"{name}: expected an integer n_steps >= 1 or None, received {n_steps!r}")
    solvers = SOLVERS if n_steps is None else tuple(GRID_SOLVERS)
    _check_inputs(sde, score_fn, x, solver, rtol, atol, name, solvers)
    far_from_data(x, name)
    if prior_log_prob is None:  # warns once if p_T is far from the prior used below
        check_prior_for_data(sde, x, "likelihood")
    if divergence not in DIVERGENCES:
        raise ValueError(
            f"{name}: unknown divergence {divergence!r}; expected one of {names_list(DIVERGENCES)}"
        )
    if isinstance(n_probes, bool) or not isinstance(n_probes, int) or n_probes < 1:
        raise ValueError(f"{name}: expected an integer n_probes >= 1, received {n_probes!r}")
    if probe not in PROBES:
        raise ValueError(f"{name}: unknown probe {probe!r}; expected one of {names_list(PROBES)}")
    x = x.detach().to(dtype) if dtype is not None else x.detach()
    pf = pf_coordinates(sde, t_eps, x, time_variable, name, decode=False)
    B, D = x.shape[0], x[0].numel()
    exact = divergence == "exact"
    if error_norm is None:
        error_norm = "sample_max" if exact else "sample_rms"
    if seeds is not None and generator is not None:
        raise ValueError(f"{name}: expected at most one of generator and seeds, received both")
    probes = None
    if seeds is not None and len(seeds) != B:
        raise ValueError(f"{name}: expected {B} seeds (one per sample), received {len(seeds)}")
    if n_steps is not None:
        return grid_log_likelihood(
            sde,
            score_fn,
            x,
            pf,
            n_steps=n_steps,
            solver=solver,
            exact=exact,
            n_probes=n_probes,
            probe=probe,
            refresh_probes=refresh_probes,
            generator=generator,
            seeds=seeds,
            prior_log_prob=sde.prior_log_prob if prior_log_prob is None else prior_log_prob,
            chunk_size=chunk_size,
        )
    if not exact and seeds is not None:
        probes = probes_from_seeds(probe, seeds, n_probes, x.shape[1:], dtype=x.dtype)
        probes = probes.to(x.device)
    elif not exact:
        probes = draw_probes(probe, (n_probes, *x.shape), generator=generator, dtype=x.dtype)
        probes = probes.to(x.device)
    nfe = 0

    def dynamics(r: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        nonlocal nfe
        nfe += 1
        t, c_in, c_lin, c_s = pf.coefficients(r)
        y = state[0]
        if exact:
            s, div_s = score_and_divergence(score_fn, c_in * y, t, chunk_size=chunk_size)
        else:
            assert probes is not None
            s, div_s = score_and_probe_products(score_fn, c_in * y, t, probes)
        return c_lin * y + c_s * s, (c_s * c_in) * div_s  # Eq. 13 and its divergence

    ell0 = x.new_zeros(B) if exact else x.new_zeros(n_probes, B)
    with torch.no_grad():
        ys, ells = torchdiffeq.odeint(
            dynamics,
            (x / pf.c_in(0), ell0),
            pf.span,
            rtol=(rtol, 0.0),
            atol=atol,
            method=solver,
            options=solver_options(options, error_norm, solver, pf.span[-1], name),
        )
        z, ell = ys[-1] * pf.c_in(1), ells[-1]
        prior = (sde.prior_log_prob if prior_log_prob is None else prior_log_prob)(z)
        if prior.shape != (B,):
            raise ValueError(
                f"{name}: expected prior_log_prob(z) of shape ({B},), received {tuple(prior.shape)}"
            )
        # The linear part int a(t) D dt = D (log alpha_T - log alpha_eps), in closed form.
        per_sample = prior.to(x.dtype) + pf.linear_log_det(D) + ell
    n_vjp = nfe * (D if exact else n_probes)
    if exact:
        return LikelihoodResult(per_sample, z, prior, nfe, n_vjp)
    log_prob, stderr = mean_se(per_sample)
    return LikelihoodResult(log_prob, z, prior, nfe, n_vjp, stderr, per_sample)


def decode(
    sde: LinearSDE,
    score_fn: ScoreFn,
    z: Tensor,
    *,
    solver: str = "dopri5",
    rtol: float = 1e-5,
    atol: float = 1e-5,
    t_eps: float | None = None,
    dtype: torch.dtype | None = None,
    options: dict[str, Any] | None = None,
    time_variable: Literal["t", "sigma", "log_snr"] | str = "t",
    error_norm: Literal["sample_max", "sample_rms", "batch_rms"] | str = "sample_max",
) -> tuple[Tensor, int]:
    """Map latents back to data: the PF-ODE (Song et al. 2021, Eq. 13) from T down to t_eps.

    The inverse of the encoding in :func:`log_likelihood` (``result.z``), up to solver error.

    Args:
        sde: A linear SDE (VP, sub-VP or VE).
        score_fn: ``score_fn(x, t)``.
        z: Latents x(T) of shape ``(batch, *dims)``.
        solver: A torchdiffeq method.
        rtol: Relative tolerance (> 0).
        atol: Absolute tolerance (> 0).
        t_eps: End time (default ``sde.eps``).
        dtype: Integrate in this dtype; default: that of ``z``.
        options: Extra torchdiffeq options.
        time_variable: Integration coordinates, as in :func:`log_likelihood`.
        error_norm: Error norm, as in :func:`log_likelihood`.

    Returns:
        ``(x, nfe)``: x(t_eps) shaped like ``z`` and the number of drift evaluations.

    Raises:
        TypeError, ValueError: as for :func:`log_likelihood`.
    """
    name = "decode"
    _check_inputs(sde, score_fn, z, solver, rtol, atol, name)
    z = z.detach().to(dtype) if dtype is not None else z.detach()
    pf = pf_coordinates(sde, t_eps, z, time_variable, name, decode=True)
    nfe = 0

    def dynamics(r: Tensor, y: Tensor) -> Tensor:
        nonlocal nfe
        nfe += 1
        t, c_in, c_lin, c_s = pf.coefficients(r)
        s = score_fn(c_in * y, t)
        check_score(s, y)
        return c_lin * y + c_s * s

    with torch.no_grad():
        ys = torchdiffeq.odeint(
            dynamics,
            z / pf.c_in(0),
            pf.span,
            rtol=rtol,
            atol=atol,
            method=solver,
            options=solver_options(options, error_norm, solver, pf.span[-1], name),
        )
    return ys[-1] * pf.c_in(1), nfe
