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
:data:`scoresde.data.DATASETS` (in this process) that draws training images with replacement and
adds fresh uniform noise to every draw.

Recipe (Song, Durkan, Murray & Ermon 2021; Kingma et al. 2021): VP SDE (linear beta,
t_eps = 1e-5), eps-prediction, likelihood weighting g(t)^2 with importance sampling of t
(uniform in log-SNR, so every term is Z ||eps_hat - eps||^2), log-SNR as the network's time
input, EMA of the weights, and :func:`scoresde.training.train` in chunks so that the training
CPU time (one thread) is measured and capped; the run is resumable from its checkpoint.

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
                    training curve (loss and test loss of the EMA model).

Results (results.json): bits/dim with standard errors over the 300 test images (and the spread
over dequantization draws), training CPU minutes, steps, NFE, the recipe.

Run: ``python experiments/digits.py [--fast] [--out DIR] [--run-dir DIR]``.
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
import _digits_eval as ev  # noqa: E402
from _common import ROOT, plt, save_fig, save_json  # noqa: E402

from scoresde.cli.build import build_sde, train_from_config  # noqa: E402
from scoresde.cli.config import RunConfig  # noqa: E402
from scoresde.data import DATASETS, Dataset, Scaler, load_digits  # noqa: E402
from scoresde.likelihood import dequantized_bits_per_dim  # noqa: E402
from scoresde.losses import DSMLoss  # noqa: E402
from scoresde.training import make_test_loss_hook  # noqa: E402
from scoresde.training.checkpoint import load_checkpoint, load_model  # noqa: E402

LEVELS = 17
DATA_NAME = "digits_dequantized"
TEST_DEQUANT_SEED = 17  # the fixed dequantization of the test images used for the test loss


# -- data ----------------------------------------------------------------------------------------
def load_digits_dequantized() -> Dataset:
    """Digits in data units k + U (U ~ U[0, 1)), scaled by minmax(0, 17) to [-1, 1].

    Model units are then y = -1 + 2 (k + U) / 17, the convention of ``bits_per_dim``. Training
    draws are with replacement, each with fresh dequantization noise (an infinite stream whose
    batch is a function of ``(seed, step)``, so resume stays exact).
    """
    base = load_digits()
    train_k = base.train

    def sampler(n: int, generator: torch.Generator | None = None) -> Tensor:
        idx = torch.randint(0, train_k.shape[0], (n,), generator=generator)
        return train_k[idx] + torch.rand((n, *base.shape), generator=generator)

    g = torch.Generator().manual_seed(TEST_DEQUANT_SEED)
    test = base.test + torch.rand(base.test.shape, generator=g)
    return Dataset(DATA_NAME, base.shape, Scaler.minmax(0.0, float(LEVELS)), test, sampler=sampler)


def register_data() -> None:
    """Make ``digits_dequantized`` a data source of this process (configs name it)."""
    DATASETS.setdefault(DATA_NAME, load_digits_dequantized)


# -- the training recipe ---------------------------------------------------------------------------
def make_config(fast: bool, seed: int, steps: int | None = None) -> RunConfig:
    """The run: VP SDE, eps-prediction, likelihood weighting + importance sampling, EMA."""
    net = {"base_channels": 32, "channel_mult": [1, 2], "attn_resolutions": [4], "dropout": 0.1}
    if fast:
        net = {"base_channels": 8, "channel_mult": [1], "attn_resolutions": [], "dropout": 0.0}
    net |= {"time_scale": 50.0}  # sinusoidal embedding of a log-SNR in about [-10, 14]
    n_steps = steps or (40 if fast else 7000)
    return RunConfig.from_dict(
        {
            "sde": {"name": "vp", "kwargs": {"beta_min": 0.1, "beta_max": 20.0, "eps": 1e-5}},
            "net": {"name": "unet", "predicts": "eps", "time_input": "log_snr", "kwargs": net},
            "loss": {"name": "dsm", "weighting": "likelihood", "t_sampling": "importance"},
            "data": {"name": DATA_NAME},
            "optim": {
                "lr": 1e-3,
                "warmup_steps": 5 if fast else 200,
                "lr_decay": "cosine",
                "grad_clip": 1.0,
                "ema_decay": 0.9 if fast else 0.999,
            },
            "schedule": {
                "steps": n_steps,
                "batch_size": 32 if fast else 128,
                "seed": seed,
                "log_every": 10 if fast else 100,
                "ckpt_every": 500,
                "eval_every": 20 if fast else 250,
            },
        }
    )


def train_with_cpu_budget(
    config: RunConfig, run_dir: Path, cpu_budget_s: float, chunk: int, progress: bool
) -> dict[str, Any]:
    """Train in chunks of ``chunk`` steps until done or ``cpu_budget_s`` CPU seconds are spent.

    The CPU seconds of this process (``time.process_time``, one thread) are accumulated across
    restarts in ``run_dir/cpu_time.json``; every chunk ends with a checkpoint. A finished run
    (all steps, or the budget spent) is only loaded.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    ledger = run_dir / "cpu_time.json"
    done = json.loads(ledger.read_text()) if ledger.is_file() else {"cpu_s": 0.0, "step": 0}
    used = done["cpu_s"] if done["step"] < config.schedule.steps else math.inf
    sde = build_sde(config)
    loss_fn = DSMLoss(sde, weighting=config.loss.weighting, t_sampling=config.loss.t_sampling)
    hooks = [make_test_loss_hook(loss_fn, batch_size=300, seed=1)]
    step = -1
    while used < cpu_budget_s:
        c0 = time.process_time()
        res = train_from_config(
            config, run_dir, progress=progress, eval_hooks=hooks, stop_after=chunk
        )
        used += time.process_time() - c0
        ledger.write_text(json.dumps({"cpu_s": used, "step": res.step}))
        if res.step >= config.schedule.steps or res.step < step + chunk:  # done, or a signal
            break
        step = res.step
    state = load_checkpoint(run_dir / "checkpoint.pt")
    model = load_model(run_dir / "checkpoint.pt").model
    used = json.loads(ledger.read_text())["cpu_s"]
    return {"model": model, "step": int(state["step"]), "cpu_s": used,
            "nan_skips": int(state["nan_skips"])}  # fmt: skip


def evaluate(model: Any, fast: bool, seed: int) -> dict[str, Any]:
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
    n_draws, tol = (1, 1e-2) if fast else (3, 1e-4)
    bpd = ev.model_bpd(model, test_k, n_draws, gen, tol)
    bpd_wall = time.perf_counter() - t1
    per_image["score model"] = bpd.bpd
    per_image["categorical"] = ev.categorical_bpd(train_k, test_k)
    per_image["Gaussian"] = gauss.bpd
    bpd_results = {
        "model": {
            **ev.summary(bpd.bpd),
            "per_draw_means": bpd.per_draw.mean(1).tolist(),
            "n_draws": n_draws,
            "nfe": bpd.nfe,
            "wall_s": round(bpd_wall, 1),
            "method": f"PF-ODE, dopri5 rtol=atol={tol:g} in float32, Hutchinson (1 Rademacher "
            f"probe per draw), uniform dequantization averaged over {n_draws} draws",
        },
        "categorical": ev.summary(per_image["categorical"]),
        "gaussian": {**ev.summary(gauss.bpd), "n_draws": gauss.per_draw.shape[0]},
        "gaussian_closed_form": ev.summary(ev.gaussian_bpd_closed_form(mean, cov, test_k)),
        "uniform": ev.summary(uniform.bpd),
        "log2_levels": math.log2(ev.LEVELS),
        "n_test": test_k.shape[0],
    }
    print(f"bits/dim on {test_k.shape[0]} test images ({time.perf_counter() - t0:.0f} s):",
          {k: round(v["bpd"], 4) for k, v in bpd_results.items() if isinstance(v, dict)})  # fmt: skip

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
    p.add_argument("--steps", type=int, default=None, help="training steps (default 7000)")
    p.add_argument("--cpu-minutes", type=float, default=30.0,
                   help="cap on training CPU time, one thread (default %(default)s)")  # fmt: skip
    p.add_argument("--train-only", action="store_true", help="stop after training")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    run_dir = args.run_dir or (args.out / "run" if args.fast else ROOT / "runs" / "digits")
    started = time.perf_counter()
    torch.set_num_threads(1)
    register_data()
    config = make_config(args.fast, args.seed, args.steps)
    chunk = 20 if args.fast else 250
    trained = train_with_cpu_budget(
        config, run_dir, args.cpu_minutes * 60, chunk, progress=not args.fast
    )
    print(f"trained to step {trained['step']} in {trained['cpu_s'] / 60:.1f} CPU minutes")
    if args.train_only:
        return trained
    res = evaluate(trained["model"], args.fast, args.seed)
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
            "final_test_loss": evals[-1]["test_loss"] if evals else None,
            "run_dir": str(run_dir),
        },
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
            if isinstance(row, dict):
                print(f"{name:22s} {row['bpd']:.4f} +- {row['se']:.4f} bits/dim")
