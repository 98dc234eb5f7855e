"""Benchmark: sharded PF-ODE log-likelihood, 2 ranks against 1 rank in the same run (issue 14).

Launches ``torchrun --standalone --nproc_per_node R`` for each R in ``--ranks`` (1 then 2 by
default; one torch thread per rank), each computing log p(x) of the same ``--n`` points of a
4-component Gaussian mixture in ``--d`` dimensions (diagonal covariances, exact score, so the
solver sees the paths of a perfectly trained model) with
:func:`scoresde.distributed.sharded_log_likelihood`. Rank 0 times the job from the start of the
work to the gathered result (process start-up and the rendezvous excluded) and checks that the
log-likelihoods equal those of 1 rank. Prints wall time, time per 1,000 points and the speed-up
against 1 rank, with the load average of the machine (other processes share the cores).

    python benchmarks/bench_sharded_nll.py                     # d = 64, 2,000 points, Hutchinson
    python benchmarks/bench_sharded_nll.py --d 784 --n 200     # per-1,000 time at d = 784
    python benchmarks/bench_sharded_nll.py --divergence exact --n 200
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def _problem(d: int, n: int):
    from scoresde import VPSDE, GaussianMixture

    sde = VPSDE()
    g = torch.Generator().manual_seed(0)
    f64 = torch.float64
    var = 0.1 + 0.4 * torch.rand(4, d, generator=g, dtype=f64)
    gm = GaussianMixture(torch.ones(4) / 4, torch.randn(4, d, generator=g, dtype=f64), var, sde=sde)
    return sde, gm.with_sde(sde), gm.sample(n, g)


def worker(args: argparse.Namespace) -> None:
    """One rank of the benchmark (run under torchrun)."""
    from scoresde.distributed import World, sharded_log_likelihood

    torch.set_num_threads(1)
    sde, score, x = _problem(args.d, args.n)
    from scoresde.likelihood import log_likelihood

    log_likelihood(sde, score, x[:1], rtol=1e-2, atol=1e-2)  # first-call imports, untimed
    with World.from_env("cpu", timeout=600) as world:
        world.barrier()  # every rank ready: time the work, not the start-up
        start = time.perf_counter()
        res = sharded_log_likelihood(
            sde,
            score,
            x,
            world=world,
            shard_size=args.shard_size,
            divergence=args.divergence,
            rtol=args.rtol,
            atol=args.rtol,
        )
        wall = time.perf_counter() - start
    if res is not None:
        torch.save(res.log_prob, args.out)
        print(json.dumps({"wall_s": wall, "nfe": res.nfe}), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2000, help="points (default 2000)")
    p.add_argument("--d", type=int, default=64, help="dimension (default 64)")
    p.add_argument("--divergence", default="hutchinson", choices=["exact", "hutchinson"])
    p.add_argument("--rtol", type=float, default=1e-5, help="solver rtol = atol (default 1e-5)")
    p.add_argument("--shard-size", type=int, default=250, help="points per shard (default 250)")
    p.add_argument("--ranks", type=int, nargs="+", default=[1, 2], help="world sizes (1 2)")
    if "BENCH_SHARDED" in os.environ:  # a rank started by torchrun below
        return worker(argparse.Namespace(**json.loads(os.environ["BENCH_SHARDED"])))
    args = p.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    print(
        f"log p(x) of {args.n} points, d = {args.d}, {args.divergence} divergence, dopri5 "
        f"rtol = atol = {args.rtol:g}, shards of {args.shard_size}, 1 torch thread per rank, "
        f"{os.cpu_count()} CPUs; load average before: {os.getloadavg()[0]:.1f}"
    )
    rows, ref = [], None
    for ranks in args.ranks:
        out = ROOT / f".bench_sharded_{ranks}.pt"
        cfg = {**vars(args), "worker": True, "out": str(out)}
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={ranks}",
            __file__,
        ]
        proc = subprocess.run(
            cmd,
            env={**env, "BENCH_SHARDED": json.dumps(cfg)},
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            sys.exit(f"{ranks} ranks failed:\n{proc.stderr[-3000:]}")
        stats = json.loads(proc.stdout.strip().splitlines()[-1])
        logp = torch.load(out)
        out.unlink()
        ref = logp if ref is None else ref
        same = bool(torch.equal(logp, ref))
        rows.append((ranks, stats["wall_s"], stats["nfe"], same, os.getloadavg()[0]))
    base = rows[0][1]
    print(
        f"{'ranks':>5} {'wall s':>8} {'s / 1000 pts':>13} {'speed-up':>9} {'NFE all':>7} "
        f"{'same log p':>10} {'load':>5}"
    )
    for ranks, wall, nfe, same, load in rows:
        print(
            f"{ranks:>5} {wall:>8.1f} {wall / args.n * 1000:>13.1f} {base / wall:>9.2f} "
            f"{nfe:>7} {str(same):>10} {load:>5.1f}"
        )


if __name__ == "__main__":
    main()
