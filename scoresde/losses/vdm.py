"""The continuous-time VLB of Variational Diffusion Models, and its variance-minimising schedule.

Kingma, Salimans, Poole & Ho (2021), "Variational Diffusion Models" (VDM), Sec. 3-5. For a VP
diffusion with gamma(t) = -lambda(t) (:class:`~scoresde.sde.learned.LearnedLogSNR`),
z_t = alpha_t x + sigma_t eps with alpha_t^2 = sigmoid(-gamma_t), sigma_t^2 = sigmoid(gamma_t), and
an eps model eps_hat(z_t, t), the bound -log p(x) <= L(x) has three terms (nats, D = dim x):

* prior (VDM Eq. 11):     L_prior = KL(q(z_1 | x) || N(0, I))
                                  = 1/2 sum_d (sigma_1^2 + alpha_1^2 x_d^2 - 1 - log sigma_1^2),
* reconstruction:         L_recon = E_q(z_0|x)[-log p(x | z_0)] = D/2 (log 2 pi + gamma_0 + 1),
  for the Gaussian decoder p(x | z_0) = N(z_0 / alpha_0, e^{gamma_0} I) of continuous data,
* diffusion (VDM Eq. 17): L_inf = 1/2 E_{eps, t ~ U(0, 1)} [ gamma'(t) || eps - eps_hat(z_t; t) ||^2 ].

In Song et al.'s (2021) notation g(t)^2 / sigma_t^2 = gamma'(t), so L_inf is the DSM loss with the
likelihood weighting lambda(t) = g(t)^2 (Song, Durkan, Murray & Ermon 2021, Thm. 1).

**Invariance** (VDM Eq. 19-20): with v = SNR = e^{-gamma}, L_inf = 1/2 E int_{v_1}^{v_0}
||x - x_hat(z_v, v)||^2 dv; for a model that sees the noise level (not t), L depends on the schedule
only through its end points gamma_0, gamma_1. The shape between them only changes the Monte
Carlo variance of the one-sample estimator, so VDM trains it to minimise that variance: since
E[L] does not depend on the shape eta, d Var / d eta = d E[L^2] / d eta = E[2 L dL / d eta].

:func:`vdm_vlb` implements that with a gradient hook: the shape r(t) of the schedule
(:meth:`~scoresde.sde.learned.LearnedLogSNR.shape`) enters the loss through a pass-through
function whose backward multiplies the incoming gradient by 2 L_diffusion. Averaged over the
batch, the network and the end points receive d mean(L) and the shape receives d mean(L^2)
from one ``backward()``: the loss plugs into :func:`scoresde.training.train` unchanged.
The hook sees only the paths through the loss's own gamma(t) (the noising and the weight
gamma'(t)); condition the network on t, as VDM does, or on a detached log-SNR.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..parameterization import ScoreModel
from ..sde import VPSDE
from ..sde.learned import LearnedLogSNR
from ..sde.pf_ode import marginal_from_log_snr, perturb
from .base import Loss, check_x0, eps_fn_of, predict_eps

__all__ = ["VDMLoss", "VDMTerms", "vdm_vlb"]

_LOG_2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
class VDMTerms:
    """The three terms of the VDM bound per example, in nats, each of shape ``(batch,)``."""

    prior: Tensor
    recon: Tensor
    diffusion: Tensor

    @property
    def total(self) -> Tensor:
        """L(x) = L_prior + L_recon + L_inf >= -log p(x), shape ``(batch,)``."""
        return self.prior + self.recon + self.diffusion

    def bits_per_dim(self, dim: int) -> Tensor:
        """``total`` in bits per dimension for data of ``dim`` dimensions (no quantisation)."""
        return self.total / (dim * math.log(2))


class _VarianceGrad(torch.autograd.Function):
    """Identity forward; backward scales the gradient by 2 L (stored in ``box`` after forward)."""

    @staticmethod
    def forward(ctx: Any, r: Tensor, dr: Tensor, box: list[Tensor]) -> tuple[Tensor, Tensor]:
        ctx.box = box
        return r.view_as(r), dr.view_as(dr)

    @staticmethod
    def backward(ctx: Any, g_r: Tensor, g_dr: Tensor) -> tuple[Tensor, Tensor, None]:
        scale = 2 * ctx.box[0]
        return g_r * scale, g_dr * scale, None


def _schedule_of(schedule: LearnedLogSNR | VPSDE) -> LearnedLogSNR:
    if isinstance(schedule, VPSDE):
        schedule = schedule.schedule
    if not isinstance(schedule, LearnedLogSNR):
        raise TypeError(
            "vdm_vlb: expected a LearnedLogSNR or a VPSDE built on one, received "
            f"{type(schedule).__name__}"
        )
    return schedule


def vdm_vlb(
    model: ScoreModel | Any,
    schedule: LearnedLogSNR | VPSDE,
    x0: Tensor,
    t: Tensor,
    noise: Tensor,
    *,
    variance_grad: bool = True,
    y: Any = None,
) -> VDMTerms:
    """The VDM bound per example, with a one-sample (t, eps) estimate of the diffusion term.

    Args:
        model: A :class:`~scoresde.parameterization.ScoreModel` (its ``eps_fn``) or a callable
            ``eps_fn(z, t)``.
        schedule: The learned schedule, or the :class:`~scoresde.sde.VPSDE` built on it.
        x0: Data in model units, shape ``(batch, *dims)``.
        t: Times in [0, 1], shape ``(batch,)`` (uniform draws give an unbiased estimate).
        noise: eps ~ N(0, I), shaped like ``x0``.
        variance_grad: Route d mean(L_inf^2) instead of d mean(L_inf) to the schedule's shape
            (module docstring). The returned values are the same either way.
        y: Class labels of a conditional model, shape ``(batch,)`` (``None``: unconditional).

    Returns:
        The :class:`VDMTerms`.

    Raises:
        TypeError: If ``schedule`` is not a learned schedule or ``model`` is not callable.
        ValueError: For mismatched shapes or times outside [0, 1].
    """
    sched = _schedule_of(schedule)
    eps_fn_of(model)  # a ScoreModel or a callable, else TypeError
    check_x0(x0)
    if noise.shape != x0.shape or t.shape != (x0.shape[0],):
        raise ValueError(
            f"vdm_vlb: expected t of shape ({x0.shape[0]},) and noise of shape "
            f"{tuple(x0.shape)}, received {tuple(t.shape)} and {tuple(noise.shape)}"
        )
    if t.device.type == "cpu" and bool(((t < 0) | (t > 1)).any()):
        raise ValueError("vdm_vlb: expected times t in [0, 1]")
    n, dim = x0.shape[0], x0[0].numel()
    r, dr = sched.shape(t.to(x0.dtype))
    box: list[Tensor] = []
    if variance_grad:
        r, dr = _VarianceGrad.apply(r, dr, box)
    gamma, dgamma = sched.gamma_from_shape(r, dr)
    z = perturb(x0, *marginal_from_log_snr(-gamma), noise)  # gamma = -lambda
    sq = ((noise - predict_eps(model, z, t, y)) ** 2).reshape(n, -1).sum(dim=1)
    diffusion = 0.5 * dgamma * sq
    box.append(diffusion.detach())
    g0, g1 = sched.ends(x0.dtype)
    sigma2_1, alpha2_1 = torch.sigmoid(g1), torch.sigmoid(-g1)
    x_sq = (x0.reshape(n, -1) ** 2).sum(dim=1)
    prior = 0.5 * (dim * (sigma2_1 - 1 - torch.log(sigma2_1)) + alpha2_1 * x_sq)
    recon = (0.5 * dim * (_LOG_2PI + g0 + 1)).expand(n)
    return VDMTerms(prior=prior, recon=recon, diffusion=diffusion)


class VDMLoss(Loss):
    """The VDM bound as a training loss (:class:`~scoresde.losses.Loss` protocol): t ~ U(0, 1).

    Put the schedule's parameters in the optimizer (e.g. register it on the model with
    ``model.add_module("schedule", sde.schedule)``, so checkpoints and EMA carry it too).

    Args:
        schedule: The learned schedule, or the VPSDE built on it.
        variance_grad: Train the schedule's shape to minimise the estimator's variance (VDM
            Sec. 5); otherwise it gets the plain VLB gradient.
    """

    def __init__(self, schedule: LearnedLogSNR | VPSDE, variance_grad: bool = True) -> None:
        self.schedule = _schedule_of(schedule)
        if isinstance(schedule, VPSDE):
            self.sde = schedule  # train() checks that it is the model's SDE
        self.variance_grad = bool(variance_grad)

    def sample_t(
        self, n: int, generator: torch.Generator | None, device: Any, dtype: Any
    ) -> Tensor:
        """Draw ``n`` times uniformly on [0, 1] (shape ``(n,)``)."""
        return torch.rand(n, generator=generator, device=device, dtype=dtype)

    def terms(
        self, model: ScoreModel | Any, x0: Tensor, t: Tensor, noise: Tensor, y: Any = None
    ) -> Tensor:
        """Per-example bounds L(x) in nats, shape ``(B,)`` (their mean is the objective)."""
        out = vdm_vlb(model, self.schedule, x0, t, noise, variance_grad=self.variance_grad, y=y)
        return out.total
