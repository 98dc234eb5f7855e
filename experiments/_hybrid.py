"""Shared by reverse_variance.py: train a small eps + v network with the hybrid loss on CPU.

The network is two residual MLPs, one per output (the stop-gradient of the hybrid loss trains
eps_hat by L_simple and v by L_vlb alone, so nothing is lost by not sharing a trunk). Training
runs on one thread and its cost is measured with ``time.process_time()`` (CPU seconds of this
process), so a shared machine slows the wall clock but not the number reported.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import tempfile
import time
from pathlib import Path

import torch
from torch import Tensor, nn

from scoresde.analytic import GaussianMixture
from scoresde.losses import HybridLoss
from scoresde.nets import ResidualMLP
from scoresde.parameterization import EpsVModel
from scoresde.sde import VPSDE, DDPMSchedule

#: Steps of the training chain (improved DDPM's T = 1000; step i sits at t_i = (i + 1) / 1000).
N_TRAIN = 1000


class TwoHeads(nn.Module):
    """``net(x, t) -> (eps_hat, v)`` from two residual MLPs (v starts at 0: beta_tilde)."""

    def __init__(self, dim: int, hidden: int, depth: int, generator: torch.Generator) -> None:
        super().__init__()
        self.eps = ResidualMLP(dim, hidden=hidden, depth=depth, generator=generator)
        self.v = ResidualMLP(dim, hidden=hidden // 2, depth=2, generator=generator)

    def forward(self, x: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        return self.eps(x, t), self.v(x, t)


def train_hybrid(
    sde: VPSDE,
    mix: GaussianMixture,
    *,
    steps: int,
    batch: int = 512,
    hidden: int = 128,
    depth: int = 3,
    lr: float = 2e-3,
    ema_decay: float = 0.999,
    seed: int = 0,
    cache: bool = True,
) -> tuple[EpsVModel, dict]:
    """Train ``EpsVModel`` with ``HybridLoss`` (lambda = 0.001, N = 1000) on exact mixture draws.

    Adam with a cosine learning-rate decay and an EMA of the weights (returned, in float64 and
    eval mode). With ``cache``, the trained weights are kept in the system's temporary folder
    under a hash of every setting, so a rerun of the evaluation does not retrain.

    Returns:
        ``(model, info)`` with info = the settings, the CPU seconds of training (one thread) and
        the last 1% of the training losses.
    """
    cfg = {"steps": steps, "batch": batch, "hidden": hidden, "depth": depth, "lr": lr,
           "ema_decay": ema_decay, "seed": seed, "n_train": N_TRAIN, "v": 1}  # fmt: skip
    key = hashlib.sha1(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:12]
    path = Path(tempfile.gettempdir()) / "scoresde_reverse_variance" / f"{key}.pt"
    g = torch.Generator().manual_seed(seed)
    model = EpsVModel(TwoHeads(2, hidden, depth, g), sde)
    ema = copy.deepcopy(model).requires_grad_(False)
    if cache and path.exists():
        saved = torch.load(path, weights_only=True)
        ema.load_state_dict(saved["ema"])
        return ema.double().eval(), saved["info"]
    loss = HybridLoss(DDPMSchedule.from_sde(sde, N_TRAIN, exact=True))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    cosine = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda k: 0.5 * (1 + math.cos(math.pi * min(k, steps) / steps))
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    losses, cpu0 = [], time.process_time()
    try:
        for _ in range(steps):
            value = loss(model, mix.sample(batch, g).float(), generator=g)
            opt.zero_grad()
            value.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            cosine.step()
            with torch.no_grad():
                for p, q in zip(ema.parameters(), model.parameters(), strict=True):
                    p.lerp_(q, 1 - ema_decay)
            losses.append(float(value.detach()))
    finally:
        torch.set_num_threads(threads)
    tail = losses[-max(1, steps // 100) :]
    info = {**cfg, "cpu_seconds": round(time.process_time() - cpu0, 1), "threads": 1,
            "final_loss": sum(tail) / len(tail)}  # fmt: skip
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"ema": ema.state_dict(), "info": info}, path)
    return ema.double().eval(), info
