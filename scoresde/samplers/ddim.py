"""DDIM(eta) with arbitrary step skipping, DDIM inversion, and latent interpolation (slerp, sqrt).

DDIM (Song, Meng & Ermon 2021, Eq. 12), written for any linear SDE x_t = alpha_t x0 + sigma_t eps
through the score: for a step from s = t_i to t = t_{i+1} < s,

    eps_hat = -sigma_s s_theta(x_s, s),       x0_hat = (x_s - sigma_s eps_hat) / alpha_s,
    x_t = alpha_t x0_hat + sqrt(sigma_t^2 - c^2) eps_hat + c z,
    c^2 = eta^2 sigma_t^2 (sigma_s^2 - (alpha_s / alpha_t)^2 sigma_t^2) / sigma_s^2,

the last factor being the variance of the posterior q(x_t | x_s, x0) (beta_tilde for VP). eta = 0
is deterministic (= DPM-Solver-1); eta = 1 is DDPM ancestral sampling with beta_tilde.
Inversion runs the eta = 0 update forwards in time (Dhariwal & Nichol 2021, Appendix F).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import torch
from torch import Tensor

from ..sde import LinearSDE, ScoreFn
from .register import register
from .run import Callback, SampleInfo, SamplerRun, check_state, prepare, sqrt_pos
from .spec import EXPONENTIAL

__all__ = [
    "INTERPOLATIONS",
    "ddim_interpolate",
    "ddim_invert",
    "sample_ddim",
    "slerp",
    "sqrt_interpolate",
]


def _ddim_step(run: SamplerRun, eta: float) -> Callable[[Tensor, int], Tensor]:
    """The DDIM(eta) step on ``run``'s grid (module docstring)."""
    c = run.coefs()
    a_s, s_s, a_t, s_t = c.alpha[:-1], c.sigma[:-1], c.alpha[1:], c.sigma[1:]
    post_var = s_t**2 * torch.clamp(s_s**2 - (a_s / a_t) ** 2 * s_t**2, min=0.0) / s_s**2
    noise_std = eta * torch.sqrt(post_var)
    eps_coef = sqrt_pos(s_t**2 - noise_std**2)

    def step(x: Tensor, i: int) -> Tensor:
        s = run.score(x, run.t[i])
        eps = -c.sigma[i] * s  # 1. eps_hat = -sigma_s s(x_s, s)
        x0 = run.x0(x, s, c.alpha[i], c.sigma[i])  # 2. x0_hat by Tweedie (Eq. 12, "predicted x0")
        x_t = c.alpha[i + 1] * x0 + eps_coef[i] * eps  # 3. "direction pointing to x_t"
        if eta == 0:
            return x_t
        return x_t + noise_std[i] * run.noise(x, run.t[i], run.t[i + 1])  # 4. random noise

    return step


@register("ddim", order=1.0, **EXPONENTIAL)
def sample_ddim(run: SamplerRun, *, eta: float = 0.0) -> tuple[Tensor, SampleInfo]:
    """DDIM(eta) sampling on any grid (step skipping = a coarse grid); any linear SDE.

    Arguments, the common ``**options`` and the result are those of every sampler
    (:class:`~scoresde.samplers.Sampler`); ``generator`` draws the noise when eta > 0.

    Args:
        run: The validated run (built by :func:`~scoresde.samplers.register.register`).
        eta: Stochasticity in [0, 1]: 0 deterministic (DDIM), 1 DDPM's posterior.
    """
    if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not 0 <= eta <= 1:
        raise ValueError(f"ddim: expected eta in [0, 1], received {eta!r}")
    return run.loop(run.x_T, _ddim_step(run, float(eta)))


#: DDIM inversion runs under DDIM's spec, by its own name in messages and ``SampleInfo``.
_INVERT = replace(sample_ddim.spec, name="ddim_invert")


def ddim_invert(
    sde: LinearSDE, score_fn: ScoreFn, x0: Tensor, grid: Tensor, *, callback: Callback | None = None
) -> tuple[Tensor, SampleInfo]:
    """Encode data into a DDIM latent: the eta = 0 update run from grid[-1] up to grid[0].

    Args:
        sde: A linear SDE.
        score_fn: ``score_fn(x, t)``.
        x0: Data of shape ``(batch, *dims)``, taken as the state at ``grid[-1]`` (= eps).
        grid: The decreasing sampling grid; inversion visits it backwards.
        callback: ``callback(i, t, x)`` after each step (i counts down from N - 1 to 0).

    Returns:
        ``(x_T, info)``: latents at ``grid[0]`` such that ``sample_ddim`` maps them back to
        ``x0`` up to the discretization error (first order in the step).
    """
    run = prepare(_INVERT, sde, score_fn, x0, grid, None, callback, {})
    c = run.coefs()
    x = x0
    for i in range(run.n_steps - 1, -1, -1):
        run.score.step = i
        # 1. eps_hat and x0_hat at the less noisy time t_{i+1}
        s = run.score(x, run.t[i + 1])
        eps = -c.sigma[i + 1] * s
        x0_hat = run.x0(x, s, c.alpha[i + 1], c.sigma[i + 1])
        # 2. move deterministically to the noisier time t_i
        x = c.alpha[i] * x0_hat + c.sigma[i] * eps
        if callback is not None:
            callback(i, run.t[i], x)
    return run.finish(x, None)


def slerp(z0: Tensor, z1: Tensor, w: float) -> Tensor:
    """Spherical interpolation per sample (Shoemake 1985), the DDIM latent path.

    The direction follows the great circle between z0 / |z0| and z1 / |z1|; the squared norm
    interpolates linearly, |z|^2 = (1 - w) |z0|^2 + w |z1|^2. For equal norms this is
    Shoemake's formula sin((1 - w) theta) / sin(theta) z0 + sin(w theta) / sin(theta) z1; unlike
    that formula on raw vectors, it stays bounded for nearly opposite pairs of unequal norms
    (frequent in low dimension), and keeps E|z|^2 of independent prior draws.

    Args:
        z0: Latents of shape ``(batch, *dims)``.
        z1: Latents shaped like ``z0``.
        w: Weight in [0, 1]: 0 gives ``z0``, 1 gives ``z1``.

    Returns:
        Interpolants shaped like ``z0`` (linear interpolation of the directions where the pair
        is nearly parallel).
    """
    if z0.shape != z1.shape:
        raise ValueError(
            f"slerp: expected equal shapes, received {tuple(z0.shape)} and {tuple(z1.shape)}"
        )
    if not 0 <= w <= 1:
        raise ValueError(f"slerp: expected a weight in [0, 1], received {w!r}")
    a, b = z0.reshape(z0.shape[0], -1), z1.reshape(z1.shape[0], -1)
    r0, r1 = a.norm(dim=1, keepdim=True), b.norm(dim=1, keepdim=True)
    u0, u1 = a / r0.clamp_min(1e-30), b / r1.clamp_min(1e-30)
    theta = torch.arccos((u0 * u1).sum(1, keepdim=True).clamp(-1.0, 1.0))
    sin = torch.sin(theta)
    near = sin.abs() < 1e-6
    safe = torch.where(near, torch.ones_like(sin), sin)
    w0 = torch.where(near, 1 - w + 0 * sin, torch.sin((1 - w) * theta) / safe)
    w1 = torch.where(near, w + 0 * sin, torch.sin(w * theta) / safe)
    u = w0 * u0 + w1 * u1
    u = u / u.norm(dim=1, keepdim=True).clamp_min(1e-30)
    r = torch.sqrt((1 - w) * r0**2 + w * r1**2)
    return (r * u).reshape(z0.shape)


def sqrt_interpolate(z0: Tensor, z1: Tensor, w: float) -> Tensor:
    """The study notes' latent interpolation sqrt(1 - w) z0 + sqrt(w) z1.

    For independent z0, z1 ~ N(0, I) the result is exactly N(0, I) at every w (the variances add
    to 1 - w + w), so it stays on the prior, as slerp does approximately and linear
    interpolation does not (its variance (1 - w)^2 + w^2 is 1/2 at w = 1/2).

    Args:
        z0: Latents of shape ``(batch, *dims)``.
        z1: Latents shaped like ``z0``.
        w: Weight in [0, 1]: 0 gives ``z0``, 1 gives ``z1``.
    """
    if z0.shape != z1.shape:
        raise ValueError(
            "sqrt_interpolate: expected equal shapes, received "
            f"{tuple(z0.shape)} and {tuple(z1.shape)}"
        )
    if not 0 <= w <= 1:
        raise ValueError(f"sqrt_interpolate: expected a weight in [0, 1], received {w!r}")
    return (1 - w) ** 0.5 * z0 + w**0.5 * z1


#: Latent interpolations by name (``ddim_interpolate(..., method=)``).
INTERPOLATIONS = {"slerp": slerp, "sqrt": sqrt_interpolate}


def ddim_interpolate(
    sde: LinearSDE,
    score_fn: ScoreFn,
    x_a: Tensor,
    x_b: Tensor,
    weights: Tensor,
    grid: Tensor,
    method: str = "slerp",
) -> Tensor:
    """Interpolate data through DDIM latents: invert, interpolate, decode with eta = 0.

    Args:
        sde: A linear SDE.
        score_fn: ``score_fn(x, t)``.
        x_a: Data of shape ``(batch, *dims)``.
        x_b: Data shaped like ``x_a``.
        weights: Interpolation weights in [0, 1], shape ``(W,)``.
        grid: The decreasing grid used by inversion and sampling.
        method: ``"slerp"`` or ``"sqrt"`` (:data:`INTERPOLATIONS`).

    Returns:
        Decoded interpolants of shape ``(W, batch, *dims)``.
    """
    if method not in INTERPOLATIONS:
        raise ValueError(
            f"ddim_interpolate: unknown method {method!r}; expected one of "
            f"{', '.join(repr(k) for k in sorted(INTERPOLATIONS))}"
        )
    interpolate = INTERPOLATIONS[method]
    check_state(x_a, name="x_a")
    check_state(x_b, name="x_b")
    z, _ = ddim_invert(sde, score_fn, torch.cat([x_a, x_b]), grid)
    z_a, z_b = z[: x_a.shape[0]], z[x_a.shape[0] :]
    outs = [sample_ddim(sde, score_fn, interpolate(z_a, z_b, float(w)), grid)[0] for w in weights]
    return torch.stack(outs)
