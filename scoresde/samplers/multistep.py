"""Coefficients shared by the multistep exponential integrators (DPM-Solver++(kM), UniPC, DEIS).

Every solver here integrates the probability-flow ODE of a linear SDE in its exact
variation-of-constants form (Lu et al. 2022, Eq. 3.4; Lu et al. 2022b, Eq. 9). With
lambda = log(alpha_t / sigma_t) (half the spine's ``log_snr``), h = lambda_t - lambda_s > 0,
the data prediction x0_theta and the noise prediction eps_theta = -sigma_t s_theta:

    x_t = (sigma_t / sigma_s) x_s + sigma_t int_{lambda_s}^{lambda_t} e^{lambda} x0_theta dlambda
        = (alpha_t / alpha_s) x_s - alpha_t int_{lambda_s}^{lambda_t} e^{-lambda} eps_theta dlambda.

A multistep solver replaces x0_theta (or eps_theta) by the polynomial through its last k values
and integrates it exactly. The weights depend on the grid only, so they are computed once per
call, in float64 on the CPU, through the functions below:

* :func:`phi`: phi_k(z) = int_0^1 e^{(1 - u) z} u^{k-1} / (k-1)! du, evaluated without the
  cancellation of the recurrence phi_{k+1}(z) = (phi_k(z) - 1/k!) / z for small |z|.
* :func:`exp_poly_weights`: sigma_t int e^{lambda} l_j(lambda) dlambda / alpha_t for the Lagrange
  basis l_j through the nodes (closed form in phi_k).
* :func:`quad_weights`: the same integrals for any weight and interpolation variable, by
  Gauss–Legendre quadrature (DEIS's polynomials in t, iPNDM's in rho = sigma / alpha).
* :func:`order_plan`: the order of each step: warm-up with lower orders while the history is
  short, and ``lower_order_final`` for short grids (Lu et al. 2022b, Sec. 5; their code applies
  it below 15 steps; a few-step grid's last steps are the stiffest).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from .dpm_solver import multistep_order

__all__ = ["LOWER_ORDER_FINAL_BELOW", "exp_poly_weights", "order_plan", "phi", "quad_weights"]

#: ``lower_order_final`` acts on grids of fewer steps than this (as in Lu et al.'s code).
LOWER_ORDER_FINAL_BELOW = 15


def phi(k: int, z: Tensor) -> Tensor:
    """phi_k(z) (k >= 1) in float64: a Taylor series for |z| < 1, the recurrence elsewhere.

    Args:
        k: Index >= 1; phi_1(z) = (e^z - 1) / z.
        z: Arguments (any shape).

    Returns:
        phi_k(z), shaped like ``z``, float64.
    """
    z = torch.as_tensor(z, dtype=torch.float64)
    series = torch.zeros_like(z)
    for j in range(30, -1, -1):  # sum_j z^j / (j + k)!, Horner from the tail
        series = series * z + 1.0 / math.factorial(j + k)
    safe = torch.where(z.abs() < 1.0, torch.ones_like(z), z)
    rec = torch.expm1(safe) / safe
    for m in range(1, k):
        rec = (rec - 1.0 / math.factorial(m)) / safe
    return torch.where(z.abs() < 1.0, series, rec)


def exp_poly_weights(nodes: Tensor, lam_s: float, lam_t: float) -> Tensor:
    """Weights w_j with sigma_t int_{lam_s}^{lam_t} e^lambda P dlambda = alpha_t sum_j w_j P_j.

    P is the polynomial through (nodes_j, P_j) (data predictions at past log-SNRs). Writing
    P = sum_k c_k u^k in u = (lambda - lam_s) / h gives the closed form
    sigma_t int e^lambda u^k dlambda = alpha_t k! h phi_{k+1}(-h) (Lu et al. 2022b, Eq. 10).

    Args:
        nodes: Half log-SNRs lambda_j of the known values, shape ``(K,)``, ``nodes[0] = lam_s``.
        lam_s: Start of the step.
        lam_t: End of the step (> lam_s).

    Returns:
        Weights of shape ``(K,)`` (float64).
    """
    h = lam_t - lam_s
    u = (nodes.to(torch.float64) - lam_s) / h
    K = u.numel()
    vander = u[:, None] ** torch.arange(K, dtype=torch.float64)[None]  # V_jk = u_j^k
    z = torch.full((K,), -h, dtype=torch.float64)
    moments = torch.stack(
        [math.factorial(k) * h * phi(k + 1, z[k]) for k in range(K)]
    )  # alpha_t-free integral of u^k
    return torch.linalg.solve(vander.T, moments)  # w = V^{-T} m, so sum_j w_j P_j = sum_k c_k m_k


def quad_weights(
    nodes: Tensor,
    a: float,
    b: float,
    weight: Callable[[Tensor], Tensor],
    to_node_var: Callable[[Tensor], Tensor],
    n_quad: int = 16,
) -> Tensor:
    """int_a^b weight(y) l_j(v(y)) dy for the Lagrange basis l_j through ``nodes`` in variable v.

    Gauss–Legendre with ``n_quad`` points in y (exact for polynomial integrands of degree
    < 2 n_quad, exponentially accurate for the analytic ones used here).

    Args:
        nodes: Interpolation nodes v_j, shape ``(K,)``.
        a: Lower limit in y.
        b: Upper limit in y.
        weight: y -> weight(y) (float64 tensors).
        to_node_var: y -> v(y), the variable the polynomial lives in.
        n_quad: Quadrature points.

    Returns:
        Weights of shape ``(K,)`` (float64).
    """
    x, w = np.polynomial.legendre.leggauss(n_quad)
    y = torch.tensor(0.5 * (b - a) * x + 0.5 * (b + a), dtype=torch.float64)
    wq = torch.tensor(0.5 * (b - a) * w, dtype=torch.float64)
    v, nodes = to_node_var(y), nodes.to(torch.float64)
    basis = torch.ones(y.numel(), nodes.numel(), dtype=torch.float64)
    for j in range(nodes.numel()):
        for m in range(nodes.numel()):
            if m != j:
                basis[:, j] *= (v - nodes[m]) / (nodes[j] - nodes[m])
    return (wq * weight(y)) @ basis


def order_plan(n_steps: int, order: int, lower_order_final: bool) -> list[int]:
    """The order of each step of a k-step method with lower-order warm-up.

    :func:`~scoresde.samplers.dpm_solver.multistep_order` per step: min(order, i + 1) at step i
    (the history holds i + 1 values) and, with ``lower_order_final``, at most n_steps - i, applied
    here only on grids of fewer than :data:`LOWER_ORDER_FINAL_BELOW` steps (as in Lu et al.
    2022b's code), so that long grids keep the global order.
    """
    lof = lower_order_final and n_steps < LOWER_ORDER_FINAL_BELOW
    return [multistep_order(i, n_steps, order, lof) for i in range(n_steps)]


def check_order(name: str, order: object, allowed: tuple[int, ...]) -> int:
    """``order`` as an int among ``allowed``; ValueError naming expected vs received otherwise."""
    if isinstance(order, bool) or not isinstance(order, int) or order not in allowed:
        raise ValueError(
            f"{name}: expected order in {', '.join(map(str, allowed))}, received {order!r}"
        )
    return order


def check_flag(name: str, key: str, value: object) -> bool:
    """A boolean option; TypeError naming expected vs received otherwise."""
    if not isinstance(value, bool):
        raise TypeError(f"{name}: expected {key} to be a bool, received {type(value).__name__}")
    return value
