"""Networks ``net(x, c)`` for score models; they know nothing about SDEs.

``c`` is a ``(batch,)`` float tensor of time-conditioning values chosen by
:mod:`scoresde.parameterization` (``t``, log-SNR, ...). ``NETS`` is the registry used by configs.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from scoresde.nets.embeddings import GaussianFourierEmbedding, SinusoidalEmbedding
from scoresde.nets.mlp import ResidualMLP
from scoresde.nets.unet import UNet

__all__ = [
    "NETS",
    "GaussianFourierEmbedding",
    "ResidualMLP",
    "SinusoidalEmbedding",
    "UNet",
    "get_net",
]

NETS: dict[str, type[nn.Module]] = {"mlp": ResidualMLP, "unet": UNet}


def get_net(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered network.

    Args:
        name: Registry name (``"mlp"`` or ``"unet"``).
        **kwargs: Constructor arguments of the network class.

    Returns:
        The network module.

    Raises:
        ValueError: If ``name`` is not registered.
    """
    if name not in NETS:
        raise ValueError(f"unknown network {name!r}; valid: {sorted(NETS)}")
    return NETS[name](**kwargs)
