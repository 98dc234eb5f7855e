"""The named steps of one training run on one rank: restore, batch, optimize, save.

:class:`RunState` holds what a checkpoint holds (weights, EMA, optimizer, LR schedule, counters)
and implements each step of :func:`scoresde.training.train`'s loop once.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, cast

import torch
from torch import Tensor, nn
from torch.optim.lr_scheduler import LRScheduler
from torch.optim.swa_utils import AveragedModel

from scoresde.data import Dataset, derive_seed
from scoresde.distributed.ddp import all_ranks_max, all_ranks_mean, barrier, wrap_ddp
from scoresde.parameterization import ScoreModel
from scoresde.training.checkpoint import (
    get_rng_state,
    load_checkpoint,
    model_config,
    save_checkpoint,
    set_rng_state,
)

__all__ = ["RunState", "drop_labels"]

#: Offset of the seeds of the label dropout of step k: ``derive_seed(seed, LABEL_SEED + k)``.
LABEL_SEED = 1 << 40


class _EpsView(nn.Module):
    """``forward(x, t) = eps_theta(x, t)``, so DDP sees the loss's forward pass."""

    def __init__(self, model: ScoreModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor, t: Tensor, y: Tensor | None = None) -> Tensor:
        return self.model.predict(x, t, "eps", y)


def drop_labels(y: Tensor, p: float, null: int, generator: torch.Generator) -> Tensor:
    """Each label replaced by the null label with probability ``p``.

    Classifier-free guidance training (Ho & Salimans 2022, Alg. 1): one network learns
    s(x, t | y) on the kept labels and the unconditional s(x, t | ∅) on the dropped ones.
    """
    if p == 0:
        return y
    drop = torch.rand(y.shape, generator=generator) < p
    return torch.where(drop, torch.full_like(y, null), y)


def ema_decay_at(decay: float, n: int, warmup: bool) -> float:
    """The EMA decay of the update after ``n`` averaged steps.

    Without warm-up it is ``decay`` from the start, so after ``n`` steps the average still holds
    ``decay**n`` of the first weights (8% after 2500 steps at 0.999). With warm-up it is
    ``min(decay, (1 + n) / (10 + n))`` (the ``num_updates`` rule of TensorFlow's
    ``ExponentialMovingAverage``): the average forgets the initial weights like ``(10 / n)**9``
    and follows the last ~n/9 steps until the ramp reaches ``decay``.
    """
    return min(decay, (1 + n) / (10 + n)) if warmup else decay


def _ema_fn(decay: float, warmup: bool) -> Any:
    """``multi_avg_fn`` for :class:`~torch.optim.swa_utils.AveragedModel` (its count is ``n``)."""

    @torch.no_grad()
    def update(averaged: list[Tensor], current: list[Tensor], n: Tensor | int) -> None:
        weight = 1.0 - ema_decay_at(decay, int(n), warmup)
        torch._foreach_lerp_(averaged, current, weight)

    return update


def _reseed(seed: int, dev: torch.device) -> None:
    # torch.manual_seed also seeds lazy CUDA/XPU/MTIA state (about 1 ms per call): avoid it.
    torch.default_generator.manual_seed(seed)
    if dev.type == "cuda":
        torch.cuda.manual_seed(seed)


class RunState:
    """The state of one training run and its named steps (one rank)."""

    def __init__(
        self,
        model: ScoreModel,
        loss: Any,
        data: Dataset,
        optimizer: torch.optim.Optimizer,
        lr_schedule: LRScheduler | None,
        *,
        ema_decay: float,
        ema_warmup: bool = False,
        grad_clip: float | None,
        batch_size: int,
        seed: int,
        out: Path,
        metadata: dict[str, Any],
        label_dropout: float = 0.0,
        dev: torch.device,
        rank: int,
        world: int,
    ) -> None:
        self.model, self.loss, self.data, self.opt = model, loss, data, optimizer
        self.lr_schedule, self.B, self.seed, self.dev = lr_schedule, batch_size, seed, dev
        self.rank, self.world, self.metadata = rank, world, metadata
        self.clip = grad_clip or math.inf
        self.ema = AveragedModel(
            model, multi_avg_fn=_ema_fn(ema_decay, ema_warmup), use_buffers=True
        )
        self.ema.module.eval()  # the EMA copy is only ever evaluated
        self.parts: dict[str, Any] = {"model": model, "ema": self.ema, "optimizer": optimizer}
        if lr_schedule is not None:
            self.parts["scheduler"] = lr_schedule
        self.ckpt = out / "checkpoint.pt"
        #: Train s(x, t | y) on the data's labels (a conditional network), else s(x, t).
        self.conditional, self.label_dropout = model.num_classes is not None, label_dropout
        names = data.labels.names if self.conditional and data.labels is not None else None
        self.model_config = model_config(model, names)  # JSON; None if load_model cannot rebuild
        self.step = self.nan_skips = self.consecutive = 0
        self.log_state: dict[str, Any] | None = None  # the CSV log's running sums, on resume
        self.saved_step: int | None = None  # step of the last checkpoint (this call or restored)
        self.forward = wrap_ddp(_EpsView(model), dev, world)
        self.shard = slice(rank * (batch_size // world), (rank + 1) * (batch_size // world))

    @property
    def ema_model(self) -> ScoreModel:
        """The exponential moving average of the weights, as a score model."""
        return cast(ScoreModel, self.ema.module)

    def restore(self) -> None:
        """Continue from ``checkpoint.pt``: weights, EMA, optimizer, schedule, RNG, counters."""
        state = load_checkpoint(self.ckpt, map_location=self.dev)
        missing = sorted(set(self.parts) - set(state))
        if missing:
            raise ValueError(f"cannot resume {self.ckpt}: it holds no {missing} state")
        new_base = [g.get("initial_lr", g["lr"]) for g in self.opt.param_groups]
        for key, part in self.parts.items():
            part.load_state_dict(state[key])
        self._apply_base_lr(new_base)
        set_rng_state(state["rng"])
        self.step, self.nan_skips = int(state["step"]), int(state["nan_skips"])
        self.log_state, self.saved_step = state.get("log_state"), self.step

    def _apply_base_lr(self, new_base: list[float]) -> None:
        """Keep the caller's base learning rate over the checkpoint's (a resume may change it).

        The schedule's factor at the restored step is kept: lr = new base x (restored lr / old base).
        """
        old_base = [g.get("initial_lr", g["lr"]) for g in self.opt.param_groups]
        if old_base == new_base:
            return
        for g, old, new in zip(self.opt.param_groups, old_base, new_base, strict=True):
            g["lr"] = g["lr"] * new / old if old else new
            if "initial_lr" in g:
                g["initial_lr"] = new
        if self.lr_schedule is not None:
            self.lr_schedule.base_lrs = list(new_base)
            self.lr_schedule._last_lr = [g["lr"] for g in self.opt.param_groups]  # noqa: SLF001

    def batch(self) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        """This rank's shard of the global batch, its times, noise and labels.

        All are functions of (seed, step); the labels are ``None`` for an unconditional model,
        else the data's with null-label dropout (:func:`drop_labels`).
        """
        y = None
        if self.conditional:
            x, y = self.data.labeled_batch(self.step, self.B, self.seed)
            g_y = torch.Generator().manual_seed(derive_seed(self.seed, LABEL_SEED + self.step))
            y = drop_labels(y, self.label_dropout, self.model.num_classes or 0, g_y)
            y = y[self.shard].to(self.dev, non_blocking=True)
        else:
            x = self.data.batch(self.step, self.B, self.seed)
        x = self.data.scaler.transform(x)
        g = torch.Generator().manual_seed(derive_seed(self.seed, ~self.step))
        t, noise = self.loss.draw(x, g)
        x, t, noise = (v[self.shard].to(self.dev, non_blocking=True) for v in (x, t, noise))
        return x, t, noise, y

    def optimize(
        self, x: Tensor, t: Tensor, noise: Tensor, stop: bool, y: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor, bool, bool]:
        """One step (skipped if the loss or gradient is not finite on any rank).

        Returns ``(loss, per-example terms, gradient norm, skipped, stop agreed by all ranks)``;
        the loss is the mean over all ranks (the global batch's), the terms are this rank's.
        """
        _reseed(derive_seed(self.seed + 7919 * self.rank, self.step), self.dev)  # dropout etc.
        if y is None:
            terms = self.loss.terms(self.forward, x, t, noise)
        else:
            terms = self.loss.terms(self.forward, x, t, noise, y)
        loss = terms.mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for group in self.opt.param_groups for p in group["params"]]
        gnorm = nn.utils.clip_grad_norm_(params, self.clip)
        bad = ~(torch.isfinite(loss) & torch.isfinite(gnorm))
        flags = torch.stack([bad, torch.tensor(stop, device=self.dev)]).float()
        skipped, stop = (bool(f) for f in all_ranks_max(flags, self.world))
        if skipped:
            self.nan_skips, self.consecutive = self.nan_skips + 1, self.consecutive + 1
            self.opt.zero_grad(set_to_none=True)
        else:
            self.opt.step()
            if self.lr_schedule is not None:
                self.lr_schedule.step()
            self.ema.update_parameters(self.model)
            self.consecutive = 0
        self.step += 1
        return (
            all_ranks_mean(loss.detach(), self.world),
            terms.detach(),
            gnorm.detach(),
            skipped,
            stop,
        )

    def lr(self) -> float:
        """The learning rate of the first parameter group."""
        return float(self.opt.param_groups[0]["lr"])

    def save(self, log_state: dict[str, Any] | None = None) -> None:
        """Rank 0 writes the checkpoint atomically; every rank waits for it.

        ``log_state``: the CSV log's running sums (see :meth:`CsvLog.state`), so that the first
        ``log.csv`` row after a resume averages the same window as an uninterrupted run.
        """
        self.saved_step = self.step
        if self.rank == 0:
            state = {key: part.state_dict() for key, part in self.parts.items()}
            save_checkpoint(
                self.ckpt,
                {
                    "step": self.step,
                    "nan_skips": self.nan_skips,
                    **state,
                    "rng": get_rng_state(),
                    "model_config": self.model_config,
                    "scaler": self.data.scaler.to_dict(),
                    "data_shape": list(self.data.shape),
                    "world_size": self.world,
                    "metadata": self.metadata,
                    "log_state": log_state,
                },
            )
        barrier(self.world)
