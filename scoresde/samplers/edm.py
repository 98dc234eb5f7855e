"""The EDM stochastic sampler (Karras et al. 2022, Alg. 2) for any linear SDE.

EDM writes the probability-flow ODE in the noise level sigma and the scaled state
x_tilde = x / alpha_t (Karras et al. 2022, Eqs. 4 and 6; Table 1 for VP and VE). For a linear
SDE with x_t = alpha_t x0 + sigma_t eps, sigma = sigma_t / alpha_t = exp(-log_snr / 2) and

    d x_tilde / d sigma = (x_tilde - D(x_tilde; sigma)) / sigma = eps_theta(alpha_t x_tilde, t),

D = x0_theta the denoiser, eps_theta = -sigma_t s_theta and t = t(sigma) from ``t_from_log_snr``.
Algorithm 2 on the grid sigma_i = sigma(t_i):

1. gamma_i = min(S_churn / N, sqrt(2) - 1) if S_tmin <= sigma_i <= S_tmax, else 0;
2. sigma_hat = (1 + gamma_i) sigma_i; x_hat = x_i + sqrt(sigma_hat^2 - sigma_i^2) S_noise z
   (the forward process run up to sigma_hat: exact in distribution when S_noise = 1);
3. Euler from sigma_hat to sigma_{i+1}: x_{i+1} = x_hat + (sigma_{i+1} - sigma_hat) d_i;
4. except at the last step, Heun's correction with d'_i at (x_{i+1}, sigma_{i+1}).

NFE = 2N - 1. S_tmin and S_tmax are noise levels sigma (EDM's t); sigma_hat is capped at
sigma(T), where the SDE (and a model trained on it) ends. With S_churn = 0 this is Heun's
method in sigma (global order 2). With churn every step maps p_{sigma_i} to p_{sigma_hat}
exactly (S_noise = 1) and then runs the ODE, so the samples converge in distribution with the
ODE's order (weak order 2); there is no strong order (the limit is not a reverse SDE driven by a
given Brownian path).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from .register import register
from .run import SampleInfo, SamplerRun
from .spec import EXPONENTIAL

__all__ = ["sample_edm"]


def _check_params(S_churn: float, S_tmin: float, S_tmax: float, S_noise: float) -> None:
    """Validate Algorithm 2's parameters (real, S_churn >= 0, 0 <= S_tmin <= S_tmax, S_noise > 0)."""
    vals = {"S_churn": S_churn, "S_tmin": S_tmin, "S_tmax": S_tmax, "S_noise": S_noise}
    for k, v in vals.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
            raise TypeError(f"edm: expected {k} to be a real number, received {v!r}")
    if S_churn < 0 or not math.isfinite(S_churn):
        raise ValueError(f"edm: expected a finite S_churn >= 0, received {S_churn!r}")
    if not 0 <= S_tmin <= S_tmax:
        raise ValueError(f"edm: expected 0 <= S_tmin <= S_tmax, received {S_tmin!r}, {S_tmax!r}")
    if not 0 < S_noise < math.inf:
        raise ValueError(f"edm: expected a finite S_noise > 0, received {S_noise!r}")


def _edm_step(
    run: SamplerRun, S_churn: float, S_tmin: float, S_tmax: float, S_noise: float
) -> Callable[[Tensor, int], Tensor]:
    """The step of Algorithm 2 on ``run``'s grid (module docstring, steps 1-4)."""
    sig = run.sde.noise_level(run.grid64)  # sigma_i = sigma_t / alpha_t
    sig_max = float(run.sde.noise_level(torch.tensor(run.sde.T, dtype=torch.float64)))
    # 1. gamma_i and sigma_hat_i (churn only inside [S_tmin, S_tmax], capped at sigma(T))
    inside = (sig[:-1] >= S_tmin) & (sig[:-1] <= S_tmax)
    gamma = torch.where(inside, min(S_churn / run.n_steps, math.sqrt(2) - 1), 0.0)
    sig_hat = torch.minimum(sig[:-1] * (1 + gamma), torch.tensor(sig_max, dtype=torch.float64))
    sig_hat = torch.maximum(sig_hat, sig[:-1])
    churn = sig_hat > sig[:-1]
    t_hat = run.sde.t_from_noise_level(sig_hat).clamp(max=run.sde.T)  # round-off
    t_hat = torch.where(churn, t_hat, run.grid64[:-1])
    c, ch = run.coefs(), run.coefs(t_hat)
    noise_std = (S_noise * torch.sqrt(sig_hat**2 - sig[:-1] ** 2)).to(run.like)
    sg, sh = sig.to(run.like), sig_hat.to(run.like)

    def d(x_tilde: Tensor, alpha: Tensor, sigma_t: Tensor, t: Tensor) -> Tensor:
        """dx_tilde/dsigma = eps_theta(alpha x_tilde, t) = -sigma_t s_theta."""
        return -sigma_t * run.score(alpha * x_tilde, t)

    def step(x: Tensor, i: int) -> Tensor:
        x_tilde = x / c.alpha[i]
        # 2. churn: raise the noise level to sigma_hat by adding fresh noise
        if bool(churn[i]):
            x_tilde = x_tilde + noise_std[i] * run.noise(x, run.t[i], run.t[i + 1])
        # 3. Euler step from sigma_hat to sigma_{i+1}
        d_i = d(x_tilde, ch.alpha[i], ch.sigma[i], ch.t[i])
        x_next = x_tilde + (sg[i + 1] - sh[i]) * d_i
        # 4. Heun's second-order correction, except at the last step
        if i < run.n_steps - 1:
            d_next = d(x_next, c.alpha[i + 1], c.sigma[i + 1], run.t[i + 1])
            x_next = x_tilde + (sg[i + 1] - sh[i]) * 0.5 * (d_i + d_next)
        return c.alpha[i + 1] * x_next

    return step


@register(  # Heun except at the last step: 2N - 1 evaluations
    "edm",
    order=2.0,
    nfe_per_step=2,
    step_nfes=lambda n, o: [2] * (n - 1) + [1],
    **EXPONENTIAL,
)
def sample_edm(
    run: SamplerRun,
    *,
    S_churn: float = 0.0,
    S_tmin: float = 0.0,
    S_tmax: float = math.inf,
    S_noise: float = 1.0,
) -> tuple[Tensor, SampleInfo]:
    """EDM's Algorithm 2 (Karras et al. 2022) in sigma = sigma_t / alpha_t, any linear SDE.

    Arguments, the common ``**options`` and the result are those of every sampler
    (:class:`~scoresde.samplers.Sampler`); a ``karras`` grid is EDM's choice; ``generator``
    draws the churn noise (or pass ``seeds`` / ``noise_sampler``). ``info.nfe`` = 2N - 1.

    Args:
        run: The validated run (built by :func:`~scoresde.samplers.register.register`).
        S_churn: Total churn; gamma_i = min(S_churn / N, sqrt(2) - 1). 0: deterministic Heun.
        S_tmin: Smallest noise level sigma at which to churn.
        S_tmax: Largest noise level sigma at which to churn.
        S_noise: Scale of the added noise (EDM uses 1.003-1.007 against over-denoising).
    """
    _check_params(S_churn, S_tmin, S_tmax, S_noise)
    step = _edm_step(run, float(S_churn), float(S_tmin), float(S_tmax), float(S_noise))
    return run.loop(run.x_T, step)
