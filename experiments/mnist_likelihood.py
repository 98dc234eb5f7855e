"""MNIST-5000: the whole test set's bits/dim in CPU-minutes, with its error budget measured.

The model is the one of ``experiments/mnist.py`` (its run folder's raw weights), evaluated on
all 1000 test images in the same units (uniform dequantization, 256 levels on [-1, 1]). The PF-ODE
runs on fixed grids equally spaced in log-SNR (:mod:`scoresde.likelihood.grid`), the path in
sigma~ = sigma_t / alpha_t and the log-density in log-SNR, rk4, float32 (the log-density summed
in float64), Hutchinson probes drawn anew at every evaluation.

Two levels (multilevel Monte Carlo, Giles 2008): every test image on a coarse grid of N0 steps,
and the mean of (fine - coarse) on a subset of ``--correct`` test images, solved on both grids
with the same fixed probes, added to the coarse mean. Its expectation is the fine grid's mean;
its cost is mostly the coarse one.

The error budget of the mean bits/dim, each part measured:

* **solver** (bias): the fine grid N1 is chosen on ``--pilot`` *training* images
  (:func:`choose_n_steps`: Richardson re-solves on twice the steps, fixed probes, within
  ``--target`` bits/dim at two standard errors); its error is measured again on the first
  ``--check`` *test* images by the same re-solve. N0 = ``--coarse`` (8).
* **correction** (noise): the standard error of the mean (fine - coarse) over the subset.
* **probes**: per-image probe variance from the stage-wise spread of 2 probes per evaluation on
  the ``--check`` images; the probe part of the mean's error is sqrt(variance of one probe / n).
* **dequantization**: a second uniform draw for the ``--check`` images; one draw's per-image
  variance is half the mean squared difference of the two draws less the probe variance.
* **images**: the standard error of the coarse mean over the test images (it contains the two
  above), combined with the correction's.

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
    """Choose the grids, evaluate the test set, measure the budget; write results.json."""
    p = argparse.ArgumentParser(prog="experiments/mnist_likelihood.py",
                                description=__doc__.splitlines()[0])  # fmt: skip
    p.add_argument("--run-dir", type=Path, default=ROOT / "runs" / "mnist")
    p.add_argument("--work", type=Path, default=ROOT / "runs" / "mnist_likelihood")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "experiments" / "mnist_likelihood")
    p.add_argument("--target", type=float, default=0.002, help="solver error, bits/dim")
    p.add_argument("--pilot", type=int, default=16, help="training images of the grid choice")
    p.add_argument("--correct", type=int, default=100, help="test images of the correction")
    p.add_argument("--check", type=int, default=20, help="test images of the checks")
    p.add_argument("--coarse", type=int, default=8, help="steps of the coarse grid")
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
    base = {"solver": "rk4", "time_variable": "sigma"}
    work = args.work / "rk4_sigma"

    # 1. the fine grid, chosen on training images (fixed probes, Richardson re-solves)
    def choose() -> dict:
        c0 = time.process_time()
        pk = train_k[(torch.arange(args.pilot) * train_k.shape[0]) // args.pilot]
        y = dequantize(pk, derive_seed(args.seed, 1))
        choice = choose_n_steps(model.sde, model, y, target=args.target / BPD,
                                divergence="hutchinson", seeds=list(range(args.pilot)),
                                dtype=torch.float32, start=8, **base)  # fmt: skip
        hist = [[h.n_steps, h.error * BPD, h.se * BPD, h.max_abs * BPD] for h in choice.history]
        return {"n_steps": torch.tensor(choice.n_steps), "history": torch.tensor(hist),
                "nfe": torch.tensor(choice.nfe), "cpu_s": torch.tensor(time.process_time() - c0)}  # fmt: skip

    chosen = cached(work / "choice.pt", choose)
    n1 = int(chosen["n_steps"])
    n0 = min(args.coarse, n1)
    print(f"fine grid {n1} steps, coarse {n0} (choice: {chosen['history'].tolist()})", flush=True)

    def seeds_of(idx: Tensor, offset: int = 7_000_003) -> list[int]:
        return [derive_seed(args.seed, offset + int(i)) for i in idx]

    # 2. level 0: every test image on the coarse grid, one refreshed probe per evaluation
    parts = []
    for start in range(0, order.shape[0], CHUNK):
        idx = order[start : start + CHUNK]
        y = dequantize(test_k[idx], derive_seed(args.seed, 10_000 + start))
        parts.append(cached(work / f"coarse{n0}" / f"chunk_{start:04d}.pt",
                            lambda y=y, idx=idx: solve(model, y, seeds_of(idx),
                                                       {**base, "n_steps": n0}, 1)))  # fmt: skip
        print(f"  chunk {start}: {float(parts[-1]['bpd'].mean()):.4f} "
              f"({float(parts[-1]['cpu_s']):.0f} CPU s)", flush=True)  # fmt: skip
    coarse = torch.cat([q["bpd"] for q in parts])
    cpu_coarse = sum(float(q["cpu_s"]) for q in parts)
    n = coarse.shape[0]

    # 3. level 1: (fine - coarse) on the first test images, the same fixed probes in both
    def correction() -> dict:
        c0 = time.process_time()
        out = []
        for start in range(0, args.correct, CHUNK):
            idx = order[start : min(start + CHUNK, args.correct)]
            y = dequantize(test_k[idx], derive_seed(args.seed, 10_000 + start))
            pair = []
            for steps in (n0, n1):
                r = log_likelihood(model.sde, model, y, divergence="hutchinson", n_steps=steps,
                                   seeds=seeds_of(idx, 9_000_003), dtype=torch.float32,
                                   refresh_probes=False, **base)  # fmt: skip
                pair.append(bpd_of(r.log_prob))
            out.append(pair[1] - pair[0])
        return {"diff": torch.cat(out), "cpu_s": torch.tensor(time.process_time() - c0)}

    corr = cached(work / f"correction_{n0}_{n1}_{args.correct}.pt", correction)
    diff = corr["diff"]
    corr_se = float(diff.std(correction=1)) / math.sqrt(diff.shape[0])
    estimate = float(coarse.mean() + diff.mean())
    se_coarse = float(coarse.std(correction=1)) / math.sqrt(n)

    # 4. checks on the first test images: the fine grid's bias, probes, dequantization
    ck = order[: args.check]
    y_ck = dequantize(test_k[ck], derive_seed(args.seed, 10_000))

    def check_solver() -> dict:
        c0 = time.process_time()
        err = solver_error(model.sde, model, y_ck, n1, divergence="hutchinson",
                           seeds=seeds_of(ck, 9_000_003), dtype=torch.float32, **base)  # fmt: skip
        return {"error": torch.tensor(err.error * BPD), "se": torch.tensor(err.se * BPD),
                "max_abs": torch.tensor(err.max_abs * BPD), "nfe": torch.tensor(err.nfe),
                "cpu_s": torch.tensor(time.process_time() - c0)}  # fmt: skip

    sol = cached(work / f"solver_check_{n1}_{args.check}.pt", check_solver)
    grid0 = {**base, "n_steps": n0}
    two = cached(work / f"probes2_{n0}_{args.check}.pt",
                 lambda: solve(model, y_ck, seeds_of(ck, 8_000_003), grid0, 2))  # fmt: skip
    y2 = dequantize(test_k[ck], derive_seed(args.seed, 20_000))
    deq = cached(work / f"second_draw_{n0}_{args.check}.pt",
                 lambda: solve(model, y2, seeds_of(ck, 6_000_003), grid0, 2))  # fmt: skip
    probe_var1 = float((2 * two["probe_se"] ** 2).mean())  # one refreshed probe's variance
    diff2 = float((deq["bpd"] - two["bpd"]).pow(2).mean())  # 2 Var(deq) + Var(2 probes) x 2
    deq_var = max(0.0, diff2 / 2 - probe_var1 / 2)
    per_image = cached(work / f"per_image_cost_{n0}.pt",
                       lambda: per_image_cost(model, y_ck[:1], probe_var1, 1))  # fmt: skip
    spread = (torch.arange(200) * 1000) // 200  # the positions of mnist.py's 200 images
    on_200 = torch.isin(order, spread)
    cpu_test = cpu_coarse + float(corr["cpu_s"])
    cpu_checks = float(sol["cpu_s"]) + float(two["cpu_s"]) + float(deq["cpu_s"])
    results = {
        "experiment": "mnist_likelihood",
        "model": "runs/mnist/checkpoint.pt of experiments/mnist.py (raw weights)",
        "n_test": n,
        "grid": {
            "solver": "rk4",
            "time_variable": "sigma (path), log_snr (log-density)",
            "fine_steps": n1,
            "coarse_steps": n0,
            "nfe_coarse": int(parts[0]["nfe"]),
            "nfe_fine": 4 * n1,
            "correction_images": int(diff.shape[0]),
            "dtype": "float32 (log-density summed in float64)",
        },  # fmt: skip
        "choice": {
            "pilot_training_images": args.pilot,
            "target_bpd": args.target,
            "history": [
                dict(zip(("n_steps", "error", "se", "max_abs"), h, strict=True))
                for h in chosen["history"].tolist()
            ],
            "cpu_minutes": float(chosen["cpu_s"]) / 60,
        },  # fmt: skip
        "bpd": estimate,
        "se": math.sqrt(se_coarse**2 + corr_se**2),
        "coarse_bpd": float(coarse.mean()),
        "se_images": se_coarse,
        "budget": {
            "solver_error": float(sol["error"]),
            "solver_error_se": float(sol["se"]),
            "solver_max_abs_per_image": float(sol["max_abs"]),
            "correction": float(diff.mean()),
            "correction_se": corr_se,
            "check_images": args.check,
            "probe_se_of_mean": math.sqrt(probe_var1 / n),
            "probe_sd_per_image": math.sqrt(probe_var1),
            "probe_dof_median": float(two["dof"].median()),
            "dequant_sd_per_image": math.sqrt(deq_var),
            "dequant_se_of_mean": math.sqrt(deq_var / n),
        },  # fmt: skip
        "per_image": {key: float(v) for key, v in per_image.items()},
        "cpu_minutes": {
            "test_set": cpu_test / 60,
            "checks": cpu_checks / 60,
            "grid_choice": float(chosen["cpu_s"]) / 60,
            "threads": 1,
        },  # fmt: skip
        "on_mnist_py_200_images": {
            "coarse_bpd_plus_correction": float(coarse[on_200].mean() + diff.mean()),
            "se": float(coarse[on_200].std(correction=1)) / math.sqrt(int(on_200.sum())),
            "n": int(on_200.sum()),
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    save_json(results, args.out, started)
    print(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
