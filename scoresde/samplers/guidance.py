"""Guidance as a change of score: classifier-free and classifier guidance as score wrappers.

Every sampler and :func:`~scoresde.likelihood.log_likelihood` sees a score function
``score_fn(x, t)``; a conditional model is a function ``score_fn(x, t, y)`` of a label as well,
and the wrappers here turn it into the plain contract, so guidance works with every registered
sampler unchanged.

- **Conditioning** (:func:`bind_label`): s(x, t | y) with the label bound.
- **Classifier-free guidance** (Ho & Salimans 2022, Eq. 6 in score form):
  s_w(x, t | y) = (1 + w) s(x, t | y) - w s(x, t), with an optional guidance interval
  (Kynkäänniemi et al. 2024): the guided score only for t inside ``interval``, the conditional
  score elsewhere.
- **Classifier guidance** (Dhariwal & Nichol 2021, Alg. 1; Song et al. 2021, Eq. 14 for the
  conditional reverse SDE): s(x, t) + gamma grad_x log p_t(y | x) with a classifier on noisy x.

With an exact noisy classifier, grad_x log p_t(y | x) = s(x, t | y) - s(x, t), so classifier
guidance at scale gamma is classifier-free guidance at w = gamma - 1. Neither samples the tilted
target p(x | y)^(1+w) p(x)^(-w) at t = 0: the guided field at t > 0 is not the score of that
target's forward marginal (:mod:`scoresde.conditional` gives both, exactly, for mixtures).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from .._utils import as_time, sde_of
from .defaults import score_kind_of

__all__ = [
    "ConditionalScoreFn",
    "bind_label",
    "classifier_free_guidance",
    "classifier_guidance",
]

#: ``score_fn(x, t, y)``: a conditional score; ``y`` a label tensor of shape ``(batch,)`` or an int.
ConditionalScoreFn = Callable[[Tensor, Tensor, Any], Tensor]


def _check_scale(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, received {value!r}")
    return float(value)


def bind_label(score_fn: ConditionalScoreFn, y: Any) -> Callable[[Tensor, Tensor], Tensor]:
    """s(x, t | y) as a plain ``score_fn(x, t)`` with the label ``y`` bound.

    Args:
        score_fn: A conditional score ``score_fn(x, t, y)``.
        y: The label: an int (one class for the whole batch) or a tensor of shape ``(batch,)``.

    Returns:
        ``score_fn(x, t) = score_fn(x, t, y)``.
    """
    if not callable(score_fn):
        raise TypeError(f"bind_label: expected a callable score_fn(x, t, y), received {score_fn!r}")
    if isinstance(y, Tensor) and y.ndim > 1:
        raise ValueError(
            f"bind_label: expected an int or labels of shape (batch,), received {tuple(y.shape)}"
        )

    def bound(x: Tensor, t: Tensor) -> Tensor:
        if isinstance(y, Tensor) and y.ndim == 1 and y.shape[0] != x.shape[0]:
            raise ValueError(
                f"bind_label: labels of shape {tuple(y.shape)} for a batch of {x.shape[0]}"
            )
        return score_fn(x, t, y)

    bound.sde = sde_of(score_fn)  # type: ignore[attr-defined]  # carried on (contract 11)
    bound.score_kind = score_kind_of(score_fn)  # type: ignore[attr-defined]  # for "auto"
    return bound


def classifier_free_guidance(
    cond: Callable[[Tensor, Tensor], Tensor],
    uncond: Callable[[Tensor, Tensor], Tensor],
    w: float,
    *,
    interval: tuple[float, float] | None = None,
) -> Callable[[Tensor, Tensor], Tensor]:
    """The classifier-free guided score (1 + w) s(x, t | y) - w s(x, t).

    Args:
        cond: The conditional score with its label bound (:func:`bind_label`).
        uncond: The unconditional score (the same network with the null label, or p_t itself).
        w: Guidance weight; 0 is plain conditional sampling (``uncond`` is then never called),
            w > 0 sharpens towards the class, -1 < w < 0 interpolates to the unconditional model.
        interval: Optional ``(t_lo, t_hi)``: guide only for t_lo <= t <= t_hi and use the
            conditional score elsewhere (the guidance interval of Kynkäänniemi et al. 2024).

    Returns:
        ``score_fn(x, t)``.
    """
    w = _check_scale("classifier_free_guidance: w", w)
    if interval is not None:
        lo, hi = (float(v) for v in interval)
        if not (0 <= lo < hi):
            raise ValueError(
                f"classifier_free_guidance: expected 0 <= t_lo < t_hi, received {interval}"
            )

    def guided(x: Tensor, t: Tensor) -> Tensor:
        s_c = cond(x, t)
        if w == 0:
            return s_c
        s_g = (1 + w) * s_c - w * uncond(x, t)
        if interval is None:
            return s_g
        tt = as_time(t, like=x).reshape(-1)
        inside = ((tt >= lo) & (tt <= hi)).to(x.dtype).reshape(-1, *([1] * (x.ndim - 1)))
        return inside * s_g + (1 - inside) * s_c

    guided.sde = sde_of(cond) or sde_of(uncond)  # type: ignore[attr-defined]  # contract 11
    kinds = {score_kind_of(cond), score_kind_of(uncond)}
    kind = "learned" if "learned" in kinds else "exact"
    guided.score_kind = kind  # type: ignore[attr-defined]  # for "auto"
    return guided


def classifier_guidance(
    score_fn: Callable[[Tensor, Tensor], Tensor],
    log_prob_y: Callable[[Tensor, Tensor], Tensor],
    scale: float,
) -> Callable[[Tensor, Tensor], Tensor]:
    """s(x, t) + scale * grad_x log p_t(y | x), with a classifier on noisy inputs.

    Args:
        score_fn: The unconditional score.
        log_prob_y: ``log_prob_y(x, t) -> (batch,)``, the classifier's log-probability of the
            target label at noise level t (differentiable in x).
        scale: Gradient scale gamma (1 = the exact conditional score with an exact classifier).

    Returns:
        ``score_fn(x, t)``.
    """
    scale = _check_scale("classifier_guidance: scale", scale)

    def guided(x: Tensor, t: Tensor) -> Tensor:
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            lp = log_prob_y(xg, t)
            if lp.shape != (x.shape[0],):
                raise ValueError(
                    f"classifier_guidance: expected log_prob_y to return shape ({x.shape[0]},), "
                    f"received {tuple(lp.shape)}"
                )
            (grad,) = torch.autograd.grad(lp.sum(), xg)
        return score_fn(x, t) + scale * grad

    guided.sde = sde_of(score_fn)  # type: ignore[attr-defined]  # carried on (contract 11)
    guided.score_kind = score_kind_of(score_fn)  # type: ignore[attr-defined]  # for "auto"
    return guided
