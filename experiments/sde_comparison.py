"""VP vs sub-VP vs VE: marginals, schedules, log-SNR, and sampler quality per NFE on one mixture.

Data: a 2-D three-component Gaussian mixture with its exact score under each SDE (Song et al.
2021: VP Eq. 11, sub-VP Eq. 17, VE Eq. 9; library defaults), so all differences come from the
SDE and the sampler, not from a learned score.

Figures:
    marginals.png   x_t at several t for each SDE over contours of the exact p_t.
    schedules.png   alpha_t, sigma_t, the noise-to-signal ratio sigma_t / alpha_t and the log-SNR
                    lambda(t) = log(alpha_t^2 / sigma_t^2).
    quality.png     sliced W2 to exact samples and the cross-entropy gap under the exact density
                    against NFE, per SDE and sampler (``compare_samplers``), with noise floors.
    samples.png     samples of every sampler on every SDE at a small NFE.

Results (results.json): schedule end points per SDE, and the study's mean (± s.e. over seeds)
sliced W2 and cross-entropy gap per (SDE, sampler, NFE), with the exact-sample floor.

Run: ``python experiments/sde_comparison.py [--fast] [--out DIR]``.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parse_args, plt, save_fig, save_json  # noqa: E402
from _plots import plot_marginals, plot_schedules  # noqa: E402

from scoresde.analytic import GaussianMixture  # noqa: E402
from scoresde.metrics import noise_floor  # noqa: E402
from scoresde.sde import VESDE, VPSDE, LinearSDE, SubVPSDE  # noqa: E402
from scoresde.studies import (
    compare_samplers,  # noqa: E402
    mean_se,  # noqa: E402
)

F64 = torch.float64
SAMPLERS = ("euler_maruyama", "pf_heun", "ddim", "dpm_solver_2", "dpm_solver_pp_2m")
COLORS = {"VP": "C0", "sub-VP": "C2", "VE": "C3"}


def mixture() -> GaussianMixture:
    """Three components of different weight, size and orientation."""
    covs = torch.tensor(
        [[[0.30, 0.20], [0.20, 0.30]], [[0.05, 0.0], [0.0, 0.05]], [[0.40, -0.1], [-0.1, 0.1]]],
        dtype=F64,
    )
    return GaussianMixture([0.5, 0.2, 0.3], [[-1.5, -0.5], [1.5, 1.5], [1.0, -1.5]], covs)


def make_sdes() -> dict[str, LinearSDE]:
    """The three SDEs with the library defaults (those of Song et al. 2021)."""
    return {"VP": VPSDE(), "sub-VP": SubVPSDE(), "VE": VESDE()}


def plot_quality(table, floors, pyplot):
    fig, axes = pyplot.subplots(2, len(table), figsize=(5 * len(table), 7.4), sharey="row")
    for c, (sde_name, rows) in enumerate(table.items()):
        for k, label in enumerate(SAMPLERS):
            pts = sorted((r["nfe"], r) for r in rows if r["sampler"] == label and r["nfe"])
            if not pts:
                continue
            nfe = [p[0] for p in pts]
            for row_i, key in enumerate(("sw2", "ce_gap")):
                mean = [p[1][key] for p in pts]
                se = [p[1][f"{key}_se"] for p in pts]
                axes[row_i, c].errorbar(nfe, mean, yerr=[0 if math.isnan(s) else s for s in se],
                                        fmt="o-", ms=3, capsize=2, color=f"C{k}", label=label)  # fmt: skip
        axes[0, c].axhline(floors["sw2"], color="k", ls="--", lw=1, label="exact-sample floor")
        span = axes[1, c].axhspan(-2 * floors["ce_gap_se"], 2 * floors["ce_gap_se"],
                                  color="0.85", label="±2 s.e. of the gap")  # fmt: skip
        axes[0, c].set(title=f"{sde_name}", xscale="log", yscale="log")
        axes[1, c].set(xscale="log", yscale="symlog", xlabel="NFE (score evaluations)")
        axes[1, c].set_yscale("symlog", linthresh=0.01)
        for ax in axes[:, c]:
            ax.grid(alpha=0.3, which="both")
    axes[0, 0].set_ylabel("sliced W2 to exact samples")
    axes[1, 0].set_ylabel("cross-entropy gap [nats] (symlog)")
    axes[0, 0].legend(fontsize=7)
    axes[1, 0].legend(handles=[span], fontsize=7)
    fig.suptitle("Sampler quality per NFE with the exact score (mean ± s.e. over seeds)")
    fig.tight_layout()
    return fig


def plot_samples(samples, nfe, ref, pyplot):
    sdes = list(samples)
    fig, axes = pyplot.subplots(len(sdes), len(SAMPLERS), figsize=(2.3 * len(SAMPLERS), 2.3 * len(sdes)))  # fmt: skip
    for r, sde_name in enumerate(sdes):
        for c, label in enumerate(SAMPLERS):
            ax = axes[r, c]
            ax.scatter(ref[:1000, 0].numpy(), ref[:1000, 1].numpy(), s=1, c="0.75", linewidths=0)
            x = samples[sde_name].get(label)
            if x is not None:
                x = x[:1000].clamp(-5, 5)
                ax.scatter(x[:, 0].numpy(), x[:, 1].numpy(), s=1, c=COLORS[sde_name], linewidths=0)
            ax.set(xlim=(-4, 4), ylim=(-4, 4), xticks=[], yticks=[], aspect="equal")
            if r == 0:
                ax.set_title(label, fontsize=8)
            if c == 0:
                ax.set_ylabel(sde_name)
    fig.suptitle(f"Samples at NFE ≈ {nfe} (grey: exact samples; points clipped to ±5)")
    fig.tight_layout()
    return fig


def main(argv: list[str] | None = None) -> dict:
    """Regenerate the figures and results.json; return the results."""
    args = parse_args("sde_comparison", __doc__.splitlines()[0], argv)
    started, fast = time.perf_counter(), args.fast
    pyplot = plt()
    gen = torch.Generator().manual_seed(args.seed)
    gm, sdes = mixture(), make_sdes()
    n = 400 if fast else 4000
    nfes = [10, 40] if fast else [10, 20, 50, 100, 200, 500]
    seeds = [args.seed] if fast else [args.seed + k for k in range(3)]
    ref = gm.sample(n, gen)
    floor = noise_floor(gm.sample, n, "sw2", repeats=3, generator=gen)
    table, samples, summary, skipped = {}, {}, {}, {}
    for name, sde in sdes.items():
        study = compare_samplers(sde, gm.with_sde(sde), SAMPLERS, nfes, ref, ("sw2",),
                                 seeds=seeds, density=gm)  # fmt: skip
        rows = []
        for sw, ce in zip(study.summary("sw2"), study.summary("ce_gap"), strict=True):
            rows.append({"sampler": sw["sampler"], "nfe_target": sw["nfe_target"],
                         "nfe": sw["nfe"], "sw2": sw["mean"], "sw2_se": sw["se"],
                         "ce_gap": ce["mean"], "ce_gap_se": ce["se"]})  # fmt: skip
        table[name] = rows
        samples[name] = {lab: x for (lab, t), x in study.samples.items() if t == nfes[0]}
        skipped[name] = study.skipped + [f"{r['sampler']}: {r['error']}" for r in study.rows
                                         if r["error"]]  # fmt: skip
        ends = torch.tensor([sde.T, sde.eps], dtype=F64)
        alpha, sigma = sde.marginal(ends)
        lam = sde.log_snr(ends)
        summary[name] = {"sde": repr(sde), "alpha_T": float(alpha[0]), "sigma_T": float(sigma[0]),
                         "log_snr_T": float(lam[0]), "log_snr_eps": float(lam[1])}  # fmt: skip
    # the gap's s.e. of an exact sample set of size n: the typical wiggle of every gap estimate
    ce_se = float(mean_se(-gm.log_prob(ref))[1]) * math.sqrt(2)
    floors = {"sw2": floor["mean"], "sw2_std": floor["std"], "ce_gap_se": ce_se}
    if fast:
        pyplot.rcParams["savefig.dpi"] = 50
    x0 = gm.sample(300 if fast else 1500, gen)
    z = torch.randn(x0.shape, generator=gen, dtype=F64)
    fracs = [0.0, 0.1, 0.3, 0.6, 1.0]
    marg = plot_marginals(
        gm,
        sdes,
        lambda sde: [sde.eps + f * (sde.T - sde.eps) for f in fracs],
        x0,
        z,
        pyplot,
        radius=1.6,
        res=40 if fast else 100,
        title="The same x_0 and ε under each SDE: x_t = α_t x_0 + σ_t ε on the exact p_t",
    )
    figures = [save_fig(marg, args.out, "marginals")]
    schedules = plot_schedules(
        sdes, ["alpha", "sigma", "nsr", "log_snr"], COLORS, pyplot, ["sub-VP"]
    )
    figures.append(save_fig(schedules, args.out, "schedules"))
    figures.append(save_fig(plot_quality(table, floors, pyplot), args.out, "quality"))
    figures.append(save_fig(plot_samples(samples, nfes[0], ref, pyplot), args.out, "samples"))
    results = {"experiment": "sde_comparison", "fast": fast, "seed": args.seed, "seeds": seeds,
               "n_samples": n, "nfes": nfes, "samplers": list(SAMPLERS), "sdes": summary,
               "floors": floors, "quality": table, "skipped": skipped, "figures": figures}  # fmt: skip
    save_json(results, args.out, started)
    return results


if __name__ == "__main__":
    torch.set_num_threads(1)
    res = main()
    print("floors", res["floors"])
    for sde_name, rows in res["quality"].items():
        for r in rows:
            print(f"{sde_name:6s} {r['sampler']:17s} nfe={r['nfe']!s:6s} sw2={r['sw2']:.4f} "
                  f"ce_gap={r['ce_gap']:+.4f}")  # fmt: skip
