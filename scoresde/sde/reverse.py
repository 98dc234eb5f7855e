"""The reverse SDE and the probability-flow ODE: the one home of their drifts.

Song et al. (2021): reverse SDE (Eq. 6) dx = [f - g^2 grad log p_t] dt + g dw_bar, integrated
backwards in time, and probability-flow ODE (Eq. 13) dx = [f - 1/2 g^2 grad log p_t] dt, both
with the score replaced by ``score_fn``. The two drifts differ only in the weight w of the score
term (w = 1 and w = 1/2); they are written once here, in two forms:

* pointwise, :func:`reverse_drift` / :func:`probability_flow_drift`: f - w g^2 s from the values
  f(x, t), g(t)^2 and s(x, t) (any SDE; the torchsde backend, adaptive solvers, likelihoods);
* as coefficients, :func:`drift_coefs`: for a linear SDE f = a(t) x the drift is
  c_x x + c_s s with (c_x, c_s) = (a, -w g^2), precomputed on a whole time grid by the
  fixed-step samplers.

:class:`ReverseSDE` and :class:`ProbabilityFlowODE` (built by ``sde.reverse(score_fn)`` and
``sde.probability_flow(score_fn)``) call these; ``ReverseSDE.discretize`` is the
reverse-diffusion predictor's step (Eq. 46), which the sampler of that name calls.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._utils import append_dims, as_time
from .base import SDE, ScoreFn

__all__ = [
    "ProbabilityFlowODE",
    "ReverseSDE",
    "drift_coefs",
    "probability_flow_drift",
    "reverse_drift",
    "score_weight",
]


def score_weight(probability_flow: bool) -> float:
    """w in f - w g^2 s: 1 for the reverse SDE (Eq. 6), 1/2 for the PF ODE (Eq. 13)."""
    return 0.5 if probability_flow else 1.0


def drift_coefs(a: Tensor, g2: Tensor, *, probability_flow: bool = False) -> tuple[Tensor, Tensor]:
    """Coefficients (c_x, c_s) = (a, -w g^2) of the drift c_x x + c_s s of a linear SDE.

    Args:
        a: The drift coefficient a(t) of f(x, t) = a(t) x, any shape (e.g. one per grid time).
        g2: g(t)^2, shaped like ``a``.
        probability_flow: False for the reverse SDE (Eq. 6), True for the PF ODE (Eq. 13).

    Returns:
        ``(c_x, c_s)`` shaped like ``a``.
    """
    return a, -score_weight(probability_flow) * g2


def reverse_drift(
    f: Tensor, g2: Tensor, score: Tensor, *, probability_flow: bool = False
) -> Tensor:
    """The drift f - w g^2 s of the reverse SDE (w = 1, Eq. 6) or of the PF ODE (w = 1/2, Eq. 13).

    Args:
        f: The forward drift f(x, t), shape ``(batch, *dims)``.
        g2: g(t)^2: a scalar, a 0-d tensor or shape ``(batch,)`` (broadcast over ``dims``).
        score: s(x, t), shaped like ``f``.
        probability_flow: Use the PF ODE's weight 1/2 instead of 1.

    Returns:
        The drift, shaped like ``f``.
    """
    if isinstance(g2, Tensor):
        g2 = append_dims(g2, f.ndim)
    return f - score_weight(probability_flow) * g2 * score


def probability_flow_drift(f: Tensor, g2: Tensor, score: Tensor) -> Tensor:
    """The PF-ODE drift f - 1/2 g^2 s (Song et al. 2021, Eq. 13); see :func:`reverse_drift`."""
    return reverse_drift(f, g2, score, probability_flow=True)


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
        return reverse_drift(self.sde.drift(x, tt), self.sde.g2(tt), self.score_fn(x, tt))

    def diffusion(self, t: float | Tensor) -> Tensor:
        """g(t)."""
        return self.sde.diffusion(t)

    def discretize(self, x: Tensor, t: float | Tensor, dt: float) -> tuple[Tensor, Tensor]:
        """Reverse of the forward chain: (G^2 s - f, G) with (f, G) = ``sde.discretize``.

        The step from t to t - dt is x <- x + rev_f + G z (Song et al. 2021, Eq. 46): the
        reverse-diffusion predictor.
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
        return probability_flow_drift(self.sde.drift(x, tt), self.sde.g2(tt), self.score_fn(x, tt))

    def diffusion(self, t: float | Tensor) -> Tensor:
        """Zero: the ODE has no noise."""
        return torch.zeros_like(as_time(t))
