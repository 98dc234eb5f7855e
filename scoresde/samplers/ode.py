"""Probability-flow ODE samplers: fixed-step Runge–Kutta (Euler, Heun, RK4) and adaptive.

The probability-flow ODE (Song et al. 2021, Eq. 13) for a linear SDE f(x, t) = a(t) x is

    dx/dt = a(t) x - 1/2 g(t)^2 s_theta(x, t),

integrated from t_0 = T down to t_N = eps. The fixed-step solvers are one explicit Runge–Kutta
loop over a Butcher tableau (global order 1, 2, 4 in the step h = max |t_{i+1} - t_i|); the
adaptive one calls ``torchdiffeq.odeint`` (``dopri5`` by default) through :class:`ODEFunc`.

The fixed-step solvers integrate in one of two coordinate systems (``coords``):

* ``'t'``: the ODE above, in t and x;
* ``'noise'``: in the noise level sigma~ = sigma_t / alpha_t and the scaled state x / alpha_t,
  where it reads d(x / alpha_t) / d sigma~ = eps_hat(x, t) = -sigma_t s_theta(x, t) (Karras et
  al. 2022, Eq. 4 with s(t) = alpha_t). For a single data point the trajectories are straight
  lines, so the field varies slowly where the t-form is stiff (near t = eps, and over VE's wide
  range of sigma). Euler in these coordinates is DDIM step for step (Song et al. 2021a, Eq. 14),
  Heun is EDM's deterministic sampler.
"""

from __future__ import annotations

import torch
import torchdiffeq
from torch import Tensor

from .._utils import names_list
from ..sde.pf_ode import ADAPTIVE_METHODS
from ..sde.reverse import drift_coefs, probability_flow_drift
from .adapters import ODEFunc
from .register import RegisteredSampler, register
from .run import SampleInfo, SamplerRun

__all__ = [
    "COORDS",
    "TABLEAUX",
    "sample_pf_adaptive",
    "sample_pf_euler",
    "sample_pf_heun",
    "sample_pf_rk4",
]

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


#: The coordinates a fixed-step PF-ODE sampler integrates in (module docstring).
COORDS = ("t", "noise")


def _rk_loop(run: SamplerRun, tableau: str, coords: str = "t") -> tuple[Tensor, SampleInfo]:
    """Run the explicit Runge–Kutta method ``tableau`` on the PF-ODE over ``run``'s grid."""
    if coords not in COORDS:
        raise ValueError(f"unknown coords {coords!r}; expected one of {names_list(COORDS)}")
    c_nodes, A, b = TABLEAUX[tableau]
    nodes = torch.tensor(c_nodes, dtype=torch.float64)
    if coords == "t":  # independent variable t, state x: dx/dt = a x - 1/2 g^2 s (Eq. 13)
        u64 = run.grid64
    else:  # independent variable sigma~ = sigma_t / alpha_t, state x / alpha_t
        u64 = run.sde.noise_level(run.grid64)
    du64 = u64[1:] - u64[:-1]  # negative steps
    stage_u = u64[:-1, None] + nodes[None] * du64[:, None]  # (N, stages)
    stage_t = stage_u if coords == "t" else run.sde.t_from_noise_level(stage_u)
    # the grid's own times where a stage falls on one, so that the map's round-off never moves it
    stage_t[:, 0] = run.grid64[:-1]
    stage_t[:, nodes == 1.0] = run.grid64[1:, None]
    c = run.coefs(stage_t.reshape(-1))
    if coords == "t":  # PF-ODE drift f - 1/2 g^2 s = c_x x + c_s s at every stage (Eq. 13)
        c_x, c_s = drift_coefs(c.a, c.g2, probability_flow=True)
    else:  # d(x/alpha)/d sigma~ = eps_hat = -sigma_t s (Karras et al. 2022, Eq. 4)
        c_x, c_s = torch.zeros_like(c.sigma), -c.sigma
    c_x, c_s = (v.reshape(stage_t.shape) for v in (c_x, c_s))
    t_stage, du = c.t.reshape(stage_t.shape), du64.to(run.like)
    # x = alpha y in 'noise' (alpha at the stages and on the grid); y is x itself in 't'
    scale = c.alpha.reshape(stage_t.shape) if coords == "noise" else None
    alpha = run.coefs().alpha if coords == "noise" else None

    def step(x: Tensor, i: int) -> Tensor:
        y = x if alpha is None else x / alpha[i]  # the state of the coordinates
        k: list[Tensor] = []
        for j in range(len(c_nodes)):
            # 1. stage state y + du sum_l A_jl k_l
            yj = y
            for l, w in enumerate(A[j]):
                if w != 0.0:
                    yj = yj + (w * du[i]) * k[l]
            # 2. the field at the stage: c_x y + c_s s(x, t) with x = alpha y in 'noise'
            xj = yj if scale is None else scale[i, j] * yj
            k.append(c_x[i, j] * yj + c_s[i, j] * run.score(xj, t_stage[i, j]))
        # 3. combine the stages: y + du sum_j b_j k_j
        incr = k[0] * b[0]
        for w, kj in zip(b[1:], k[1:]):
            incr = incr + w * kj
        y = y + du[i] * incr
        return y if alpha is None else alpha[i + 1] * y

    return run.loop(run.x_T, step)


def _fixed_step(name: str, tableau: str, order: float) -> RegisteredSampler:
    """Register the fixed-step PF-ODE sampler ``name`` on a Butcher tableau."""

    def body(run: SamplerRun, *, coords: str = "t") -> tuple[Tensor, SampleInfo]:
        return _rk_loop(run, tableau, coords)

    body.__name__ = body.__qualname__ = f"sample_{name}"
    body.__doc__ = f"""The probability-flow ODE (Song et al. 2021, Eq. 13), fixed-step {tableau}.

    Arguments, the common ``**options`` and the result are those of every sampler
    (:class:`~scoresde.samplers.Sampler`); any linear SDE. The ODE draws no noise (hooks may).
    ``info.nfe`` = {len(TABLEAUX[tableau][2])} per step.

    Args:
        run: The validated run (built by :func:`~scoresde.samplers.register.register`).
        coords: 't' (the ODE in t and x, Eq. 13) or 'noise' (in sigma~ = sigma_t / alpha_t
            and x / alpha_t, Karras et al. 2022, Eq. 4; module docstring).
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
