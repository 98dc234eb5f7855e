"""Loop overhead of the built-in Euler–Maruyama sampler vs a bare loop and torchsde.sdeint.

Same problem for all three: the reverse VP SDE (Song et al. 2021, Eq. 6) with the exact score of
a 2-D Gaussian mixture, 20k points, 1000 uniform steps, float32. Prints the best of a few
repeats and the ratios. Goal: built-in <= 1.05x the bare loop.

    python benchmarks/bench_samplers_loop.py [--n 20000] [--steps 1000] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import torch
import torchsde

from scoresde import VPSDE, GaussianMixture
from scoresde.samplers import make_grid, sample_euler_maruyama, sample_torchsde


def bare_loop(sde: VPSDE, gm: GaussianMixture, x: torch.Tensor, ts: torch.Tensor, g: torch.Generator) -> torch.Tensor:  # fmt: skip
    """The hand-written loop: x <- x + [f - g^2 s] dt + g sqrt(|dt|) z."""
    b0, b1 = sde.schedule.beta_min, sde.schedule.beta_max
    n = x.shape[0]
    for i in range(ts.numel() - 1):
        t, dt = ts[i], ts[i + 1] - ts[i]
        beta = b0 + t * (b1 - b0)
        s = gm(x, t.expand(n))
        z = torch.randn(x.shape, generator=g)
        x = x + (-0.5 * beta * x - beta * s) * dt + torch.sqrt(-beta * dt) * z
    return x


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=20000)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    sde = VPSDE()
    gm = GaussianMixture([0.3, 0.7], [[-1.0, 0.5], [1.5, -0.5]], [[0.2, 0.1], [0.3, 0.4]], sde=sde)
    x_T = sde.prior_sample((a.n, 2), torch.Generator().manual_seed(0), dtype=torch.float32)
    grid = make_grid(sde, a.steps)
    ts = grid.to(torch.float32)
    runs = {
        "bare loop": lambda: bare_loop(sde, gm, x_T, ts, torch.Generator().manual_seed(1)),
        "scoresde EM": lambda: sample_euler_maruyama(sde, gm, x_T, grid, generator=torch.Generator().manual_seed(1)),
        "torchsde euler": lambda: sample_torchsde(sde, gm, x_T, grid, generator=torch.Generator().manual_seed(1)),
    }  # fmt: skip
    times = dict.fromkeys(runs, float("inf"))
    for _ in range(a.repeats):  # interleaved, so that load from other processes hits all alike
        for k, f in runs.items():
            times[k] = min(times[k], best_of(f, 1))
    print(f"threads={torch.get_num_threads()} n={a.n} steps={a.steps} dtype=float32 "
          f"torchsde={torchsde.__version__}")  # fmt: skip
    for k, v in times.items():
        print(f"{k:16s} {v:7.3f} s   {v / times['bare loop']:.3f}x bare")


if __name__ == "__main__":
    main()
