"""Denoising score matching (DSM) for any linear SDE, and the SMLD loss.

Continuous-time DSM (Song et al. 2021, Eq. 7) with x_t = alpha_t x_0 + sigma_t eps:

    J(theta) = E_t E_{x_0, eps} [ lambda(t) || s_theta(x_t, t) + eps / sigma_t ||^2 ].

Since ``sigma_t^2 || s + eps / sigma_t ||^2 = || eps_hat - eps ||^2`` with ``eps_hat = -sigma_t s``,
every loss here is computed in eps space, ``(lambda(t) / sigma_t^2) || eps_hat - eps ||^2``, which
is exact for any ``predicts`` of :class:`~scoresde.parameterization.ScoreModel` and numerically
stable at small sigma_t. Weightings lambda(t):

* ``"sigma2"``      lambda = sigma_t^2 (default; the eps-MSE of Ho et al. 2020),
* ``"likelihood"``  lambda = g(t)^2 (Song, Durkan, Murray & Ermon 2021, Thm. 1: KL bound),
* ``"uniform"``     lambda = 1,
* ``"min_snr"``     lambda = sigma_t^2 min(SNR_t, gamma) / SNR_t (Hang et al. 2023).

Time sampling: ``"uniform"`` on [eps, T], or ``"importance"`` with density
q(t) = (g^2 / sigma^2) / Z, the likelihood weighting in eps space. Because
g(t)^2 / sigma_t^2 = -d lambda_snr / dt (lambda_snr = log SNR), q is uniform in log-SNR and
Z = lambda_snr(eps) - lambda_snr(T); each term is multiplied by 1 / ((T - eps) q(t)) so the
estimator has the same mean as the uniform one (importance sampling is unbiased).

:class:`SMLDLoss` is Song & Ermon (2019, Eq. 5): lambda(sigma) = sigma^2 over the geometric
levels of a VE SDE.

Models: pass a :class:`~scoresde.parameterization.ScoreModel` (its ``eps_fn`` is used) or any
callable ``eps_fn(x, t)`` that returns the noise estimate (e.g. a DDP-wrapped eps view).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..parameterization import ScoreModel
from ..sde import VESDE, LinearSDE
from .base import REDUCTIONS, EpsFn, Loss, choice, predict_eps, reduce_dims

__all__ = ["T_SAMPLINGS", "WEIGHTINGS", "DSMLoss", "SMLDLoss", "dsm_loss"]

#: DSM weightings lambda(t) (module docstring).
WEIGHTINGS: tuple[str, ...] = ("sigma2", "likelihood", "uniform", "min_snr")
#: Time samplings of DSM (module docstring).
T_SAMPLINGS: tuple[str, ...] = ("uniform", "importance")


class DSMLoss(Loss):
    """Continuous-time denoising score matching for any linear SDE.

    Args:
        sde: The forward SDE giving alpha_t, sigma_t, g(t)^2.
        weighting: One of ``WEIGHTINGS``.
        t_sampling: ``"uniform"`` or ``"importance"`` (q(t) proportional to g^2 / sigma^2).
        reduction: ``"mean"`` or ``"sum"`` over non-batch dimensions.
        gamma: The gamma of ``"min_snr"`` (5 in Hang et al. 2023).
    """

    def __init__(
        self,
        sde: LinearSDE,
        weighting: str = "sigma2",
        t_sampling: str = "uniform",
        reduction: str = "mean",
        gamma: float = 5.0,
    ) -> None:
        if not isinstance(sde, LinearSDE):
            raise TypeError(f"DSMLoss needs a LinearSDE, received {type(sde).__name__}")
        self.sde = sde
        self.weighting = choice(weighting, WEIGHTINGS, "weighting")
        self.t_sampling = choice(t_sampling, T_SAMPLINGS, "t_sampling")
        self.reduction = choice(reduction, REDUCTIONS, "reduction")
        if not gamma > 0:
            raise ValueError(f"gamma must be > 0, received {gamma}")
        self.gamma = float(gamma)
        lam = sde.log_snr(torch.tensor([sde.eps, sde.T], dtype=torch.float64))
        self._lam_eps, self._lam_T = float(lam[0]), float(lam[1])

    def weight(self, t: Tensor) -> Tensor:
        """lambda(t) / sigma_t^2, the factor on the eps-MSE, shape ``(B,)``."""
        if self.weighting == "sigma2":
            return torch.ones_like(t)
        _, sigma = self.sde.marginal(t)
        if self.weighting == "likelihood":
            return self.sde.g2(t) / sigma**2
        if self.weighting == "uniform":
            return 1.0 / sigma**2
        snr = torch.exp(self.sde.log_snr(t))
        return torch.clamp(snr, max=self.gamma) / snr

    def importance_weight(self, t: Tensor) -> Tensor:
        """1 / ((T - eps) q(t)): 1 for uniform sampling, Z sigma^2 / ((T - eps) g^2) otherwise."""
        if self.t_sampling == "uniform":
            return torch.ones_like(t)
        _, sigma = self.sde.marginal(t)
        Z = self._lam_eps - self._lam_T
        return Z * sigma**2 / ((self.sde.T - self.sde.eps) * self.sde.g2(t))

    def sample_t(
        self, n: int, generator: torch.Generator | None, device: Any, dtype: Any
    ) -> Tensor:
        """t ~ U[eps, T], or t = lambda^{-1}(u) with u ~ U[lambda(T), lambda(eps)]."""
        u = torch.rand(n, generator=generator, device=device, dtype=torch.float64)
        eps, T = self.sde.eps, self.sde.T
        if self.t_sampling == "uniform":
            return (eps + (T - eps) * u).to(dtype)
        lam = self._lam_eps - u * (self._lam_eps - self._lam_T)
        return self.sde.t_from_log_snr(lam).clamp(eps, T).to(dtype)

    def terms(
        self, model: ScoreModel | EpsFn, x0: Tensor, t: Tensor, noise: Tensor, y: Any = None
    ) -> Tensor:
        """Per-example losses of shape ``(B,)`` (their mean is the objective); ``y`` the labels."""
        x_t = self.sde.perturb(x0, t, noise)
        sq = (predict_eps(model, x_t, t, y) - noise) ** 2
        return self.weight(t) * self.importance_weight(t) * reduce_dims(sq, self.reduction)


class SMLDLoss(DSMLoss):
    """SMLD / NCSN loss (Song & Ermon 2019, Eq. 5) on ``num_scales`` levels of a VE SDE.

    Levels sigma_i are the VE marginal stds at t_i = linspace(eps, T, num_scales); the weighting
    lambda(sigma) = sigma^2 makes each term ``|| eps_hat - eps ||^2``.
    """

    def __init__(self, sde: VESDE, num_scales: int = 1000, reduction: str = "mean") -> None:
        if not isinstance(sde, VESDE):
            raise TypeError(f"SMLDLoss needs a VESDE, received {type(sde).__name__}")
        if not isinstance(num_scales, int) or num_scales < 2:
            raise ValueError(f"num_scales must be an integer >= 2, received {num_scales!r}")
        super().__init__(sde, "sigma2", "uniform", reduction)
        self.times = torch.linspace(sde.eps, sde.T, num_scales, dtype=torch.float64)

    def sample_t(
        self, n: int, generator: torch.Generator | None, device: Any, dtype: Any
    ) -> Tensor:
        """Draw ``n`` times t of the objective (shape ``(n,)``)."""
        i = torch.randint(0, len(self.times), (n,), generator=generator, device=device)
        return self.times.to(device)[i].to(dtype)


def dsm_loss(
    model: ScoreModel | EpsFn,
    x0: Tensor,
    sde: LinearSDE | None = None,
    *,
    generator: torch.Generator | None = None,
    **kwargs: Any,
) -> Tensor:
    """Functional DSM loss; ``sde`` defaults to ``model.sde``; kwargs go to :class:`DSMLoss`."""
    if sde is None:
        if not isinstance(model, ScoreModel):
            raise ValueError("dsm_loss: pass sde= when model is not a ScoreModel")
        sde = model.sde
    return DSMLoss(sde, **kwargs)(model, x0, generator=generator)
