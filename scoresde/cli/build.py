"""Turn a :class:`~scoresde.cli.config.RunConfig` into objects and train them.

This is the only place (with the rest of the CLI) that reads run configs; everything it builds
takes explicit arguments (DESIGN.md, contract 7): :func:`train_from_config` builds the SDE, data,
model, loss and optimizer and hands them to :func:`scoresde.training.train`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from scoresde.cli.config import LossConfig, NetConfig, OptimConfig, RunConfig
from scoresde.data import Dataset, get_dataset
from scoresde.distributed import env
from scoresde.distributed.atomic import atomic_write_text
from scoresde.losses import Loss, get_loss
from scoresde.nets import get_net
from scoresde.parameterization import ScoreModel
from scoresde.sde import LinearSDE, get_sde
from scoresde.training import TrainResult, train

__all__ = [
    "RunObjects",
    "build_data",
    "build_loss",
    "build_model",
    "build_optimizer",
    "build_run",
    "build_sde",
    "num_classes",
    "train_from_config",
]


def build_sde(config: RunConfig) -> LinearSDE:
    """The forward SDE of the run."""
    return get_sde(config.sde.name, **config.sde.kwargs)


def build_data(config: RunConfig) -> Dataset:
    """The run's dataset (data units) with its scaler."""
    return get_dataset(config.data.name, **config.data.kwargs)


def build_model(
    net_cfg: NetConfig,
    shape: tuple[int, ...],
    sde: LinearSDE,
    seed: int = 0,
    x0_clip: float | None = None,
    num_classes: int | None = None,
) -> ScoreModel:
    """The network wrapped as a :class:`ScoreModel`; weights initialised from ``seed``.

    Args:
        net_cfg: Network section of the config.
        shape: Event shape of the data, ``(d,)`` for vectors or ``(C, H, W)`` for images.
        sde: The forward SDE.
        seed: Seed of the initial weights (and of random Fourier frequencies).
        x0_clip: ``ScoreModel``'s bound of the x0 estimate at low SNR (see
            :func:`resolve_x0_clip`); ``None`` = off.
        num_classes: Classes of a class-conditional network (``data.labels``); ``None``: none.
    """
    kwargs = dict(net_cfg.kwargs)
    if num_classes is not None:
        kwargs.setdefault("num_classes", num_classes)
    if net_cfg.name == "mlp":
        if len(shape) != 1:
            raise ValueError(
                f"net 'mlp': expected vector data of shape (d,), received {shape}; use 'unet'"
            )
        kwargs.setdefault("dim", shape[0])
    elif net_cfg.name == "unet":
        if len(shape) != 3 or shape[1] != shape[2]:
            raise ValueError(f"net 'unet': expected square images (C, H, H), received {shape}")
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
        x0_clip=x0_clip,
    )


def resolve_x0_clip(net_cfg: NetConfig, data: Dataset) -> float | None:
    """``net.x0_clip`` as a number: "auto" bounds an eps-model's x0 by 1.25 max|x| of the data.

    The bound is taken on the scaled test set (model units); other parameterizations are not
    clipped by "auto" (x0, v and EDM outputs are stable at low SNR).
    """
    clip = net_cfg.x0_clip
    if clip != "auto":
        return None if clip is None else float(clip)
    if net_cfg.predicts != "eps":
        return None
    bound = float(data.scaler.transform(data.test).abs().max())
    return 1.25 * bound if math.isfinite(bound) and bound > 0 else None


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
        params,
        lr=optim_cfg.lr,
        betas=(optim_cfg.betas[0], optim_cfg.betas[1]),
        weight_decay=optim_cfg.weight_decay,
    )
    warm, cosine = optim_cfg.warmup_steps, optim_cfg.lr_decay == "cosine"
    if cosine and not total_steps:
        raise ValueError("lr_decay='cosine' needs total_steps (schedule.steps)")
    total = total_steps or 0

    def factor(step: int) -> float:
        if warm and step < warm:
            return (step + 1) / warm
        if not cosine:
            return 1.0
        progress = min(1.0, (step - warm) / max(1, total - warm))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


@dataclass
class RunObjects:
    """Everything a run config describes, built: what :func:`scoresde.training.train` takes."""

    sde: LinearSDE
    data: Dataset
    model: ScoreModel
    loss: Loss
    optimizer: torch.optim.Optimizer
    lr_schedule: torch.optim.lr_scheduler.LambdaLR


def build_run(config: RunConfig) -> RunObjects:
    """Build the SDE, data, model (weights from ``schedule.seed``), loss and optimizer."""
    config.validate()
    sde, data = build_sde(config), build_data(config)
    clip = resolve_x0_clip(config.net, data)
    k = num_classes(config, data)
    model = build_model(
        config.net, data.shape, sde, seed=config.schedule.seed, x0_clip=clip, num_classes=k
    )
    loss = build_loss(config.loss, sde)
    opt, lr_schedule = build_optimizer(
        config.optim, list(model.parameters()), config.schedule.steps
    )
    return RunObjects(sde, data, model, loss, opt, lr_schedule)


def num_classes(config: RunConfig, data: Dataset) -> int | None:
    """The number of classes of a ``data.labels: true`` run (``None`` for an unconditional one).

    Raises:
        ValueError: If ``data.labels`` is set for a source without class labels.
    """
    if not config.data.labels:
        return None
    if data.labels is None:
        raise ValueError(
            f"data.labels: expected a data set with class labels (digits, mnist, 8gaussians, "
            f"checkerboard, a mixture with labels), received {config.data.name!r}, which has none"
        )
    return data.labels.num_classes


def train_from_config(config: RunConfig, out_dir: str | Path, **kwargs: Any) -> TrainResult:
    """Build the run described by ``config`` and train it (also under ``torchrun``).

    Rank 0 writes the resolved config to ``out_dir/config.json`` (atomically, once per call); the
    checkpoint keeps it as ``metadata["run_config"]``.

    Args:
        config: The run config.
        out_dir: The run folder (resumed if it holds a checkpoint).
        **kwargs: Passed to :func:`scoresde.training.train` (``device``, ``progress``,
            ``eval_hooks``, ``stop_after``, ``time_limit``, ``resume``).
    """
    from scoresde.cli.resume import check_resume
    from scoresde.cli.validate import check_train_memory

    out, rank0 = Path(out_dir), env.rank() == 0
    if kwargs.get("resume", True):  # refuse a changed model/problem before building anything
        check_resume(config, out, announce=rank0)
    run, s, o = build_run(config), config.schedule, config.optim
    check_train_memory(run.model, run.loss, run.data, s.batch_size, kwargs.get("device") or "cpu")
    fresh = not (out / "checkpoint.pt").is_file() and not (out / "log.csv").exists()
    existed = out.exists()
    if rank0:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "config.json", config.to_json())
    try:
        return train(
            run.model,
            run.loss,
            run.data,
            run.optimizer,
            lr_schedule=run.lr_schedule,
            steps=s.steps,
            batch_size=s.batch_size,
            out_dir=out,
            ema_decay=o.ema_decay,
            ema_warmup=o.ema_warmup,
            grad_clip=o.grad_clip,
            seed=s.seed,
            log_every=s.log_every,
            ckpt_every=s.ckpt_every,
            eval_every=s.eval_every,
            t_bins=s.t_bins,
            max_nan_steps=s.max_nan_steps,
            metadata={"run_config": config.to_dict()},
            label_dropout=config.data.label_dropout if config.data.labels else 0.0,
            **kwargs,
        )
    except (ValueError, TypeError, KeyboardInterrupt):  # before a first checkpoint: no trace
        if rank0 and fresh and not (out / "checkpoint.pt").is_file():
            for name in ("config.json", "log.csv", "eval.csv"):
                (out / name).unlink(missing_ok=True)
            if not existed and not any(out.iterdir()):
                out.rmdir()
        raise
