"""The reverse SDE and the probability-flow ODE of a forward SDE, built by composition.

Song et al. (2021): reverse SDE (Eq. 6) dx = [f - g^2 grad log p_t] dt + g dw_bar, integrated
backwards in time, and probability-flow ODE (Eq. 13) dx = [f - 1/2 g^2 grad log p_t] dt, both
with the score replaced by ``score_fn``. Build them with ``sde.reverse(score_fn)`` and
``sde.probability_flow(score_fn)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._utils import append_dims, as_time
from .base import SDE, ScoreFn

__all__ = ["ProbabilityFlowODE", "ReverseSDE"]


class ReverseSDE:
    """The reverse-time SDE dx = [f - g^2 s(x, t)] dt + g dw_bar (Song et al. 2021, Eq. 6).

    Integrated backwards in time (dt < 0). Built by composition from a forward ``sde`` and a
    ``score_fn``; ``discretize`` gives the reverse-diffusion predictor (Eq. 46 / Appendix E).
    """

    def __init__(self, sde: SDE, score_fn: ScoreFn) -> None:
        if not callable(score_fn):
            raise TypeError(f"reverse: expected a callable score_fn(x, t), received {score_fn!r}")
        self.sde, self.score_fn = sde, score_fn
        self.T, self.eps = sde.T, sde.eps

    def drift(self, x: Tensor, t: float | Tensor) -> Tensor:
        """f(x, t) - g(t)^2 s(x, t)."""
        tt = as_time(t, like=x)
        g2 = append_dims(self.sde.g2(tt), x.ndim)
        return self.sde.drift(x, tt) - g2 * self.score_fn(x, tt)

    def diffusion(self, t: float | Tensor) -> Tensor:
        """g(t)."""
        return self.sde.diffusion(t)

    def discretize(self, x: Tensor, t: float | Tensor, dt: float) -> tuple[Tensor, Tensor]:
        """Reverse of the forward chain: (G^2 s - f, G) with (f, G) = ``sde.discretize``.

        The step from t to t - dt is x <- x + rev_f + G z (Song et al. 2021, Eq. 46).
        """
        tt = as_time(t, like=x)
        f, G = self.sde.discretize(x, tt, dt)
        rev_f = append_dims(G, x.ndim) ** 2 * self.score_fn(x, tt) - f
        return rev_f, G


class ProbabilityFlowODE:
    """The probability-flow ODE dx/dt = f(x, t) - 1/2 g(t)^2 s(x, t) (Song et al. 2021, Eq. 13)."""

    def __init__(self, sde: SDE, score_fn: ScoreFn) -> None:
        if not callable(score_fn):
            raise TypeError(
                f"probability_flow: expected a callable score_fn(x, t), received {score_fn!r}"
            )
        self.sde, self.score_fn = sde, score_fn
        self.T, self.eps = sde.T, sde.eps

    def drift(self, x: Tensor, t: float | Tensor) -> Tensor:
        """f(x, t) - 1/2 g(t)^2 s(x, t)."""
        tt = as_time(t, like=x)
        g2 = append_dims(self.sde.g2(tt), x.ndim)
        return self.sde.drift(x, tt) - 0.5 * g2 * self.score_fn(x, tt)

    def diffusion(self, t: float | Tensor) -> Tensor:
        """Zero: the ODE has no noise."""
        return torch.zeros_like(as_time(t))
