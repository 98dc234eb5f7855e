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
  from Tweedie, and variance beta_tilde (default), beta, Analytic-DPM's v* (Bao et al. 2022,
  :mod:`~scoresde.samplers.analytic_dpm`) or the learned exp(v log beta + (1 - v) log
  beta_tilde) of Nichol & Dhariwal (2021, Eq. 15), v read from the network. On a grid coarser
  than the training chain this is improved DDPM's respacing: beta and beta_tilde are those of the
  respaced chain, beta_j = 1 - alpha_bar(t_j) / alpha_bar(t_{j-1}) between consecutive grid
  times, and v interpolates that pair (Nichol & Dhariwal 2021, Sec. 4).
* SMLD ancestral (Song et al. 2021, Eq. 47), VE only: x_{i+1} = x_i + (sigma_i^2 - sigma_{i+1}^2)
  s_i + sqrt(sigma_{i+1}^2 (sigma_i^2 - sigma_{i+1}^2) / sigma_i^2) z_i.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from .._utils import append_dims, names_list
from ..sde import VESDE, VPSDE, DDPMSchedule, ScoreFn
from ..sde.reverse import drift_coefs
from .analytic_dpm import analytic_dpm_variances, check_vp
from .register import register
from .run import Callback, SampleInfo, SamplerRun, sqrt_pos
from .spec import REVERSE_SDE

__all__ = [
    "PREDICTORS",
    "sample_analytic_ddpm",
    "sample_ddpm",
    "sample_euler_maruyama",
    "sample_reverse_diffusion",
    "sample_smld",
]

Step = Callable[[Tensor, int], Tensor]
#: ``v_fn(x, t) -> v`` shaped like ``x``: the learned interpolation weight of improved DDPM.
VFn = Callable[[Tensor, Tensor], Tensor]

#: Reverse variances of the DDPM step: Ho et al. (2020, Sec. 3.2), Bao et al. (2022), Nichol &
#: Dhariwal (2021).
DDPM_VARIANCES = ("beta_tilde", "beta", "analytic", "learned")


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
    """The reverse-diffusion predictor: ``ReverseSDE.discretize``, the forward chain reversed.

    On VP, score_sde's chain beta_i = beta(t_i) dt_i exists only where beta(t_i) dt_i < 1 (a
    grid of fewer than ~20 steps breaks it near T). On such a grid the step is the exact chain of
    the grid instead, 1 - beta_i = alpha_{t_i}^2 / alpha_{t_{i+1}}^2 (beta(t) dt to first order),
    whose reversed step (x + beta_i s) / sqrt(1 - beta_i) + sqrt(beta_i) z is DDPM's with
    variance beta (Ho et al. 2020, Alg. 2), so a coarse grid never raises.
    """
    dts = (run.grid64[:-1] - run.grid64[1:]).tolist()
    if isinstance(run.sde, VPSDE):
        beta_dt = run.sde.g2(run.grid64[:-1]) * (run.grid64[:-1] - run.grid64[1:])
        if not bool((beta_dt < 1).all()):
            return ddpm_step(run, "beta")
    probe = run.like[:1]
    for i, dt in enumerate(dts):  # validate the chain once, up front
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


def ddpm_table(sde: VPSDE, grid: Tensor) -> DDPMSchedule:
    """The DDPM chain of a decreasing ``grid``: alpha_bar_j = alpha_t^2 at the ascending times.

    Table index j = 0..N is time ``grid[N - j]``; step i of the sampler runs from index N - i to
    N - i - 1 with the posterior of index N - i. On a subset of a training chain's times this is
    improved DDPM's respaced chain (Nichol & Dhariwal 2021, Sec. 4).
    """
    alpha, _ = sde.marginal(grid.to(torch.float64).flip(0))  # ascending: eps = t_N, ..., t_0 = T
    return DDPMSchedule.from_alpha_bars(alpha.detach() ** 2, sde.T)


def ddpm_step(
    run: SamplerRun,
    variance: str = "beta_tilde",
    *,
    gamma: Tensor | None = None,
    v_fn: VFn | None = None,
) -> Step:
    """DDPM ancestral step on VP with alpha_bar = alpha_t^2 on the grid (any grid works)."""
    _check_variance_args(variance, gamma, v_fn)
    sde = run.sde
    assert isinstance(sde, VPSDE)  # the ddpm spec and the 'ancestral' predictor admit VP only
    table = ddpm_table(sde, run.grid64)
    j = torch.arange(run.n_steps, 0, -1)  # step i goes from table index N - i to N - i - 1
    c_x0, c_xt = table.posterior_coef_x0[j], table.posterior_coef_xt[j]
    if v_fn is not None:  # variance 'learned'
        log_pair = (torch.log(table.betas[j]), torch.log(table.beta_tildes[j]))
        return learned_ancestral_step(c_x0, c_xt, *log_pair, v_fn, run)
    if gamma is not None:  # variance 'analytic'
        std = torch.sqrt(analytic_dpm_variances(sde, run.grid64, gamma))
    else:
        var = table.beta_tildes if variance == "beta_tilde" else table.betas
        std = torch.sqrt(var[j])
    like = run.like
    return ancestral_step(c_x0.to(like), c_xt.to(like), std.to(like), run)


def _check_variance_args(variance: str, gamma: Tensor | None, v_fn: VFn | None) -> None:
    if variance not in DDPM_VARIANCES:
        raise ValueError(
            f"ddpm: unknown variance {variance!r}; expected one of {names_list(DDPM_VARIANCES)}"
        )
    for name, value, needs in (("gamma", gamma, "analytic"), ("v_fn", v_fn, "learned")):
        if (value is not None) != (variance == needs):
            raise TypeError(
                f"ddpm: {name} goes with variance={needs!r} and only with it; received "
                f"variance={variance!r} and {name}={type(value).__name__}"
            )
    if v_fn is not None and not callable(v_fn):
        raise TypeError(f"ddpm: expected a callable v_fn(x, t), received {type(v_fn).__name__}")


def learned_ancestral_step(
    c_x0: Tensor, c_xt: Tensor, log_beta: Tensor, log_beta_tilde: Tensor, v_fn: VFn, run: SamplerRun
) -> Step:
    """The ancestral step with Sigma = exp(v log beta + (1 - v) log beta_tilde), v = v_fn(x, t).

    ``v_fn`` is called right after the score, at the same ``x`` and ``t``: a model that computes
    both in one forward pass (:class:`~scoresde.parameterization.EpsVModel`) evaluates once.
    """
    c = run.coefs()
    c_x0, c_xt, lb, lbt = (v.to(run.like) for v in (c_x0, c_xt, log_beta, log_beta_tilde))

    def step(x: Tensor, i: int) -> Tensor:
        s = run.score(x, run.t[i])  # 1. score s(x_i, t_i)
        v = v_fn(x, run.t[i].expand(x.shape[0]))  # 2. the learned weight v(x_i, t_i)
        if not isinstance(v, Tensor) or v.shape != x.shape:
            got = tuple(v.shape) if isinstance(v, Tensor) else type(v).__name__
            raise ValueError(
                f"ddpm: expected v_fn's output shaped like x {tuple(x.shape)}, received {got}"
            )
        std = torch.exp(0.5 * (v * lb[i] + (1 - v) * lbt[i]))  # 3. Nichol & Dhariwal Eq. 15
        x0 = run.x0(x, s, c.alpha[i], c.sigma[i])  # 4. Tweedie: x0 = (x + sigma^2 s) / alpha
        z = run.noise(x, run.t[i], run.t[i + 1])  # 5. z_i ~ N(0, I)
        return c_x0[i] * x0 + c_xt[i] * x + std * z  # 6. draw from N(mu, Sigma)

    return step


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


@register("euler_maruyama", **REVERSE_SDE)
def sample_euler_maruyama(run: SamplerRun) -> tuple[Tensor, SampleInfo]:
    """Euler–Maruyama on the reverse SDE (Song et al. 2021, Eq. 6); any linear SDE.

    Arguments, the common ``**options`` and the result are those of every sampler
    (:class:`~scoresde.samplers.Sampler`).
    """
    return run.loop(run.x_T, euler_maruyama_step(run))


@register("reverse_diffusion", **REVERSE_SDE)
def sample_reverse_diffusion(run: SamplerRun) -> tuple[Tensor, SampleInfo]:
    """The reverse-diffusion predictor (Song et al. 2021, Eq. 46); any linear SDE.

    Arguments and the common ``**options`` as every sampler (:class:`~scoresde.samplers.Sampler`).
    """
    return run.loop(run.x_T, reverse_diffusion_step(run))


@register("ddpm", **REVERSE_SDE, sdes=(VPSDE,))
def sample_ddpm(
    run: SamplerRun,
    *,
    variance: str = "beta_tilde",
    gamma: Tensor | None = None,
    v_fn: VFn | None = None,
) -> tuple[Tensor, SampleInfo]:
    """DDPM ancestral sampling (Ho et al. 2020, Alg. 2) on a VP SDE, on any grid.

    Arguments and the common ``**options`` as every sampler (:class:`~scoresde.samplers.Sampler`).

    Args:
        run: The validated run (built by :func:`~scoresde.samplers.register.register`).
        variance: The reverse variance of each step (module docstring): 'beta_tilde' (the true
            posterior's, default), 'beta', 'analytic' (Bao et al. 2022; needs ``gamma``) or
            'learned' (Nichol & Dhariwal 2021; needs ``v_fn``).
        gamma: For 'analytic': Gamma_t = E||s(x_t, t)||^2 / D at the step-start times
            ``grid[:-1]``, shape ``(N,)`` (:func:`~scoresde.samplers.analytic_dpm.score_norms`).
        v_fn: For 'learned': ``v_fn(x, t) -> v`` shaped like ``x``, evaluated at each step's
            state and time (e.g. :meth:`~scoresde.parameterization.EpsVModel.v_fn`). Its
            evaluations are not counted in ``info.nfe``.
    """
    return run.loop(run.x_T, ddpm_step(run, variance, gamma=gamma, v_fn=v_fn))


@register("smld", **REVERSE_SDE, sdes=(VESDE,))
def sample_smld(run: SamplerRun) -> tuple[Tensor, SampleInfo]:
    """SMLD ancestral sampling on a VE SDE (Song et al. 2021, Eq. 47).

    Arguments and the common ``**options`` as every sampler (:class:`~scoresde.samplers.Sampler`).
    """
    return run.loop(run.x_T, smld_step(run))


def sample_analytic_ddpm(
    sde: VPSDE,
    score_fn: ScoreFn,
    x_T: Tensor,
    grid: Tensor,
    *,
    gamma: Tensor,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    **options: Any,
) -> tuple[Tensor, SampleInfo]:
    """DDPM ancestral sampling with the Analytic-DPM variance (Bao et al. 2022, Alg. 1).

    The same as ``sample_ddpm(..., variance="analytic", gamma=gamma)``: arguments and
    ``**options`` as :func:`sample_ddpm`, plus ``gamma``: Gamma_t at the step-start times
    ``grid[:-1]`` (:func:`~scoresde.samplers.analytic_dpm.score_norms`).
    """
    check_vp(sde, "analytic_ddpm")
    return sample_ddpm(
        sde,
        score_fn,
        x_T,
        grid,
        generator=generator,
        callback=callback,
        variance="analytic",
        gamma=gamma,
        **options,
    )
