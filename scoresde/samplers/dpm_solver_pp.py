"""DPM-Solver++(kM) multistep (k = 1, 2, 3) and DPM-Solver++(2M) SDE (Lu et al. 2022b).

Both solvers use the data prediction x0_theta = (x + sigma_t^2 s_theta) / alpha_t and the half
log-SNR lambda = log(alpha_t / sigma_t) of any linear SDE (VP, sub-VP, VE).

**DPM-Solver++(kM)** (Lu et al. 2022b, Sec. 4 and Alg. 2 for k = 2): the exact solution

    x_t = (sigma_t / sigma_s) x_s + sigma_t int_{lambda_s}^{lambda_t} e^{lambda} x0_theta dlambda

with x0_theta replaced by the polynomial through its last k values, integrated exactly
(:func:`~scoresde.samplers.multistep.exp_poly_weights`; global order k in the log-SNR step h).
The first steps use lower orders while the history fills; ``lower_order_final`` lowers the last
steps of short grids. One score evaluation per step.

**DPM-Solver++(2M) SDE** (Lu et al. 2022b, Appendix; "SDE-DPM-Solver++(2M)"): the reverse SDE
dx = [f - g^2 s] dt + g dw-bar solved in the same variables,

    x_t = (sigma_t / sigma_s) e^{-h} x_s + alpha_t int 2 e^{-2 (lambda_t - lambda)} x0_theta dlambda
          + sigma_t sqrt(1 - e^{-2h}) z,

the integral again over the linear interpolant of the last two x0_theta (in mu = 2 lambda it is
the ODE's integral, so the same weights serve), z ~ N(0, I) from the run's noise source. The
noise term has the exact variance of the stochastic integral. Weak order 2 (asserted exactly on
Gaussian data, ``tests/test_solvers_weak.py``); driven by increments of one Brownian path
(``noise_sampler``) its strong error decays like the step in t (measured slopes 1.0-1.4).

Warm-up: a k-step method's first step is first order, an O(h^2) global error whose constant is
the variation of x0_theta over the first step; negligible when the prior is much noisier than
the data (VP, sub-VP), it caps the order at 2 on fine grids otherwise (see the docs page).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .multistep import check_flag, check_order, exp_poly_weights, order_plan
from .register import register
from .run import SampleInfo, SamplerRun
from .spec import EXPONENTIAL

__all__ = ["sample_dpm_solver_pp", "sample_dpm_solver_pp_2m_sde"]


def _weights(run: SamplerRun, plan: list[int], scale: float) -> list[Tensor]:
    """Per step i, weights of x0 at grid times i, i-1, ... (in ``scale`` * lambda)."""
    u = 0.5 * run.sde.log_snr(run.grid64) * scale  # half the log-SNR, times ``scale``
    out = []
    for i, k in enumerate(plan):
        nodes = u[i - k + 1 : i + 1].flip(0)  # u_i, u_{i-1}, ...
        out.append(exp_poly_weights(nodes, float(u[i]), float(u[i + 1])).to(run.like))
    return out


def _multistep(
    run: SamplerRun, plan: list[int], stochastic: bool
) -> Callable[[Tensor, int], Tensor]:
    """The multistep data-prediction step: DPM-Solver++(kM), or its SDE form if ``stochastic``."""
    c = run.coefs()
    w = _weights(run, plan, 2.0 if stochastic else 1.0)
    h = c.lam_half[1:] - c.lam_half[:-1]
    hist: list[Tensor] = []  # x0_theta at t_i, t_{i-1}, ... (newest first)

    def step(x: Tensor, i: int) -> Tensor:
        # 1. data prediction x0_theta(x_{t_i}, t_i) = (x + sigma^2 s) / alpha
        hist.insert(0, run.x0(x, run.score(x, run.t[i]), c.alpha[i], c.sigma[i]))
        del hist[max(plan) :]
        # 2. the exactly integrated interpolating polynomial: alpha_t sum_j w_j x0_j
        poly = sum(wj * xj for wj, xj in zip(w[i], hist))
        ratio = c.sigma[i + 1] / c.sigma[i]
        if not stochastic:  # 3. x_t = (sigma_t / sigma_s) x_s + alpha_t sum_j w_j x0_j
            return ratio * x + c.alpha[i + 1] * poly
        # 3'. x_t = (sigma_t / sigma_s) e^{-h} x_s + alpha_t sum_j w_j x0_j + sigma_t sqrt(.) z
        z = run.noise(x, run.t[i], run.t[i + 1])
        noise_std = c.sigma[i + 1] * torch.sqrt(-torch.expm1(-2 * h[i]))
        return ratio * torch.exp(-h[i]) * x + c.alpha[i + 1] * poly + noise_std * z

    return step


@register("dpm_solver_pp_3m", order=3.0, **EXPONENTIAL)
def sample_dpm_solver_pp(
    run: SamplerRun, *, order: int = 3, lower_order_final: bool = True
) -> tuple[Tensor, SampleInfo]:
    """DPM-Solver++(kM), k = ``order`` (Lu et al. 2022b): multistep, data prediction, 1 NFE/step.

    Arguments, the common ``**options`` and the result are those of every sampler
    (:class:`~scoresde.samplers.Sampler`); any linear SDE, a ``log_snr`` grid is the natural
    choice; ``generator`` is unused by the solver (hooks may draw). ``info.nfe`` = number of
    steps.

    Args:
        run: The validated run (built by :func:`~scoresde.samplers.register.register`).
        order: 1, 2 or 3 (global order in the log-SNR step; 1 is DDIM).
        lower_order_final: Lower the orders of the last steps on grids of < 15 steps.
    """
    order = check_order("dpm_solver_pp", order, (1, 2, 3))
    lof = check_flag("dpm_solver_pp", "lower_order_final", lower_order_final)
    return run.loop(run.x_T, _multistep(run, order_plan(run.n_steps, order, lof), False))


@register(
    "dpm_solver_pp_2m_sde",
    stochastic=True,
    order=None,
    weak_order=2.0,
    order_variable="log_snr",
    description=(
        "weak order 2 (exact moments on Gaussian data, tests/test_solvers_weak.py); "
        "strong order ~1 in t on a shared Brownian path (measured 1.0-1.4, not asserted)"
    ),
)
def sample_dpm_solver_pp_2m_sde(
    run: SamplerRun, *, lower_order_final: bool = True
) -> tuple[Tensor, SampleInfo]:
    """SDE-DPM-Solver++(2M) (Lu et al. 2022b): the reverse SDE, multistep, 1 NFE per step.

    Arguments, the common ``**options`` and the result are those of every sampler
    (:class:`~scoresde.samplers.Sampler`); any linear SDE; ``generator`` draws the noise (or
    pass ``seeds`` / ``noise_sampler``). ``info.nfe`` = number of steps.

    Args:
        run: The validated run (built by :func:`~scoresde.samplers.register.register`).
        lower_order_final: First order at the last step on grids of < 15 steps.
    """
    lof = check_flag("dpm_solver_pp_2m_sde", "lower_order_final", lower_order_final)
    return run.loop(run.x_T, _multistep(run, order_plan(run.n_steps, 2, lof), True))
