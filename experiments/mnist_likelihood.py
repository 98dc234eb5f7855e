"""MNIST-5000: the whole test set's bits/dim on a fixed log-SNR grid, with its error budget.

The model is the one of ``experiments/mnist.py`` (its run folder's raw weights), evaluated on
all 1000 test images in the same units (uniform dequantization, 256 levels on [-1, 1]). The PF-ODE
runs on a fixed grid equally spaced in log-SNR (:mod:`scoresde.likelihood.grid`) with Hutchinson
probes drawn anew at every evaluation, in float32 (the log-density accumulated in float64).

The error budget of the mean bits/dim, each part measured:

* **solver**: the grid is chosen on ``--pilot`` *training* images (:func:`choose_n_steps`,
  Richardson re-solves on twice the steps with fixed probes, within ``--target`` bits/dim at two
  standard errors); the chosen grid's error is then measured again on the first ``--check``
  *test* images (the images reported on), by the same re-solve.
* **probes**: each image's probe standard error from the stage-wise spread of ``--probes`` probes
  per evaluation; the probe part of the mean's error is sqrt(mean per-image variance / n).
* **dequantization**: a second uniform draw for the first ``--check`` test images; the per-image
  variance of one draw is half the mean squared difference of the two draws less the probe
  variance.
* **images**: the standard error of the mean over the test images (it contains the two above).

Run: ``python experiments/mnist_likelihood.py [--run-dir runs/mnist] [--work DIR]`` (resumable:
each chunk of 50 images is saved in ``--work``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, save_json  # noqa: E402

from scoresde.data import derive_seed, load_mnist  # noqa: E402
from scoresde.likelihood import (  # noqa: E402
    choose_n_steps,
    log_likelihood,
    score_and_divergence,
    score_and_probe_products,
    solver_error,
)
from scoresde.training.checkpoint import load_model  # noqa: E402

LEVELS, CHUNK, D = 256, 50, 784
LOG_CELL = D * math.log(2.0 / LEVELS)  # the cell volume and the Jacobian of k -> y
BPD = 1.0 / (D * math.log(2))  # nats per image -> bits/dim


def dequantize(k: Tensor, seed: int) -> Tensor:
    """y = -1 + 2 (k + U) / 256, U from ``seed``."""
    u = torch.rand(k.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return -1 + 2 * (k.double() + u) / LEVELS


def bpd_of(log_p: Tensor) -> Tensor:
    """Bits/dim of the dequantized image from log p(y) in nats."""
    return -(log_p.double() + LOG_CELL) * BPD


def solve(model: Any, y: Tensor, seeds: list[int], grid: dict[str, Any], probes: int) -> dict:
    """One fixed-grid solve with refreshed probes; CPU seconds (one thread) included."""
    c0 = time.process_time()
    r = log_likelihood(model.sde, model, y, divergence="hutchinson", n_probes=probes,
                       seeds=seeds, dtype=torch.float32, **grid)  # fmt: skip
    assert r.stderr is not None and r.dof is not None
    return {"bpd": bpd_of(r.log_prob), "probe_se": r.stderr.double() * BPD, "dof": r.dof,
            "nfe": torch.tensor(r.nfe), "cpu_s": torch.tensor(time.process_time() - c0)}  # fmt: skip


def cached(path: Path, fn: Any) -> dict:
    """``fn()`` saved at ``path``, or loaded if there."""
    if path.is_file():
        return torch.load(path, weights_only=True)
    out = fn()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(out, path)
    return out


def per_image_cost(model: Any, y: Tensor, probe_var: float, probes: int) -> dict:
    """One image's log p to +-0.01 bits/dim (1 SE): the probes it needs per evaluation, and the
    CPU seconds of one evaluation with them against one with the exact divergence (784 VJPs)."""
    need = max(1, math.ceil(probes * probe_var / 0.01**2))  # probe variance ~ 1 / probes
    x, t = y.float(), torch.tensor(0.1)
    c0 = time.process_time()
    score_and_divergence(model, x, t)
    exact = time.process_time() - c0
    c0 = time.process_time()
    score_and_probe_products(model, x, t, torch.ones(need, *x.shape))
    hutch = time.process_time() - c0
    return {"probes_needed": torch.tensor(need), "cpu_s_exact_eval": torch.tensor(exact),
            "cpu_s_hutchinson_eval": torch.tensor(hutch), "ratio": torch.tensor(hutch / exact)}  # fmt: skip


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Choose the grid, evaluate the test set, measure the budget; write results.json."""
    p = argparse.ArgumentParser(prog="experiments/mnist_likelihood.py",
                                description=__doc__.splitlines()[0])  # fmt: skip
    p.add_argument("--run-dir", type=Path, default=ROOT / "runs" / "mnist")
    p.add_argument("--work", type=Path, default=ROOT / "runs" / "mnist_likelihood")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "experiments" / "mnist_likelihood")
    p.add_argument("--target", type=float, default=0.002, help="solver error, bits/dim")
    p.add_argument("--solver", default="rk4")
    p.add_argument("--time-variable", default="log_snr")
    p.add_argument("--probes", type=int, default=2, help="probes per evaluation")
    p.add_argument("--pilot", type=int, default=16, help="training images of the grid choice")
    p.add_argument("--check", type=int, default=50, help="test images of the checks")
    p.add_argument("--n-test", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    started = time.perf_counter()
    model = load_model(args.run_dir / "checkpoint.pt", use_ema=False).model.eval()
    data = load_mnist()
    train_k, test_k = data.train.long(), data.test.long()
    order = torch.randperm(test_k.shape[0], generator=torch.Generator().manual_seed(args.seed))
    order = order[: args.n_test]  # a seeded random order: every chunk mixes the classes
    base = {"solver": args.solver, "time_variable": args.time_variable}

    # 1. the grid, chosen on training images (fixed probes, Richardson re-solves)
    def choose() -> dict:
        c0 = time.process_time()
        pk = train_k[(torch.arange(args.pilot) * train_k.shape[0]) // args.pilot]
        y = dequantize(pk, derive_seed(args.seed, 1))
        choice = choose_n_steps(model.sde, model, y, target=args.target / BPD, divergence="hutchinson",
                                seeds=list(range(args.pilot)), dtype=torch.float32, start=4, **base)  # fmt: skip
        hist = [[h.n_steps, h.error * BPD, h.se * BPD, h.max_abs * BPD] for h in choice.history]
        return {"n_steps": torch.tensor(choice.n_steps), "history": torch.tensor(hist),
                "nfe": torch.tensor(choice.nfe), "cpu_s": torch.tensor(time.process_time() - c0)}  # fmt: skip

    chosen = cached(args.work / f"choice_{args.solver}_{args.time_variable}.pt", choose)
    n_steps = int(chosen["n_steps"])
    grid = {**base, "n_steps": n_steps}
    tag = f"{args.solver}_{args.time_variable}_N{n_steps}_m{args.probes}"
    print(f"grid: {n_steps} steps of {args.solver} in {args.time_variable} "
          f"(choice: {chosen['history'].tolist()})", flush=True)  # fmt: skip

    # 2. the test set, in chunks (each chunk resumable)
    parts = []
    for start in range(0, order.shape[0], CHUNK):
        idx = order[start : start + CHUNK]
        seeds = [derive_seed(args.seed, 7_000_003 + int(i)) for i in idx]
        y = dequantize(test_k[idx], derive_seed(args.seed, 10_000 + start))
        parts.append(cached(args.work / tag / f"chunk_{start:04d}.pt",
                            lambda y=y, seeds=seeds: solve(model, y, seeds, grid, args.probes)))  # fmt: skip
        print(f"  chunk {start}: {float(parts[-1]['bpd'].mean()):.4f} "
              f"({float(parts[-1]['cpu_s']):.0f} CPU s)", flush=True)  # fmt: skip
    bpd = torch.cat([q["bpd"] for q in parts])
    probe_se = torch.cat([q["probe_se"] for q in parts])
    dof = torch.cat([q["dof"] for q in parts])
    cpu_main = sum(float(q["cpu_s"]) for q in parts)
    n = bpd.shape[0]

    # 3. the checks on the first test images: solver (re-solve on 2N) and dequantization
    ck = order[: args.check]
    ck_seeds = [derive_seed(args.seed, 7_000_003 + int(i)) for i in ck]
    y_ck = dequantize(test_k[ck], derive_seed(args.seed, 10_000))

    def check_solver() -> dict:
        c0 = time.process_time()
        err = solver_error(model.sde, model, y_ck, n_steps, divergence="hutchinson", seeds=ck_seeds,
                           dtype=torch.float32, **base)  # fmt: skip
        return {"error": torch.tensor(err.error * BPD), "se": torch.tensor(err.se * BPD),
                "max_abs": torch.tensor(err.max_abs * BPD), "nfe": torch.tensor(err.nfe),
                "cpu_s": torch.tensor(time.process_time() - c0)}  # fmt: skip

    sol = cached(args.work / f"{tag}_solver_check_{args.check}.pt", check_solver)
    y2 = dequantize(test_k[ck], derive_seed(args.seed, 20_000))
    seeds2 = [derive_seed(args.seed, 8_000_003 + int(i)) for i in ck]
    deq = cached(args.work / f"{tag}_second_draw_{args.check}.pt",
                 lambda: solve(model, y2, seeds2, grid, args.probes))  # fmt: skip
    first = bpd[: args.check]
    diff2 = (deq["bpd"] - first).pow(2).mean() / 2  # = Var(dequant) + Var(probes), per draw
    probe_var_ck = ((deq["probe_se"] ** 2 + probe_se[: args.check] ** 2) / 2).mean()
    deq_var = float(diff2 - probe_var_ck)
    probe_var = float((probe_se**2).mean())
    se_images = float(bpd.std(correction=1)) / math.sqrt(n)
    per_image = cached(args.work / f"{tag}_per_image_cost.pt",
                       lambda: per_image_cost(model, y_ck[:1], probe_var, args.probes))  # fmt: skip
    spread = (torch.arange(200) * 1000) // 200  # the positions of mnist.py's 200 images
    on_200 = torch.isin(order, spread)
    results = {
        "experiment": "mnist_likelihood",
        "model": str(args.run_dir / "checkpoint.pt") + " (raw weights)",
        "n_test": n,
        "grid": {
            "solver": args.solver,
            "time_variable": args.time_variable,
            "n_steps": n_steps,
            "nfe_per_solve": int(parts[0]["nfe"]),
            "probes_per_evaluation": args.probes,
            "dtype": "float32 (log-density accumulated in float64)",
        },  # fmt: skip
        "choice": {
            "pilot_training_images": args.pilot,
            "target_bpd": args.target,
            "history": [
                dict(zip(("n_steps", "error", "se", "max_abs"), h, strict=True))
                for h in chosen["history"].tolist()
            ],
            "nfe": int(chosen["nfe"]),
            "cpu_minutes": float(chosen["cpu_s"]) / 60,
        },  # fmt: skip
        "bpd": float(bpd.mean()),
        "se_images": se_images,
        "budget": {
            "solver_error": float(sol["error"]),
            "solver_error_se": float(sol["se"]),
            "solver_max_abs_per_image": float(sol["max_abs"]),
            "solver_check_images": args.check,
            "solver_check_cpu_minutes": float(sol["cpu_s"]) / 60,
            "probe_se_of_mean": math.sqrt(probe_var / n),
            "probe_se_per_image_rms": math.sqrt(probe_var),
            "probe_se_per_image_median": float(probe_se.median()),
            "probe_dof_median": float(dof.median()),
            "dequant_sd_per_image": math.sqrt(max(deq_var, 0.0)),
            "dequant_se_of_mean": math.sqrt(max(deq_var, 0.0) / n),
            "dequant_check_images": args.check,
        },  # fmt: skip
        "per_image": {key: float(v) for key, v in per_image.items()},
        "cpu_minutes": {
            "test_set": cpu_main / 60,
            "threads": 1,
            "total_with_checks": (
                cpu_main + float(sol["cpu_s"]) + float(deq["cpu_s"]) + float(chosen["cpu_s"])
            )
            / 60,
        },  # fmt: skip
        "on_mnist_py_200_images": {
            "bpd": float(bpd[on_200].mean()),
            "se": float(bpd[on_200].std(correction=1)) / math.sqrt(int(on_200.sum())),
            "n": int(on_200.sum()),
        },  # fmt: skip
    }
    args.out.mkdir(parents=True, exist_ok=True)
    save_json(results, args.out, started)
    print(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
