"""scikit-learn digits: a U-Net score model trained on CPU, test bits/dim against baselines.

Data: scikit-learn's 1797 8x8 digits with 17 grey levels k in {0..16}, the fixed split of
:func:`scoresde.data.load_digits` (300 test images, 1497 training images). Every likelihood is
reported in one convention, that of :func:`scoresde.likelihood.dequantized_bits_per_dim`:
uniform dequantization y = -1 + 2 (k + U) / 17 with U ~ U[0, 1)^64, so each level owns a cell of
width 2/17 of the model range [-1, 1] and bits/dim = -log2 P(k) / 64 for a discrete model, or
the Jensen bound -E_U log2 p(y) / 64 - log2(2 / 17) for a continuous one. log2(17) = 4.09 bits
is the uniform baseline.

The score model is trained on data dequantized in exactly that convention. The library's own
``digits`` source now does the same (levels at the centres of their cells, fresh uniform noise
on every training batch, epochs without replacement); this script keeps the stream that produced
the committed results: a source ``digits_dequantized`` registered in
:data:`scoresde.data.DATASETS` (in this process, ``_digits_recipe.py``) that draws training
images with replacement and adds fresh uniform noise to every draw (optionally after a random
shift, which the screening ``digits_screen.py`` measures; :data:`RECIPE` holds the knobs).

Recipe (Song, Durkan, Murray & Ermon 2021; Kingma et al. 2021): VP SDE (linear beta,
t_eps = 1e-5), eps-prediction, likelihood weighting g(t)^2 with importance sampling of t
(uniform in log-SNR, so every term is Z ||eps_hat - eps||^2), log-SNR as the network's time
input, EMA of the weights, and :func:`scoresde.training.train` in chunks so that the training
CPU time (one thread) is measured and capped; the run is resumable from its checkpoint.

Beyond uniform dequantization, same model and images (``_digits_bounds.py``): a logit-normal
q(u | k) fitted after training to the model's ELBO, evaluated with the PF-ODE (variational and
importance-weighted bounds over the same draws), and the truncation bound (PF-ODE from t_e plus
a Gaussian decoder) on the first ``--trunc-images`` test images.

Baselines, measured here on the same test images:
    categorical   independent per-pixel categorical with add-one smoothing fitted on train,
                  an exact discrete model: bits/dim = -mean log2 p_j(k_j).
    gaussian      full-covariance Gaussian fitted on dequantized training data (model units),
                  evaluated through dequantized_bits_per_dim like the score model.

Figures:
    samples.png     training images next to samples of the score model (PF-ODE and PC).
    inpainting.png  the bottom half of test digits filled in by the reverse SDE with the
                    samplers' InpaintHook (several completions per digit).
    bpd.png         per-image test bits/dim of the model against each baseline, and the
                    training curve (loss, and the ELBO bound of the EMA model on the test
                    images: monitoring only, nothing is selected on it).

Results (results.json): bits/dim with standard errors over the 300 test images (and the spread
over dequantization draws), training CPU minutes, steps, NFE, the recipe.

Run: ``python experiments/digits.py [--fast] [--out DIR] [--run-dir DIR] [--draws K]``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _digits_bounds as bd  # noqa: E402
import _digits_eval as ev  # noqa: E402
import _digits_recipe as rc  # noqa: E402
from _common import ROOT, plt, save_fig, save_json  # noqa: E402

from scoresde.data import load_digits  # noqa: E402
from scoresde.likelihood import dequantized_bits_per_dim  # noqa: E402

#: The committed recipe: knobs of ``_digits_recipe.make_config`` chosen by the screening
#: (``experiments/digits_screen.py``, ``docs/experiments/digits.md``).
RECIPE: dict[str, Any] = {}
FULL_STEPS = 7000


def evaluate(
    model: Any, fast: bool, seed: int, n_draws: int, n_trunc: int, cache: bd.Cache
) -> dict[str, Any]:
    """Bits/dim of the model and the baselines on the test images, samples, inpainting."""
    gen = torch.Generator().manual_seed(seed)
    digits = load_digits()
    train_k, test_k = digits.train.long(), digits.test.long()
    if fast:
        test_k = test_k[:16]
    t0 = time.perf_counter()
    mean, cov = ev.fit_gaussian(train_k)
    gauss = ev.gaussian_bpd(mean, cov, test_k, 4 if fast else 16, gen)
    uniform = dequantized_bits_per_dim(
        lambda y: torch.full(y.shape[:1], -y[0].numel() * math.log(2.0), dtype=y.dtype),
        test_k,
        levels=ev.LEVELS,
    )
    per_image = {}
    t1 = time.perf_counter()
    tol = 1e-2 if fast else 1e-4
    per_draw, nfe = bd.pf_ode_bits(model, test_k, None, n_draws, tol, cache, "uniform", seed)
    bpd = per_draw.mean(0)
    bpd_wall = time.perf_counter() - t1
    per_image["score model"] = bpd
    per_image["categorical"] = ev.categorical_bpd(train_k, test_k)
    per_image["Gaussian"] = gauss.bpd
    method = (f"PF-ODE, dopri5 rtol=atol={tol:g} in float32, Hutchinson (1 Rademacher probe "
              f"per draw), {{}} dequantization, {n_draws} draws")  # fmt: skip
    bpd_results = {
        "model": {
            **ev.summary(bpd),
            "per_draw_means": per_draw.mean(1).tolist(),
            "n_draws": n_draws,
            "nfe": nfe,
            "wall_s": round(bpd_wall, 1),
            "method": method.format("uniform") + ", averaged (the variational bound)",
        },
        "model_iw": {
            **ev.summary(bd.iw_from_draws(per_draw)),
            "method": method.format("uniform") + ", importance-weighted over the draws",
        },
        "categorical": ev.summary(per_image["categorical"]),
        "gaussian": {**ev.summary(gauss.bpd), "n_draws": gauss.per_draw.shape[0]},
        "gaussian_closed_form": ev.summary(ev.gaussian_bpd_closed_form(mean, cov, test_k)),
        "uniform": ev.summary(uniform.bpd),
        "log2_levels": math.log2(ev.LEVELS),
        "n_test": test_k.shape[0],
    }
    bpd_results |= bd.beyond_uniform(
        model, train_k, test_k, per_draw, fast, cache, seed, method, 8 if fast else n_trunc
    )
    print(f"bits/dim on {test_k.shape[0]} test images ({time.perf_counter() - t0:.0f} s):",
          {k: round(v["bpd"], 4) for k, v in bpd_results.items() if isinstance(v, dict) and "bpd" in v})  # fmt: skip

    n_samples = 16 if fast else 64
    samples, nfes = {}, {}
    for name, nfe in (
        ("dpm_solver_3", 13 if fast else 49),
        ("euler_maruyama", 21 if fast else 501),
    ):
        x, nfes[name] = ev.draw_samples(model, n_samples, name, nfe, gen)
        samples[name] = ev.to_levels(x)

    n_fig, n_comp, n_metric = (4, 2, 8) if fast else (8, 4, 100)
    fig_k = test_k[:n_fig].repeat_interleave(n_comp, 0)
    batch = torch.cat([fig_k, test_k[:n_metric]])
    filled, mask = ev.inpaint(model, batch, 20 if fast else 500, gen)
    fig_filled, metric_filled = filled[: len(fig_k)], filled[len(fig_k) :]
    truth = test_k[:n_metric]
    g_mean, g_sample = ev.gaussian_inpaint(mean, cov, truth, mask, gen)
    probs = ev.categorical_probs(train_k)
    cat_sample = torch.multinomial(probs, n_metric, replacement=True, generator=gen).T
    cat_fill = torch.where(mask, truth.double(), cat_sample.reshape(truth.shape).double())
    rmse = {
        "score model (sample)": ev.rmse_unknown(metric_filled, truth, mask),
        "Gaussian (conditional sample)": ev.rmse_unknown(g_sample, truth, mask),
        "Gaussian (conditional mean)": ev.rmse_unknown(g_mean, truth, mask),
        "categorical (independent sample)": ev.rmse_unknown(cat_fill, truth, mask),
    }
    return {
        "bpd": bpd_results,
        "per_image": per_image,
        "samples": samples,
        "sample_nfe": nfes,
        "train_k": train_k[:n_samples],
        "inpainting": {"rmse_levels": rmse, "n_digits": n_metric, "steps": 20 if fast else 500},
        "fig_inpaint": (
            test_k[:n_fig],
            mask,
            fig_filled.reshape(n_fig, n_comp, 1, 8, 8),
            g_sample[:n_fig],
        ),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Train (or resume), evaluate, plot; return the results."""
    p = argparse.ArgumentParser(prog="experiments/digits.py", description=__doc__.splitlines()[0])
    p.add_argument("--fast", action="store_true", help="tiny sizes for CI (seconds, noisy numbers)")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "experiments" / "digits",
                   help="figures (PNG) and results.json (default: %(default)s)")  # fmt: skip
    p.add_argument("--run-dir", type=Path, default=None,
                   help="training checkpoint and logs, resumed if present "
                        "(default: runs/digits, or OUT/run in --fast mode)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="seed of every torch.Generator used")
    p.add_argument("--steps", type=int, default=None,
                   help=f"training steps (default {FULL_STEPS})")  # fmt: skip
    p.add_argument("--cpu-minutes", type=float, default=30.0,
                   help="cap on training CPU time, one thread (default %(default)s)")  # fmt: skip
    p.add_argument("--train-only", action="store_true", help="stop after training")
    p.add_argument(
        "--draws",
        type=int,
        default=None,
        help="dequantization draws per test image (default 3; 1 with --fast)",
    )
    p.add_argument("--aug-p", type=float, default=None,
                   help="probability of a +-1-pixel shift of a training image (overrides "
                        "RECIPE; the screen's pick is 0.5)")  # fmt: skip
    p.add_argument("--trunc-images", type=int, default=100,
                   help="test images of the truncation rows (default %(default)s)")  # fmt: skip
    args = p.parse_args(argv)
    args.draws = args.draws or (1 if args.fast else 3)
    args.out.mkdir(parents=True, exist_ok=True)
    run_dir = args.run_dir or (args.out / "run" if args.fast else ROOT / "runs" / "digits")
    started = time.perf_counter()
    torch.set_num_threads(1)
    rc.register_data()
    steps = args.steps or (40 if args.fast else FULL_STEPS)
    knobs = RECIPE | ({} if args.aug_p is None else {"aug_p": args.aug_p})
    config = rc.make_config(args.fast, args.seed, steps, part="all", **knobs)
    chunk = 20 if args.fast else 250
    monitor = rc.make_monitor_hook(4, seed=1)  # the test images: a curve, never a selection
    trained = rc.train_with_cpu_budget(
        config, run_dir, args.cpu_minutes * 60, chunk, not args.fast, [monitor]
    )
    print(f"trained to step {trained['step']} in {trained['cpu_s'] / 60:.1f} CPU minutes")
    if args.train_only:
        return trained
    c0 = time.process_time()
    cache = bd.Cache(run_dir / f"eval_cache_step{trained['step']}")
    res = evaluate(trained["model"], args.fast, args.seed, args.draws, args.trunc_images, cache)
    eval_cpu = time.process_time() - c0
    pyplot = plt()
    if args.fast:
        pyplot.rcParams["savefig.dpi"] = 50
    panels = {"training images": res["train_k"]}
    for name, x in res["samples"].items():
        panels[f"{name} ({res['sample_nfe'][name]} NFE)"] = x
    figures = [save_fig(ev.plot_samples(panels, pyplot), args.out, "samples")]
    figures.append(
        save_fig(ev.plot_inpainting(*res["fig_inpaint"], pyplot), args.out, "inpainting")
    )
    log, evals = ev.read_csv(run_dir / "log.csv"), ev.read_csv(run_dir / "eval.csv")
    figures.append(save_fig(ev.plot_bpd(res["per_image"], log, evals, pyplot), args.out, "bpd"))
    results = {
        "experiment": "digits",
        "fast": args.fast,
        "seed": args.seed,
        "data": "scikit-learn digits, 8x8, 17 levels; 1497 train / 300 test (i % 6 == 0)",
        "training": {
            "steps": trained["step"],
            "cpu_minutes": round(trained["cpu_s"] / 60, 2),
            "threads": 1,
            "nan_skips": trained["nan_skips"],
            "final_monitor_elbo_bpd": evals[-1].get("monitor_elbo_bpd") if evals else None,
            "run_dir": str(run_dir),
        },
        "evaluation_cpu_minutes": round(eval_cpu / 60, 2),
        "config": config.to_dict(),
        "bits_per_dim": res["bpd"],
        "sample_nfe": res["sample_nfe"],
        "inpainting": res["inpainting"],
        "figures": figures,
    }
    save_json(results, args.out, started)
    return results


if __name__ == "__main__":
    out = main()
    if "bits_per_dim" in out:
        for name, row in out["bits_per_dim"].items():
            if isinstance(row, dict) and "bpd" in row:
                print(f"{name:22s} {row['bpd']:.4f} +- {row['se']:.4f} bits/dim")
