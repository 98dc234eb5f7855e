"""Training objectives: denoising score matching (DSM), DDPM's L_simple and the SMLD loss.

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

The discrete objectives: :class:`DDPMLoss` (L_simple, Ho et al. 2020, Eq. 14, over integer steps
i = 0..N-1 evaluated at t_i = (i + 1) T / N) and :class:`SMLDLoss` (Song & Ermon 2019, Eq. 5,
lambda(sigma) = sigma^2 over the geometric levels of a VE SDE).

Models: pass a :class:`~scoresde.parameterization.ScoreModel` (its ``eps_fn`` is used) or any
callable ``eps_fn(x, t)`` that returns the noise estimate (e.g. a DDP-wrapped eps view).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from scoresde._utils import names_list
from scoresde.parameterization import ScoreModel
from scoresde.sde import VESDE, DDPMSchedule, LinearSDE
from scoresde.sde.ddpm import index_to_time, time_to_index
from scoresde.sde.pf_ode import perturb

__all__ = [
    "LOSSES",
    "Loss",
    "WEIGHTINGS",
    "T_SAMPLINGS",
    "DDPMLoss",
    "DSMLoss",
    "SMLDLoss",
    "dsm_loss",
    "get_loss",
]

WEIGHTINGS: tuple[str, ...] = ("sigma2", "likelihood", "uniform", "min_snr")
T_SAMPLINGS: tuple[str, ...] = ("uniform", "importance")
REDUCTIONS: tuple[str, ...] = ("mean", "sum")

EpsFn = Callable[[Tensor, Tensor], Tensor]


def _choice(value: str, valid: tuple[str, ...], what: str) -> str:
    if value not in valid:
        raise ValueError(f"unknown {what} {value!r}; expected one of {names_list(valid)}")
    return value


def _eps_fn(model: ScoreModel | EpsFn) -> EpsFn:
    if isinstance(model, ScoreModel):
        return model.eps_fn
    if not callable(model):
        raise TypeError(f"expected a ScoreModel or a callable eps_fn(x, t), received {model!r}")
    return model


def _reduce(sq: Tensor, reduction: str) -> Tensor:
    flat = sq.reshape(sq.shape[0], -1)
    return flat.mean(dim=1) if reduction == "mean" else flat.sum(dim=1)


def _check_x0(x0: Tensor) -> None:
    if not isinstance(x0, Tensor) or x0.ndim < 2:
        shape = tuple(x0.shape) if isinstance(x0, Tensor) else type(x0).__name__
        raise ValueError(f"x0 must be a tensor of shape (batch, *dims), received {shape}")


class Loss:
    """Shared protocol: ``draw`` the randomness of a global batch, then compute ``terms``."""

    reduction: str = "mean"

    def sample_t(
        self, n: int, generator: torch.Generator | None, device: Any, dtype: Any
    ) -> Tensor:
        """Draw ``n`` times t of the objective (shape ``(n,)``)."""
        raise NotImplementedError

    def draw(self, x0: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Draw ``(t, noise)`` for a batch ``x0``: times of shape ``(B,)``, noise like ``x0``."""
        t = self.sample_t(x0.shape[0], generator, x0.device, x0.dtype)
        noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        return t, noise

    def terms(self, model: ScoreModel | EpsFn, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """Per-example losses of shape ``(B,)`` (their mean is the objective)."""
        raise NotImplementedError

    def __call__(
        self,
        model: ScoreModel | EpsFn,
        x0: Tensor,
        *,
        generator: torch.Generator | None = None,
        t: Tensor | None = None,
        noise: Tensor | None = None,
    ) -> Tensor:
        """The scalar loss on ``x0`` (``t``/``noise`` drawn with ``generator`` unless given)."""
        _check_x0(x0)
        if t is None or noise is None:
            t_draw, noise_draw = self.draw(x0, generator)
            t = t_draw if t is None else t
            noise = noise_draw if noise is None else noise
        if noise.shape != x0.shape or t.shape != (x0.shape[0],):
            raise ValueError(
                f"expected t of shape ({x0.shape[0]},) and noise of shape {tuple(x0.shape)}, "
                f"received {tuple(t.shape)} and {tuple(noise.shape)}"
            )
        return self.terms(model, x0, t, noise).mean()


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
        self.weighting = _choice(weighting, WEIGHTINGS, "weighting")
        self.t_sampling = _choice(t_sampling, T_SAMPLINGS, "t_sampling")
        self.reduction = _choice(reduction, REDUCTIONS, "reduction")
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

    def terms(self, model: ScoreModel | EpsFn, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """Per-example losses of shape ``(B,)`` (their mean is the objective)."""
        x_t = self.sde.perturb(x0, t, noise)
        sq = (_eps_fn(model)(x_t, t) - noise) ** 2
        return self.weight(t) * self.importance_weight(t) * _reduce(sq, self.reduction)


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


class DDPMLoss(Loss):
    """DDPM's L_simple = E_{i, x_0, eps} || eps_hat(x_i, t_i) - eps ||^2 (Ho et al. 2020, Eq. 14).

    x_i = sqrt(alpha_bar_i) x_0 + sqrt(1 - alpha_bar_i) eps with i uniform on 0..N-1 and the
    model queried at t_i = (i + 1) T / N. ``draw`` returns t_i; ``terms`` recovers i from it.

    Args:
        schedule: The discrete chain (``DDPMSchedule.from_betas`` or ``.from_sde``).
        reduction: ``"mean"`` or ``"sum"`` over non-batch dimensions.
        T: Final time of the continuous clock.
    """

    def __init__(self, schedule: DDPMSchedule, reduction: str = "mean", T: float = 1.0) -> None:
        if not isinstance(schedule, DDPMSchedule):
            raise TypeError(f"DDPMLoss needs a DDPMSchedule, received {type(schedule).__name__}")
        self.schedule, self.T = schedule, float(T)
        self.reduction = _choice(reduction, REDUCTIONS, "reduction")

    def sample_t(
        self, n: int, generator: torch.Generator | None, device: Any, dtype: Any
    ) -> Tensor:
        """Draw ``n`` times t of the objective (shape ``(n,)``)."""
        i = torch.randint(0, self.schedule.N, (n,), generator=generator, device=device)
        return index_to_time(i.cpu(), self.schedule.N, self.T).to(device=device, dtype=dtype)

    def terms(self, model: ScoreModel | EpsFn, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """Per-example losses of shape ``(B,)`` (their mean is the objective)."""
        i = time_to_index(t.detach().cpu(), self.schedule.N, self.T)
        ab = self.schedule.alpha_bars[i].to(device=x0.device, dtype=x0.dtype)
        x_i = perturb(x0, ab.sqrt(), (1 - ab).sqrt(), noise)
        return _reduce((_eps_fn(model)(x_i, t) - noise) ** 2, self.reduction)


LOSSES: dict[str, type[Loss]] = {"dsm": DSMLoss, "ddpm": DDPMLoss, "smld": SMLDLoss}


def get_loss(name: str, sde: LinearSDE, **kwargs: Any) -> Loss:
    """Build a registered loss for ``sde`` (``"ddpm"`` uses ``DDPMSchedule.from_sde(sde, N)``).

    Args:
        name: ``"dsm"``, ``"ddpm"`` or ``"smld"``.
        sde: The forward SDE.
        **kwargs: Constructor options (``num_steps`` for ``"ddpm"``).

    Raises:
        ValueError: For an unknown name.
    """
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; expected one of {names_list(LOSSES)}")
    if name == "ddpm":
        n = int(kwargs.pop("num_steps", 1000))
        return DDPMLoss(DDPMSchedule.from_sde(sde, n), T=sde.T, **kwargs)
    return LOSSES[name](sde, **kwargs)  # type: ignore[call-arg]


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
