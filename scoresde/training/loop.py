"""The training loop: EMA, atomic checkpoints, exact resume, NaN guard, DDP through ``torchrun``.

``train(model, loss, data, optimizer, steps=..., batch_size=..., out_dir=...)`` minimises a
denoising objective of :mod:`scoresde.losses` (Song et al. 2021, Eq. 7) on the batches of a
:class:`~scoresde.data.Dataset`; it takes objects, never a configuration (DESIGN.md, contract 7).
It writes, in ``out_dir``: ``checkpoint.pt`` (see :mod:`scoresde.training.checkpoint`),
``log.csv`` (loss, learning rate, gradient norm, skipped steps, and the loss binned by t, which
shows where a schedule or weighting is off) and ``eval.csv`` (metrics returned by eval hooks).

Determinism: the global batch, t and the noise of step k are functions of ``(seed, k)``, torch's
global RNG (dropout) is reseeded from ``(seed, rank, k)`` before each step, and the checkpoint also
holds every RNG state, so a run interrupted anywhere (Ctrl-C, SIGTERM, ``kill -9``) and
resumed from its last checkpoint ends with the same weights as an uninterrupted run on CPU.

Distributed: run the same script (or ``scoresde train``) under ``torchrun``::

    torchrun --nproc_per_node 4 -m scoresde train --config run.yaml --out runs/a

Each rank builds the same model (same seed), takes its contiguous shard of the same global batch
(``batch_size`` must divide by the world size), DDP averages gradients (see
:mod:`scoresde.distributed.ddp`), and rank 0 alone writes checkpoints and logs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.optim.lr_scheduler import LRScheduler

from scoresde._utils import progress_bar
from scoresde.data import Dataset, derive_seed
from scoresde.distributed.ddp import default_device, process_group
from scoresde.losses import Loss
from scoresde.parameterization import ScoreModel
from scoresde.sde import check_prior_for_data
from scoresde.training.guards import (
    Stopper,
    check_args,
    check_finite_data,
    check_labels_args,
    check_run_folder,
    diverged_message,
    remove_stale_temporaries,
    seed_global_rngs,
)
from scoresde.training.log import CsvLog, append_csv, trim_csv
from scoresde.training.steps import RunState

__all__ = ["EvalHook", "TrainResult", "TrainingDiverged", "make_test_loss_hook", "train"]

#: ``hook(step, ema_model, dataset) -> {metric: value}``, called on rank 0 every ``eval_every``.
EvalHook = Callable[[int, ScoreModel, Dataset], dict[str, float]]


class TrainingDiverged(RuntimeError):
    """Raised after ``max_nan_steps`` consecutive non-finite steps (last checkpoint kept)."""


@dataclass
class TrainResult:
    """What :func:`train` returns: the EMA model, the raw model, and how the run ended."""

    step: int
    model: ScoreModel
    raw_model: ScoreModel
    checkpoint: Path
    nan_skips: int
    interrupted: bool
    stop_signal: int = 0  #: the signal (SIGINT 2, SIGTERM 15) that stopped the run, else 0


def make_test_loss_hook(loss_fn: Any, batch_size: int = 1000, seed: int = 0) -> EvalHook:
    """An eval hook returning the loss of the EMA model on the test set (fixed noise)."""

    @torch.no_grad()
    def hook(step: int, model: ScoreModel, data: Dataset) -> dict[str, float]:
        x = data.scaler.transform(data.test[:batch_size]).to(next(model.parameters()).device)
        g = torch.Generator().manual_seed(seed)
        t, noise = loss_fn.draw(x.cpu(), g)
        return {"test_loss": float(loss_fn(model, x, t=t.to(x.device), noise=noise.to(x.device)))}

    return hook


def train(
    model: ScoreModel,
    loss: Loss,
    data: Dataset,
    optimizer: torch.optim.Optimizer,
    *,
    steps: int,
    batch_size: int,
    out_dir: str | Path,
    lr_schedule: LRScheduler | None = None,
    ema_decay: float = 0.999,
    ema_warmup: bool = False,
    grad_clip: float | None = 1.0,
    seed: int = 0,
    log_every: int = 100,
    ckpt_every: int = 1000,
    eval_every: int = 0,
    t_bins: int = 10,
    max_nan_steps: int = 10,
    metadata: dict[str, Any] | None = None,
    device: str | torch.device | None = None,
    resume: bool = True,
    progress: bool = True,
    eval_hooks: list[EvalHook] | None = None,
    stop_after: int | None = None,
    time_limit: float | None = None,
    label_dropout: float = 0.0,
) -> TrainResult:
    """Train ``model`` on ``loss`` over ``data``; resumable, NaN-guarded and DDP-aware.

    Args:
        model: The score model (network + SDE); moved to ``device``. Under ``torchrun`` every
            rank must build it the same way (DDP also broadcasts rank 0's weights).
        loss: A :class:`scoresde.losses.Loss` for ``model.sde`` (e.g. ``get_loss("dsm", sde)``).
        data: Training batches ``data.batch(step, batch_size, seed)`` in data units, mapped to
            model units by ``data.scaler``.
        optimizer: An optimizer over ``model``'s parameters.
        steps: Total number of optimizer steps of the run.
        batch_size: Global batch size (divisible by the world size).
        out_dir: Folder for ``checkpoint.pt``, ``log.csv`` and ``eval.csv``; resumed if it holds
            a checkpoint.
        lr_schedule: Stepped after every optimizer step and saved in the checkpoint.
        ema_decay: Decay of the exponential moving average of the weights.
        ema_warmup: Ramp the decay as ``min(ema_decay, (1 + n) / (10 + n))`` over the first
            updates, so a short run's EMA does not keep ``ema_decay**steps`` of the initial
            weights (:func:`~scoresde.training.steps.ema_decay_at`). Off by default, which keeps
            earlier runs reproducible; recommended for runs shorter than ~10 / (1 - ema_decay).
        grad_clip: Maximal global gradient norm (``None``: no clipping).
        seed: Seed of the batch order, t, the noise and dropout.
        log_every: Steps per ``log.csv`` row.
        ckpt_every: Steps between checkpoints (one is also written at the end and on a stop).
        eval_every: Steps between calls of ``eval_hooks`` (0: never).
        t_bins: Number of t-bins of the per-t loss profile in ``log.csv``.
        max_nan_steps: Consecutive non-finite steps before :class:`TrainingDiverged`.
        metadata: JSON-serialisable description of the run kept in the checkpoint (e.g. the
            CLI's resolved config); never read by the library.
        device: Torch device; default ``cuda`` (``cuda:LOCAL_RANK`` under torchrun) if available.
        resume: Continue from ``out_dir/checkpoint.pt`` when it exists.
        progress: Show a tqdm bar on rank 0.
        eval_hooks: Called every ``eval_every`` steps with the EMA model; their metrics go to
            ``eval.csv``.
        stop_after: Stop (with a checkpoint) after this many steps in this call, e.g. for a job
            with a step budget; ``None`` runs to ``steps``.
        time_limit: Stop (with a checkpoint) once this many seconds of training have passed.
        label_dropout: A class-conditional model (``model.num_classes`` set) trains on the
            data's labels (``data.labels``), each replaced by the null label with this
            probability, so one network learns s(x, t | y) and s(x, t | ∅) for classifier-free
            guidance (Ho & Salimans 2022; 0.1-0.2 there). Must be 0 for an unconditional model.

    Returns:
        A :class:`TrainResult`. On SIGINT/SIGTERM a checkpoint is written and the result has
        ``interrupted=True`` and ``stop_signal`` set. A checkpoint is never written while
        non-finite steps are being skipped, so the kept one is the last good state; it holds
        the log's running sums, so ``log.csv``/``eval.csv`` after any resume equal an
        uninterrupted run's (timing aside). Temporaries of a killed writer are removed on start.

    Raises:
        TrainingDiverged: After ``max_nan_steps`` consecutive non-finite losses/gradients, or
            when the run ends inside such a streak (the message names the checkpoint to keep).
        TypeError: If ``model``, ``loss``, ``data`` or ``optimizer`` has the wrong type.
        ValueError: For data that is not finite in model units, a count out of range, an optimizer over other parameters, a loss for
            another SDE, or a batch size not divisible by the world size.
    """
    counts = {
        "steps": steps,
        "batch_size": batch_size,
        "log_every": log_every,
        "ckpt_every": ckpt_every,
        "eval_every": eval_every,
        "t_bins": t_bins,
        "max_nan_steps": max_nan_steps,
    }
    check_args(model, loss, data, optimizer, counts, ema_decay, grad_clip)
    check_labels_args(model, loss, data, label_dropout)
    if not isinstance(ema_warmup, bool):
        raise TypeError(f"train: expected ema_warmup a bool, received {type(ema_warmup).__name__}")
    check_finite_data(data)
    if isinstance(data.test, torch.Tensor):  # warns once if p_T is far from the prior
        check_prior_for_data(model.sde, data.scaler.transform(data.test[:10_000]), "training")
    out, dev = Path(out_dir), default_device(device)
    with process_group(dev) as (rank, world):
        if batch_size % world:
            raise ValueError(
                f"train: batch_size ({batch_size}) must be divisible by the world size ({world})"
            )
        run = RunState(
            model.to(dev),
            loss,
            data,
            optimizer,
            lr_schedule,
            ema_decay=ema_decay,
            ema_warmup=ema_warmup,
            grad_clip=grad_clip,
            batch_size=batch_size,
            seed=seed,
            out=out,
            metadata=dict(metadata or {}),
            label_dropout=label_dropout,
            dev=dev,
            rank=rank,
            world=world,
        )
        if rank == 0:
            check_run_folder(out)
            remove_stale_temporaries(out)
        if resume and run.ckpt.is_file():
            run.restore()
        else:  # numpy/Python global RNGs (e.g. in eval hooks) start from the seed, then resume
            seed_global_rngs(derive_seed(seed + 7919 * rank, -1))
        log = CsvLog(out / "log.csv", t_bins, run.step) if rank == 0 else None
        if log is not None:
            log.load_state(run.log_state)
            trim_csv(out / "eval.csv", run.step)
        bar = progress_bar(total=steps, initial=run.step, disable=not progress or rank != 0)
        start_step, t_start, stopped = run.step, time.perf_counter(), False
        model.train()  # once: hooks see the EMA copy, never this model
        with Stopper() as stopper:
            while run.step < steps:
                late = time_limit is not None and time.perf_counter() - t_start > time_limit
                x, t, noise, y = run.batch()
                loss_v, terms, gnorm, skipped, stopped = run.optimize(
                    x, t, noise, stopper.flag or late, y
                )
                bar.update(1)
                if log is not None:
                    if not skipped:
                        log.add(loss_v, terms, t / model.sde.T, gnorm)
                    if run.step % log_every == 0 or run.step == steps:
                        row = log.flush(run.step, run.lr(), run.nan_skips)
                        bar.set_postfix(loss=f"{row['loss']:.4g}")
                if run.consecutive >= max_nan_steps or (run.step == steps and run.consecutive):
                    raise TrainingDiverged(diverged_message(run))
                if eval_every and run.step % eval_every == 0 and rank == 0 and eval_hooks:
                    ema = run.ema_model
                    metrics = {k: v for h in eval_hooks for k, v in h(run.step, ema, data).items()}
                    append_csv(out / "eval.csv", {"step": run.step, **metrics})
                stopped = stopped or (
                    stop_after is not None and run.step - start_step >= stop_after
                )
                due = run.step % ckpt_every == 0 or run.step == steps or stopped
                if due and run.consecutive == 0:  # never save weights that just gave NaN as good
                    run.save(log.state() if log is not None else None)
                if stopped:
                    break
        bar.close()
        interrupted = stopped and run.step < steps
        return TrainResult(
            run.step, run.ema_model, model, run.ckpt, run.nan_skips, interrupted, stopper.signum
        )
