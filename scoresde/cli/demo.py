"""``scoresde demo``: train on a 2-D toy set, compare samplers, evaluate the likelihood, report.

The main job of the library end to end, on an embedded default: a small MLP score model is
trained by denoising score matching, every sampler runs from the same prior draws at several
NFEs, the test NLL from the PF-ODE is compared with the data's exact entropy, and the run folder
gets ``config.json``, ``results.json``, ``report.md``, CSV tables and PNG figures.
"""

from __future__ import annotations

import argparse
import copy
import shlex
import time
from pathlib import Path
from typing import Any

import torch

from .._utils import mean_se, progress_bar
from ..data.toy import eight_gaussians_mixture
from ..likelihood import log_likelihood
from ..metrics import noise_floor
from ..samplers import get_sampler, make_grid, optimize_grid, sample
from ..studies import compare_samplers, likelihood_study, summarize, write_csv
from . import report
from .build import build_data, train_from_config
from .common import run_dir, write_results
from .config import RunConfig
from .recipe import data_sigma, recipe_config

__all__ = ["BUDGETS", "next_steps", "run_demo"]

#: Sizes of each ``--budget``: training steps, network, study grid, likelihood points, and
#: whether the model is trained with the likelihood recipe of docs/experiments/toy-likelihood.md
#: (the likelihood weighting lambda = g^2 with importance-sampled t, Song, Durkan, Murray & Ermon
#: 2021; a cosine learning-rate decay; the network sees the log-SNR, not t). At the small
#: budget's 4000 steps it roughly halves KL(data || model) on 8-Gaussians at the same cost.
BUDGETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "steps": 300,
        "hidden": 64,
        "depth": 2,
        "batch": 256,
        "ema": 0.99,
        "n": 400,
        "likelihood_recipe": False,
        "nfes": [10, 20],
        "seeds": [0],
        "n_nll": 64,
        "ll_points": 8,
        "tols": [1e-3],
        "probes": [1],
        "elbo": [4],
        "paths": 6,
        "path_steps": 30,
    },
    "small": {
        "steps": 4000,
        "hidden": 128,
        "depth": 3,
        "batch": 512,
        "ema": 0.999,
        "n": 2000,
        "likelihood_recipe": True,
        "nfes": [5, 10, 20, 50, 100],
        "seeds": [0, 1, 2],
        "n_nll": 1000,
        "ll_points": 64,
        "tols": [1e-2, 1e-3, 1e-4, 1e-5],
        "probes": [1, 4, 16],
        "elbo": [1, 16],
        "paths": 12,
        "path_steps": 200,
    },
    "full": {
        "steps": 20000,
        "hidden": 256,
        "depth": 4,
        "batch": 1024,
        "ema": 0.9995,
        "n": 4000,
        "likelihood_recipe": True,
        "nfes": [5, 10, 20, 50, 100, 200],
        "seeds": [0, 1, 2, 3, 4],
        "n_nll": 5000,
        "ll_points": 200,
        "tols": [1e-2, 1e-3, 1e-4, 1e-5],
        "probes": [1, 4, 16],
        "elbo": [1, 16, 64],
        "paths": 16,
        "path_steps": 500,
    },
}

SAMPLERS = [
    "euler_maruyama",
    "ddpm",
    "ddim",
    "pf_heun",
    "dpm_solver_2",
    "dpm_solver_pp_3m",
    "unipc",
]
#: The sampler whose grid the demo optimizes on the trained model, and at which NFE.
OPTIMIZED = ("dpm_solver_pp_2m", 10)
#: The adaptive PF-ODE solver at a moderate tolerance (its NFE is its own).
ADAPTIVE = ("pf_adaptive", {"rtol": 1e-3, "atol": 1e-3})


def _samplers(sde: Any, budget: str) -> list[Any]:
    names: list[Any] = [s for s in SAMPLERS if get_sampler(s).supports(sde)]
    return [*names, ADAPTIVE] if budget != "tiny" else ["euler_maruyama", "ddim", "pf_heun"]


def _optimized_grid(sde: Any, model: Any, ref: torch.Tensor, args: argparse.Namespace) -> dict:
    """An optimized grid for ``OPTIMIZED`` on the trained model (teacher: its fine-grid run)."""
    name, nfe = OPTIMIZED
    if not get_sampler(name).supports(sde):
        return {}
    g = torch.Generator(device="cpu").manual_seed(args.seed + 7)
    x_T = sde.prior_sample((256, *ref.shape[1:]), generator=g).to(ref.device)
    og = optimize_grid(sde, model, name, nfe, x_T, max_evals=80, teacher_nfe=200, seed=args.seed)
    return {f"{name}+optimized": og}


def run_demo(args: argparse.Namespace, device: torch.device) -> Path:
    """Run the demo described by the parsed ``args``; return the run folder."""
    b = BUDGETS[args.budget]
    out = run_dir(args.out, "demo", args.force)
    started = time.perf_counter()
    # EDM preconditioning (Karras et al. 2022) with the data's own standard deviation keeps the
    # probability-flow ODE well behaved in the tails of the prior, where training sees few points.
    data0 = build_data(RunConfig.from_dict({"data": {"name": args.data}}))
    sigma_data = data_sigma(data0)
    cfg = recipe_config(
        args.data,
        args.sde,
        sigma_data=sigma_data,
        steps=b["steps"],
        batch_size=b["batch"],
        hidden=b["hidden"],
        depth=b["depth"],
        ema=b["ema"],
        seed=args.seed,
        likelihood=b["likelihood_recipe"],
    )
    print(f"scoresde demo: {args.data}, {args.sde} SDE, budget {args.budget} -> {out}")
    res = train_from_config(cfg, out / "train", device=device, progress=not args.quiet)
    train_s = time.perf_counter() - started
    model = res.model.eval()
    sde, data = model.sde, data0
    ref = data.scaler.transform(data.test[: b["n"]]).to(device)
    density = eight_gaussians_mixture() if args.data == "8gaussians" else None
    grids = _optimized_grid(sde, model, ref, args) if args.budget != "tiny" else None
    bar = progress_bar(desc="sampler study", disable=args.quiet, leave=False)
    study = compare_samplers(
        sde,
        model,
        _samplers(sde, args.budget),
        b["nfes"],
        ref,
        ("sw2", "mmd"),
        seeds=b["seeds"],
        density=density,
        grids=grids,
        progress=lambda m: (bar.set_postfix_str(m), bar.update()),
    )
    bar.close()
    assert study is not None  # one process
    study.to_csv(out / "sampler_study.csv")
    floor = noise_floor(data.sampler, b["n"], "sw2", repeats=3) if data.sampler else None
    figures = [_sample_figure(study, ref, out)]
    figures.append(
        report.plot_quality_vs_nfe(
            study.rows, "sw2", out / "quality_vs_nfe.png", floor, "sliced W2"
        )
    )
    figures.append(_trajectories(sde, model, ref, b, args.seed, out))
    model64 = copy.deepcopy(model).double()  # likelihoods in float64
    nll = _nll(sde, model64, data, b["n_nll"], device)
    entropy = data.entropy
    figures.append(report.plot_nll_histogram(nll, out / "nll_histogram.png", entropy))
    x_ll = ref[: b["ll_points"]].double()
    ll_rows = likelihood_study(
        sde,
        model64,
        x_ll,
        true_log_prob=None if density is None else density.log_prob(x_ll),
        tolerances=b["tols"],
        probes=b["probes"],
        elbo_samples=b["elbo"],
        generator=torch.Generator(device=device).manual_seed(args.seed),
    )
    write_csv(ll_rows, out / "likelihood_study.csv")
    figures.append(report.plot_likelihood_study(ll_rows, out / "likelihood_study.png"))
    nll_mean, nll_se = (float(v) for v in mean_se(nll.double()))
    kl = None  # paired with the exact density: KL(p_data || p_model), free of the test set's noise
    if density is not None:
        log_p = density.log_prob(data.test[: nll.numel()].double())
        kl = dict(zip(("mean", "se"), (float(v) for v in mean_se(nll.double() + log_p))))
    results = {
        "data": args.data,
        "sde": report.sde_title(sde),
        "budget": args.budget,
        "device": str(device),
        "train": {"steps": res.step, "seconds": train_s, "nan_skips": res.nan_skips},
        "test_nll": {
            "mean": nll_mean,
            "se": nll_se,
            "n": nll.numel(),
            "entropy": entropy,
            "gap": None if entropy is None else nll_mean - entropy,
            "kl": kl,
        },
        "sw2_noise_floor": floor,
        "sampler_summary": summarize(study.rows, "sw2"),
        "skipped": study.skipped,
        "likelihood_study": ll_rows,
        "figures": [f.name for f in figures],
        "wall_time_s": time.perf_counter() - started,
    }
    config = {
        "command": "demo",
        **vars(args),
        "device": str(device),
        "budget_sizes": b,
        "run_config": cfg.to_dict(),
    }
    results["next_steps"] = next_steps(out, args.data)
    write_results(out, config, results, _report(results, study, ll_rows))
    print(
        f"test NLL {nll_mean:.4f} ± {nll_se:.4f} nats"
        + ("" if entropy is None else f" (data entropy {entropy:.4f})")
        + f"; report: {out / 'report.md'}"
    )
    print(f"run folder: {out}\ncheckpoint: {out / 'train' / 'checkpoint.pt'}\nnext:")
    print("\n".join(f"  {c}" for c in results["next_steps"].values()))
    return out


def next_steps(out: Path, data: str) -> dict[str, str]:
    """Ready-to-run ``sample``, ``nll`` and ``compare`` commands on the demo's checkpoint."""
    ckpt = shlex.quote(str(out / "train" / "checkpoint.pt"))
    return {
        "sample": f"scoresde sample --ckpt {ckpt} --sampler ddim --nfe 20 -n 1000",
        "nll": f"scoresde nll --ckpt {ckpt} --data {data} -n 200",
        "compare": f"scoresde compare --ckpt {ckpt} --samplers ddim,pf_heun,unipc --nfe 10,20",
    }


def _sample_figure(study: Any, ref: torch.Tensor, out: Path) -> Path:
    """Each sampler at its largest NFE, titled with the NFE it spent (not the target)."""
    spent = {(r["sampler"], r["nfe_target"]): r["nfe"] for r in study.rows}
    best: dict[str, tuple[int, torch.Tensor]] = {}
    for (label, nfe), x in study.samples.items():
        if label not in best or (nfe or 0) > best[label][0]:
            best[label] = (nfe or 0, x)
    panels = {
        f"{k} (NFE {spent.get((k, v[0] or None)) or 'adaptive'})": v[1] for k, v in best.items()
    }
    return report.plot_samples(panels, out / "samples_per_sampler.png", reference=ref)


def _trajectories(
    sde: Any, model: Any, ref: torch.Tensor, b: dict[str, Any], seed: int, out: Path
) -> Path:
    x_T = sde.prior_sample((b["paths"], *ref.shape[1:]), torch.Generator().manual_seed(seed))
    x_T = x_T.to(ref)
    grid = make_grid(sde, b["path_steps"], "uniform")
    gen = torch.Generator(device=ref.device).manual_seed(seed)
    with torch.no_grad():
        _, sde_info = sample(
            "euler_maruyama", sde, model, x_T, grid, generator=gen, return_trajectory=True
        )
        _, ode_info = sample("pf_heun", sde, model, x_T, grid, return_trajectory=True)
    assert sde_info.trajectory is not None and ode_info.trajectory is not None
    return report.plot_trajectories(
        sde_info.trajectory, ode_info.trajectory, grid, out / "trajectories.png", ref
    )


def _nll(sde: Any, model: Any, data: Any, n: int, device: torch.device) -> torch.Tensor:
    x = data.scaler.transform(data.test[:n]).to(device)
    res = log_likelihood(sde, model, x, rtol=1e-5, atol=1e-5, dtype=torch.float64)
    return -(res.log_prob.cpu() + data.scaler.log_abs_det(data.shape))


def _report(results: dict[str, Any], study: Any, ll_rows: list[dict[str, Any]]) -> str:
    t, nll = results["train"], results["test_nll"]
    lines = [
        f"# scoresde demo: {results['data']}, {results['sde']}\n",
        f"Budget `{results['budget']}` on `{results['device']}`; trained {t['steps']} steps in "
        f"{t['seconds']:.0f} s; whole run {results['wall_time_s']:.0f} s.\n",
        "## Likelihood\n",
        f"Test NLL through the PF-ODE (exact divergence, dopri5, rtol 1e-5): "
        f"**{nll['mean']:.4f} ± {nll['se']:.4f} nats** over {nll['n']} test points.",
    ]
    if nll.get("kl") is not None:  # the one KL: paired with the exact density, point by point
        lines.append(
            f"Paired with the exact data density on the same points: KL(p_data || "
            f"p_model) = **{nll['kl']['mean']:.4f} ± {nll['kl']['se']:.4f} nats** (the "
            "mean of log p_data(x) - log p_model(x); pairing removes the test set's own "
            "spread of -log p_data)."
        )
    if nll["entropy"] is not None:
        lines.append(
            f"For scale, the data entropy H = {nll['entropy']:.4f} nats; the unpaired "
            f"difference test NLL - H = {nll['gap']:.4f} nats estimates the same KL but "
            "carries the sampling noise of the test points' -log p_data (an SE of about "
            f"{nll['se']:.3f} nats), so it is not reported as the KL."
        )
    lines += [
        "\n![NLL histogram](nll_histogram.png)\n",
        "## Samplers (sliced W2, mean over seeds)\n",
    ]
    floor = results["sw2_noise_floor"]
    if floor:
        draws = ", ".join(f"{v:.3f}" for v in floor["values"])
        lines.append(
            f"Two independent exact sample sets of this size are {floor['mean']:.4f} ± "
            f"{floor['std']:.4f} apart (the floor: mean ± sd over {len(floor['values'])} "
            f"pairs: {draws}).\n"
        )
    lines.append(
        report.markdown_table(
            results["sampler_summary"],
            ["sampler", "nfe_target", "nfe", "mean", "se", "us_per_sample"],
        )
    )
    lines.append("`us_per_sample`: CPU microseconds per sample, median of repeated runs.\n")
    lines += [
        "\n![quality vs NFE](quality_vs_nfe.png)\n",
        "![samples](samples_per_sampler.png)\n",
        "## Reverse SDE vs PF-ODE from the same x_T\n",
        "![paths](trajectories.png)\n",
        *_estimator_section(ll_rows),
    ]
    lines += [
        "## Next steps\n",
        "The checkpoint is `train/checkpoint.pt` in this folder:\n",
        "```bash",
        *results["next_steps"].values(),
        "```\n",
    ]
    if study.skipped:
        lines += ["Skipped: " + "; ".join(study.skipped) + "\n"]
    return "\n".join(lines) + "\n"


def _estimator_section(ll_rows: list[dict[str, Any]]) -> list[str]:
    """The likelihood-estimator table: each estimator against a tight solve of the same model."""
    ref = next(r for r in ll_rows if r["kind"] == "reference")
    lines = [
        "## Likelihood estimators\n",
        f"Each estimator is measured against the same model's exact-divergence PF-ODE "
        f"log-likelihood at rtol = atol = {ref['rtol']:g} (float64; {ref['nfe']} NFE, "
        f"{ref['wall_time_s']:.1f} s for {ref['n_points']} points). `nll_error` is the signed "
        "error of the estimated NLL (mean over points, `bias_se` its standard error). Rows of kind "
        "`bound` are the continuous ELBO: an **upper bound on the NLL** of the SDE model with "
        "this score (Song, Durkan, Murray & Ermon 2021, Thm. 3), not an estimate of the PF-ODE "
        "model's NLL, so their `nll_error` is the bound's gap above the reference plus the two "
        "models' difference, and can be negative when the learned score is inexact.\n",
        report.markdown_table(
            [r for r in ll_rows if r["kind"] in ("estimate", "bound")],
            [
                "method",
                "kind",
                "rtol",
                "n_probes",
                "nll_error",
                "bias_se",
                "mean_abs_error",
                "rmse",
                "nfe",
                "n_vjp",
                "wall_time_s",
            ],
        ),
    ]
    gap = next((r for r in ll_rows if r["kind"] == "model"), None)
    if gap is not None:
        lines.append(
            f"\nThe model itself, on the same points: NLL_model - NLL_data = "
            f"{gap['nll_error']:.4f} ± {gap['bias_se']:.4f} nats (reference solve against the "
            "true density; the model's error, not the estimators').\n"
        )
    return [*lines, "\n![likelihood study](likelihood_study.png)\n"]
