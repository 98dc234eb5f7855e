"""Networks ``net(x, c)`` for score models; they know nothing about SDEs.

``c`` is a ``(batch,)`` float tensor of time-conditioning values chosen by
:mod:`scoresde.parameterization` (``t``, log-SNR, ...). ``NETS`` is the registry; ``net.config()`` and :func:`net_from_config` let a checkpoint
rebuild a network.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from scoresde._utils import names_list
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
    "net_from_config",
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
        raise ValueError(f"unknown network {name!r}; expected one of {names_list(NETS)}")
    return NETS[name](**kwargs)


def net_from_config(config: dict[str, Any]) -> nn.Module:
    """Rebuild a registered network from its ``config()`` (weights are loaded separately).

    Args:
        config: ``{"name": <registry name>, **constructor arguments}`` as returned by
            ``ResidualMLP.config()`` / ``UNet.config()``.

    Raises:
        ValueError: If ``config`` is not a dict with a registered ``name``.
    """
    if not isinstance(config, dict) or "name" not in config:
        raise ValueError(f"net_from_config: expected a dict with a 'name' key, received {config!r}")
    kwargs = dict(config)
    return get_net(kwargs.pop("name"), **kwargs)
