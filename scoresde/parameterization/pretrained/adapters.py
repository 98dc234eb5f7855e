"""Models trained elsewhere, as continuous-time score functions that carry their SDE.

* :func:`discrete_vp_sde`: the continuous VP SDE behind a DDPM beta table (Ho et al. 2020),
  exact at the table's knots; :class:`DiscreteSteps` maps its times t back to DDPM steps n.
* :func:`from_discrete_model`: a network over DDPM steps 0..N-1 that predicts eps, x0 or v,
  as a :class:`~scoresde.parameterization.ScoreModel` on that SDE.
* :func:`from_discrete_eps_model`: the same for a plain eps-model callable (a score function).
* :func:`from_denoiser`: an EDM-style denoiser D(x, sigma) (Karras et al. 2022) becomes a score
  function under any linear SDE.

Samplers and likelihood code only see the resulting ``score_fn(x, t)`` (DESIGN.md, contract 3).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from ..._utils import append_dims, as_time
from ...sde import VPSDE, LinearSDE, PiecewiseLinearIntegral
from ...sde.ddpm import DDPMSchedule
from ..conversions import PREDICTS, convert, eps_to_score
from ..score_model import ScoreModel

__all__ = [
    "DenoiserScore",
    "DiscreteEpsScore",
    "DiscreteSteps",
    "discrete_vp_sde",
    "from_denoiser",
    "from_discrete_eps_model",
    "from_discrete_model",
]


def discrete_vp_sde(betas: Tensor | list[float], eps: float | None = None) -> VPSDE:
    """The continuous VP SDE behind a DDPM beta table, exact at the table's knots.

    Its log alpha_t^2 is piecewise linear in t through ``(0, 0)`` and
    ``(t_n, log alpha_bar_n)`` with t_n = (n + 1) / N (Ho et al. 2020, Eq. 4), so
    alpha_{t_n}^2 equals the table's alpha_bar_n = prod_{i <= n} (1 - beta_i) exactly and beta(t)
    is piecewise constant (= N log(1 / (1 - beta_n)) on step n).

    Args:
        betas: The beta table beta_0..beta_{N-1}, each in (0, 1).
        eps: Smallest time used; defaults to t_0 = 1 / N, the first step of the chain.
    """
    table = DDPMSchedule.from_betas(betas)
    t_knots = torch.cat([torch.zeros(1, dtype=torch.float64), table.times])
    b_knots = torch.cat([torch.zeros(1, dtype=torch.float64), -torch.log(table.alpha_bars)])
    return VPSDE(schedule=PiecewiseLinearIntegral(t_knots, b_knots), T=1.0, eps=eps or 1 / table.N)


class DiscreteSteps:
    """Time input of a network over DDPM steps: t -> n(t) = t N / T - 1, clamped to [0, N - 1].

    The inverse of t_n = (n + 1) T / N (:func:`~scoresde.sde.ddpm.index_to_time`); rounded to the
    nearest integer step when ``quantize`` (as :func:`~scoresde.sde.ddpm.time_to_index`), else
    fractional. Called as ``(sde, t)``, so it serves as a :class:`ScoreModel` ``time_input``.

    Args:
        N: Number of DDPM steps.
        quantize: Round to integer steps (a long tensor) for models that accept only integers.
    """

    def __init__(self, N: int, quantize: bool) -> None:
        self.N, self.quantize = int(N), bool(quantize)

    def __call__(self, sde: LinearSDE, t: Tensor) -> Tensor:
        """The step n(t) for times ``t`` of shape ``(batch,)``."""
        n = (t * (self.N / sde.T) - 1).clamp(0, self.N - 1)
        return torch.round(n).long() if self.quantize else n

    def __repr__(self) -> str:
        return f"DiscreteSteps(N={self.N}, quantize={self.quantize})"


def from_discrete_model(
    net: nn.Module | Callable[[Tensor, Tensor], Tensor],
    betas: Tensor | list[float],
    predicts: str = "eps",
    *,
    quantize: bool = True,
    eps: float | None = None,
) -> ScoreModel:
    """A network ``net(x, n)`` over DDPM steps n as a :class:`ScoreModel` on its VP SDE.

    The SDE is :func:`discrete_vp_sde` (alpha_{t_n}^2 = alpha_bar_n at t_n = (n + 1) / N) and
    the network sees n(t) of :class:`DiscreteSteps`; its output is converted to the score by
    :func:`~scoresde.parameterization.convert` with alpha_t, sigma_t of that SDE, e.g.
    ``predicts='eps'``: score = -eps / sigma_t; ``'v'``: v = alpha_t eps - sigma_t x0
    (Salimans & Ho 2022); ``'x0'``: Tweedie's formula.

    Args:
        net: ``net(x, n)`` with ``n`` of shape ``(batch,)`` (long if ``quantize``).
        betas: The model's beta table (length N).
        predicts: 'eps', 'x0' or 'v' (or 'score').
        quantize: Round t to the nearest integer step.
        eps: Smallest time used; default 1 / N.
    """
    if predicts not in PREDICTS:
        raise ValueError(
            f"from_discrete_model: expected predicts in {PREDICTS}, received {predicts!r}"
        )
    sde = discrete_vp_sde(betas, eps)
    N = int(torch.as_tensor(betas).numel())
    return ScoreModel(net, sde, predicts=predicts, time_input=DiscreteSteps(N, quantize))


class DiscreteEpsScore:
    """A continuous VP score function built from a discrete DDPM eps-model (see the factory)."""

    def __init__(
        self, eps_model: Callable[[Tensor, Tensor], Tensor], sde: VPSDE, N: int, quantize: bool
    ) -> None:
        self.eps_model, self.sde, self.N, self.quantize = eps_model, sde, N, quantize
        self._steps = DiscreteSteps(N, quantize)

    def step_index(self, t: Tensor) -> Tensor:
        """The (fractional, or rounded if ``quantize``) DDPM step n with t_n = (n + 1) T / N."""
        return self._steps(self.sde, t)

    def eps(self, x: Tensor, t: float | Tensor) -> Tensor:
        """eps_theta(x, n(t))."""
        tt = as_time(t, like=x)
        tt = tt.expand(x.shape[0]) if tt.ndim == 0 else tt
        return self.eps_model(x, self.step_index(tt))

    def __call__(self, x: Tensor, t: float | Tensor) -> Tensor:
        """The score s(x, t) ~ grad_x log p_t(x), shaped like ``x``."""
        tt = as_time(t, like=x)
        _, sigma = self.sde.marginal(tt)
        return eps_to_score(self.eps(x, tt), sigma)


def from_discrete_eps_model(
    eps_model: Callable[[Tensor, Tensor], Tensor],
    betas: Tensor | list[float],
    *,
    quantize: bool = True,
    eps: float | None = None,
) -> tuple[VPSDE, DiscreteEpsScore]:
    """Adapt a discrete-time DDPM eps-model to a continuous VP SDE and score function.

    The SDE's log alpha_t^2 is piecewise linear in t through the knots
    ``(0, 0)`` and ``(t_n, log alpha_bar_n)`` with t_n = (n + 1) / N, so alpha_{t_n}^2 equals the
    table's alpha_bar_n exactly and beta(t) is piecewise constant (= N log(1 / (1 - beta_n))).

    Args:
        eps_model: ``eps_model(x, n)`` with integer steps n in 0..N-1 (a long tensor of shape
            ``(batch,)``), or float steps when ``quantize=False``.
        betas: The model's beta table (length N, e.g. DDPM's linspace(1e-4, 0.02, 1000)).
        quantize: Round t to the nearest integer step (models that accept only integers).
        eps: Smallest time used; defaults to t_0 = 1 / N, the first step of the chain.

    Returns:
        ``(sde, score_fn)``: a :class:`~scoresde.sde.VPSDE` with T = 1 and the score function.
    """
    sde = discrete_vp_sde(betas, eps)
    return sde, DiscreteEpsScore(eps_model, sde, int(torch.as_tensor(betas).numel()), quantize)


class DenoiserScore:
    """A score function built from an EDM-style denoiser D(x, sigma) (see :func:`from_denoiser`)."""

    def __init__(self, denoiser: Callable[[Tensor, Tensor], Tensor], sde: LinearSDE) -> None:
        self.denoiser, self.sde = denoiser, sde

    def _x0(self, x: Tensor, t: float | Tensor) -> tuple[Tensor, Tensor, Tensor]:
        tt = as_time(t, like=x)
        tt = tt.expand(x.shape[0]) if tt.ndim == 0 else tt
        alpha, sigma = self.sde.marginal(tt)
        return self.denoiser(x / append_dims(alpha, x.ndim), sigma / alpha), alpha, sigma

    def denoise(self, x: Tensor, t: float | Tensor) -> Tensor:
        """x0 estimate D(x_t / alpha_t, sigma_t / alpha_t)."""
        return self._x0(x, t)[0]

    def __call__(self, x: Tensor, t: float | Tensor) -> Tensor:
        """The score s(x, t) ~ grad_x log p_t(x), shaped like ``x``."""
        x0, alpha, sigma = self._x0(x, t)
        return convert(x0, x, alpha, sigma, "x0", "score")


def from_denoiser(denoiser: Callable[[Tensor, Tensor], Tensor], sde: LinearSDE) -> DenoiserScore:
    """Adapt a denoiser D(x, sigma) ~ E[x_0 | x_0 + sigma n = x] (Karras et al. 2022) to ``sde``.

    Under any linear SDE, x_t / alpha_t = x_0 + (sigma_t / alpha_t) eps, so
    E[x_0 | x_t] = D(x_t / alpha_t, sigma_t / alpha_t) and the score follows from Tweedie's formula,
    score = (alpha_t x0_hat - x_t) / sigma_t^2. With a VE SDE (alpha_t = 1) this is EDM's
    sigma-parameterization exactly.

    Args:
        denoiser: ``D(x, sigma)`` with ``x`` of shape ``(batch, *dims)`` and ``sigma`` ``(batch,)``.
        sde: The linear SDE whose time axis the samplers use.

    Returns:
        A callable ``score_fn(x, t)`` with a ``denoise(x, t)`` method.
    """
    if not callable(denoiser):
        raise TypeError(f"from_denoiser: expected a callable D(x, sigma), received {denoiser!r}")
    if not isinstance(sde, LinearSDE):
        raise TypeError(f"from_denoiser: expected a LinearSDE, received {type(sde).__name__}")
    return DenoiserScore(denoiser, sde)
