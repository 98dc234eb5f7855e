"""Probability-flow ODE samplers: fixed-step Runge–Kutta (Euler, Heun, RK4) and adaptive.

The probability-flow ODE (Song et al. 2021, Eq. 13) for a linear SDE f(x, t) = a(t) x is

    dx/dt = a(t) x - 1/2 g(t)^2 s_theta(x, t),

integrated from t_0 = T down to t_N = eps. The fixed-step solvers are one explicit Runge–Kutta
loop over a Butcher tableau (global order 1, 2, 4 in the step h = max |t_{i+1} - t_i|); the
adaptive one calls ``torchdiffeq.odeint`` (``dopri5`` by default) through :class:`ODEFunc`.
"""

from __future__ import annotations

import torch
import torchdiffeq
from torch import Tensor

from ..sde.pf_ode import ADAPTIVE_METHODS
from ..sde.reverse import drift_coefs, probability_flow_drift
from .adapters import ODEFunc
from .register import RegisteredSampler, register
from .run import SampleInfo, SamplerRun

__all__ = ["TABLEAUX", "sample_pf_adaptive", "sample_pf_euler", "sample_pf_heun", "sample_pf_rk4"]

#: Explicit Butcher tableaux (c, A, b): stage times, stage weights, final weights.
TABLEAUX: dict[str, tuple[list[float], list[list[float]], list[float]]] = {
    "euler": ([0.0], [[]], [1.0]),
    "heun": ([0.0, 1.0], [[], [1.0]], [0.5, 0.5]),
    "rk4": (
        [0.0, 0.5, 0.5, 1.0],
        [[], [0.5], [0.0, 0.5], [0.0, 0.0, 1.0]],
        [1 / 6, 1 / 3, 1 / 3, 1 / 6],
    ),
}


def _rk_loop(run: SamplerRun, tableau: str) -> tuple[Tensor, SampleInfo]:
    """Run the explicit Runge–Kutta method ``tableau`` on the PF-ODE over ``run``'s grid."""
    c_nodes, A, b = TABLEAUX[tableau]
    nodes = torch.tensor(c_nodes, dtype=torch.float64)
    dt64 = run.grid64[1:] - run.grid64[:-1]  # negative steps
    stage_t = run.grid64[:-1, None] + nodes[None] * dt64[:, None]  # (N, stages)
    c = run.coefs(stage_t.reshape(-1))
    # PF-ODE drift f - 1/2 g^2 s = c_x x + c_s s at every stage time (Eq. 13)
    c_x, c_s = (v.reshape(stage_t.shape) for v in drift_coefs(c.a, c.g2, probability_flow=True))
    t_stage, dt = c.t.reshape(stage_t.shape), dt64.to(run.like)

    def step(x: Tensor, i: int) -> Tensor:
        k: list[Tensor] = []
        for j in range(len(c_nodes)):
            # 1. stage state x + dt sum_l A_jl k_l
            xj = x
            for l, w in enumerate(A[j]):
                if w != 0.0:
                    xj = xj + (w * dt[i]) * k[l]
            # 2. PF-ODE field c_x x + c_s s at the stage time t_i + c_j dt (Eq. 13)
            k.append(c_x[i, j] * xj + c_s[i, j] * run.score(xj, t_stage[i, j]))
        # 3. combine the stages: x + dt sum_j b_j k_j
        incr = k[0] * b[0]
        for w, kj in zip(b[1:], k[1:]):
            incr = incr + w * kj
        return x + dt[i] * incr

    return run.loop(run.x_T, step)


def _fixed_step(name: str, tableau: str, order: float) -> RegisteredSampler:
    """Register the fixed-step PF-ODE sampler ``name`` on a Butcher tableau."""

    def body(run: SamplerRun) -> tuple[Tensor, SampleInfo]:
        return _rk_loop(run, tableau)

    body.__name__ = body.__qualname__ = f"sample_{name}"
    body.__doc__ = f"""The probability-flow ODE (Song et al. 2021, Eq. 13), fixed-step {tableau}.

    Arguments, the common ``**options`` and the result are those of every sampler
    (:class:`~scoresde.samplers.Sampler`); any linear SDE. The ODE draws no noise (hooks may).
    ``info.nfe`` = {len(TABLEAUX[tableau][2])} per step.
    """
    nfe = len(TABLEAUX[tableau][2])
    return register(name, stochastic=False, order=order, nfe_per_step=nfe)(body)


sample_pf_euler = _fixed_step("pf_euler", "euler", 1.0)
sample_pf_heun = _fixed_step("pf_heun", "heun", 2.0)
sample_pf_rk4 = _fixed_step("pf_rk4", "rk4", 4.0)


@register("pf_adaptive", stochastic=False, order=None, adaptive=True)
def sample_pf_adaptive(
    run: SamplerRun, *, method: str = "dopri5", rtol: float = 1e-5, atol: float = 1e-5
) -> tuple[Tensor, SampleInfo]:
    """The probability-flow ODE by an adaptive torchdiffeq solver (Song et al. 2021, Sec. 4.3).

    The grid gives the output times only (``[T, eps]`` suffices); the solver picks its steps.
    ``info.nfe`` counts every score evaluation the solver made. The other arguments are those
    of every sampler (:class:`~scoresde.samplers.Sampler`); ``hook`` and ``noise_sampler`` are
    not supported.

    Args:
        run: The validated run (built by :func:`~scoresde.samplers.register.register`).
        method: A torchdiffeq method; its adaptive ones ('dopri5', 'bosh3', 'adaptive_heun',
            'dopri8', 'fehlberg2') choose their steps (``sde.pf_ode.TORCHDIFFEQ_METHODS``).
        rtol: Relative tolerance.
        atol: Absolute tolerance.
    """
    if run.hook is not None:
        raise ValueError("pf_adaptive: per-step hooks need a fixed grid; use a fixed-step sampler")
    sde, x_T, callback = run.sde, run.x_T, run.callback
    if not (rtol > 0 and atol > 0):
        raise ValueError(f"pf_adaptive: expected rtol > 0 and atol > 0, received {rtol}, {atol}")

    t_lo, t_hi = float(run.t.min()), float(run.t.max())

    def field(x: Tensor, t: Tensor) -> Tensor:
        # dx/dt = a(t) x - 1/2 g(t)^2 s(x, t)  (Eq. 13). torchdiffeq's initial-step heuristic
        # probes f(t0 + h0) with an unclamped h0 that can land below eps (even below 0): clamp.
        t = t.to(x.dtype).clamp(t_lo, t_hi)
        return probability_flow_drift(sde.drift(x, t), sde.g2(t), run.score(x, t))

    try:
        # step_t keeps the adaptive steps from overshooting eps (the SDE ends at t = 0).
        opts = {"step_t": run.t[-1:]} if method in ADAPTIVE_METHODS else None
        ys = torchdiffeq.odeint(
            ODEFunc(field), x_T, run.t, rtol=rtol, atol=atol, method=method, options=opts
        )
    except ValueError as err:
        raise ValueError(f"pf_adaptive: {err}") from None
    if callback is not None:
        for i in range(run.n_steps):
            callback(i, run.t[i + 1], ys[i + 1])
    return run.finish(ys[-1], list(ys) if run.keep else None, method=method)
