"""DEIS (tAB-DEIS) and iPNDM (Zhang & Chen 2023): polynomial extrapolation of eps_theta.

Both integrate the probability-flow ODE in its exact form for the noise prediction
eps_theta = -sigma_t s_theta (Zhang & Chen 2023, Eq. 11; Lu et al. 2022, Eq. 3.4):

    x_t = (alpha_t / alpha_s) x_s - alpha_t int_{lambda_s}^{lambda_t} e^{-lambda} eps_theta dlambda
        = (alpha_t / alpha_s) x_s + alpha_t int_{rho_s}^{rho_t} eps_theta drho,

with lambda = log(alpha_t / sigma_t) and rho = sigma_t / alpha_t = e^{-lambda} (the noise level of
the scaled state x / alpha_t, in which the ODE reads d(x / alpha) / drho = eps_theta). Over each
step eps_theta is replaced by the polynomial through its last k values, k = min(order, i + 1):

* **tAB-DEIS** (Zhang & Chen 2023, Sec. 4, Eq. 14): the polynomial lives in t; the weights
  C_ij = -alpha_t int e^{-lambda} l_j(t(lambda)) dlambda are computed by Gauss–Legendre
  quadrature in lambda (the paper integrates them numerically too). ``order`` k is the DEIS
  paper's (k-1)-tAB; global order k.
* **iPNDM** (Zhang & Chen 2023, Sec. 5 / App. "improved PNDM"): the same in rho, i.e.
  Adams–Bashforth on d(x/alpha)/drho = eps_theta with lower-order warm-up. On a grid uniform in
  rho the weights are PNDM's (55, -59, 37, -9) / 24 (and 1; (3, -1)/2; (23, -16, 5)/12 while the
  history fills); on other grids they are the variable-step Adams–Bashforth weights, which keep
  the order. Global order 4.

One score evaluation per step; weights depend on the grid only and are computed once in float64.
The orders are interior orders: they show past ~64 (DEIS) and ~96 (iPNDM) steps, and the
first-order warm-up step adds an O(h^2) error that dominates on fine grids where eps_theta still
varies at t = T (``tests/test_solvers_orders.py`` and the docs page).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ..sde import LinearSDE
from .multistep import check_flag, check_order, order_plan, quad_weights
from .register import RegisteredSampler, register
from .run import SampleInfo, SamplerRun
from .spec import EXPONENTIAL

__all__ = ["eps_ab_weights", "sample_deis", "sample_ipndm"]


def eps_ab_weights(sde: LinearSDE, grid: Tensor, plan: list[int], variable: str) -> list[Tensor]:
    """Per step i, w_j with x_{i+1} = (alpha_{i+1}/alpha_i) x_i + alpha_{i+1} sum_j w_j eps_{i-j}.

    Args:
        sde: The linear SDE.
        grid: Float64 decreasing times, shape ``(N + 1,)``.
        plan: Number of nodes per step (:func:`~scoresde.samplers.multistep.order_plan`).
        variable: 't' (tAB-DEIS) or 'rho' (iPNDM) - where the polynomial lives.

    Returns:
        N float64 tensors; entry i has ``plan[i]`` weights (newest node first).
    """
    lam_half = 0.5 * sde.log_snr(grid)  # log(alpha_t / sigma_t): half the log-SNR
    out = []
    for i, k in enumerate(plan):
        if variable == "rho":
            rho = torch.exp(-lam_half)
            nodes = rho[i - k + 1 : i + 1].flip(0)
            a, b = float(rho[i]), float(rho[i + 1])
            out.append(quad_weights(nodes, a, b, torch.ones_like, lambda y: y))
        else:
            nodes = grid[i - k + 1 : i + 1].flip(0)
            a, b = float(lam_half[i]), float(lam_half[i + 1])
            w = quad_weights(
                nodes, a, b, lambda y: -torch.exp(-y), lambda y: sde.t_from_log_snr(2 * y)
            )
            out.append(w)
    return out


def _eps_multistep(run: SamplerRun, weights: list[Tensor]) -> Callable[[Tensor, int], Tensor]:
    """The step x_{i+1} = (alpha_{i+1}/alpha_i) x_i + alpha_{i+1} sum_j w_ij eps_{i-j}."""
    c = run.coefs()
    w = [wi.to(run.like) for wi in weights]
    depth = max(wi.numel() for wi in w)
    hist: list[Tensor] = []  # eps_theta at t_i, t_{i-1}, ... (newest first)

    def step(x: Tensor, i: int) -> Tensor:
        # 1. eps_theta(x_{t_i}, t_i) = -sigma_i s_theta
        hist.insert(0, -c.sigma[i] * run.score(x, run.t[i]))
        del hist[depth:]
        # 2. x_{i+1} = (alpha_{i+1} / alpha_i) x_i + alpha_{i+1} sum_j w_ij eps_{i-j}
        incr = sum(wj * ej for wj, ej in zip(w[i], hist))
        return (c.alpha[i + 1] / c.alpha[i]) * x + c.alpha[i + 1] * incr

    return step


def _eps_body(name: str, variable: str, default_order: int) -> RegisteredSampler:
    """Register the eps-extrapolating multistep solver ``name`` (polynomial in ``variable``)."""

    def body(
        run: SamplerRun, *, order: int = default_order, lower_order_final: bool = True
    ) -> tuple[Tensor, SampleInfo]:
        k = check_order(name, order, (1, 2, 3, 4))
        lof = check_flag(name, "lower_order_final", lower_order_final)
        plan = order_plan(run.n_steps, k, lof)
        weights = eps_ab_weights(run.sde, run.grid64, plan, variable)
        return run.loop(run.x_T, _eps_multistep(run, weights))

    body.__name__ = body.__qualname__ = f"sample_{name}"
    body.__doc__ = _DOCS[name]
    return register(name, order=None, description=_DESCRIPTIONS[name], **EXPONENTIAL)(body)


_DOCS = {
    "deis": """tAB-DEIS (Zhang & Chen 2023): exponential integrator, eps_theta extrapolated in t.

    Arguments, the common ``**options`` and the result are those of every sampler
    (:class:`~scoresde.samplers.Sampler`); any linear SDE; ``generator`` is unused by the
    solver (hooks may draw). ``info.nfe`` = number of steps. Its own options:

    * ``order``: number of eps_theta values in the polynomial, 1-4 (the paper's
      (order-1)-tAB; global order ``order``; 1 is DDIM); default 3.
    * ``lower_order_final``: lower the orders of the last steps on grids of < 15 steps
      (default True).
    """,
    "ipndm": """iPNDM (Zhang & Chen 2023): Adams–Bashforth in rho = sigma_t / alpha_t on eps_theta.

    Arguments are those of :func:`sample_deis`; ``order`` in 1-4, default 4 (the paper's
    iPNDM).
    """,
}
_DESCRIPTIONS = {"deis": "interior order 3 (order=3)", "ipndm": "interior order 4"}

sample_deis = _eps_body("deis", "t", 3)
sample_ipndm = _eps_body("ipndm", "rho", 4)
