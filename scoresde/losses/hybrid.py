"""The learned reverse variance of improved DDPM: Sigma = exp(v log beta + (1 - v) log beta_tilde).

Nichol & Dhariwal (2021), "Improved Denoising Diffusion Probabilistic Models", Sec. 3.1. The
network outputs eps_hat and v (shaped like x); the reverse step i -> i - 1 of the N-step chain
(:class:`~scoresde.sde.DDPMSchedule`) is N(mu(x_i, eps_hat), Sigma_i) with (their Eq. 15)

    log Sigma_i = v log beta_i + (1 - v) log beta_tilde_i,

beta_tilde_0 = 0 replaced by beta_tilde_1 (the "clipped" log-variance, as in their code). The
hybrid objective (their Eq. 16) is L_hybrid = L_simple + lambda L_vlb with lambda = 0.001, where the
L_vlb term is N L_i (an unbiased one-step estimate of sum_i L_i) and the mean inside it uses a
stop-gradient on eps_hat, so L_vlb trains only v and L_simple only eps_hat:

    L_i = KL(q(x_{i-1} | x_i, x_0) || N(mu(x_i, sg(eps_hat)), Sigma_i))     (i >= 1, Ho et al. Eq. 5)
    L_0 = -log N(x_0; mu(x_1, sg(eps_hat)), Sigma_0)                        (continuous data)

in nats per dimension. For the mean of the model the KL-optimal Sigma is Analytic-DPM's v*
(Bao et al. 2022): beta_tilde + E||mu_q - mu||^2 / D (:mod:`scoresde.samplers.analytic_dpm`).

:class:`~scoresde.parameterization.EpsVModel` wraps a network with both outputs: ``model(x, t) -> (eps_hat, v)`` for the
loss, ``model.score_fn`` (s = -eps_hat / sigma_t) and ``model.v_fn`` for
``sample_ddpm(..., variance="learned", v_fn=model.v_fn)``, one network evaluation per step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from .._utils import append_dims
from ..sde import DDPMSchedule
from ..sde.ddpm import index_to_time, time_to_index
from ..sde.pf_ode import perturb
from .base import Loss, check_x0

__all__ = ["HybridLoss", "learned_log_variance"]

#: ``eps_v_fn(x, t) -> (eps_hat, v)``, both shaped like ``x``.
EpsVFn = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]


def learned_log_variance(schedule: DDPMSchedule, i: Tensor, v: Tensor) -> Tensor:
    """log Sigma = v log beta_i + (1 - v) log beta_tilde_i (clipped at i = 0), shaped like ``v``."""
    log_bt = torch.log(torch.cat([schedule.beta_tildes[1:2], schedule.beta_tildes[1:]]))
    lb = append_dims(torch.log(schedule.betas)[i].to(v), v.ndim)
    lbt = append_dims(log_bt[i].to(v), v.ndim)
    return v * lb + (1 - v) * lbt


class HybridLoss(Loss):
    """L_simple + lambda N L_i over uniform steps i (Nichol & Dhariwal 2021, Eq. 16).

    Args:
        schedule: The N-step chain.
        lam: lambda (default 0.001, as the paper).
        T: Final time of the continuous clock (step i is queried at t_i = (i + 1) T / N).

    ``terms(model, x0, t, noise)`` takes ``model`` as ``eps_v_fn(x, t) -> (eps_hat, v)``.
    """

    def __init__(self, schedule: DDPMSchedule, lam: float = 1e-3, T: float = 1.0) -> None:
        if not isinstance(schedule, DDPMSchedule):
            raise TypeError(f"HybridLoss needs a DDPMSchedule, received {type(schedule).__name__}")
        if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not lam >= 0:
            raise ValueError(f"HybridLoss: expected lam >= 0, received {lam!r}")
        self.schedule, self.lam, self.T = schedule, float(lam), float(T)

    def sample_t(
        self, n: int, generator: torch.Generator | None, device: Any, dtype: Any
    ) -> Tensor:
        """Draw ``n`` step times t_i, i uniform on 0..N-1 (shape ``(n,)``)."""
        i = torch.randint(0, self.schedule.N, (n,), generator=generator)
        return index_to_time(i, self.schedule.N, self.T).to(device=device, dtype=dtype)

    def parts(self, model: EpsVFn, x0: Tensor, t: Tensor, noise: Tensor) -> tuple[Tensor, Tensor]:
        """(L_simple, L_i) per example, each of shape ``(B,)`` (L_i in nats per dimension)."""
        check_x0(x0)
        sch, n = self.schedule, x0.shape[0]
        i = time_to_index(t.detach().cpu(), sch.N, self.T)
        ab = append_dims(sch.alpha_bars[i].to(x0), x0.ndim)
        x_i = perturb(x0, ab.sqrt(), (1 - ab).sqrt(), noise)
        eps, v = model(x_i, t)
        if eps.shape != x0.shape or v.shape != x0.shape:
            raise ValueError(
                f"HybridLoss: expected eps_hat and v shaped like x {tuple(x0.shape)}, received "
                f"{tuple(eps.shape)} and {tuple(v.shape)}"
            )
        simple = ((eps - noise) ** 2).reshape(n, -1).mean(dim=1)
        x0_hat = (x_i - (1 - ab).sqrt() * eps.detach()) / ab.sqrt()  # stop-gradient on the mean
        c0 = append_dims(sch.posterior_coef_x0[i].to(x0), x0.ndim)
        ct = append_dims(sch.posterior_coef_xt[i].to(x0), x0.ndim)
        mu_p, mu_q = c0 * x0_hat + ct * x_i, c0 * x0 + ct * x_i
        log_var = learned_log_variance(sch, i, v)
        bt = append_dims(sch.beta_tildes[i].to(x0), x0.ndim)
        log_bt = torch.log(bt.clamp_min(torch.finfo(x0.dtype).tiny))
        kl = 0.5 * (-1 + log_var - log_bt + (bt + (mu_q - mu_p) ** 2) * torch.exp(-log_var))
        nll = 0.5 * (math.log(2 * math.pi) + log_var + (x0 - mu_p) ** 2 * torch.exp(-log_var))
        first = append_dims(i == 0, x0.ndim).to(x0.device)
        vlb = torch.where(first, nll, kl).reshape(n, -1).mean(dim=1)
        return simple, vlb

    def terms(self, model: EpsVFn, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:  # type: ignore[override]  # needs the (eps, v) model
        """Per-example L_simple + lambda N L_i, shape ``(B,)``."""
        simple, vlb = self.parts(model, x0, t, noise)
        return simple + self.lam * self.schedule.N * vlb
