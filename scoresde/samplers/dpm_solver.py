"""Exponential integrators in log-SNR: DPM-Solver-1/2/3 (singlestep) and DPM-Solver++(2M).

Lu et al. (2022) write their solvers in half the log-SNR, which we name apart from the log-SNR
lambda_t = log(alpha_t^2 / sigma_t^2) used everywhere else (STYLE.md): lam_half_t = lambda_t / 2
= log(alpha_t / sigma_t) (their lambda_t). With the noise prediction
eps_theta(x, t) = -sigma_t s_theta(x, t), the probability-flow ODE of any linear SDE has the exact
solution (Lu et al. 2022, "DPM-Solver", Eq. 3.4)

    x_t = (alpha_t / alpha_s) x_s - alpha_t int_{lam_half_s}^{lam_half_t} e^{-u} eps_theta du,

whose linear part is integrated exactly. Every step is measured by
h = lam_half_t - lam_half_s (> 0), the step in half the log-SNR:

* DPM-Solver-1 (= DDIM, eta = 0): x_t = (alpha_t/alpha_s) x_s - sigma_t (e^h - 1) eps_s.
* DPM-Solver-2 (Alg. 1, r1 = 1/2) and DPM-Solver-3 (Alg. 2, r1 = 1/3, r2 = 2/3): singlestep,
  k score evaluations per step at the intermediate points lam_half_s + r h; global order k in h.
* DPM-Solver++(2M) (Lu et al. 2022b, Alg. 2): multistep with the data prediction
  x0_theta = (x + sigma_t^2 s_theta) / alpha_t, one evaluation per step, order 2.

Few-step budgets (Lu et al. 2022, Sec. 3.4 and App. D.1; Lu et al. 2022b, Sec. 5): a
singlestep run may mix orders per step (``orders``): :func:`budget_orders` spends an NFE budget
exactly with order-k steps and a lower-order remainder, :func:`fast_orders` is DPM-Solver-fast
(orders 3, ..., 3 then 2/1 so that K = floor(N/3) + 1 steps spend exactly N), and
``lower_order_final`` makes the last step first order, where a large final step h in
half-log-SNR makes high-order corrections unstable. :func:`multistep_order` is the same rule for
multistep solvers (lower-order warm-up, lower-order final steps).

Everything goes through ``marginal``, ``log_snr`` and ``t_from_log_snr``, so VP, sub-VP and VE are
served alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from ..sde import LinearSDE, ScoreFn
from .register import RegisteredSampler, register
from .run import Callback, Coefs, SampleInfo, SamplerRun
from .spec import EXPONENTIAL

__all__ = [
    "SINGLESTEP",
    "budget_orders",
    "fast_orders",
    "multistep_order",
    "sample_dpm_solver",
    "sample_dpm_solver_fast",
    "sample_dpm_solver_pp_2m",
    "step_orders",
]

#: Intermediate fractions r of the step h of the singlestep solvers (Lu et al. 2022, Algs. 1-2).
_RATIOS: dict[int, tuple[float, ...]] = {1: (), 2: (0.5,), 3: (1 / 3, 2 / 3)}


def _check_order(order: object, name: str = "order") -> int:
    if isinstance(order, bool) or order not in _RATIOS:
        raise ValueError(f"dpm_solver: expected {name} 1, 2 or 3, received {order!r}")
    return int(order)


def step_orders(order: int, n_steps: int, lower_order_final: bool = False) -> list[int]:
    """Per-step orders of singlestep DPM-Solver-``order`` on an ``n_steps`` grid.

    Every step has ``order``, except the last, which is first order with ``lower_order_final``.
    """
    _check_order(order)
    last = 1 if lower_order_final else order
    return [order] * (n_steps - 1) + [last]


def budget_orders(order: int, nfe: int, lower_order_final: bool = False) -> list[int]:
    """Per-step orders that spend exactly ``nfe`` evaluations with order-``order`` steps.

    K = ceil(nfe / order) steps: K - 1 of ``order`` and a last one taking the remainder (Lu et
    al.'s reference rule); with ``lower_order_final`` a last step of order > 1 is split into one
    of order - 1 and a final first-order step.
    """
    _check_order(order)
    if isinstance(nfe, bool) or not isinstance(nfe, int) or nfe < 1:
        raise ValueError(f"dpm_solver: expected an integer nfe >= 1, received {nfe!r}")
    k = -(-nfe // order)
    orders = [order] * (k - 1) + [nfe - order * (k - 1)]
    if lower_order_final and orders[-1] > 1:
        orders[-1:] = [orders[-1] - 1, 1]
    return orders


def fast_orders(nfe: int) -> list[int]:
    """DPM-Solver-fast (Lu et al. 2022, Sec. 3.4): K = floor(nfe / 3) + 1 steps spending ``nfe``.

    nfe = 3m: orders 3 (K - 2 times), 2, 1; nfe = 3m + 1: 3 (K - 1 times), 1; nfe = 3m + 2:
    3 (K - 1 times), 2. Fewer than 3 evaluations fall back to first- or second-order steps.
    """
    if isinstance(nfe, bool) or not isinstance(nfe, int) or nfe < 1:
        raise ValueError(f"dpm_solver_fast: expected an integer nfe >= 1, received {nfe!r}")
    m, rest = divmod(nfe, 3)
    if m == 0:
        return [rest]
    return [3] * (m - 1) + ([2, 1] if rest == 0 else [3, rest])


def multistep_order(i: int, n_steps: int, order: int, lower_order_final: bool) -> int:
    """The order of step i (0-based) of an ``order``-step multistep solver on ``n_steps`` steps.

    Lower order while the history fills (i + 1 past values at step i) and, with
    ``lower_order_final``, in the last steps too (order n_steps - i at step i), as in Lu et al.
    (2022b)'s reference code.
    """
    k = min(order, i + 1)
    return min(k, n_steps - i) if lower_order_final else k


def _stage_coefs(run: SamplerRun, ratios: tuple[float, ...]) -> list[Coefs]:
    """The schedule at lam_half_{t_i} + r h_i for each ratio r (h_i in half the log-SNR)."""
    lam_half = 0.5 * run.sde.log_snr(run.grid64)
    h = lam_half[1:] - lam_half[:-1]
    return [run.coefs(run.sde.t_from_log_snr(2 * (lam_half[:-1] + r * h))) for r in ratios]


def _dpm_step(run: SamplerRun, orders: list[int]) -> Callable[[Tensor, int], Tensor]:
    c = run.coefs()
    h = c.lam_half[1:] - c.lam_half[:-1]  # step in half the log-SNR (Lu et al.'s h)
    stages = {k: _stage_coefs(run, _RATIOS[k]) for k in set(orders) if k > 1}

    def eps(x: Tensor, cc: Coefs, i: int) -> Tensor:
        return -cc.sigma[i] * run.score(x, cc.t[i])  # eps_theta = -sigma_t s_theta

    def step(x: Tensor, i: int) -> Tensor:
        order, a_s, a_t, sig_t, hi = orders[i], c.alpha[i], c.alpha[i + 1], c.sigma[i + 1], h[i]
        e_s = eps(x, c, i)  # 1. eps_theta at (x_{t_i}, t_i)
        x_t = (a_t / a_s) * x - sig_t * torch.expm1(hi) * e_s  # 2. first-order (DDIM) update
        if order == 1:
            return x_t
        r, st = _RATIOS[order], stages[order]
        s1 = st[0]  # 3. first intermediate point u1 at lam_half_s + r1 h
        u1 = (s1.alpha[i] / a_s) * x - s1.sigma[i] * torch.expm1(r[0] * hi) * e_s
        d1 = eps(u1, s1, i) - e_s
        if order == 2:  # 4. second-order correction (Alg. 1)
            return x_t - sig_t / (2 * r[0]) * torch.expm1(hi) * d1
        s2 = st[1]  # 4'. second intermediate point u2 at lam_half_s + r2 h (Alg. 2)
        phi2 = torch.expm1(r[1] * hi) / (r[1] * hi) - 1
        u2 = (s2.alpha[i] / a_s) * x - s2.sigma[i] * torch.expm1(r[1] * hi) * e_s
        u2 = u2 - s2.sigma[i] * (r[1] / r[0]) * phi2 * d1
        d2 = eps(u2, s2, i) - e_s
        # 5. third-order correction
        return x_t - sig_t / r[1] * (torch.expm1(hi) / hi - 1) * d2

    return step


def check_orders(orders: Sequence[int], n_steps: int) -> list[int]:
    """Validate a per-step order plan for an ``n_steps`` grid."""
    if isinstance(orders, (str, bytes)) or not isinstance(orders, Sequence):
        raise TypeError(f"dpm_solver: expected orders as a sequence of ints, received {orders!r}")
    out = [_check_order(k, "orders of") for k in orders]
    if len(out) != n_steps:
        raise ValueError(
            f"dpm_solver: expected one order per grid step ({n_steps}), received {len(out)}"
        )
    return out


def _singlestep(order: int) -> RegisteredSampler:
    """Register singlestep DPM-Solver-``order``: per-grid (``step_orders``) and per-budget plans.

    On a grid, the last step is first order with ``lower_order_final``; given an NFE budget,
    :func:`budget_orders` spends it exactly.
    """

    def step_nfes(n_steps: int, o: dict[str, Any]) -> list[int]:
        return step_orders(order, n_steps, o.get("lower_order_final", False))

    def plan(nfe: int, o: dict[str, Any]) -> list[int]:
        return budget_orders(order, nfe, o.get("lower_order_final", False))

    def body(
        run: SamplerRun, *, lower_order_final: bool = False, orders: Sequence[int] | None = None
    ) -> tuple[Tensor, SampleInfo]:
        if orders is None:
            steps = step_orders(order, run.n_steps, bool(lower_order_final))
        else:
            steps = check_orders(orders, run.n_steps)
        return run.loop(run.x_T, _dpm_step(run, steps))

    body.__name__ = body.__qualname__ = f"sample_dpm_solver_{order}"
    body.__doc__ = (
        f"""Singlestep DPM-Solver-{order}: :func:`sample_dpm_solver` with ``order={order}``."""
    )
    meta = {"order": float(order), "nfe_per_step": order, "step_nfes": step_nfes, "plan": plan}
    return register(f"dpm_solver_{order}", **meta, **EXPONENTIAL)(body)


#: The registered singlestep solvers by order.
SINGLESTEP: dict[int, RegisteredSampler] = {k: _singlestep(k) for k in sorted(_RATIOS)}


def sample_dpm_solver(
    sde: LinearSDE,
    score_fn: ScoreFn,
    x_T: Tensor,
    grid: Tensor,
    *,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    order: int = 2,
    **options: Any,
) -> tuple[Tensor, SampleInfo]:
    """Singlestep DPM-Solver (Lu et al. 2022, Algs. 1-2) on any linear SDE.

    Runs the registered ``dpm_solver_<order>``. Arguments, the common ``**options`` and the
    result are those of every sampler (:class:`~scoresde.samplers.Sampler`); a ``log_snr`` grid
    is the natural choice. The solver draws no noise.

    Args:
        sde: A linear SDE.
        score_fn: ``score_fn(x, t) -> grad_x log p_t(x)`` shaped like ``x``.
        x_T: Initial state of shape ``(batch, *dims)`` at ``grid[0]``.
        grid: Strictly decreasing times in [eps, T].
        generator: Unused by the solver (hooks may draw).
        callback: ``callback(i, t_next, x)`` after each step.
        order: 1, 2 or 3: score evaluations per step and global order in h.
        **options: ``lower_order_final`` (make the last step first order, see
            :func:`step_orders`), ``orders`` (an explicit order per grid step, e.g.
            :func:`fast_orders` or :func:`budget_orders`; overrides ``order`` and
            ``lower_order_final``) and the common options.
    """
    fn = SINGLESTEP[_check_order(order)]
    return fn(sde, score_fn, x_T, grid, generator=generator, callback=callback, **options)


@register(
    "dpm_solver_fast",
    order=3.0,
    nfe_per_step=3,
    step_nfes=lambda n, o: fast_orders(3 * n - 1),
    plan=lambda nfe, o: fast_orders(nfe),
    **EXPONENTIAL,
)
def sample_dpm_solver_fast(
    run: SamplerRun, *, orders: Sequence[int] | None = None
) -> tuple[Tensor, SampleInfo]:
    """DPM-Solver-fast (Lu et al. 2022, Sec. 3.4): orders 3/2/1 mixed to spend a budget exactly.

    Arguments as :func:`sample_dpm_solver`. On a K-step grid the plan is
    ``fast_orders(3 K - 1)`` (K - 1 third-order steps, then one second-order step: global order
    3); :func:`~scoresde.samplers.sample` given an NFE N builds the K = floor(N / 3) + 1 step
    grid and passes ``orders=fast_orders(N)``.
    """
    plan = fast_orders(3 * run.n_steps - 1) if orders is None else orders
    return run.loop(run.x_T, _dpm_step(run, check_orders(plan, run.n_steps)))


@register("dpm_solver_pp_2m", order=2.0, **EXPONENTIAL)
def sample_dpm_solver_pp_2m(
    run: SamplerRun, *, lower_order_final: bool = False
) -> tuple[Tensor, SampleInfo]:
    """DPM-Solver++(2M) (Lu et al. 2022b, Alg. 2): multistep, data prediction, order 2.

    Arguments, the common ``**options`` and the result are those of every sampler
    (:class:`~scoresde.samplers.Sampler`); 1 NFE per step, no noise.

    Args:
        run: The validated run (built by :func:`~scoresde.samplers.register.register`).
        lower_order_final: Take the last step at first order (:func:`multistep_order`).
    """
    c = run.coefs()
    h = c.lam_half[1:] - c.lam_half[:-1]  # step in half the log-SNR (Lu et al.'s h)
    prev: list[Tensor] = []  # x0_theta at the previous grid time (multistep memory)

    def step(x: Tensor, i: int) -> Tensor:
        # 1. data prediction x0_theta(x_{t_i}, t_i) = (x + sigma^2 s) / alpha
        x0 = run.x0(x, run.score(x, run.t[i]), c.alpha[i], c.sigma[i])
        # 2. D = x0 (first order) or the linear extrapolation (1 + 1/2r) x0_i - 1/2r x0_{i-1}
        if multistep_order(i, run.n_steps, 2, bool(lower_order_final)) == 2:
            r = h[i - 1] / h[i]
            d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * prev[0]
        else:
            d = x0
        prev[:] = [x0]
        # 3. x_{t_{i+1}} = (sigma_{i+1} / sigma_i) x - alpha_{i+1} (e^{-h} - 1) D
        return (c.sigma[i + 1] / c.sigma[i]) * x - c.alpha[i + 1] * torch.expm1(-h[i]) * d

    return run.loop(run.x_T, step)
