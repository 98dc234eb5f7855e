"""Turn a :class:`~scoresde.cli.config.RunConfig` into objects: SDE, data, model, loss, optimizer.

This is the only place (with the CLI) that reads configs; everything it builds takes explicit
arguments (DESIGN.md, contract 7).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from scoresde.cli.config import LossConfig, NetConfig, OptimConfig, RunConfig
from scoresde.data import Dataset, get_dataset
from scoresde.losses import Loss, get_loss
from scoresde.nets import get_net
from scoresde.parameterization import ScoreModel
from scoresde.sde import LinearSDE, get_sde

__all__ = ["build_data", "build_loss", "build_model", "build_optimizer", "build_sde"]


def build_sde(config: RunConfig) -> LinearSDE:
    """The forward SDE of the run."""
    return get_sde(config.sde.name, **config.sde.kwargs)


def build_data(config: RunConfig) -> Dataset:
    """The run's dataset (data units) with its scaler."""
    return get_dataset(config.data.name, **config.data.kwargs)


def build_model(
    net_cfg: NetConfig, shape: tuple[int, ...], sde: LinearSDE, seed: int = 0
) -> ScoreModel:
    """The network wrapped as a :class:`ScoreModel`; weights initialised from ``seed``.

    Args:
        net_cfg: Network section of the config.
        shape: Event shape of the data, ``(d,)`` for vectors or ``(C, H, W)`` for images.
        sde: The forward SDE.
        seed: Seed of the initial weights (and of random Fourier frequencies).
    """
    kwargs = dict(net_cfg.kwargs)
    if net_cfg.name == "mlp":
        if len(shape) != 1:
            raise ValueError(
                f"net 'mlp' needs vector data of shape (d,), received {shape}; use 'unet'"
            )
        kwargs.setdefault("dim", shape[0])
    elif net_cfg.name == "unet":
        if len(shape) != 3 or shape[1] != shape[2]:
            raise ValueError(f"net 'unet' needs square images (C, H, H), received {shape}")
        kwargs.setdefault("in_channels", shape[0])
        kwargs.setdefault("image_size", shape[1])
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = get_net(net_cfg.name, generator=gen, **kwargs)
    return ScoreModel(
        net,
        sde,
        predicts=net_cfg.predicts,
        time_input=net_cfg.time_input,
        sigma_data=net_cfg.sigma_data,
    )


def build_loss(loss_cfg: LossConfig, sde: LinearSDE) -> Loss:
    """The training objective for ``sde``."""
    if loss_cfg.name == "dsm":
        return get_loss(
            "dsm",
            sde,
            weighting=loss_cfg.weighting,
            t_sampling=loss_cfg.t_sampling,
            reduction=loss_cfg.reduction,
            gamma=loss_cfg.gamma,
        )
    if loss_cfg.name == "ddpm":
        return get_loss("ddpm", sde, num_steps=loss_cfg.num_steps, reduction=loss_cfg.reduction)
    return get_loss("smld", sde, num_scales=loss_cfg.num_scales, reduction=loss_cfg.reduction)


def build_optimizer(
    optim_cfg: OptimConfig, params: list[nn.Parameter], total_steps: int | None = None
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """Adam/AdamW with linear warm-up over ``warmup_steps`` and optional cosine decay.

    Args:
        optim_cfg: Optimizer section of the config.
        params: Parameters to optimise.
        total_steps: Length of the run (needed for ``lr_decay="cosine"``).
    """
    klass = torch.optim.AdamW if optim_cfg.name == "adamw" else torch.optim.Adam
    opt = klass(
        params, lr=optim_cfg.lr, betas=tuple(optim_cfg.betas), weight_decay=optim_cfg.weight_decay
    )
    warm, cosine = optim_cfg.warmup_steps, optim_cfg.lr_decay == "cosine"
    if cosine and not total_steps:
        raise ValueError("lr_decay='cosine' needs total_steps (schedule.steps)")

    def factor(step: int) -> float:
        if warm and step < warm:
            return (step + 1) / warm
        if not cosine:
            return 1.0
        progress = min(1.0, (step - warm) / max(1, total_steps - warm))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)
