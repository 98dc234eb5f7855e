"""Trainer throughput against a bare hand-written DSM loop (same MLP, data, batch, optimizer).

Goal: ratio = bare time / trainer time >= 0.95. Two baselines are timed in the same run:

* ``bare``: sample batch, DSM loss, backward, Adam step (nothing else);
* ``bare+clip+ema``: the same plus gradient clipping and the EMA update, which the trainer
  also does; the difference to it is the trainer's own overhead (seeding, NaN guard, logging,
  the per-t profile, progress, checkpoint).

Usage: ``python benchmarks/bench_training.py [--steps 1000] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from scoresde.config import RunConfig
from scoresde.config_build import build_data, build_loss, build_model, build_sde
from scoresde.training import train


def bare_loop(cfg: RunConfig, steps: int, clip_ema: bool) -> float:
    data, sde = build_data(cfg), build_sde(cfg)
    model = build_model(cfg.net, data.shape, sde, seed=0)
    loss_fn = build_loss(cfg.loss, sde)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.optim.lr)
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.999), use_buffers=True)
    g = torch.Generator().manual_seed(0)
    B = cfg.schedule.batch_size
    t0 = time.perf_counter()
    for _ in range(steps):
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


def trainer(cfg: RunConfig) -> float:
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        train(cfg, d, progress=False, device="cpu")
        return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=300)
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
                "log_every": 100,
                "ckpt_every": args.steps,
            },
        }
    )
    best = {"bare": math.inf, "bare+clip+ema": math.inf, "trainer": math.inf}
    for _ in range(args.repeats):  # interleaved, best of N (the machine is shared)
        best["bare"] = min(best["bare"], bare_loop(cfg, args.steps, clip_ema=False))
        best["bare+clip+ema"] = min(best["bare+clip+ema"], bare_loop(cfg, args.steps, True))
        best["trainer"] = min(best["trainer"], trainer(cfg))
    print(
        f"threads={torch.get_num_threads()} steps={args.steps} batch=256 MLP 128x3, "
        f"best of {args.repeats}"
    )
    for k, v in best.items():
        print(f"  {k:14s} {v:7.3f} s  {args.steps / v:7.1f} steps/s")
    for k in ("bare", "bare+clip+ema"):
        print(f"  ratio {k}/trainer = {best[k] / best['trainer']:.3f}  (goal >= 0.95)")


if __name__ == "__main__":
    main()
