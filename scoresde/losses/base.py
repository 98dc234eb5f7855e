"""The protocol every training objective follows, and the helpers the objectives share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch
from torch import Tensor

from .._utils import names_list
from ..parameterization import ScoreModel

__all__ = [
    "REDUCTIONS",
    "EpsFn",
    "Loss",
    "check_x0",
    "choice",
    "eps_fn_of",
    "predict_eps",
    "reduce_dims",
]

#: Reductions of the squared error over the non-batch dimensions.
REDUCTIONS: tuple[str, ...] = ("mean", "sum")

#: ``eps_fn(x, t) -> eps_hat`` shaped like ``x``.
EpsFn = Callable[[Tensor, Tensor], Tensor]


def choice(value: str, valid: tuple[str, ...], what: str) -> str:
    """``value`` if it is one of ``valid``; ValueError listing them otherwise."""
    if value not in valid:
        raise ValueError(f"unknown {what} {value!r}; expected one of {names_list(valid)}")
    return value


def eps_fn_of(model: ScoreModel | EpsFn) -> EpsFn:
    """The noise prediction of ``model``: its ``eps_fn`` (a ScoreModel) or ``model`` itself."""
    if isinstance(model, ScoreModel):
        return model.eps_fn
    if not callable(model):
        raise TypeError(f"expected a ScoreModel or a callable eps_fn(x, t), received {model!r}")
    return model


def predict_eps(model: ScoreModel | EpsFn, x: Tensor, t: Tensor, y: Any = None) -> Tensor:
    """eps_hat(x, t | y) of ``model``, with ``y`` passed only when given.

    A plain ``eps_fn(x, t)`` thus serves unconditional training unchanged; ``y`` holds the class
    labels of a conditional model (Ho & Salimans 2022), the null label where dropped.
    """
    eps_fn = eps_fn_of(model)
    return eps_fn(x, t) if y is None else eps_fn(x, t, y)  # type: ignore[call-arg]  # conditional: (x, t, y)


def reduce_dims(sq: Tensor, reduction: str) -> Tensor:
    """Mean or sum of ``sq`` over its non-batch dimensions: shape ``(B,)``."""
    flat = sq.reshape(sq.shape[0], -1)
    return flat.mean(dim=1) if reduction == "mean" else flat.sum(dim=1)


def check_x0(x0: Tensor) -> None:
    """Raise ValueError unless ``x0`` is a tensor of shape ``(batch, *dims)``."""
    if not isinstance(x0, Tensor) or x0.ndim < 2:
        shape = tuple(x0.shape) if isinstance(x0, Tensor) else type(x0).__name__
        raise ValueError(f"x0 must be a tensor of shape (batch, *dims), received {shape}")


class Loss(Protocol):
    """What :func:`scoresde.training.train` needs of an objective: ``draw``, ``terms``, call.

    ``draw`` the randomness of a global batch (times and noise), then ``terms``: per-example
    losses, whose mean is the objective. Every loss of the package subclasses this protocol for
    its default ``draw`` (from ``sample_t``) and ``__call__``; any object with these methods
    serves ``train`` as well.
    """

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

    def terms(
        self, model: ScoreModel | EpsFn, x0: Tensor, t: Tensor, noise: Tensor, y: Any = None
    ) -> Tensor:
        """Per-example losses of shape ``(B,)`` (their mean is the objective); ``y`` the labels."""
        raise NotImplementedError

    def __call__(
        self,
        model: ScoreModel | EpsFn,
        x0: Tensor,
        *,
        generator: torch.Generator | None = None,
        t: Tensor | None = None,
        noise: Tensor | None = None,
        y: Any = None,
    ) -> Tensor:
        """The scalar loss on ``x0`` (``t``/``noise`` drawn with ``generator`` unless given).

        ``y``: class labels of shape ``(B,)`` for a conditional model (``None``: unconditional).
        """
        check_x0(x0)
        if t is None or noise is None:
            t_draw, noise_draw = self.draw(x0, generator)
            t = t_draw if t is None else t
            noise = noise_draw if noise is None else noise
        if noise.shape != x0.shape or t.shape != (x0.shape[0],):
            raise ValueError(
                f"expected t of shape ({x0.shape[0]},) and noise of shape {tuple(x0.shape)}, "
                f"received {tuple(t.shape)} and {tuple(noise.shape)}"
            )
        if y is None:  # losses outside the package may not take labels
            return self.terms(model, x0, t, noise).mean()
        return self.terms(model, x0, t, noise, y).mean()
