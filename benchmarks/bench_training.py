"""Trainer throughput against a bare hand-written DSM loop (same MLP, data, batch, optimizer).

Goal: ratio = bare time / trainer time >= 0.95. Two baselines are timed in the same run:

* ``bare``: sample batch, DSM loss, backward, Adam step (nothing else);
* ``bare+clip+ema``: the same plus gradient clipping and the EMA update, which the trainer
  also does; the difference to it is the trainer's own overhead (seeding, NaN guard, logging,
  the per-t profile, progress, checkpoint).

Usage: ``python benchmarks/bench_training.py [--steps 400] [--repeats 5]``. The trainer's loop time
comes from its log.csv (same warm-up excluded as for the bare loops); its whole-call time,
including setup and the final fsync-ed checkpoint, is printed too.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from scoresde.cli.build import build_data, build_loss, build_model, build_sde, train_from_config
from scoresde.cli.config import RunConfig

WARM = 50  # steps excluded from the loop timing (first-call allocations)


def bare_loop(cfg: RunConfig, steps: int, clip_ema: bool) -> float:
    data, sde = build_data(cfg), build_sde(cfg)
    model = build_model(cfg.net, data.shape, sde, seed=0)
    loss_fn = build_loss(cfg.loss, sde)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.optim.lr)
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.999), use_buffers=True)
    g = torch.Generator().manual_seed(0)
    B = cfg.schedule.batch_size
    t0 = time.perf_counter()
    for i in range(steps):
        if i == WARM:  # time the loop after the same warm-up the trainer's log excludes
            t0 = time.perf_counter()
        x0 = data.sampler(B, g)
        loss = loss_fn(model, x0, generator=g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip_ema:
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if clip_ema:
            ema.update_parameters(model)
    return time.perf_counter() - t0


def trainer(cfg: RunConfig) -> tuple[float, float]:
    """(loop seconds after the first WARM steps, from log.csv; whole call incl. setup/checkpoint)."""
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        train_from_config(cfg, d, progress=False, device="cpu")
        total = time.perf_counter() - t0
        rows = [r.split(",") for r in (Path(d) / "log.csv").read_text().splitlines()[1:]]
        seconds = {int(r[0]): float(r[5]) for r in rows}
        return seconds[cfg.schedule.steps] - seconds[WARM], total


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    cfg = RunConfig.from_dict(
        {
            "net": {"kwargs": {"hidden": 128, "depth": 3}},
            "optim": {"lr": 1e-3},
            "schedule": {
                "steps": args.steps,
                "batch_size": 256,
                "log_every": WARM,
                "ckpt_every": args.steps,
            },
        }
    )
    keys = ("bare", "bare+clip+ema", "trainer loop", "trainer call")
    best = dict.fromkeys(keys, math.inf)
    for _ in range(args.repeats):  # interleaved, best of N (the machine is shared)
        best["bare"] = min(best["bare"], bare_loop(cfg, args.steps, clip_ema=False))
        best["bare+clip+ema"] = min(best["bare+clip+ema"], bare_loop(cfg, args.steps, True))
        loop, call = trainer(cfg)
        best["trainer loop"] = min(best["trainer loop"], loop)
        best["trainer call"] = min(best["trainer call"], call)
    n = args.steps - WARM
    print(
        f"threads={torch.get_num_threads()} steps={args.steps} (timed: {n} after {WARM} warm-up) "
        f"batch=256 MLP 128x3, best of {args.repeats}"
    )
    for k in keys[:3]:
        print(f"  {k:14s} {best[k]:7.3f} s  {n / best[k]:7.1f} steps/s")
    print(
        f"  trainer call   {best['trainer call']:7.3f} s for all {args.steps} steps, incl. setup "
        "and the final checkpoint"
    )
    for k in ("bare", "bare+clip+ema"):
        print(f"  ratio {k}/trainer loop = {best[k] / best['trainer loop']:.3f}  (goal >= 0.95)")


if __name__ == "__main__":
    main()
