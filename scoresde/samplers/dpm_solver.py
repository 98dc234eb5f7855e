"""Exponential integrators in log-SNR: DPM-Solver-1/2/3 (singlestep) and DPM-Solver++(2M).

With lambda_t = log(alpha_t / sigma_t) (half the spine's ``log_snr``) and the noise prediction
eps_theta(x, t) = -sigma_t s_theta(x, t), the probability-flow ODE of any linear SDE has the exact
solution (Lu et al. 2022, "DPM-Solver", Eq. 3.4)

    x_t = (alpha_t / alpha_s) x_s - alpha_t int_{lambda_s}^{lambda_t} e^{-lambda} eps_theta dlambda,

whose linear part is integrated exactly. With h = lambda_t - lambda_s (> 0):

* DPM-Solver-1 (= DDIM, eta = 0): x_t = (alpha_t/alpha_s) x_s - sigma_t (e^h - 1) eps_s.
* DPM-Solver-2 (Alg. 1, r1 = 1/2) and DPM-Solver-3 (Alg. 2, r1 = 1/3, r2 = 2/3): singlestep,
  k score evaluations per step at intermediate log-SNRs lambda_s + r h; global order k in h.
* DPM-Solver++(2M) (Lu et al. 2022b, Alg. 2): multistep with the data prediction
  x0_theta = (x + sigma_t^2 s_theta) / alpha_t, one evaluation per step, order 2.

Everything goes through ``marginal``, ``log_snr`` and ``t_from_log_snr``, so VP, sub-VP and VE are
served alike.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..sde import LinearSDE
from ._core import Coefs, SampleInfo, SamplerRun, prepare

__all__ = ["sample_dpm_solver", "sample_dpm_solver_pp_2m"]

#: Intermediate log-SNR fractions r of the singlestep solvers (Lu et al. 2022, Algs. 1 and 2).
_RATIOS: dict[int, tuple[float, ...]] = {1: (), 2: (0.5,), 3: (1 / 3, 2 / 3)}


def _stage_coefs(run: SamplerRun, ratios: tuple[float, ...]) -> tuple[Tensor, list[Coefs]]:
    """h_i on the grid, and the schedule at lambda_{t_i} + r h_i for each ratio r."""
    lam = 0.5 * run.sde.log_snr(run.grid64)
    h = lam[1:] - lam[:-1]
    stages = [run.coefs(run.sde.t_from_log_snr(2 * (lam[:-1] + r * h))) for r in ratios]
    return h.to(run.like), stages


def _dpm_step(run: SamplerRun, order: int):  # noqa: ANN202 - returns the step closure
    c = run.coefs()
    h, st = _stage_coefs(run, _RATIOS[order])
    r = _RATIOS[order]

    def eps(x: Tensor, cc: Coefs, i: int) -> Tensor:
        return -cc.sigma[i] * run.score(x, cc.t[i])  # eps_theta = -sigma_t s_theta

    def step(x: Tensor, i: int) -> Tensor:
        a_s, a_t, sig_t, hi = c.alpha[i], c.alpha[i + 1], c.sigma[i + 1], h[i]
        e_s = eps(x, c, i)  # 1. eps_theta at (x_{t_i}, t_i)
        x_t = (a_t / a_s) * x - sig_t * torch.expm1(hi) * e_s  # 2. first-order (DDIM) update
        if order == 1:
            return x_t
        s1 = st[0]  # 3. first intermediate point u1 at lambda_s + r1 h
        u1 = (s1.alpha[i] / a_s) * x - s1.sigma[i] * torch.expm1(r[0] * hi) * e_s
        d1 = eps(u1, s1, i) - e_s
        if order == 2:  # 4. second-order correction (Alg. 1)
            return x_t - sig_t / (2 * r[0]) * torch.expm1(hi) * d1
        s2 = st[1]  # 4'. second intermediate point u2 at lambda_s + r2 h (Alg. 2)
        phi2 = torch.expm1(r[1] * hi) / (r[1] * hi) - 1
        u2 = (s2.alpha[i] / a_s) * x - s2.sigma[i] * torch.expm1(r[1] * hi) * e_s
        u2 = u2 - s2.sigma[i] * (r[1] / r[0]) * phi2 * d1
        d2 = eps(u2, s2, i) - e_s
        # 5. third-order correction
        return x_t - sig_t / r[1] * (torch.expm1(hi) / hi - 1) * d2

    return step


def sample_dpm_solver(
    sde: LinearSDE, score_fn: Any, x_T: Tensor, grid: Tensor, *,
    generator: torch.Generator | None = None, callback: Any = None,
    order: int = 2, **options: Any,
) -> tuple[Tensor, SampleInfo]:  # fmt: skip
    """Singlestep DPM-Solver-``order`` (Lu et al. 2022, Algs. 1-2) on any linear SDE.

    Args:
        sde: A linear SDE (VP, sub-VP, VE).
        score_fn: ``score_fn(x, t) -> grad_x log p_t(x)`` shaped like ``x``.
        x_T: Initial state of shape ``(batch, *dims)`` at ``grid[0]``.
        grid: Strictly decreasing times in [eps, T]; a ``log_snr`` grid is the natural choice.
        generator: Unused by the solver (kept for the shared signature; hooks may draw).
        callback: ``callback(i, t_next, x)`` after each step.
        order: 1, 2 or 3 (score evaluations per step; global order in the log-SNR step).
        **options: Common options (see :mod:`scoresde.samplers._core`).

    Returns:
        ``(x, info)`` with samples at ``grid[-1]``.
    """
    if order not in _RATIOS:
        raise ValueError(f"dpm_solver: expected order 1, 2 or 3, received {order!r}")
    run = prepare(f"dpm_solver_{order}", sde, score_fn, x_T, grid, generator, callback, options)
    return run.loop(x_T, _dpm_step(run, order))


def sample_dpm_solver_pp_2m(
    sde: LinearSDE, score_fn: Any, x_T: Tensor, grid: Tensor, *,
    generator: torch.Generator | None = None, callback: Any = None, **options: Any,
) -> tuple[Tensor, SampleInfo]:  # fmt: skip
    """DPM-Solver++(2M) (Lu et al. 2022b, Alg. 2): multistep, data prediction, order 2.

    Arguments are those of :func:`sample_dpm_solver` (without ``order``); 1 NFE per step.
    """
    run = prepare("dpm_solver_pp_2m", sde, score_fn, x_T, grid, generator, callback, options)
    c = run.coefs()
    h = c.lam[1:] - c.lam[:-1]
    prev: list[Tensor] = []  # x0_theta at the previous grid time (multistep memory)

    def step(x: Tensor, i: int) -> Tensor:
        # 1. data prediction x0_theta(x_{t_i}, t_i) = (x + sigma^2 s) / alpha
        x0 = run.x0(x, run.score(x, run.t[i]), c.alpha[i], c.sigma[i])
        # 2. D = x0 (first step) or the linear extrapolation (1 + 1/2r) x0_i - 1/2r x0_{i-1}
        if prev:
            r = h[i - 1] / h[i]
            d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * prev[0]
        else:
            d = x0
        prev[:] = [x0]
        # 3. x_{t_{i+1}} = (sigma_{i+1} / sigma_i) x - alpha_{i+1} (e^{-h} - 1) D
        return (c.sigma[i + 1] / c.sigma[i]) * x - c.alpha[i + 1] * torch.expm1(-h[i]) * d

    return run.loop(x_T, step)
