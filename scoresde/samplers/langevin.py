"""Correctors and the predictor–corrector (PC) sampler (Song et al. 2021, Sec. 4.2, Algs. 2-5).

A corrector runs ``n_steps`` of Langevin MCMC targeting p_t at a fixed time t:

    x <- x + e s_theta(x, t) + sqrt(2 e) z,    z ~ N(0, I).

* ``langevin`` (Algs. 4-5): the step size is set from a signal-to-noise ratio ``snr``,
  e = 2 r (snr ||z|| / ||s_theta||)^2, computed **per sample** (the reference code averages the
  norms over the batch, which makes a sample depend on its batch), with
  r = (alpha_{t_i} / alpha_{t_{i+1}})^2 (= 1 - beta_i for VP, 1 for VE).
* ``ald``, annealed Langevin dynamics (Song & Ermon 2019, Alg. 1): e = 2 r (snr sigma_t)^2.

The PC sampler takes a predictor step from t_i to t_{i+1}, then corrects at t_{i+1} (Alg. 2);
``sample_annealed_langevin`` is PC with no predictor and the ALD corrector, for VE.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from .._utils import append_dims, names_list
from ..sde import LinearSDE
from ._core import SampleInfo, SamplerRun, prepare
from .sde_samplers import get_predictor

__all__ = ["CORRECTORS", "sample_annealed_langevin", "sample_pc"]

Step = Callable[[Tensor, int], Tensor]


def _langevin_corrector(run: SamplerRun, snr: float, n_steps: int, adaptive: bool) -> Step:
    c = run.coefs()
    ratio = (c.alpha[:-1] / c.alpha[1:]) ** 2  # r_i in (0, 1]
    ald_step = 2 * ratio * (snr * c.sigma[1:]) ** 2  # annealed Langevin step per grid time

    def step(x: Tensor, i: int) -> Tensor:
        t = run.t[i + 1]
        for _ in range(n_steps):
            s = run.score(x, t)  # 1. score at the corrected time t_{i+1}
            z = run.noise(x, t, t)  # 2. fresh noise
            if adaptive:  # 3. per-sample step from the signal-to-noise ratio (Alg. 4)
                z_norm = z.reshape(z.shape[0], -1).norm(dim=1)
                s_norm = s.reshape(s.shape[0], -1).norm(dim=1).clamp_min(1e-30)
                e = append_dims(2 * ratio[i] * (snr * z_norm / s_norm) ** 2, x.ndim)
            else:  # 3'. annealed step from the marginal noise level
                e = ald_step[i]
            x = x + e * s + torch.sqrt(2 * e) * z  # 4. Langevin update
        return x

    return step


def langevin_corrector(run: SamplerRun, snr: float, n_steps: int) -> Step:
    """Langevin corrector with per-sample step sizes from ``snr`` (Song et al. 2021, Alg. 4)."""
    return _langevin_corrector(run, snr, n_steps, adaptive=True)


def ald_corrector(run: SamplerRun, snr: float, n_steps: int) -> Step:
    """Annealed-Langevin-dynamics corrector, e = 2 r (snr sigma_t)^2 (Song & Ermon 2019)."""
    return _langevin_corrector(run, snr, n_steps, adaptive=False)


def _no_corrector(run: SamplerRun, snr: float, n_steps: int) -> Step:
    return lambda x, i: x


#: Correctors of the PC sampler: ``builder(run, snr, n_steps) -> step(x, i)``.
CORRECTORS: dict[str, Callable[[SamplerRun, float, int], Step]] = {
    "langevin": langevin_corrector,
    "ald": ald_corrector,
    "none": _no_corrector,
}


def check_corrector_args(corrector: str, snr: float, n_steps: int) -> None:
    """Validate the corrector name, ``snr`` > 0 and an integer ``n_steps`` >= 0."""
    if corrector not in CORRECTORS:
        raise ValueError(
            f"unknown corrector {corrector!r}; expected one of {names_list(CORRECTORS)}"
        )
    if isinstance(snr, bool) or not isinstance(snr, (int, float)) or not 0 < snr < float("inf"):
        raise ValueError(f"pc: expected a finite snr > 0, received {snr!r}")
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 0:
        raise ValueError(f"pc: expected an integer n_steps >= 0, received {n_steps!r}")


def sample_pc(
    sde: LinearSDE, score_fn: Any, x_T: Tensor, grid: Tensor, *,
    generator: torch.Generator | None = None, callback: Any = None,
    predictor: str = "reverse_diffusion", corrector: str = "langevin",
    snr: float = 0.16, n_steps: int = 1, **options: Any,
) -> tuple[Tensor, SampleInfo]:  # fmt: skip
    """Predictor–corrector sampling (Song et al. 2021, Alg. 1): any predictor, any corrector.

    Args:
        sde: A linear SDE (VP, sub-VP, VE).
        score_fn: ``score_fn(x, t) -> grad_x log p_t(x)`` shaped like ``x``.
        x_T: Initial state of shape ``(batch, *dims)`` at ``grid[0]``.
        grid: Strictly decreasing times in [eps, T], shape ``(N + 1,)``.
        generator: Generator of every random draw.
        callback: ``callback(i, t_next, x)`` after each predictor + corrector step.
        predictor: 'reverse_diffusion' (default), 'euler_maruyama', 'ancestral' or 'none'.
        corrector: 'langevin' (default), 'ald' or 'none'.
        snr: Signal-to-noise ratio of the corrector (0.16 in the paper for VE on CIFAR-10).
        n_steps: Corrector steps per grid time.
        **options: Common options (see :mod:`scoresde.samplers._core`).

    Returns:
        ``(x, info)``; ``info.nfe`` = N (1 + n_steps) (minus N without a predictor).
    """
    predict = get_predictor(predictor)
    check_corrector_args(corrector, snr, n_steps)
    run = prepare("pc", sde, score_fn, x_T, grid, generator, callback, options)
    p_step, c_step = predict(run), CORRECTORS[corrector](run, float(snr), n_steps)
    return run.loop(x_T, lambda x, i: c_step(p_step(x, i), i))


def sample_annealed_langevin(
    sde: LinearSDE, score_fn: Any, x_T: Tensor, grid: Tensor, *,
    generator: torch.Generator | None = None, callback: Any = None,
    snr: float = 0.16, n_steps: int = 1, **options: Any,
) -> tuple[Tensor, SampleInfo]:  # fmt: skip
    """Annealed Langevin dynamics on a VE SDE (Song & Ermon 2019, Alg. 1).

    ``n_steps`` Langevin steps at each noise level sigma_{t_1} > ... > sigma_{t_N}, step size
    2 (snr sigma_t)^2; arguments as :func:`sample_pc`.
    """
    check_corrector_args("ald", snr, n_steps)
    run = prepare("annealed_langevin", sde, score_fn, x_T, grid, generator, callback, options)
    return run.loop(x_T, ald_corrector(run, float(snr), n_steps))
