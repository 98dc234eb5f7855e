"""Reverse-SDE samplers: Euler–Maruyama, the reverse-diffusion predictor, DDPM and SMLD ancestral.

All integrate the reverse SDE (Song et al. 2021, Eq. 6)

    dx = [f(x, t) - g(t)^2 grad_x log p_t(x)] dt + g(t) dw_bar,    t from T down to eps,

on a caller-given grid t_0 > t_1 > ... > t_N. Each is also a *predictor* of the PC sampler: the
``*_step(run)`` builders return the step closure that both use.

* Euler–Maruyama: x_{i+1} = x_i + [a_i x_i - g_i^2 s_i] dt_i + g_i sqrt(|dt_i|) z_i, dt_i < 0.
* Reverse diffusion (Eq. 46): with (f_i, G_i) = ``sde.discretize`` of the forward chain,
  x_{i+1} = x_i - f_i + G_i^2 s_i + G_i z_i.
* DDPM ancestral (Ho et al. 2020, Alg. 2), VP only: the posterior q(x_{t_{i+1}} | x_{t_i}, x0)
  of the chain whose alpha_bar are the exact alpha_t^2 on the grid (``DDPMSchedule``), with x0
  from Tweedie, and variance beta_tilde (default) or beta.
* SMLD ancestral (Song et al. 2021, Eq. 47), VE only: x_{i+1} = x_i + (sigma_i^2 - sigma_{i+1}^2)
  s_i + sqrt(sigma_{i+1}^2 (sigma_i^2 - sigma_{i+1}^2) / sigma_i^2) z_i.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from .._utils import append_dims, names_list
from ..sde import VESDE, VPSDE, DDPMSchedule, LinearSDE, ScoreFn
from ..sde.reverse import drift_coefs
from .run import Callback, SampleInfo, SamplerRun, prepare, sqrt_pos

__all__ = [
    "PREDICTORS",
    "sample_ddpm",
    "sample_euler_maruyama",
    "sample_reverse_diffusion",
    "sample_smld",
]

Step = Callable[[Tensor, int], Tensor]

#: Posterior variances of the DDPM step (Ho et al. 2020, Sec. 3.2).
DDPM_VARIANCES = ("beta_tilde", "beta")


def euler_maruyama_step(run: SamplerRun) -> Step:
    """The Euler–Maruyama step of the reverse SDE on ``run``'s grid."""
    c = run.coefs()
    dt = c.t[1:] - c.t[:-1]  # negative: time runs backwards
    c_x, c_s = drift_coefs(c.a[:-1], c.g2[:-1])  # reverse drift f - g^2 s = c_x x + c_s s
    keep, k_s, k_z = 1 + c_x * dt, c_s * dt, torch.sqrt(-c.g2[:-1] * dt)

    def step(x: Tensor, i: int) -> Tensor:
        s = run.score(x, run.t[i])  # 1. score s(x_i, t_i)
        z = run.noise(x, run.t[i], run.t[i + 1])  # 2. z_i ~ N(0, I), the Brownian increment
        return keep[i] * x + k_s[i] * s + k_z[i] * z  # 3. x + [f - g^2 s] dt + g sqrt|dt| z

    return step


def reverse_diffusion_step(run: SamplerRun) -> Step:
    """The reverse-diffusion predictor: ``ReverseSDE.discretize``, the forward chain reversed."""
    dts = (run.grid64[:-1] - run.grid64[1:]).tolist()
    probe = run.like[:1]
    for i, dt in enumerate(dts):  # validate the chain once, up front (DDPM needs beta_i < 1)
        run.sde.discretize(probe, run.t[i], dt)
    reverse = run.sde.reverse(run.score)

    def step(x: Tensor, i: int) -> Tensor:
        # 1. (G_i^2 s(x_i, t_i) - f_i, G_i) from the forward chain (f_i, G_i) at t_i
        rev_f, G = reverse.discretize(x, run.t[i], dts[i])
        z = run.noise(x, run.t[i], run.t[i + 1])  # 2. z_i ~ N(0, I)
        return x + rev_f + append_dims(G, x.ndim) * z  # 3. Eq. 46

    return step


def ancestral_step(c_x0: Tensor, c_xt: Tensor, std: Tensor, run: SamplerRun) -> Step:
    """x_{i+1} = c_x0[i] x0_hat + c_xt[i] x_i + std[i] z: a Gaussian posterior step."""
    c = run.coefs()

    def step(x: Tensor, i: int) -> Tensor:
        s = run.score(x, run.t[i])  # 1. score s(x_i, t_i)
        x0 = run.x0(x, s, c.alpha[i], c.sigma[i])  # 2. Tweedie: x0 = (x + sigma^2 s) / alpha
        z = run.noise(x, run.t[i], run.t[i + 1])  # 3. z_i ~ N(0, I)
        return c_x0[i] * x0 + c_xt[i] * x + std[i] * z  # 4. draw from the posterior

    return step


def ddpm_step(run: SamplerRun, variance: str = "beta_tilde") -> Step:
    """DDPM ancestral step on VP with alpha_bar = alpha_t^2 on the grid (any grid works)."""
    if variance not in DDPM_VARIANCES:
        raise ValueError(
            f"ddpm: unknown variance {variance!r}; expected one of {names_list(DDPM_VARIANCES)}"
        )
    alpha, _ = run.sde.marginal(run.grid64.flip(0))  # ascending times eps = t_N, ..., t_0 = T
    table = DDPMSchedule.from_alpha_bars(alpha**2, run.sde.T)
    j = torch.arange(run.n_steps, 0, -1)  # step i goes from table index N - i to N - i - 1
    var = table.beta_tildes if variance == "beta_tilde" else table.betas
    coefs = (table.posterior_coef_x0[j], table.posterior_coef_xt[j], torch.sqrt(var[j]))
    return ancestral_step(*(v.to(run.like) for v in coefs), run)


def smld_step(run: SamplerRun) -> Step:
    """SMLD ancestral step on VE (Song et al. 2021, Eq. 47) with the marginal sigma_t."""
    c = run.coefs()
    s2, s2_next = c.sigma[:-1] ** 2, c.sigma[1:] ** 2
    return ancestral_step(
        1 - s2_next / s2, s2_next / s2, sqrt_pos(s2_next * (s2 - s2_next) / s2), run
    )


def ancestral_auto_step(run: SamplerRun) -> Step:
    """DDPM for VP, SMLD for VE (score_sde's ``AncestralSamplingPredictor``)."""
    if isinstance(run.sde, VESDE):
        return smld_step(run)
    if isinstance(run.sde, VPSDE):
        return ddpm_step(run)
    raise ValueError(
        f"predictor 'ancestral' does not support {type(run.sde).__name__}; expected one of "
        f"{names_list(['VPSDE', 'VESDE'])}"
    )


def _no_step(run: SamplerRun) -> Step:
    return lambda x, i: x


#: Predictors of the PC sampler: ``builder(run) -> step(x, i)``.
PREDICTORS: dict[str, Callable[[SamplerRun], Step]] = {
    "euler_maruyama": euler_maruyama_step,
    "reverse_diffusion": reverse_diffusion_step,
    "ancestral": ancestral_auto_step,
    "none": _no_step,
}


def get_predictor(name: str) -> Callable[[SamplerRun], Step]:
    """The predictor builder called ``name``; ValueError listing the valid ones otherwise."""
    if name not in PREDICTORS:
        raise ValueError(f"unknown predictor {name!r}; expected one of {names_list(PREDICTORS)}")
    return PREDICTORS[name]


def sample_euler_maruyama(
    sde: LinearSDE,
    score_fn: ScoreFn,
    x_T: Tensor,
    grid: Tensor,
    *,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    **options: Any,
) -> tuple[Tensor, SampleInfo]:
    """Euler–Maruyama on the reverse SDE (Song et al. 2021, Eq. 6); any linear SDE.

    Arguments, the common ``**options`` and the result are those of every sampler
    (:class:`~scoresde.samplers.Sampler`).
    """
    run = prepare("euler_maruyama", sde, score_fn, x_T, grid, generator, callback, options)
    return run.loop(x_T, euler_maruyama_step(run))


def sample_reverse_diffusion(
    sde: LinearSDE,
    score_fn: ScoreFn,
    x_T: Tensor,
    grid: Tensor,
    *,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    **options: Any,
) -> tuple[Tensor, SampleInfo]:
    """The reverse-diffusion predictor (Song et al. 2021, Eq. 46); any linear SDE.

    Arguments and the common ``**options`` as every sampler (:class:`~scoresde.samplers.Sampler`).
    """
    run = prepare("reverse_diffusion", sde, score_fn, x_T, grid, generator, callback, options)
    return run.loop(x_T, reverse_diffusion_step(run))


def sample_ddpm(
    sde: LinearSDE,
    score_fn: ScoreFn,
    x_T: Tensor,
    grid: Tensor,
    *,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    variance: str = "beta_tilde",
    **options: Any,
) -> tuple[Tensor, SampleInfo]:
    """DDPM ancestral sampling (Ho et al. 2020, Alg. 2) on a VP SDE, on any grid.

    Arguments and the common ``**options`` as every sampler (:class:`~scoresde.samplers.Sampler`).

    Args:
        variance: Posterior variance 'beta_tilde' (the true posterior, default) or 'beta'.
    """
    run = prepare("ddpm", sde, score_fn, x_T, grid, generator, callback, options)
    return run.loop(x_T, ddpm_step(run, variance))


def sample_smld(
    sde: LinearSDE,
    score_fn: ScoreFn,
    x_T: Tensor,
    grid: Tensor,
    *,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    **options: Any,
) -> tuple[Tensor, SampleInfo]:
    """SMLD ancestral sampling on a VE SDE (Song et al. 2021, Eq. 47).

    Arguments and the common ``**options`` as every sampler (:class:`~scoresde.samplers.Sampler`).
    """
    run = prepare("smld", sde, score_fn, x_T, grid, generator, callback, options)
    return run.loop(x_T, smld_step(run))
