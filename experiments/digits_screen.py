"""Screening of the digits recipe's regularisers on a held-out part of the training split.

Every variant trains on 499 training images (j % 3 == 1 of the 1497) for the same number of
steps and is scored on 499 other training images (j % 3 == 0) by the ELBO upper bound on
bits/dim (uniform dequantization, :func:`_digits_recipe.elbo_bpd`); the test set is never
touched. A third of the data makes the short run overfit the way the full run does late
(the full run's EMA test loss turns up after ~430 epochs; here 1000 steps of 128 are 256 epochs
of 499 images). Each variant's monitored curve (every 250 steps, same draws) is kept too, so
"best step" is the early-stopping choice and "final" is the end of the cosine schedule.

Run: ``python experiments/digits_screen.py [--steps 1000] [--only NAME ...] [--fast]``; results
are added to ``docs/experiments/digits_screen/results.json`` (a finished variant is not rerun)
and the curves drawn in ``screening.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _digits_bounds as bd  # noqa: E402
import _digits_eval as ev  # noqa: E402
import _digits_recipe as rc  # noqa: E402
from _common import ROOT, plt, save_fig, save_json  # noqa: E402

from scoresde.studies import write_json  # noqa: E402
from scoresde.training.checkpoint import load_model  # noqa: E402

#: name -> knobs overriding ``rc.DEFAULTS`` (the committed recipe is "base").
#: The screening's EMA: 0.999 (the full run's) would still weigh the first few hundred of 1000
#: steps by a half and swamp every difference; 0.995 averages over the last ~200 steps.
SCREEN_EMA = 0.995
N_STRATA = 32  # strata of t in the final held-out bound

VARIANTS: dict[str, dict] = {
    "base": {},
    "shift p=0.5": {"aug_p": 0.5},
    "dropout 0.3": {"dropout": 0.3},
    "weight decay 0.05": {"weight_decay": 0.05},
    # three times longer: does the held-out bound turn up, and does the shift pay then?
    "base, 3000 steps": {"steps": 3000},
    "shift p=0.5, 3000 steps": {"aug_p": 0.5, "steps": 3000},
    "shift p=0.5 + dropout 0.3": {"aug_p": 0.5, "dropout": 0.3},
    "shift p=0.2": {"aug_p": 0.2},
}


def _run_dir(run_root: Path, name: str) -> Path:
    return run_root / name.replace(" ", "_").replace("=", "").replace("+", "and")


def early_stopped_bound(run_dir: Path, n_strata: int) -> tuple[Tensor, int] | None:
    """Per-image held-out bound of the EMA weights that the monitor found best (``best.pt``:
    early stopping on the held-out part), and their step; None without a ``best.pt``."""
    best = run_dir / "best.pt"
    if not best.is_file():
        return None
    path = run_dir / f"best_bpd_s{n_strata}.pt"
    state = torch.load(best, weights_only=False)
    if not path.is_file():
        model = load_model(run_dir / "checkpoint.pt").model
        model.load_state_dict(state["state_dict"])
        _, held_k = rc.split("screen")
        torch.save(rc.elbo_bpd(model, held_k, n_strata, torch.Generator().manual_seed(5)), path)
    return torch.load(path), int(state["step"])


def final_bound(run_dir: Path, n_strata: int) -> Tensor:
    """Per-image held-out ELBO bound of a run's final EMA model (cached in the run folder).

    The same seed for every variant gives every variant the same (u, t, eps) draws, so
    differences between variants are paired (common random numbers).
    """
    path = run_dir / f"final_bpd_s{n_strata}.pt"
    if not path.is_file():
        model = load_model(run_dir / "checkpoint.pt").model
        _, held_k = rc.split("screen")
        torch.save(rc.elbo_bpd(model, held_k, n_strata, torch.Generator().manual_seed(5)), path)
    return torch.load(path)


def screen_one(name: str, steps: int, run_root: Path, seed: int, fast: bool = False) -> dict:
    """Train one variant on the screening split and score it on the held-out part."""
    run_dir = _run_dir(run_root, name)
    knobs = {"ema_decay": SCREEN_EMA} | VARIANTS[name]
    steps = knobs.pop("steps", steps) if not fast else steps
    knobs.pop("steps", None)
    config = rc.make_config(fast, seed, steps, part="screen", **knobs)
    hook = rc.make_monitor_hook(2, seed=1, best_path=run_dir / "best.pt")
    run_dir.mkdir(parents=True, exist_ok=True)
    trained = rc.train_with_cpu_budget(config, run_dir, 1e9, 250, False, [hook])
    c0 = time.process_time()
    n_eval = 2 if fast else N_STRATA
    final = final_bound(run_dir, n_eval)
    eval_cpu = time.process_time() - c0
    curve = [
        (int(r["step"]), float(r["monitor_elbo_bpd"]))
        for r in json_rows(run_dir / "eval.csv")
        if "monitor_elbo_bpd" in r
    ]
    best_step, best_bpd = min(curve, key=lambda r: r[1]) if curve else (None, None)
    return {
        "knobs": VARIANTS[name],
        "steps": trained["step"],
        "train_cpu_minutes": round(trained["cpu_s"] / 60, 2),
        "threads": 1,
        "final_elbo_bpd": float(final.mean()),
        "final_elbo_se": float(final.std() / final.numel() ** 0.5),
        "eval_draws": n_eval,
        "eval_cpu_s": round(eval_cpu, 1),
        "curve": curve,
        "best_step": best_step,
        "best_curve_bpd": best_bpd,
    }


def json_rows(path: Path) -> list[dict]:
    """Rows of a CSV log as floats (empty cells dropped)."""
    import csv

    if not path.is_file():
        return []
    with path.open() as fh:
        return [{k: float(v) for k, v in r.items() if v != ""} for r in csv.DictReader(fh)]


def bounds_of(
    name: str, run_root: Path, n_images: int, fast: bool, seed: int, n_draws: int = 1
) -> dict:
    """PF-ODE bits/dim of one screening model on held-out images: uniform dequantization, the
    learned q(u | k) (fitted on its 499 training images) and truncation, one draw each, the
    same model and images in every row (``_digits_bounds.beyond_uniform``)."""
    run_dir = _run_dir(run_root, name)
    model = load_model(run_dir / "checkpoint.pt").model
    train_k, held_k = rc.split("screen")
    held_k = held_k[:n_images]
    cache = bd.Cache(run_dir / "bounds_cache")
    tol = 1e-2 if fast else 1e-4
    c0 = time.process_time()
    per_draw, nfe = bd.pf_ode_bits(model, held_k, None, n_draws, tol, cache, "uniform", seed)
    method = (f"PF-ODE, dopri5 rtol=atol={tol:g} in float32, Hutchinson (1 Rademacher probe "
              f"per draw), {{}} dequantization, {n_draws} draws")  # fmt: skip
    out = {
        "model": {**ev.summary(per_draw.mean(0)), "nfe": nfe, "n_draws": n_draws,
                  "per_draw_means": per_draw.mean(1).tolist(),
                  "method": method.format("uniform") + ", averaged (variational bound)"},
        "model_iw": {**ev.summary(bd.iw_from_draws(per_draw)),
                     "method": method.format("uniform") + ", importance-weighted"},
    }  # fmt: skip
    out |= bd.beyond_uniform(
        model, train_k, held_k, per_draw, fast, cache, seed, method, min(n_images, 100)
    )
    out["elbo_bound_same_images"] = ev.summary(
        final_bound(run_dir, 2 if fast else N_STRATA)[:n_images]
    )
    out["cpu_minutes_this_call"] = round((time.process_time() - c0) / 60, 2)  # cached pieces: 0
    out["n_images"], out["variant"] = int(held_k.shape[0]), name
    return out


def rescore(results: dict, run_root: Path, n_strata: int) -> None:
    """Every variant's final bound with ``n_strata`` strata, and its paired difference to the
    base run of the same length."""
    bounds = {name: final_bound(_run_dir(run_root, name), n_strata) for name in results["variants"]}
    for name, b in bounds.items():
        ref = "base, 3000 steps" if "3000 steps" in name else "base"
        row = results["variants"][name]
        row["final_elbo_bpd"], row["eval_draws"] = float(b.mean()), n_strata
        row["final_elbo_se"] = float(b.std() / b.numel() ** 0.5)
        early = early_stopped_bound(_run_dir(run_root, name), n_strata) if "3000" in name else None
        if early is not None:
            e, step = early
            row["early_stopped"] = {"step": step, "elbo_bpd": float(e.mean()),
                                    "se": float(e.std() / e.numel() ** 0.5),
                                    "minus_final": float((e - b).mean()),
                                    "minus_final_se": float((e - b).std() / e.numel() ** 0.5)}  # fmt: skip
        if ref in bounds:  # paired with the base run of the same length
            d = b - bounds[ref]
            row["minus_base"], row["base_of_same_length"] = float(d.mean()), ref
            row["minus_base_se"] = float(d.std() / d.numel() ** 0.5)


def plot(results: dict, pyplot: Any) -> Any:
    """Left: each variant's final held-out bound minus that of the base run of the same length
    (paired, +- 2 standard errors). Right: the monitored curves of the 3000-step runs.

    The 1000-step runs' curves are kept in results.json but not drawn: the first of them were
    monitored with two unstratified (t, eps) draws and the later ones with two strata, so they
    do not compare across variants; the final bounds (32 strata) do.
    """
    rows = [(n, r) for n, r in results["variants"].items() if "minus_base" in r]
    fig, axes = pyplot.subplots(1, 2, figsize=(11, 0.45 * len(rows) + 1.8))
    ax = axes[0]
    for i, (_, r) in enumerate(rows):
        ax.errorbar(r["minus_base"], i, xerr=2 * r["minus_base_se"], fmt="o", color=f"C{i}")
        ax.annotate(f"{r['final_elbo_bpd']:.3f}", (r["minus_base"], i), textcoords="offset points",
                    xytext=(6, 6), fontsize=7)  # fmt: skip
    ax.axvline(0.0, color="k", lw=0.8, ls=":")
    ax.set_yticks(range(len(rows)), [n for n, _ in rows], fontsize=7)
    ax.set_xlabel("held-out ELBO bound minus base of the same length (bits/dim; +- 2 s.e.)")
    ax.set_title("Screening: 499 training images, scored on 499 held-out ones", fontsize=8)
    long = {n: r for n, r in results["variants"].items() if "3000" in n and r["curve"]}
    for i, (name, r) in enumerate(long.items()):
        steps, bpd = zip(*r["curve"], strict=True)
        axes[1].plot(steps, bpd, "o-", ms=3, color=f"C{i + 4}", label=name)
    if long:
        low = min(b for r in long.values() for _, b in r["curve"])
        axes[1].set_ylim(low - 0.02, low + 0.3)
        axes[1].legend(fontsize=7)
    axes[1].set(xlabel="step", ylabel="held-out ELBO bound (bits/dim, 2 strata)")
    axes[1].set_title("3000-step runs along training (EMA weights)", fontsize=8)
    fig.tight_layout()
    return fig


def main(argv: list[str] | None = None) -> dict:
    """Screen the variants (resumable), write ``results.json`` and ``screening.png``."""
    p = argparse.ArgumentParser(prog="experiments/digits_screen.py", description=__doc__)
    p.add_argument("--fast", action="store_true", help="tiny sizes for CI (seconds)")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--only", nargs="*", default=None, help="variant names (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--bounds",
        default=None,
        metavar="NAME",
        help="also evaluate variant NAME's PF-ODE bits/dim beyond uniform "
        "dequantization on held-out images ('base' in --fast mode)",
    )
    p.add_argument("--bounds-images", type=int, default=100)
    p.add_argument("--bounds-draws", type=int, default=1)  # fmt: skip
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "experiments" / "digits_screen")
    p.add_argument("--run-root", type=Path, default=None,
                   help="runs (default runs/digits_screen, OUT/runs in --fast mode)")  # fmt: skip
    args = p.parse_args(argv)
    if args.fast and args.bounds is None:
        args.bounds = "base"
    started = time.perf_counter()
    torch.set_num_threads(1)
    rc.register_data()
    args.out.mkdir(parents=True, exist_ok=True)
    run_root = args.run_root or (
        args.out / "runs" if args.fast else ROOT / "runs" / "digits_screen"
    )
    out = args.out / "results.json"
    results = json.loads(out.read_text()) if out.is_file() and not args.fast else {}
    names = args.only or (["base", "shift p=0.5"] if args.fast else list(VARIANTS))
    steps = 40 if args.fast else args.steps
    for name in names:
        if name not in VARIANTS:
            raise ValueError(f"unknown variant {name!r}; expected one of {list(VARIANTS)}")
        if name in results.get("variants", {}):
            continue
        res = screen_one(name, steps, run_root, args.seed, args.fast)
        results.setdefault("variants", {})[name] = res
        results["protocol"] = {
            "train": "499 training images (j % 3 == 1)",
            "scored_on": "499 held-out training images (j % 3 == 0); test set untouched",
            "metric": f"ELBO upper bound on bits/dim, uniform dequantization, "
            f"{res['eval_draws']} draws",
            "steps": steps,
            "ema_decay": SCREEN_EMA,
            "batch_size": rc.DEFAULTS["batch_size"],
        }
        results["experiment"], results["fast"] = "digits_screen", args.fast
        write_json(results, out)
        print(f"{name:32s} final {res['final_elbo_bpd']:.4f} +- {res['final_elbo_se']:.4f}"
              f"  best {res['best_curve_bpd']} @ {res['best_step']}"
              f"  ({res['train_cpu_minutes']} CPU-min)", flush=True)  # fmt: skip
    rescore(results, run_root, 2 if args.fast else N_STRATA)
    write_json(results, out)
    if args.bounds:
        n_img = 8 if args.fast else args.bounds_images
        results["bounds"] = bounds_of(
            args.bounds, run_root, n_img, args.fast, args.seed, args.bounds_draws
        )
        write_json(results, out)
    pyplot = plt()
    if args.fast:
        pyplot.rcParams["savefig.dpi"] = 50
    results["figures"] = [save_fig(plot(results, pyplot), args.out, "screening")]
    save_json(results, args.out, started)
    return results


if __name__ == "__main__":
    main()
