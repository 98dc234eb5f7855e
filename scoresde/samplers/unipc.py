"""UniPC (Zhao et al. 2023): the UniP-p predictor with the UniC corrector, data prediction.

With lambda = log(alpha_t / sigma_t), a step from s = t_i to t = t_{i+1}, h = lambda_t - lambda_s,
hh = -h (the data-prediction sign), x0_theta = (x + sigma^2 s_theta) / alpha and the past
values m_{i-k} at r_k = (lambda_{i-k} - lambda_i) / h (Zhao et al. 2023, Alg. 1-2 and Eq. 7):

    D_k = (m_{i-k} - m_i) / r_k,
    x_t^pred = (sigma_t / sigma_s) x_s - alpha_t (e^{hh} - 1) m_i - alpha_t B(h) sum_k a_k D_k,

where a solves R a = g / B(h), R_{jk} = r_k^{j-1} and g_j = hh phi_{j+1}(hh) j! (phi_k as in
:mod:`.multistep`). UniP-p uses the p - 1 past values (order p); UniC-p adds the evaluation
m_t = x0_theta(x_t^pred, t) as a node at r = 1 and recomputes x_t with the p + 1 nodes
(order p + 1). That evaluation is the next step's m_i, so the corrector costs no extra NFE;
the last step is not corrected (NFE = number of steps).

B(h) is hh ('bh1') or e^{hh} - 1 ('bh2') (Zhao et al. 2023, Sec. 3.1). Where the system has one
unknown (UniP-2, UniC-1), a_1 = 1/2, the h -> 0 limit of the solution (the authors' choice for
these cases), and the variants differ; with two or more unknowns the solve makes the update
independent of B(h).

Warm-up: step i uses order min(p, i + 1); ``lower_order_final`` lowers the last steps of grids
of < 15 steps. Declared orders (in the log-SNR step): p + 1 with the corrector, p without.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from .multistep import check_flag, check_order, order_plan, phi
from .register import register
from .run import SampleInfo, SamplerRun
from .spec import EXPONENTIAL

__all__ = ["UNIPC_VARIANTS", "sample_unipc"]

#: B(h) of each variant, as a function of hh = -h.
UNIPC_VARIANTS = {"bh1": lambda hh: hh, "bh2": torch.expm1}


def _solve(r: Tensor, g: Tensor) -> Tensor:
    """a with R a = g, R_jk = r_k^(j-1); a_1 = 1/2 (the h -> 0 limit) for one unknown."""
    if r.numel() == 1:
        return torch.full((1,), 0.5, dtype=torch.float64)
    R = r[None, :] ** torch.arange(r.numel(), dtype=torch.float64)[:, None]
    return torch.linalg.solve(R, g)


def _step_weights(lam_half: Tensor, i: int, p: int, variant: str) -> tuple[Tensor, Tensor]:
    """Weights of x0 at t_i, t_{i-1}, ... (predictor), and t_{i+1}, t_i, ... (corrector delta).

    x_pred = ratio x + alpha_t sum_j wp_j m_{i-j};  x_corr = x_pred + alpha_t sum_j wc_j m_{i+1-j}.
    """
    h = float(lam_half[i + 1] - lam_half[i])
    hh = torch.tensor(-h, dtype=torch.float64)
    B = UNIPC_VARIANTS[variant](hh)
    g = torch.stack([hh * phi(j + 1, hh) * math.factorial(j) / B for j in range(1, p + 1)])
    r = (lam_half[i - p + 1 : i].flip(0) - lam_half[i]) / h  # r_k, k = 1..p-1 (past nodes)
    a_p = _solve(r, g[: p - 1]) if p > 1 else torch.zeros(0, dtype=torch.float64)
    # predictor: -(e^hh - 1) m_i - B sum_k a_k (m_{i-k} - m_i) / r_k
    wp = torch.cat([(-torch.expm1(hh) + B * (a_p / r).sum()).reshape(1), -B * a_p / r])
    # corrector: nodes r_1..r_{p-1} and 1 (the new evaluation m_{i+1})
    a_c = _solve(torch.cat([r, torch.ones(1, dtype=torch.float64)]), g)
    da = a_c[:-1] - a_p
    wc = torch.cat(
        [(-B * a_c[-1]).reshape(1), (B * ((da / r).sum() + a_c[-1])).reshape(1), -B * da / r]
    )
    return wp, wc


def _unipc_step(
    run: SamplerRun, plan: list[int], variant: str, corrector: bool
) -> Callable[[Tensor, int], Tensor]:
    """The UniP-p step with the UniC correction of the previous step (module docstring)."""
    c = run.coefs()
    lam_half = 0.5 * run.sde.log_snr(run.grid64)  # log(alpha_t / sigma_t), float64
    weights = [_step_weights(lam_half, i, p, variant) for i, p in enumerate(plan)]
    wp = [w[0].to(run.like) for w in weights]
    wc = [w[1].to(run.like) for w in weights]
    hist: list[Tensor] = []  # x0_theta at t_i, t_{i-1}, ... (newest first)

    def step(x: Tensor, i: int) -> Tensor:
        # 1. m_i = x0_theta(x_{t_i}, t_i): the predictor's node and the last corrector's r = 1 node
        hist.insert(0, run.x0(x, run.score(x, run.t[i]), c.alpha[i], c.sigma[i]))
        del hist[max(plan) + 1 :]
        # 2. UniC: correct x_{t_i} with the new evaluation (all but the first step)
        if corrector and i > 0:
            x = x + c.alpha[i] * sum(w * m for w, m in zip(wc[i - 1], hist))
        # 3. UniP: x_{t_{i+1}} from m_i and the divided differences of past m
        poly = sum(w * m for w, m in zip(wp[i], hist))
        return (c.sigma[i + 1] / c.sigma[i]) * x + c.alpha[i + 1] * poly

    return step


@register("unipc", order=3.0, **EXPONENTIAL)
def sample_unipc(
    run: SamplerRun,
    *,
    order: int = 2,
    variant: str = "bh2",
    corrector: bool = True,
    lower_order_final: bool = True,
) -> tuple[Tensor, SampleInfo]:
    """UniPC-p (Zhao et al. 2023): UniP-p predictor, UniC corrector, data prediction, 1 NFE/step.

    Arguments, the common ``**options`` and the result are those of every sampler
    (:class:`~scoresde.samplers.Sampler`); any linear SDE; ``generator`` is unused by the
    solver (hooks may draw); ``callback`` sees x before its correction. ``info.nfe`` = number
    of steps.

    Args:
        run: The validated run (built by :func:`~scoresde.samplers.register.register`).
        order: Predictor order p in {1, 2, 3}.
        variant: B(h): 'bh1' (B = hh) or 'bh2' (B = e^hh - 1).
        corrector: Apply UniC (order p + 1); False gives UniP-p alone (p = 1: DDIM).
        lower_order_final: Lower the orders of the last steps on grids of < 15 steps.
    """
    order = check_order("unipc", order, (1, 2, 3))
    if variant not in UNIPC_VARIANTS:
        raise ValueError(f"unipc: expected variant 'bh1' or 'bh2', received {variant!r}")
    corrector = check_flag("unipc", "corrector", corrector)
    lof = check_flag("unipc", "lower_order_final", lower_order_final)
    plan = order_plan(run.n_steps, order, lof)
    return run.loop(run.x_T, _unipc_step(run, plan, variant, corrector))
