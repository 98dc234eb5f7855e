"""Reverse SDE vs probability-flow ODE: the same marginals p_t, different paths.

Data: a 1-D two-component Gaussian mixture with its exact score under the VP SDE, so any
difference between the two samplers is the solver's. Both start from the *same* prior draws x_T:
the reverse SDE (Song et al. 2021, Eq. 6) by Euler-Maruyama on a fine grid, the PF-ODE (Eq. 13)
by RK4.

Figures:
    paths.png       12 paths of each over the exact density p_t(x) (heat map).
    marginals.png   histograms of x_t from both at four times against the exact p_t.
    coupling.png    x_0 against x_T: a monotone map for the ODE, a noisy coupling for the SDE.

Results (results.json): at each time, the 1-D Wasserstein-2 distance of each sampler's x_t to
exact samples of p_t, next to the distance between two exact sample sets (the noise floor); and
the rank correlation between x_T and x_0.

Run: ``python experiments/reverse_vs_pf_ode.py [--fast] [--out DIR]``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parse_args, plt, save_fig, save_json  # noqa: E402

from scoresde.analytic import GaussianMixture  # noqa: E402
from scoresde.metrics import sliced_wasserstein  # noqa: E402
from scoresde.samplers import make_grid, sample  # noqa: E402
from scoresde.sde import VPSDE  # noqa: E402


def _rank_corr(a: torch.Tensor, b: torch.Tensor) -> float:
    ra, rb = a.argsort().argsort().double(), b.argsort().argsort().double()
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / (ra.norm() * rb.norm()))


def main(argv: list[str] | None = None) -> dict:
    """Regenerate the figures and results.json; return the results."""
    args = parse_args("reverse_vs_pf_ode", __doc__.splitlines()[0], argv)
    started, fast = time.perf_counter(), args.fast
    pyplot = plt()
    sde = VPSDE()
    gm = GaussianMixture([0.35, 0.65], [[-1.5], [1.5]], [[0.05], [0.2]], sde=sde)
    n, steps = (2000, 100) if fast else (10000, 500)
    gen = torch.Generator().manual_seed(args.seed)
    x_T = sde.prior_sample((n, 1), generator=gen, dtype=torch.float64)
    grid = make_grid(sde, steps, "uniform")
    _, sde_info = sample(
        "euler_maruyama", sde, gm, x_T, grid, generator=gen, return_trajectory=True
    )
    _, ode_info = sample("pf_rk4", sde, gm, x_T, grid, return_trajectory=True)
    paths = {"reverse SDE": sde_info.trajectory[..., 0], "PF-ODE": ode_info.trajectory[..., 0]}
    fracs = [0.75, 0.5, 0.25, 0.0]
    idx = [int(round((1 - f) * steps)) for f in fracs]
    rows = []
    for i in idx:
        t = float(grid[i])
        exact = gm.marginal_mixture(t)
        ref_a, ref_b = exact.sample(n, gen), exact.sample(n, gen)
        row = {"t": t, "floor": sliced_wasserstein(ref_a, ref_b, 1, generator=gen)}
        for name, p in paths.items():
            row[name] = sliced_wasserstein(p[i][:, None], ref_a, 1, generator=gen)
        rows.append(row)
    coupling = {name: _rank_corr(p[0], p[-1]) for name, p in paths.items()}
    # -- figures ---------------------------------------------------------------------------
    fig, axes = pyplot.subplots(1, 2, figsize=(12, 3.8), sharey=True)
    ys = torch.linspace(-4, 4, 200, dtype=torch.float64)
    sub = list(range(0, steps + 1, max(1, steps // 100)))
    dens = torch.stack(
        [gm.marginal_mixture(float(grid[i])).log_prob(ys[:, None]).exp() for i in sub]
    )
    dens = dens / dens.max(dim=1, keepdim=True).values
    for ax, (name, p) in zip(axes, paths.items(), strict=True):
        ax.imshow(dens.T.numpy(), origin="lower", aspect="auto", cmap="Blues",
                  extent=(float(grid[0]), float(grid[-1]), -4, 4))  # fmt: skip
        ax.plot(grid.numpy(), p[:, :12].numpy(), color="k", lw=0.7)
        ax.set(title=f"{name}: 12 paths from the same x_T", xlabel="t (integrated from T to 0)")
    axes[0].set_ylabel("x")
    fig.tight_layout()
    figures = [save_fig(fig, args.out, "paths")]
    fig, axes = pyplot.subplots(1, len(idx), figsize=(3.6 * len(idx), 3.2))
    for ax, i in zip(axes, idx, strict=True):
        t = float(grid[i])
        for k, (name, p) in enumerate(paths.items()):
            ax.hist(p[i].numpy(), bins=60, range=(-4, 4), density=True, alpha=0.45,
                    color=f"C{k}", label=name)  # fmt: skip
        ax.plot(ys.numpy(), gm.marginal_mixture(t).log_prob(ys[:, None]).exp().numpy(), "k",
                lw=1.2, label="exact p_t")  # fmt: skip
        ax.set(title=f"t = {t:.3g}", xlabel="x")
    axes[0].legend(fontsize=7)
    fig.suptitle("Same marginals: histograms of x_t from both samplers vs the exact density")
    fig.tight_layout()
    figures.append(save_fig(fig, args.out, "marginals"))
    fig, ax = pyplot.subplots(figsize=(5, 4))
    for k, (name, p) in enumerate(paths.items()):
        ax.scatter(p[0][:2000].numpy(), p[-1][:2000].numpy(), s=2, alpha=0.4, color=f"C{k}",
                   label=f"{name} (rank corr {coupling[name]:.3f})")  # fmt: skip
    ax.set(xlabel="x_T (prior draw)", ylabel="x_0 (sample)", title="Different paths: the coupling")
    ax.legend(fontsize=7, markerscale=4)
    fig.tight_layout()
    figures.append(save_fig(fig, args.out, "coupling"))
    results = {"experiment": "reverse_vs_pf_ode", "fast": fast, "seed": args.seed, "n": n,
               "steps": steps, "w2_by_time": rows, "rank_corr_xT_x0": coupling,
               "nfe": {"reverse SDE": sde_info.nfe, "PF-ODE": ode_info.nfe}, "figures": figures}  # fmt: skip
    save_json(results, args.out, started)
    return results


if __name__ == "__main__":
    res = main()
    for r in res["w2_by_time"]:
        print({k: round(v, 4) for k, v in r.items()})
    print(res["rank_corr_xT_x0"])
