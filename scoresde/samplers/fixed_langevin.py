"""Plain Langevin dynamics and SGLD at one fixed time t: sampling p_t from its score alone.

The study notes' Langevin section (Welling & Teh 2011, Eq. 4; Song & Ermon 2019, Eq. 4): with
step sizes delta_k and z_k ~ N(0, I),

    x_{k+1} = x_k + (delta_k / 2) grad_x log p_t(x_k) + sqrt(delta_k) z_k.

With a constant step this is the unadjusted Langevin algorithm: it samples p_t only as
delta -> 0, with an O(delta) bias in its stationary law (for a Gaussian N(0, s^2) the stationary
variance is exactly s^2 / (1 - delta / (4 s^2))). SGLD takes Welling & Teh's decreasing steps
delta_k = a (b + k)^(-gamma), gamma in (0.5, 1], which removes the bias as k grows (the score may
then be a noisy, e.g. minibatch, estimate). Unlike :func:`~scoresde.samplers.sample_pc` this
does not anneal over t: it is the inner loop of annealed Langevin, on its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from .._utils import as_time, check_finite
from .run import CountedScore, SampleInfo

__all__ = ["sample_langevin_fixed_t", "sgld_step_sizes"]


def sgld_step_sizes(n_steps: int, a: float, b: float = 1.0, gamma: float = 0.55) -> Tensor:
    """Welling & Teh's (2011) decreasing steps delta_k = a (b + k)^(-gamma), k = 0..n_steps-1."""
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 1:
        raise ValueError(f"sgld_step_sizes: expected an integer n_steps >= 1, received {n_steps!r}")
    if not (a > 0 and b > 0 and 0.5 < gamma <= 1):
        raise ValueError(
            f"sgld_step_sizes: expected a > 0, b > 0 and 0.5 < gamma <= 1, received a={a!r}, "
            f"b={b!r}, gamma={gamma!r}"
        )
    k = torch.arange(n_steps, dtype=torch.float64)
    return a * (b + k) ** (-gamma)


def _steps(step_size: float | Tensor, n_steps: int | None) -> Tensor:
    if isinstance(step_size, Tensor):
        steps = step_size.detach().to(torch.float64).cpu()
        if steps.ndim != 1 or steps.numel() < 1:
            raise ValueError(
                "sample_langevin_fixed_t: expected step_size to be a float or a 1-D tensor of "
                f"step sizes, received shape {tuple(steps.shape)}"
            )
    elif isinstance(step_size, bool) or not isinstance(step_size, (int, float)):
        raise TypeError(
            "sample_langevin_fixed_t: expected step_size to be a float or a 1-D tensor, "
            f"received {type(step_size).__name__}"
        )
    else:
        if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 1:
            raise ValueError(
                f"sample_langevin_fixed_t: expected an integer n_steps >= 1, received {n_steps!r}"
            )
        steps = torch.full((n_steps,), float(step_size), dtype=torch.float64)
    if not bool(torch.isfinite(steps).all()) or not bool((steps > 0).all()):
        raise ValueError(
            f"sample_langevin_fixed_t: expected finite step sizes > 0, received min "
            f"{float(steps.min()):.4g}"
        )
    return steps


def sample_langevin_fixed_t(
    score_fn: Callable[[Tensor, Tensor], Tensor],
    x_init: Tensor,
    t: float | Tensor,
    step_size: float | Tensor,
    n_steps: int | None = None,
    *,
    generator: torch.Generator | None = None,
    callback: Callable[[int, Tensor], None] | None = None,
) -> tuple[Tensor, SampleInfo]:
    """Run Langevin dynamics (constant step) or SGLD (a tensor of steps) on p_t at a fixed t.

    Args:
        score_fn: ``score_fn(x, t) -> grad_x log p_t(x)`` shaped like ``x`` (exact or learned;
            a noisy estimate is what makes it SGLD).
        x_init: Starting points of shape ``(batch, *dims)`` (e.g. prior draws).
        t: The fixed time (a float, or a 0-d tensor) at which the score is queried.
        step_size: A constant delta (with ``n_steps``) or a 1-D tensor of steps delta_k (e.g.
            :func:`sgld_step_sizes`), in units of x^2.
        n_steps: Number of steps for a constant ``step_size`` (ignored for a tensor).
        generator: Generator of the noise.
        callback: ``callback(k, x)`` after step k.

    Returns:
        ``(x, info)``: the final states and a :class:`SampleInfo` (``grid`` holds the step sizes;
        ``nfe`` counts score calls).
    """
    if not isinstance(x_init, Tensor) or x_init.ndim < 1 or x_init.shape[0] < 1:
        raise ValueError(
            "sample_langevin_fixed_t: expected x_init of shape (batch, *dims), received "
            f"{tuple(x_init.shape) if isinstance(x_init, Tensor) else type(x_init).__name__}"
        )
    check_finite(x_init, name="sample_langevin_fixed_t: x_init")
    steps = _steps(step_size, n_steps)
    tt = as_time(t, like=x_init)
    if tt.ndim != 0 or not math.isfinite(float(tt)):
        raise ValueError(f"sample_langevin_fixed_t: expected one finite time t, received {t!r}")
    score = CountedScore(score_fn, x_init)
    x = x_init.clone()
    for k, delta in enumerate(steps.tolist()):
        score.step = k
        z = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        x = x + 0.5 * delta * score(x, tt) + math.sqrt(delta) * z  # Welling & Teh, Eq. 4
        if callback is not None:
            callback(k, x)
    info = SampleInfo("langevin_fixed_t", score.nfe, steps.to(x.dtype))
    return x, info
