"""Time embeddings for networks conditioned on a continuous scalar ``c``.

Networks receive ``c`` of shape ``(batch,)``: the SDE time ``t`` in ``[eps, T]`` (``T = 1``), a
log-SNR, or a noise level, chosen by the parameterization module. The embeddings only see
numbers, never an SDE.

* :class:`SinusoidalEmbedding` is the transformer position embedding of Vaswani et al. (2017),
  used by DDPM (Ho et al. 2020) on integer steps. A continuous ``t`` in ``[0, 1]`` is first
  multiplied by ``scale`` (default ``1000``, so that ``c * scale`` spans the range of DDPM's
  integer steps and the lowest frequency still changes over the interval). Use ``scale`` of about
  ``50`` for log-SNR inputs in ``[-20, 20]``.
* :class:`GaussianFourierEmbedding` projects ``c`` onto fixed random frequencies
  ``W ~ N(0, scale^2)`` (Tancik et al. 2020), as in Song et al. (2021), Appendix H.

Class labels ``y`` (conditional networks, ``num_classes`` set) enter through an ``nn.Embedding``
with ``num_classes + 1`` rows whose output is added to the time embedding; the last row,
index ``num_classes``, is the *null label* of classifier-free guidance (Ho & Salimans 2022):
``y = None`` means "no label" and gives the unconditional score s(x, t | ∅).
:func:`label_embedding` builds it and :func:`check_labels` turns ``y`` into indices.
"""

from __future__ import annotations

import math
from typing import Any, cast

import torch
from torch import Tensor, nn

from scoresde._utils import _cheap_to_check, names_list

__all__ = [
    "GaussianFourierEmbedding",
    "add_label",
    "SinusoidalEmbedding",
    "check_labels",
    "check_time_input",
    "label_embedding",
]


def check_time_input(x: Tensor, c: Tensor) -> Tensor:
    """Validate the conditioning ``c`` against the batch ``x`` and return it as ``(batch,)``.

    Args:
        x: Network input of shape ``(batch, ...)``.
        c: Conditioning values, shape ``(batch,)`` or a scalar (broadcast to the batch).

    Returns:
        ``c`` as a floating tensor of shape ``(batch,)`` with the dtype of ``x``.

    Raises:
        TypeError: If ``c`` is not a tensor.
        ValueError: If ``c`` has the wrong shape.
    """
    if not isinstance(c, Tensor):
        raise TypeError(f"time conditioning c must be a torch.Tensor, received {type(c).__name__}")
    if c.ndim == 0:
        c = c.expand(x.shape[0])
    if c.shape != (x.shape[0],):
        raise ValueError(
            f"time conditioning c must have shape (batch,) = ({x.shape[0]},) or be a scalar, "
            f"received shape {tuple(c.shape)}"
        )
    return c.to(dtype=x.dtype)


def label_embedding(num_classes: int | None, dim: int) -> nn.Embedding | None:
    """``nn.Embedding(num_classes + 1, dim)`` (the last row: the null label), or ``None``.

    Raises:
        ValueError: If ``num_classes`` is neither ``None`` nor an integer >= 1.
    """
    if num_classes is None:
        return None
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be an integer >= 1 or None, received {num_classes!r}")
    return nn.Embedding(num_classes + 1, dim)


def check_labels(y: Tensor | int | None, num_classes: int, batch: int, device: Any) -> Tensor:
    """Labels ``y`` as a long tensor of shape ``(batch,)``; ``None`` is the null label.

    Args:
        y: ``None`` (every example unconditional), an int (one class for the batch) or a
            tensor of shape ``(batch,)``; values in ``0..num_classes``, where ``num_classes``
            itself is the null label.
        num_classes: Number of classes K.
        batch: Batch size.
        device: Device of the network input.

    Raises:
        TypeError: For floating-point or non-integer labels.
        ValueError: For a wrong shape or a label outside ``0..num_classes``.
    """
    if y is None:
        return torch.full((batch,), num_classes, dtype=torch.long, device=device)
    if isinstance(y, bool) or not isinstance(y, int | Tensor):
        raise TypeError(f"labels y: expected an int or a LongTensor, received {type(y).__name__}")
    if isinstance(y, int):
        y = torch.full((batch,), y, dtype=torch.long, device=device)
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise TypeError(f"labels y: expected integer labels, received dtype {y.dtype}")
    y = y.expand(batch) if y.ndim == 0 else y
    if y.shape != (batch,):
        raise ValueError(
            f"labels y: expected shape (batch,) = ({batch},), received {tuple(y.shape)}"
        )
    if _cheap_to_check(y) and batch and not (0 <= int(y.min()) and int(y.max()) <= num_classes):
        raise ValueError(
            f"labels y: expected classes in 0..{num_classes - 1} (or {num_classes}, the null "
            f"label), received {sorted(set(y.tolist()))[:10]}"
        )
    return y.to(device=device, dtype=torch.long)


def add_label(emb: Tensor, table: nn.Embedding | None, y: Tensor | int | None, net: str) -> Tensor:
    """The time embedding ``emb`` plus the label embedding of ``y`` (conditional networks).

    Raises:
        ValueError: If ``y`` is given to an unconditional network (``table`` is ``None``).
    """
    if table is None:
        if y is not None:
            raise ValueError(
                f"{net}: expected no labels (an unconditional network, num_classes=None), "
                f"received labels y"
            )
        return emb
    return emb + table(check_labels(y, table.num_embeddings - 1, emb.shape[0], emb.device))


class SinusoidalEmbedding(nn.Module):
    """Sinusoidal embedding ``[sin(s c w_k), cos(s c w_k)]``, ``w_k = max_period^(-k / half)``.

    Args:
        dim: Embedding size (even).
        scale: Multiplier ``s`` applied to ``c`` first; ``1000`` maps ``t`` in ``[0, 1]`` onto
            DDPM's step range.
        max_period: Longest period of the frequency ladder, in units of ``s c``.
    """

    def __init__(self, dim: int, scale: float = 1000.0, max_period: float = 10000.0) -> None:
        super().__init__()
        if dim < 2 or dim % 2:
            raise ValueError(f"embedding dim must be an even integer >= 2, received {dim}")
        half = dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
        self.register_buffer("freqs", freqs, persistent=False)
        self.dim, self.scale = dim, float(scale)

    def forward(self, c: Tensor) -> Tensor:
        """Embed ``c`` of shape ``(batch,)`` into ``(batch, dim)``."""
        freqs = cast(Tensor, self.freqs)  # a buffer
        args = (self.scale * c)[:, None] * freqs.to(c.dtype)[None]
        return torch.cat([torch.sin(args), torch.cos(args)], dim=-1)


class GaussianFourierEmbedding(nn.Module):
    """Random Fourier features ``[sin(2 pi c W), cos(2 pi c W)]`` with fixed ``W ~ N(0, s^2)``.

    Args:
        dim: Embedding size (even).
        scale: Standard deviation ``s`` of the frequencies (16 in Song et al. 2021).
        generator: Optional generator for drawing ``W`` reproducibly.
    """

    def __init__(
        self, dim: int, scale: float = 16.0, generator: torch.Generator | None = None
    ) -> None:
        super().__init__()
        if dim < 2 or dim % 2:
            raise ValueError(f"embedding dim must be an even integer >= 2, received {dim}")
        W = torch.randn(dim // 2, generator=generator) * scale
        # A buffer (not a Parameter): the frequencies are fixed, but saved in the state dict.
        self.register_buffer("W", W)
        self.dim, self.scale = dim, float(scale)

    def forward(self, c: Tensor) -> Tensor:
        """Embed ``c`` of shape ``(batch,)`` into ``(batch, dim)``."""
        W = cast(Tensor, self.W)  # a buffer
        args = 2 * math.pi * c[:, None] * W.to(c.dtype)[None]
        return torch.cat([torch.sin(args), torch.cos(args)], dim=-1)


def make_embedding(
    kind: str, dim: int, scale: float | None = None, generator: torch.Generator | None = None
) -> nn.Module:
    """Build a time embedding by name (``"sinusoidal"`` or ``"fourier"``).

    Args:
        kind: Embedding name.
        dim: Embedding size.
        scale: Scale ``s`` (``None`` uses the class default).
        generator: Generator for random frequencies (``"fourier"`` only).

    Returns:
        The embedding module mapping ``(batch,)`` to ``(batch, dim)``.

    Raises:
        ValueError: For an unknown ``kind``.
    """
    if kind == "sinusoidal":
        return SinusoidalEmbedding(dim) if scale is None else SinusoidalEmbedding(dim, scale)
    if kind == "fourier":
        s = 16.0 if scale is None else scale
        return GaussianFourierEmbedding(dim, s, generator=generator)
    raise ValueError(
        f"unknown time embedding {kind!r}; expected one of {names_list(['fourier', 'sinusoidal'])}"
    )
