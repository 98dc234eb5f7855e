"""Reach the data's entropy on 2-D toy sets within 5 CPU-minutes: recipes and their ablation.

Each row trains a score model through the library's training API
(:func:`scoresde.cli.build.train_from_config`) on ONE thread (``torch.set_num_threads(1)``), with
the training time measured by ``time.process_time()`` (CPU seconds, so a shared machine slows the
wall clock but not the budget), then measures the test NLL with the exact-divergence PF-ODE
likelihood (Song et al. 2021, Sec. 4.3; :func:`scoresde.likelihood.log_likelihood`, float64,
dopri5 at rtol = atol = ``EVAL_TOL``) on a fixed held-out test set (the data set's own seeded
test draws, never seen in training). Rows start from the demo's ``small`` budget (EDM
preconditioning, sigma_t^2 weighting, uniform t) and change one lever at a time: the likelihood
weighting lambda = g^2 with importance sampling of t (Song, Durkan, Murray & Ermon 2021, Thm. 1
and Sec. 5), the SDE's t_eps, the EMA, steps / batch / learning-rate decay within the budget,
and the network width.

Targets (Issue 13, item 4): 8-Gaussians (entropy 2.832) NLL <= 2.88 nats; checkerboard
(entropy log 32 = 3.466) NLL <= 3.55 nats; each in <= 5 CPU-minutes of training.

Results (results.json): rows[name] = {data, note, overrides, steps, train_cpu_min, threads,
nll, nll_se, gap, [kl, kl_se: paired against the exact 8-Gaussians density], eval}; recipes
names the recipe row per data set with the target and whether it was met.

Run: ``python experiments/toy_likelihood.py [--fast] [--rows NAME,...] [--out DIR]``. Rows run
one at a time and are merged into an existing results.json, so a long run can be resumed row
by row (``--rows`` picks them; default: all rows not yet in results.json).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parse_args, plt, save_fig, save_json  # noqa: E402

from scoresde._utils import mean_se  # noqa: E402
from scoresde.cli.build import build_data, train_from_config  # noqa: E402
from scoresde.cli.config import RunConfig  # noqa: E402
from scoresde.data.toy import eight_gaussians_mixture  # noqa: E402
from scoresde.likelihood import log_likelihood  # noqa: E402

F64 = torch.float64
#: rtol = atol of the dopri5 solve of every test NLL (float64, exact divergence).
EVAL_TOL = 1e-6
N_TEST = 2000  # ablation rows: the first 2000 test points
N_TEST_RECIPE = 5000  # recipe rows (and their variants): the first 5000 test points
ENTROPY = {"8gaussians": 2.8319, "checkerboard": math.log(32.0)}
TARGET = {"8gaussians": 2.88, "checkerboard": 3.55}
BUDGET_CPU_MIN = 5.0


def base_config(data: str, steps: int = 4000) -> dict[str, Any]:
    """The demo's ``small`` recipe (``scoresde demo``, before this study) for ``data``."""
    sigma_data = float(build_data(RunConfig.from_dict({"data": {"name": data}})).test.std())
    return {
        "sde": {"name": "vp", "kwargs": {}},
        "data": {"name": data},
        "net": {"name": "mlp", "predicts": "edm", "sigma_data": sigma_data,
                "kwargs": {"hidden": 128, "depth": 3}},
        "loss": {"name": "dsm", "weighting": "sigma2", "t_sampling": "uniform"},
        "optim": {"lr": 2e-3, "ema_decay": 0.999, "warmup_steps": 200},
        "schedule": {"steps": steps, "batch_size": 512, "seed": 0},
    }  # fmt: skip


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out.get(k, {}), v) if isinstance(v, dict) else v
    return out


LIK = {"loss": {"weighting": "likelihood", "t_sampling": "importance"}}
COS = {"optim": {"lr_decay": "cosine"}}
#: The network sees lambda(t) = log SNR (about -10 to 14 on [t_eps, T]), not t, through Fourier
#: features of scale 0.25: t in [1e-5, 1e-3], where the sharp structure of the score lives, is
#: one flat stretch to features of t, but about 4.6 units of lambda.


def FF(scale: float, m: int = 64) -> dict[str, Any]:  # noqa: N802 - reads like a constant
    """m random Fourier features of the network's input x (scale in cycles per unit)."""
    return {"net": {"kwargs": {"fourier_features": m, "fourier_scale": scale}}}


LOGSNR = {"net": {"time_input": "log_snr", "kwargs": {"time_scale": 0.25}}}


def _steps(n: int, **over: Any) -> dict[str, Any]:
    return {"schedule": {"steps": n, **over}}


def _and(*parts: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in parts:
        out = _merge(out, p)
    return out


#: name -> (data, overrides of base_config, what changes). Each row is measured, none guessed.
ROWS: dict[str, tuple[str, dict[str, Any], str]] = {
    "8g:demo-small": ("8gaussians", {}, "the demo's small recipe before: sigma^2 weighting, "
                      "uniform t, 4000 steps"),
    "8g:likelihood": ("8gaussians", LIK, "+ lambda = g^2 with importance-sampled t"),
    "8g:lik+cosine": ("8gaussians", _and(LIK, COS), "+ cosine learning-rate decay"),
    "8g:lik+cos+logsnr": ("8gaussians", _and(LIK, COS, LOGSNR),
                          "+ network time input log-SNR (Fourier scale 0.25) instead of t"),
    "8g:lik+cos+ema.9995": ("8gaussians", _and(LIK, COS, {"optim": {"ema_decay": 0.9995}}),
                            "lik + cosine, EMA 0.9995"),
    "8g:lik+cos+eps1e-3": ("8gaussians", _and(LIK, COS, {"sde": {"kwargs": {"eps": 1e-3}}}),
                           "lik + cosine, t_eps = 1e-3 (train and likelihood)"),
    "8g:lik+cos+predicts-eps": ("8gaussians", _and(LIK, COS, {"net": {"predicts": "eps"}}),
                                "lik + cosine, eps-prediction instead of EDM preconditioning"),
    "8g:recipe": ("8gaussians", _and(LIK, COS, LOGSNR, _steps(20000)),
                  "recipe: lik + cosine + log-SNR input, 20000 steps"),
    "cb:demo-small": ("checkerboard", {}, "the demo's small recipe (as for 8-Gaussians)"),
    "cb:lik+cos": ("checkerboard", _and(LIK, COS), "+ lambda = g^2 with importance-sampled t, "
                   "cosine learning-rate decay"),
    "cb:lik+cos+logsnr": ("checkerboard", _and(LIK, COS, LOGSNR),
                          "+ network time input log-SNR (Fourier scale 0.25) instead of t"),
    "cb:fourier-s2": ("checkerboard", FF(2.0), "demo small + 64 random Fourier features of the "
                      "input x (scale 2)"),
    "cb:lik+cos+logsnr+fourier-s2": ("checkerboard", _and(LIK, COS, LOGSNR, FF(2.0)),
                                     "lik + cosine + log-SNR input + Fourier features (scale 2)"),
    "cb:fourier-s4": ("checkerboard", FF(4.0), "demo small + Fourier features (scale 4)"),
    "cb:cos+logsnr+fourier-s2": ("checkerboard", _and(COS, LOGSNR, FF(2.0)),
                                 "demo small + Fourier features (scale 2), cosine decay, log-SNR "
                                 "input"),
    "cb:recipe": ("checkerboard", _and(COS, LOGSNR, FF(2.0), _steps(18000)),
                  "recipe: the row above, 18000 steps"),
}  # fmt: skip

#: The recipe row of each data set (the headline number of the docs page).
RECIPES: dict[str, str] = {"8gaussians": "8g:recipe", "checkerboard": "cb:recipe"}


def row_config(name: str, fast: bool = False) -> dict[str, Any]:
    """The full run config (nested dict) of row ``name``."""
    data, over, _ = ROWS[name]
    cfg = _merge(base_config(data), over)
    if fast:  # seconds: a tiny network for a few steps
        cfg["net"]["kwargs"].update(hidden=16, depth=1)
        cfg["schedule"].update(steps=30, batch_size=64)
        cfg["optim"]["warmup_steps"] = 3
    s = cfg["schedule"]
    s.update(log_every=max(1, s["steps"] // 20), ckpt_every=s["steps"])
    return cfg


def test_nll(model: Any, data: Any, n: int, tol: float) -> dict[str, Any]:
    """Test NLL (nats, data units) by the exact-divergence PF-ODE in float64, with the cost."""
    model64 = copy.deepcopy(model).double().eval()
    x = data.scaler.transform(data.test[:n]).to(F64)
    start = time.process_time()
    res = log_likelihood(model64.sde, model64, x, rtol=tol, atol=tol, dtype=F64)
    nll = -(res.log_prob + data.scaler.log_abs_det(data.shape)).double()
    mean, se = (float(v) for v in mean_se(nll))
    out = {"nll": mean, "nll_se": se, "n_test": n, "rtol": tol, "atol": tol, "nfe": res.nfe,
           "eval_cpu_s": time.process_time() - start}  # fmt: skip
    if data.name == "8gaussians":  # paired with the exact density: KL(p_data || p_model) + s.e.
        log_p = eight_gaussians_mixture().log_prob(data.test[:n].to(F64))
        kl, kl_se = mean_se(nll + log_p)
        out.update(kl=float(kl), kl_se=float(kl_se), nll_data=float(-log_p.mean()))
    return out


def run_row(
    name: str, fast: bool, n_test: int, tol: float, cache: Path | None = None
) -> dict[str, Any]:
    """Train row ``name`` on one thread, keep its EMA weights in ``cache``, measure its NLL."""
    cfg = RunConfig.from_dict(row_config(name, fast))
    data, _, note = ROWS[name]
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.process_time()
        res = train_from_config(cfg, Path(tmp) / "run", device="cpu", progress=False)
        cpu_s = time.process_time() - start
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        torch.save(res.model.state_dict(), cache / (name.replace(":", "_") + ".pt"))
    ev = test_nll(res.model, build_data(cfg), n_test, tol)
    row = {"data": data, "note": note, "overrides": ROWS[name][1], "steps": res.step,
           "train_cpu_min": cpu_s / 60, "threads": torch.get_num_threads(),
           "nll": ev.pop("nll"), "nll_se": ev.pop("nll_se"), "entropy": ENTROPY[data]}  # fmt: skip
    row["gap"] = row["nll"] - row["entropy"]
    row.update({k: ev.pop(k) for k in ("kl", "kl_se") if k in ev}, eval=ev)
    print(f"{name:28s} {row['steps']:6d} steps {row['train_cpu_min']:5.2f} CPU-min  NLL "
          f"{row['nll']:.4f} ± {row['nll_se']:.4f} (gap {row['gap']:+.4f})", flush=True)  # fmt: skip
    return row


def _flat(r: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of a row, flat (for the docs' claim markers)."""
    keys = ("steps", "train_cpu_min", "nll", "nll_se", "gap", "kl", "kl_se")
    out = {k: r[k] for k in keys if k in r}
    out["n_test"] = r["eval"]["n_test"]
    if "kl" in r:  # entropy + KL: the expected test NLL, free of the test set's own noise
        out["expected_nll"] = r["entropy"] + r["kl"]
        out["nll_data"] = r["eval"].get("nll_data")
    return out


def markdown_table(rows: dict[str, dict[str, Any]]) -> str:
    """The ablation table of the docs page: one line per measured row."""
    head = ("| row | what changes | steps | training CPU-min (1 thread) | test NLL ± s.e. "
            "[nats] | NLL − entropy | KL(data ‖ model) ± s.e. | test points |\n"
            "|---|---|---|---|---|---|---|---|\n")  # fmt: skip
    lines = []
    for name, r in rows.items():
        kl = f"{r['kl']:.4f} ± {r['kl_se']:.4f}" if "kl" in r else "—"
        lines.append(f"| `{name}` | {r['note']} | {r['steps']} | {r['train_cpu_min']:.2f} | "
                     f"{r['nll']:.4f} ± {r['nll_se']:.4f} | {r['gap']:+.4f} | {kl} | "
                     f"{r['eval']['n_test']} |")  # fmt: skip
    return head + "\n".join(lines)


def plot(rows: dict[str, dict[str, Any]], pyplot: Any) -> Any:
    """Test NLL against training CPU-minutes per row, one panel per data set."""
    fig, axes = pyplot.subplots(1, 2, figsize=(10, 3.8))
    for ax, data in zip(axes, ENTROPY, strict=True):
        sel = {k: r for k, r in rows.items() if r["data"] == data}
        for i, (k, r) in enumerate(sel.items()):
            ax.errorbar(r["train_cpu_min"], r["nll"], r["nll_se"], fmt="o", color=f"C{i % 10}",
                        label=k.split(":", 1)[1])  # fmt: skip
        ax.axhline(ENTROPY[data], color="k", ls="--", lw=1, label="entropy")
        ax.axhline(TARGET[data], color="C3", ls=":", lw=1, label="target")
        ax.set(title=data, xlabel="training CPU-minutes (1 thread)", ylabel="test NLL [nats]")
        ax.legend(fontsize=6)
    fig.tight_layout()
    return fig


def main(argv: list[str] | None = None) -> dict:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--rows", default=None, help="comma-separated row names to (re)run")
    pre.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "toy_likelihood",
        help="folder for the trained EMA weights of each row (not committed)",
    )
    known, rest = pre.parse_known_args(argv)
    args = parse_args("toy_likelihood", __doc__.splitlines()[0], rest)
    started = time.perf_counter()
    path = args.out / "results.json"
    old = json.loads(path.read_text()) if path.is_file() and not args.fast else {}
    rows: dict[str, Any] = dict(old.get("rows", {}))
    if args.fast:
        todo = ["8g:demo-small", "8g:likelihood"]
    elif known.rows is not None:  # "" re-renders the table and figure from results.json
        todo = [k for k in known.rows.split(",") if k]
    else:
        todo = [k for k in ROWS if k not in rows]
    unknown = [k for k in todo if k not in ROWS]
    if unknown:
        raise ValueError(f"unknown rows {unknown}; expected some of {list(ROWS)}")
    n_test, tol = (100, 1e-4) if args.fast else (N_TEST, EVAL_TOL)
    for name in todo:
        n = N_TEST_RECIPE if ":recipe" in name and not args.fast else n_test
        rows[name] = run_row(name, args.fast, n, tol, None if args.fast else known.cache)
        if not args.fast:  # checkpoint the table after every row
            save_json({**old, "rows": rows}, args.out, started)
    rows = {k: rows[k] for k in ROWS if k in rows}  # the table in the order of ROWS
    for k, r in rows.items():  # the notes as the script states them now
        r["note"] = ROWS[k][2]
    recipes = {}
    for data, name in RECIPES.items():
        if name in rows and f"{name[:2]}:demo-small" in rows:
            r, base = rows[name], rows[f"{name[:2]}:demo-small"]
            met = r["nll"] <= TARGET[data] and r["train_cpu_min"] <= BUDGET_CPU_MIN
            recipes[data] = {"row": name, "target": TARGET[data], "met": met,
                             "recipe": _flat(r), "baseline": _flat(base)}  # fmt: skip
    table = markdown_table(rows)
    results = {"experiment": "toy_likelihood", "table_md": f"\n\n{table}\n\n", "fast": args.fast, "seed": args.seed,
               "command": "python experiments/toy_likelihood.py", "threads": 1,
               "eval": {"rtol": tol, "atol": tol, "n_test": n_test, "dtype": "float64",
                        "solver": "dopri5", "divergence": "exact"},
               "budget_cpu_min": BUDGET_CPU_MIN, "rows": rows, "recipes": recipes}  # fmt: skip
    if args.fast:
        plt().rcParams["savefig.dpi"] = 50
    results["figures"] = [save_fig(plot(rows, plt()), args.out, "nll_vs_cpu")]
    save_json(results, args.out, started)
    return results


if __name__ == "__main__":
    main()
