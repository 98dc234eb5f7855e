"""Exact likelihood: exact divergence vs Hutchinson vs the ELBO, on mixtures with known log p.

Data: Gaussian mixtures in d = 2 and d = 16 with their exact score under the VP SDE, so the true
log p_{t_eps}(x) is known in closed form and every error is the estimator's or the solver's.
log p(x) comes from the PF-ODE as a continuous normalizing flow (Song et al. 2021, Sec. 4.3,
Eq. 39) with the exact divergence (D vector-Jacobian products per evaluation) or Hutchinson's
estimator (k probes), and the continuous ELBO (Song, Durkan, Murray & Ermon 2021, Theorem 2).
The prior term uses the exact p_T, which isolates solver and estimator errors.

Figures:
    tolerance.png  mean |error| against the solver tolerance and against the cost (VJPs per
                   point), per estimator (``likelihood_study``).
    coverage.png   Hutchinson: standardized errors (estimate - truth) / stderr against the
                   Student-t law of k - 1 degrees of freedom, and the coverage of +-1.96 stderr.
    elbo_gap.png   log p - ELBO per point with the exact score (tight in expectation) and the
                   mean gap when the score is shifted by a constant c, against the closed form
                   J_SM = c^2/2 int g(t)^2 dt.

Results (results.json): the study rows per dimension, coverage per probe count, and the ELBO
gaps with standard errors and their predictions.

Run: ``python experiments/likelihood.py [--fast] [--out DIR]``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parse_args, plt, save_fig, save_json  # noqa: E402

from scoresde.analytic import GaussianMixture  # noqa: E402
from scoresde.likelihood import elbo, log_likelihood  # noqa: E402
from scoresde.sde import VPSDE  # noqa: E402
from scoresde.studies import (
    likelihood_study,  # noqa: E402
    mean_se,  # noqa: E402
)

F64 = torch.float64


def random_mixture(d: int, k: int, gen: torch.Generator) -> GaussianMixture:
    """k components in R^d: means ~ N(0, 1.5^2 I), diagonal variances in [0.1, 0.6]."""
    means = 1.5 * torch.randn(k, d, generator=gen, dtype=F64)
    var = 0.1 + 0.5 * torch.rand(k, d, generator=gen, dtype=F64)
    w = torch.rand(k, generator=gen, dtype=F64) + 0.5
    return GaussianMixture(w / w.sum(), means, var)


def coverage(sde, score_fn, x, truth, probes, tol, gen, prior):
    """Hutchinson with k probes at a tight tolerance: z = (estimate - truth) / stderr per point."""
    from scipy.stats import t as student_t

    out = {}
    for k in probes:
        res = log_likelihood(sde, score_fn, x, divergence="hutchinson", n_probes=k, rtol=tol,
                             atol=tol, generator=gen, prior_log_prob=prior)  # fmt: skip
        z = (res.log_prob - truth) / res.stderr
        out[k] = {
            "z": z,
            "coverage_1.96": float((z.abs() < 1.96).double().mean()),
            "nominal_student_t": float(2 * student_t.cdf(1.96, k - 1) - 1),
            "mean_abs_error": float((res.log_prob - truth).abs().mean()),
            "mean_stderr": float(res.stderr.mean()),
        }
    return out


def elbo_gaps(sde, gm, x, truth, shifts, n_draws, gen, prior):
    """Mean of log p(x) - ELBO(x) over the points, for the score shifted by c * e_1."""
    unit = torch.zeros(x.shape[1], dtype=F64)
    unit[0] = 1.0
    int_g2 = float(sde.g2(torch.linspace(sde.eps, sde.T, 20001, dtype=F64)).mean()) * (
        sde.T - sde.eps
    )  # int_eps^T g^2 dt (fine Riemann sum)
    rows, per_point = [], None
    for c in shifts:
        score = gm if c == 0 else (lambda y, t, c=c: gm(y, t) + c * unit.to(y))
        res = elbo(sde, score, x, n_samples=n_draws, generator=gen, prior_log_prob=prior)
        gap = truth - res.elbo
        rows.append({"shift": c, "mean_gap": float(gap.mean()),
                     "se": float(mean_se(gap)[1]),
                     "predicted_J_SM": 0.5 * c**2 * int_g2,
                     "mean_mc_stderr": float(res.stderr.mean())})  # fmt: skip
        if c == 0:
            per_point = {"gap": gap, "stderr": res.stderr, "truth": truth}
    return rows, per_point


def plot_tolerance(studies, pyplot):
    fig, axes = pyplot.subplots(len(studies), 2, figsize=(12, 3.8 * len(studies)), squeeze=False)
    for r, (d, rows) in enumerate(studies.items()):
        groups: dict[str, list[dict]] = {}
        for row in rows:
            if row.get("kind") in ("reference", "model"):  # the yardstick, the model's own gap
                continue
            key = row["method"] + ("" if row["n_probes"] is None else f" ({row['n_probes']})")
            key = key.replace("elbo (", "ELBO (draws ").replace("hutchinson (", "Hutchinson (k=")
            groups.setdefault(key, []).append(row)
        for i, (key, grp) in enumerate(groups.items()):
            err = [max(g["mean_abs_error"], 1e-9) for g in grp]
            if grp[0]["rtol"] is not None:
                axes[r, 0].plot([g["rtol"] for g in grp], err, "o-", color=f"C{i}", label=key)
                axes[r, 1].plot([g["n_vjp"] for g in grp], err, "o-", color=f"C{i}", label=key)
            else:
                axes[r, 1].plot([g["n_vjp"] for g in grp], err, "*", ms=12, color=f"C{i}",
                                label=key)  # fmt: skip
        lo = min(row["rtol"] for row in rows if row["method"] == "exact")
        axes[r, 0].plot([rows[0]["rtol"], lo], [rows[0]["rtol"], lo], "k:", lw=1,
                        label="error = tolerance")  # fmt: skip
        axes[r, 0].set(xscale="log", yscale="log", xlabel="solver rtol = atol",
                       ylabel="mean |log p̂ − log p| [nats]", title=f"d = {d}: error vs tolerance")  # fmt: skip
        axes[r, 0].invert_xaxis()
        axes[r, 1].set(xscale="log", yscale="log", xlabel="vector-Jacobian products per point",
                       title=f"d = {d}: error vs cost (the ELBO: one point per draw count)")  # fmt: skip
        for ax in axes[r]:
            ax.grid(alpha=0.3, which="both")
        axes[r, 0].legend(fontsize=7)
        axes[r, 1].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def plot_coverage(cov, d, pyplot):
    from scipy.stats import t as student_t

    fig, axes = pyplot.subplots(1, 2, figsize=(11, 3.8))
    ks = sorted(cov)
    zs = torch.linspace(-5, 5, 300)
    for i, k in enumerate(ks):
        z = cov[k]["z"].clamp(-5, 5).numpy()
        axes[0].hist(z, bins=40, range=(-5, 5), density=True, histtype="step", lw=1.5,
                     color=f"C{i}", label=f"k = {k} probes")  # fmt: skip
        axes[0].plot(zs.numpy(), student_t.pdf(zs.numpy(), k - 1), ls="--", color=f"C{i}", lw=1)
    axes[0].set(title=f"d = {d}: (Hutchinson − truth) / stderr\n(dashed: Student t, k − 1 dof; clipped to ±5)",
                xlabel="z")  # fmt: skip
    axes[0].legend(fontsize=7)
    x = range(len(ks))
    axes[1].bar([i - 0.2 for i in x], [cov[k]["coverage_1.96"] for k in ks], 0.4,
                label="measured")  # fmt: skip
    axes[1].bar([i + 0.2 for i in x], [cov[k]["nominal_student_t"] for k in ks], 0.4,
                label="Student t prediction", color="0.6")  # fmt: skip
    axes[1].axhline(0.95, color="k", ls=":", lw=1, label="0.95")
    axes[1].set(xticks=list(x), xticklabels=[f"k = {k}" for k in ks], ylim=(0.5, 1.0),
                title="Coverage of ±1.96 stderr", ylabel="fraction of points")  # fmt: skip
    axes[1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def plot_elbo(gaps, pyplot):
    fig, axes = pyplot.subplots(1, 2, figsize=(11, 3.8))
    for i, (d, (rows, per_point)) in enumerate(gaps.items()):
        g = per_point["gap"]
        axes[0].errorbar(per_point["truth"].numpy(), g.numpy(), yerr=per_point["stderr"].numpy(),
                         fmt="o", ms=2, lw=0.5, alpha=0.6, color=f"C{i}",
                         label=f"d = {d}: mean {float(g.mean()):+.3f} ± "
                               f"{float(mean_se(g)[1]):.3f}")  # fmt: skip
        cs = [r["shift"] for r in rows]
        axes[1].errorbar(cs, [r["mean_gap"] for r in rows], yerr=[2 * r["se"] for r in rows],
                         fmt="o", ms=5, capsize=3, color=f"C{i}", label=f"d = {d}: measured")  # fmt: skip
    fine = torch.linspace(0, max(cs), 100)
    pred = rows[-1]["predicted_J_SM"] / max(cs) ** 2
    axes[1].plot(fine.numpy(), (pred * fine**2).numpy(), "k--", lw=1,
                 label="J_SM = c²/2 ∫ g(t)² dt")  # fmt: skip
    axes[0].axhline(0, color="k", lw=1)
    axes[0].set(title="Exact score, exact prior: log p − ELBO per point\n(bars: Monte Carlo stderr)",
                xlabel="log p(x) [nats]", ylabel="gap [nats]")  # fmt: skip
    axes[1].set(title="Score shifted by c·e₁: mean gap over data\n(bars: 2 s.e.)",
                xlabel="shift c", ylabel="mean (log p − ELBO) [nats]")  # fmt: skip
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def main(argv: list[str] | None = None) -> dict:
    """Regenerate the figures and results.json; return the results."""
    args = parse_args("likelihood", __doc__.splitlines()[0], argv)
    started, fast = time.perf_counter(), args.fast
    pyplot = plt()
    gen = torch.Generator().manual_seed(args.seed)
    sde = VPSDE()
    dims = {2: 4, 16: 6}  # dimension: number of components
    n = 16 if fast else 200
    tols = (1e-2, 1e-4) if fast else (1e-2, 1e-3, 1e-4, 1e-5, 1e-6)
    probes = (1, 4) if fast else (1, 4, 16)
    shifts = (0.0, 1.0) if fast else (0.0, 0.25, 0.5, 0.75, 1.0)
    studies, covs, gaps, cov_json = {}, {}, {}, {}
    for d, k in dims.items():
        gm = random_mixture(d, k, gen).with_sde(sde)
        x = gm.sample(n, gen)
        truth = gm.marginal_log_prob(x, sde.eps)  # the ODE integrates from t_eps
        prior = gm.marginal_mixture(sde.T).log_prob  # exact p_T
        studies[d] = likelihood_study(sde, gm, x, true_log_prob=truth, tolerances=tols,
                                      probes=probes, elbo_samples=(1, 16) if fast else (1, 16, 256),
                                      generator=gen, prior_log_prob=prior, dtype=F64)  # fmt: skip
        covs[d] = coverage(sde, gm, x, truth, [4, 16] if not fast else [4], 1e-6, gen, prior)
        cov_json[d] = {kk: {a: b for a, b in v.items() if a != "z"} for kk, v in covs[d].items()}
        gaps[d] = elbo_gaps(sde, gm, x, truth, shifts, 16 if fast else 256, gen, prior)
    if fast:
        pyplot.rcParams["savefig.dpi"] = 50
    figures = [save_fig(plot_tolerance(studies, pyplot), args.out, "tolerance")]
    figures.append(save_fig(plot_coverage(covs[16], 16, pyplot), args.out, "coverage"))
    figures.append(save_fig(plot_elbo(gaps, pyplot), args.out, "elbo_gap"))
    results = {"experiment": "likelihood", "fast": fast, "seed": args.seed, "sde": repr(sde),
               "n_points": n, "components": dims, "study": studies, "coverage": cov_json,
               "elbo_gap": {d: rows for d, (rows, _) in gaps.items()}, "figures": figures}  # fmt: skip
    save_json(results, args.out, started)
    return results


if __name__ == "__main__":
    torch.set_num_threads(1)
    res = main()
    for d, rows in res["study"].items():
        for r in rows:
            print(f"d={d:2d} {r['method']:10s} rtol={r['rtol']!s:7s} k={r['n_probes']!s:4s} "
                  f"|err|={r['mean_abs_error']:.2e} se={r['mean_stderr']:.2e} vjp={r['n_vjp']}")  # fmt: skip
    print("coverage", res["coverage"])
    for d, rows in res["elbo_gap"].items():
        print(d, [(r["shift"], round(r["mean_gap"], 4), round(r["se"], 4),
                   round(r["predicted_J_SM"], 4)) for r in rows])  # fmt: skip
