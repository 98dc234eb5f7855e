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
"""

from __future__ import annotations

import math
from typing import cast

import torch
from torch import Tensor, nn

from scoresde._utils import names_list

__all__ = ["SinusoidalEmbedding", "GaussianFourierEmbedding", "check_time_input"]


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
