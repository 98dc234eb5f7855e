"""Exact conversions between what a network may predict: eps, x0, v and the score.

Under a linear SDE, x_t = alpha_t x_0 + sigma_t eps (Song et al. 2021, Eq. 29), and four targets
carry the same information (given x_t, alpha_t, sigma_t):

* eps    the noise;                        score = -eps / sigma_t
* x0     the denoised data E[x_0 | x_t];   Tweedie: x0 = (x_t + sigma_t^2 score) / alpha_t
* v      v = alpha_t eps - sigma_t x0 (Salimans & Ho 2022), valid for any (alpha_t, sigma_t):
         x0 = (alpha_t x_t - sigma_t v) / (alpha_t^2 + sigma_t^2),
         eps = (sigma_t x_t + alpha_t v) / (alpha_t^2 + sigma_t^2)
* score  grad_x log p_t(x_t)
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor

from .._utils import _cheap_to_check, append_dims, as_time, names_list

__all__ = [
    "MODEL_OUTPUTS",
    "PREDICTS",
    "convert",
    "eps_to_score",
    "eps_to_x0",
    "score_to_eps",
    "to_eps",
    "v_from",
    "x0_to_eps",
]

Predicts = Literal["eps", "x0", "v", "score"]
PREDICTS: tuple[str, ...] = ("eps", "x0", "v", "score")
#: What a ScoreModel's network may output: any of PREDICTS, or 'edm' (preconditioned x0).
MODEL_OUTPUTS: tuple[str, ...] = (*PREDICTS, "edm")


def _check_predicts(name: str, what: str = "predicts") -> None:
    if name not in PREDICTS:
        raise ValueError(f"unknown {what} {name!r}; expected one of {names_list(PREDICTS)}")


def _b(v: Tensor | float, x: Tensor) -> Tensor:
    v = as_time(v, like=x)
    return append_dims(v, x.ndim)


def eps_to_x0(eps: Tensor, x: Tensor, alpha: Tensor | float, sigma: Tensor | float) -> Tensor:
    """x0 = (x - sigma eps) / alpha."""
    return (x - _b(sigma, x) * eps) / _b(alpha, x)


def x0_to_eps(x0: Tensor, x: Tensor, alpha: Tensor | float, sigma: Tensor | float) -> Tensor:
    """eps = (x - alpha x0) / sigma."""
    return (x - _b(alpha, x) * x0) / _b(sigma, x)


def eps_to_score(eps: Tensor, sigma: Tensor | float) -> Tensor:
    """score = -eps / sigma."""
    return -eps / _b(sigma, eps)


def score_to_eps(score: Tensor, sigma: Tensor | float) -> Tensor:
    """eps = -sigma score."""
    return -_b(sigma, score) * score


def to_eps(out: Tensor, x: Tensor, alpha: Tensor, sigma: Tensor, src: str) -> Tensor:
    """Convert a prediction of kind ``src`` into eps (exactly)."""
    if src == "eps":
        return out
    if src == "x0":
        return x0_to_eps(out, x, alpha, sigma)
    if src == "score":
        return score_to_eps(out, sigma)
    if src == "v":
        a, s = _b(alpha, x), _b(sigma, x)
        return (s * x + a * out) / (a**2 + s**2)
    _check_predicts(src, "source")
    raise AssertionError("unreachable")


def v_from(eps: Tensor, x0: Tensor, alpha: Tensor | float, sigma: Tensor | float) -> Tensor:
    """v = alpha eps - sigma x0 (Salimans & Ho 2022)."""
    return _b(alpha, eps) * eps - _b(sigma, eps) * x0


def convert(
    out: Tensor, x: Tensor, alpha: Tensor | float, sigma: Tensor | float, src: str, dst: str
) -> Tensor:
    """Convert a prediction between 'eps', 'x0', 'v' and 'score', exactly, given x_t.

    Args:
        out: The prediction, shaped like ``x``.
        x: The noisy state x_t of shape ``(batch, *dims)``.
        alpha: alpha_t, a scalar or shape ``(batch,)``.
        sigma: sigma_t, a scalar or shape ``(batch,)``.
        src: What ``out`` is.
        dst: What to return.
    """
    _check_predicts(src, "source")
    _check_predicts(dst, "target")
    if out.shape != x.shape:
        raise ValueError(
            f"convert: expected a prediction shaped like x {tuple(x.shape)}, received "
            f"{tuple(out.shape)}"
        )
    alpha_t, sigma_t = as_time(alpha, like=x), as_time(sigma, like=x)
    if src == dst:
        return out
    through_eps = "score" in (src, dst) or ("eps" in (src, dst) and "x0" in (src, dst))
    if through_eps and _cheap_to_check(sigma_t):  # a host sync: CPU only (hot path)
        if not bool((sigma_t > 0).all()):
            raise ValueError(
                f"convert {src} -> {dst}: expected sigma > 0, received sigma = "
                f"{float(sigma_t.min()):g} (at sigma = 0 the score and the eps<->x0 map are "
                "undefined)"
            )
    eps = to_eps(out, x, alpha_t, sigma_t, src)
    if dst == "eps":
        return eps
    if dst == "score":
        return eps_to_score(eps, sigma_t)
    if src == "v":  # direct formula avoids dividing by a tiny alpha
        a, s = _b(alpha_t, x), _b(sigma_t, x)
        x0 = (a * x - s * out) / (a**2 + s**2)
    else:
        x0 = eps_to_x0(eps, x, alpha_t, sigma_t)
    if dst == "x0":
        return x0
    return v_from(eps, x0, alpha_t, sigma_t)
