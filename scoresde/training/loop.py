"""The training loop: EMA, atomic checkpoints, exact resume, NaN guard, DDP through ``torchrun``.

``train(config, out_dir)`` runs the denoising objective of :mod:`scoresde.losses` on the data of
:mod:`scoresde.data` and writes, in ``out_dir``: ``config.json`` (the resolved run config),
``checkpoint.pt`` (see :mod:`scoresde.training.checkpoint`), ``log.csv`` (loss, learning rate, gradient
norm, skipped steps, and the loss binned by t, which shows where a schedule or weighting is off)
and ``eval.csv`` (metrics returned by evaluation hooks).

Determinism: the global batch, t and the noise of step k are functions of ``(seed, k)``, torch's
global RNG (dropout) is reseeded from ``(seed, rank, k)`` before each step, and the checkpoint also
holds every RNG state, so a run interrupted anywhere (Ctrl-C, SIGTERM, ``kill -9``) and
resumed from its last checkpoint ends with the same weights as an uninterrupted run on CPU.

Distributed: launch the same entry point with ``torchrun`` (``gloo`` on CPU, ``NCCL`` on GPUs)::

    torchrun --nproc_per_node 4 -m scoresde.training --config run.yaml --out runs/a
    # multi-node: on every node, with a shared out_dir
    torchrun --nnodes 2 --node_rank R --nproc_per_node 8 --rdzv_backend c10d \\
        --rdzv_endpoint HOST:29500 -m scoresde.training --config run.yaml --out runs/a

Each rank takes its contiguous shard of the same global batch (``batch_size`` must divide by the
world size), DDP averages gradients, and rank 0 alone writes checkpoints and logs.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from scoresde.cli.build import build_data, build_loss, build_model, build_optimizer, build_sde
from scoresde.cli.config import RunConfig
from scoresde.data import Dataset, derive_seed
from scoresde.parameterization import ScoreModel
from scoresde.training.checkpoint import (
    atomic_write_text,
    get_rng_state,
    load_checkpoint,
    save_checkpoint,
    set_rng_state,
)
from scoresde.training.log import CsvLog, append_csv

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


class _EpsView(nn.Module):
    """``forward(x, t) = eps_theta(x, t)``, so DDP sees the loss's forward pass."""

    def __init__(self, model: ScoreModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        return self.model.predict(x, t, "eps")


def _default_device(device: str | torch.device | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def _reseed(seed: int, dev: torch.device) -> None:
    # torch.manual_seed also seeds lazy CUDA/XPU/MTIA state (about 1 ms per call): avoid it.
    torch.default_generator.manual_seed(seed)
    if dev.type == "cuda":
        torch.cuda.manual_seed(seed)


def make_test_loss_hook(loss_fn: Any, batch_size: int = 1000, seed: int = 0) -> EvalHook:
    """An eval hook returning the loss of the EMA model on the test set (fixed noise)."""

    @torch.no_grad()
    def hook(step: int, model: ScoreModel, data: Dataset) -> dict[str, float]:
        x = data.scaler.transform(data.test[:batch_size]).to(next(model.parameters()).device)
        g = torch.Generator().manual_seed(seed)
        t, noise = loss_fn.draw(x.cpu(), g)
        return {"test_loss": float(loss_fn(model, x, t=t.to(x.device), noise=noise.to(x.device)))}

    return hook


class _Stopper:
    """Turns SIGINT/SIGTERM into a flag checked between steps (main thread only)."""

    def __init__(self) -> None:
        self.flag, self.old = False, {}

    def __enter__(self) -> _Stopper:
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self.old[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.flag = True

    def __exit__(self, *exc: Any) -> None:
        for s, h in self.old.items():
            signal.signal(s, h)


def train(
    config: RunConfig,
    out_dir: str | Path,
    *,
    device: str | torch.device | None = None,
    resume: bool = True,
    progress: bool = True,
    eval_hooks: list[EvalHook] | None = None,
    stop_after: int | None = None,
    time_limit: float | None = None,
) -> TrainResult:
    """Train a score model described by ``config``; resumable and DDP-aware.

    Args:
        config: The run configuration (validated here).
        out_dir: Folder for checkpoint, config and logs; an existing checkpoint is resumed.
        device: Torch device; default ``cuda`` (``cuda:LOCAL_RANK`` under torchrun) if available.
        resume: Continue from ``out_dir/checkpoint.pt`` when it exists.
        progress: Show a tqdm bar on rank 0.
        eval_hooks: Called every ``schedule.eval_every`` steps with the EMA model; their metrics
            go to ``eval.csv``.
        stop_after: Stop (with a checkpoint) after this many steps in this call, e.g. for a job
            with a step budget; ``None`` runs to ``schedule.steps``.
        time_limit: Stop (with a checkpoint) once this many seconds of training have passed.

    Returns:
        A :class:`TrainResult`. On SIGINT/SIGTERM a checkpoint is written and the result has
        ``interrupted=True``.

    Raises:
        TrainingDiverged: After ``max_nan_steps`` consecutive non-finite losses/gradients.
        ValueError: For an invalid config or a batch size not divisible by the world size.
    """
    config.validate()
    out = Path(out_dir)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    dev = _default_device(device)
    own_pg = world > 1 and not dist.is_initialized()
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if own_pg:
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    rank = dist.get_rank() if world > 1 else 0
    sch, B = config.schedule, config.schedule.batch_size
    if B % world:
        raise ValueError(f"schedule.batch_size ({B}) must be divisible by the world size ({world})")
    try:
        data, sde = build_data(config), build_sde(config)
        model = build_model(config.net, data.shape, sde, seed=sch.seed).to(dev)
        loss_fn = build_loss(config.loss, sde)
        params = list(model.parameters())
        opt, lr_sched = build_optimizer(config.optim, params, sch.steps)
        ema = AveragedModel(
            model, multi_avg_fn=get_ema_multi_avg_fn(config.optim.ema_decay), use_buffers=True
        )
        ckpt, step, nan_skips = out / "checkpoint.pt", 0, 0
        parts = {"model": model, "ema": ema, "optimizer": opt, "scheduler": lr_sched}
        if resume and ckpt.is_file():
            state = load_checkpoint(ckpt, map_location=dev)
            for key, part in parts.items():
                part.load_state_dict(state[key])
            set_rng_state(state["rng"])
            step, nan_skips = int(state["step"]), int(state["nan_skips"])
        if rank == 0:  # the resolved config, once per call (it cannot change during the run)
            out.mkdir(parents=True, exist_ok=True)
            atomic_write_text(out / "config.json", config.to_json())
        net = _EpsView(model)
        ids = [dev] if dev.type == "cuda" else None
        fwd = nn.parallel.DistributedDataParallel(net, device_ids=ids) if world > 1 else net
        ema.module.eval()  # the EMA copy is only ever evaluated
        log = CsvLog(out / "log.csv", sch.t_bins, step) if rank == 0 else None

        def checkpoint() -> None:
            if rank == 0:
                state = {key: part.state_dict() for key, part in parts.items()}
                save_checkpoint(
                    ckpt,
                    {
                        "step": step,
                        "nan_skips": nan_skips,
                        **state,
                        "rng": get_rng_state(),
                        "config": config.to_dict(),
                        "scaler": data.scaler.to_dict(),
                        "world_size": world,
                        "data_shape": list(data.shape),
                    },
                )
            if world > 1:
                dist.barrier()

        shard = slice(rank * (B // world), (rank + 1) * (B // world))
        clip = config.optim.grad_clip or math.inf
        bar = tqdm(total=sch.steps, initial=step, disable=not progress or rank != 0)
        consecutive, start_step, stopped = 0, step, False
        t_start = time.perf_counter()

        def out_of_time() -> bool:
            return time_limit is not None and time.perf_counter() - t_start > time_limit

        model.train()  # once: hooks see the EMA copy, never this model
        with _Stopper() as stopper:
            while step < sch.steps:
                x = data.scaler.transform(data.batch(step, B, sch.seed))
                t, noise = loss_fn.draw(
                    x, torch.Generator().manual_seed(derive_seed(sch.seed, ~step))
                )
                x, t, noise = (v[shard].to(dev, non_blocking=True) for v in (x, t, noise))
                _reseed(derive_seed(sch.seed + 7919 * rank, step), dev)  # dropout etc.
                terms = loss_fn.terms(fwd, x, t, noise)
                loss = terms.mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                gnorm = nn.utils.clip_grad_norm_(params, clip)
                flags = torch.stack(
                    [
                        ~(torch.isfinite(loss) & torch.isfinite(gnorm)),
                        torch.tensor(stopper.flag or out_of_time(), device=dev),
                    ]
                ).float()
                if world > 1:
                    dist.all_reduce(flags, op=dist.ReduceOp.MAX)
                bad, stopped = bool(flags[0]), bool(flags[1])
                if bad:
                    nan_skips, consecutive = nan_skips + 1, consecutive + 1
                    opt.zero_grad(set_to_none=True)
                else:
                    opt.step()
                    lr_sched.step()
                    ema.update_parameters(model)
                    consecutive = 0
                step += 1
                bar.update(1)
                if log is not None and not bad:
                    log.add(loss.detach(), terms.detach(), t / sde.T, gnorm.detach())
                if log is not None and (step % sch.log_every == 0 or step == sch.steps):
                    row = log.flush(step, lr_sched.get_last_lr()[0], nan_skips)
                    bar.set_postfix(loss=f"{row['loss']:.4g}")
                if consecutive >= sch.max_nan_steps:
                    raise TrainingDiverged(
                        f"{consecutive} consecutive steps with a non-finite loss or gradient "
                        f"(up to step {step}); the last good checkpoint {ckpt} is kept. Lower "
                        "optim.lr, enable optim.grad_clip or check the data for NaN/inf."
                    )
                if sch.eval_every and step % sch.eval_every == 0 and rank == 0 and eval_hooks:
                    metrics = {
                        k: v for h in eval_hooks for k, v in h(step, ema.module, data).items()
                    }
                    append_csv(out / "eval.csv", {"step": step, **metrics})
                if stop_after is not None and step - start_step >= stop_after:
                    stopped = True
                if step % sch.ckpt_every == 0 or step == sch.steps or stopped:
                    checkpoint()
                if stopped:
                    break
        bar.close()
        return TrainResult(step, ema.module, model, ckpt, nan_skips, stopped and step < sch.steps)
    finally:
        if own_pg:
            dist.destroy_process_group()


def main(argv: list[str] | None = None) -> int:
    """``python -m scoresde.training --config run.yaml --out runs/a`` (works under torchrun)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True, help="run config (.json/.yaml)")
    p.add_argument("--out", required=True, help="output folder (resumed if it has a checkpoint)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    res = train(
        RunConfig.load(args.config), args.out, device=args.device, progress=not args.no_progress
    )
    return 130 if res.interrupted else 0
