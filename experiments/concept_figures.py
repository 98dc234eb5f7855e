"""The concept pages' explanatory figures, each from the library and exact mixtures (no training).

    python experiments/concept_figures.py            # all five, ~1 CPU-minute, one thread
    python experiments/concept_figures.py --only rho_grid

Writes into docs/figures/concepts/:

* ``four_views.png``: the four views and the changes of variable between them (four-views page);
* ``error_vs_nfe.png``: mean paired error to the exact 1-D PF-ODE map (quantile transport
  F_eps^{-1} o F_T) against NFE, for DDIM and the exponential integrators (exponential-integrators
  page); the 1-D mixture is the notebooks' 0.35 N(-1.5, 0.05) + 0.65 N(1.5, 0.2);
* ``rho_grid.png``: EDM's rho-grid for rho = 1, 3, 7 and the log-SNR limit on the default VP SDE
  (EDM page);
* ``dsm_score_field.png``: DSM's noisy regression targets -eps / sigma_t and their binned means
  against the exact score of a 2-D mixture (DSM page);
* ``sde_curves.png``: alpha_t, sigma_t and lambda(t) of VP (linear, cosine), sub-VP and VE
  (sdes page).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from scoresde import VPSDE, GaussianMixture, make_grid, sample
from scoresde.samplers import karras_grid
from scoresde.sde import VESDE, SubVPSDE

F64 = torch.float64
OUT = Path(__file__).resolve().parents[1] / "docs" / "figures" / "concepts"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def four_views(plt) -> None:
    """Boxes for the objects, arrows labelled with the change of variable that links them."""
    fig, ax = plt.subplots(figsize=(11, 6.2))
    ax.set_xlim(0, 11)
    ax.set_ylim(0, 6.2)
    ax.axis("off")
    boxes = {
        "fwd": (5.5, 5.6, "forward SDE  $d\\mathbf{x} = a(t)\\mathbf{x}\\,dt + g\\,d\\mathbf{w}$\n"
                          "kernel $\\mathbf{x}_t = \\alpha_t\\mathbf{x}_0 + \\sigma_t\\boldsymbol{\\epsilon}$"),
        "score": (5.5, 3.9, "one network, four readings\n"
                            "$\\mathbf{s} = \\nabla\\log p_t = -\\hat{\\boldsymbol{\\epsilon}}/\\sigma_t"
                            " = (\\alpha_t\\hat{\\mathbf{x}}_0 - \\mathbf{x})/\\sigma_t^2$"),
        "rsde": (1.6, 2.2, "reverse SDE (Eq. 6)\n$d\\mathbf{x} = [a\\mathbf{x} - g^2\\mathbf{s}]dt + g\\,d\\bar{\\mathbf{w}}$"),
        "ddpm": (1.6, 0.55, "DDPM (Alg. 2)\nexact Gaussian posterior step,\nvariance $\\tilde\\beta_n$"),
        "pf": (9.4, 2.2, "PF-ODE (Eq. 13)\n$d\\mathbf{x}/dt = a\\mathbf{x} - \\frac{1}{2} g^2\\mathbf{s}$"),
        "ddim": (9.4, 0.55, "DDIM ($\\eta = 0$), EDM, DPM-Solver\n$d\\bar{\\mathbf{x}}/d\\bar\\sigma = \\hat{\\boldsymbol{\\epsilon}}$,"
                            "  $\\bar{\\mathbf{x}} = \\mathbf{x}/\\alpha_t$, $\\bar\\sigma = \\sigma_t/\\alpha_t$"),
    }  # fmt: skip
    for x, y, text in boxes.values():
        ax.text(x, y, text, ha="center", va="center", fontsize=10,
                bbox={"boxstyle": "round,pad=0.45", "fc": "#eef2fb", "ec": "#3f51b5"})  # fmt: skip

    def arrow(a, b, label, dx=0.0, dy=0.0, both=False, color="#333333", ends=None):
        (x0, y0, _), (x1, y1, _) = boxes[a], boxes[b]
        shrink = 34
        if ends is not None:  # explicit end points, for wide boxes side by side
            (x0, y0), (x1, y1), shrink = ends[0], ends[1], 0
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                    arrowprops={"arrowstyle": "<|-|>" if both else "-|>", "color": color, "lw": 1.4,
                                "shrinkA": shrink, "shrinkB": shrink})  # fmt: skip
        (x0, y0, _), (x1, y1, _) = boxes[a], boxes[b]
        ax.text((x0 + x1) / 2 + dx, (y0 + y1) / 2 + dy, label, ha="center", va="center",
                fontsize=8.5, color=color, bbox={"fc": "white", "ec": "none", "pad": 1})  # fmt: skip

    arrow("fwd", "score", "Tweedie / DSM: the minimiser of\n$\\mathbb{E}\\|\\mathbf{s} + \\boldsymbol{\\epsilon}/\\sigma_t\\|^2$ is $\\nabla\\log p_t$", dx=2.3)  # fmt: skip
    arrow("score", "rsde", "time reversal\n(Anderson 1982)", dx=-0.6, dy=0.25)
    arrow(
        "score", "pf", "same marginals, no noise\n(Fokker–Planck, $\\gamma = 0$)", dx=0.6, dy=0.25
    )
    arrow("rsde", "ddpm", "$\\beta_n = 1 - \\alpha_{t_n}^2/\\alpha_{t_{n-1}}^2$\nEM step to $O(\\Delta t^{3/2})$", dx=1.55, both=True)  # fmt: skip
    arrow("pf", "ddim", "change of variable\n$(\\mathbf{x}, t) \\to (\\mathbf{x}/\\alpha_t, \\sigma_t/\\alpha_t)$;\nEuler there = DDIM", dx=-1.75, both=True)  # fmt: skip
    arrow("rsde", "pf", "same law at every $t$, different couplings:\nthe $\\gamma$ family "
          "$[a\\mathbf{x} - \\frac{1+\\gamma^2}{2}g^2\\mathbf{s}]dt + \\gamma g\\,d\\bar{\\mathbf{w}}$", dy=0.45, both=True,
          ends=((2.95, 2.2), (8.2, 2.2)))  # fmt: skip
    arrow("ddpm", "ddim", "DDIM($\\eta = 1$) = DDPM($\\tilde\\beta$) exactly;  $\\sigma_n(\\eta)$ interpolates",
          dy=-0.42, both=True, color="#b23c17", ends=((3.3, 0.55), (7.45, 0.55)))  # fmt: skip
    ax.text(0.1, 6.1, "Reading order: forward SDE → score (DSM) → reverse SDE → PF-ODE → DDPM/DDIM",
            fontsize=9, style="italic", va="top")  # fmt: skip
    fig.savefig(OUT / "four_views.png", dpi=130, bbox_inches="tight")
    plt.close(fig)


def _mixture_1d(sde):
    return GaussianMixture([0.35, 0.65], [[-1.5], [1.5]], [[0.05], [0.2]], sde=sde)


def _exact_map(gm, sde, x):
    def cdf(t, y):
        mix = gm.marginal_mixture(float(t))
        return (
            mix.weights * torch.special.ndtr((y - mix.means[:, 0]) / mix.covariances[:, 0].sqrt())
        ).sum(-1)

    u = cdf(sde.T, x)
    lo, hi = torch.full_like(u, -30.0), torch.full_like(u, 30.0)
    for _ in range(64):
        mid = (lo + hi) / 2
        below = cdf(sde.eps, mid[:, None]) < u
        lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
    return ((lo + hi) / 2)[:, None]


def error_vs_nfe(plt) -> dict[str, list[tuple[int, float]]]:
    sde = VPSDE(eps=1e-3)
    gm = _mixture_1d(sde)
    x_T = sde.prior_sample((2000, 1), generator=torch.Generator().manual_seed(0), dtype=F64)
    exact = _exact_map(gm, sde, x_T)
    rows: dict[str, list[tuple[int, float]]] = {}
    names = ["ddim", "pf_heun", "dpm_solver_2", "dpm_solver_pp_2m", "dpm_solver_pp_3m", "unipc"]
    for name in names:
        for steps in (4, 6, 8, 12, 16, 24, 32, 48):
            x, info = sample(name, sde, gm, x_T, make_grid(sde, steps, "log_snr"))
            rows.setdefault(name, []).append((info.nfe, float((x - exact).abs().mean())))
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for name, pts in rows.items():
        ax.loglog(*zip(*pts, strict=True), marker="o", ms=3.5, label=name)
    ax.set_xlabel("score evaluations (NFE)")
    ax.set_ylabel("mean |x − exact PF-ODE map(x_T)|")
    ax.set_title("1-D mixture, VP, log-SNR grid: error against the exact flow map", fontsize=9.5)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(OUT / "error_vs_nfe.png", dpi=130, bbox_inches="tight")
    plt.close(fig)
    return rows


def rho_grid(plt) -> None:
    sde, n = VPSDE(), 10
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
    kinds = [(f"ρ = {r:g}", karras_grid(sde, n, rho=r)) for r in (1.0, 3.0, 7.0)]
    kinds.append(("log-SNR (ρ → ∞)", make_grid(sde, n, "log_snr")))
    kinds.append(("uniform in t", make_grid(sde, n)))
    for k, (label, grid) in enumerate(kinds):
        alpha, sigma = sde.marginal(grid.to(F64))
        sig = (sigma / alpha).numpy()
        a1.semilogy(range(n + 1), sig, marker="o", ms=4, label=label)
        a2.scatter(grid.numpy(), [k] * (n + 1), s=14)
    a1.set_xlabel("step i")
    a1.set_ylabel("σ = σ_t / α_t (log scale)")
    a1.set_title(f"noise levels of {n}-step grids, default VP SDE", fontsize=9.5)
    a1.legend(fontsize=8)
    a2.set_yticks(range(len(kinds)), [k for k, _ in kinds], fontsize=8)
    a2.set_xlabel("time t")
    a2.set_title("the same grids in t: ρ = 7 crowds the end near t = ε", fontsize=9.5)
    fig.savefig(OUT / "rho_grid.png", dpi=130, bbox_inches="tight")
    plt.close(fig)


def dsm_score_field(plt) -> None:
    sde = VPSDE()
    gm = GaussianMixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.5]], [[0.1, 0.2], [0.3, 0.1]], sde=sde)
    t = torch.tensor(0.15, dtype=F64)
    alpha, sigma = sde.marginal(t)
    gen = torch.Generator().manual_seed(0)
    x0 = gm.sample(200_000, gen)
    eps = torch.randn(x0.shape, generator=gen, dtype=F64)
    xt, target = alpha * x0 + sigma * eps, -eps / sigma
    edges = torch.linspace(-2.4, 2.4, 13)
    centre = (edges[1:] + edges[:-1]) / 2
    ix = torch.bucketize(xt[:, 0], edges) - 1
    iy = torch.bucketize(xt[:, 1], edges) - 1
    ok = (ix >= 0) & (ix < 12) & (iy >= 0) & (iy < 12)
    flat = (ix * 12 + iy)[ok]
    cnt = torch.bincount(flat, minlength=144).to(F64)
    mean = (
        torch.stack([torch.bincount(flat, target[ok, d], 144) for d in range(2)], 1)
        / cnt.clamp_min(1)[:, None]
    )
    gx, gy = torch.meshgrid(centre, centre, indexing="ij")
    grid = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)
    score = gm.score(grid, t)
    keep = cnt > 200
    lin = torch.linspace(-2.4, 2.4, 120)
    X, Y = torch.meshgrid(lin, lin, indexing="ij")
    dens = (
        gm.marginal_log_prob(torch.stack([X.reshape(-1), Y.reshape(-1)], 1), t)
        .exp()
        .reshape(120, 120)
    )
    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    for ax in axes:
        ax.contour(X.numpy(), Y.numpy(), dens.numpy(), levels=8, colors="#bbbbbb", linewidths=0.8)
        ax.set_aspect("equal")
        ax.set_xlim(-2.4, 2.4)
        ax.set_ylim(-2.4, 2.4)
    few = slice(0, 300)
    axes[0].quiver(xt[few, 0], xt[few, 1], target[few, 0], target[few, 1], color="#b23c17", alpha=0.5,
                   angles="xy", scale_units="xy", scale=12, width=0.003)  # fmt: skip
    axes[0].set_title(
        f"DSM targets −ε/σ_t at 300 noisy points (t = {float(t)}):\neach points back to its own x₀",
        fontsize=9.5,
    )
    axes[1].quiver(grid[keep, 0], grid[keep, 1], score[keep, 0], score[keep, 1], color="#3f51b5",
                   angles="xy", scale_units="xy", scale=12, width=0.005, label="exact ∇log p_t")  # fmt: skip
    axes[1].quiver(grid[keep, 0], grid[keep, 1], mean[keep, 0], mean[keep, 1], color="#b23c17",
                   angles="xy", scale_units="xy", scale=12, width=0.0025, label="mean DSM target per cell")  # fmt: skip
    axes[1].legend(fontsize=8, loc="lower right")
    axes[1].set_title(
        "averaged per cell, the targets are the score\n(DSM's minimiser is E[−ε/σ_t | x_t] = ∇log p_t)",
        fontsize=9.5,
    )
    fig.savefig(OUT / "dsm_score_field.png", dpi=130, bbox_inches="tight")
    plt.close(fig)


def sde_curves(plt) -> None:
    sdes = {
        "VP linear": VPSDE(),
        "VP cosine": VPSDE(schedule="cosine"),
        "sub-VP": SubVPSDE(),
        "VE": VESDE(),
    }
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for name, sde in sdes.items():
        t = torch.linspace(1e-3, float(sde.T), 400, dtype=F64)
        alpha, sigma = sde.marginal(t)
        axes[0].plot(t, alpha, label=name)
        axes[1].semilogy(t, sigma, label=name)
        axes[2].plot(t, sde.log_snr(t), label=name)
    axes[0].axvline(0.4, color="#999999", lw=0.8, ls=":")
    for ax, title in zip(
        axes,
        ("α_t (mean coefficient)", "σ_t (noise std, log scale)", "λ(t) = log(α_t²/σ_t²)"),
        strict=True,
    ):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("t")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.savefig(OUT / "sde_curves.png", dpi=130, bbox_inches="tight")
    plt.close(fig)


FIGURES = {"four_views": four_views, "error_vs_nfe": error_vs_nfe, "rho_grid": rho_grid,
           "dsm_score_field": dsm_score_field, "sde_curves": sde_curves}  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    global OUT
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", choices=sorted(FIGURES), action="append")
    p.add_argument("--out", type=Path, default=OUT, help="output folder (default: %(default)s)")
    p.add_argument("--fast", action="store_true", help="the three cheap figures only (CI)")
    args = p.parse_args(argv)
    OUT = args.out
    torch.set_num_threads(1)
    torch.set_default_dtype(F64)
    OUT.mkdir(parents=True, exist_ok=True)
    plt = _plt()
    print(f"concept figures -> {OUT} (1 torch thread)")
    names = args.only or (["four_views", "rho_grid", "sde_curves"] if args.fast else FIGURES)
    try:
        for name in names:
            out = FIGURES[name](plt)
            if name == "error_vs_nfe" and out:
                for sampler, pts in out.items():
                    print(f"  {sampler:17s}", "  ".join(f"{n}:{e:.1e}" for n, e in pts))
            print(f"  wrote {name}.png")
    finally:
        torch.set_default_dtype(torch.float32)
    results = {"experiment": "concept_figures", "fast": args.fast,
               "figures": [f"{n}.png" for n in names]}  # fmt: skip
    if (
        args.fast
        or args.out != Path(__file__).resolve().parents[1] / "docs" / "figures" / "concepts"
    ):
        (OUT / "results.json").write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
