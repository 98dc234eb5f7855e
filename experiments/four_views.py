"""Four views of one model: DDPM, DDIM, the reverse SDE and the PF-ODE from the same x_T.

Data: Gaussian mixtures (1-D and 2-D; the third argument of ``GaussianMixture`` holds
*variances*) under the linear VP SDE (Song et al. 2021, Eq. 11) with the exact score, in
float64, so every difference below is a solver's. Every view starts from the *same* prior draws
x_T and integrates from T = 1 to t_eps = 1e-3:

1. DDPM ancestral sampling with beta_tilde (Ho et al. 2020, Alg. 2) against Euler-Maruyama on the
   reverse SDE (Song et al. 2021, Eq. 6), both driven by the same Brownian path: two
   discretizations of one SDE, so their endpoints converge to each other as N grows.
2. DDIM(eta = 0) (Song, Meng & Ermon 2021, Eq. 12) against a tight solution of the PF-ODE
   (Eq. 13; dopri5, rtol = atol = 1e-10): a first-order discretization of one ODE.
3. DDIM(eta = 1) against DDPM(beta_tilde) with the same noise: the same update, equal to rounding.
4. Forward, then backward: data pushed to T by the exact forward transition, then back by the
   reverse SDE (a new sample) and by the PF-ODE (the PF-ODE round trip data -> x_T -> data
   returns the same point, to the solver's tolerance).

Results (results.json): per mixture, the Wasserstein-2 distance of each view's samples to exact
samples of p_{t_eps} against the noise floor (W2 between two exact sample sets of the same size),
the endpoint error between the two members of each pair, the rank correlation between the SDE
and ODE endpoints from the same x_T, the identity's max difference, and the convergence orders.

Run: ``python experiments/four_views.py [--fast] [--out DIR]`` (about a minute; --fast seconds).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
import torchdiffeq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parse_args, plt, save_fig, save_json  # noqa: E402
from _four_views_plots import plot_convergence, plot_paths, plot_samples_2d  # noqa: E402
from ddpm_ddim_convergence import GridBrownian, fit_order  # noqa: E402

from scoresde import VPSDE, GaussianMixture, make_grid, sample  # noqa: E402
from scoresde.metrics import noise_floor, wasserstein  # noqa: E402

F64 = torch.float64
TIGHT = {"rtol": 1e-10, "atol": 1e-10}


def mixtures(sde: VPSDE) -> dict[str, GaussianMixture]:
    """The 1-D and 2-D mixtures of the page (covariances given as variances)."""
    one = GaussianMixture([0.35, 0.65], [[-1.5], [1.5]], [[0.05], [0.2]], sde=sde)
    two = GaussianMixture(
        [0.3, 0.3, 0.4],
        [[-1.5, 0.0], [1.5, 0.8], [0.0, -1.5]],
        [[0.05, 0.2], [0.2, 0.05], [0.1, 0.1]],
        sde=sde,
    )
    return {"1d": one, "2d": two}


def rank_corr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman's rank correlation, averaged over coordinates."""
    out = []
    for j in range(a.shape[1]):
        ra, rb = (v[:, j].argsort().argsort().double() for v in (a, b))
        ra, rb = ra - ra.mean(), rb - rb.mean()
        out.append(float((ra * rb).sum() / (ra.norm() * rb.norm())))
    return sum(out) / len(out)


def w2(x: torch.Tensor, y: torch.Tensor) -> float:
    """Exact W2 between equal-size empirical measures (sorting in 1-D, assignment otherwise)."""
    if x.shape[1] == 1:
        return float((x[:, 0].sort().values - y[:, 0].sort().values).pow(2).mean().sqrt())
    return wasserstein(x, y)


def pf_round_trip(sde: VPSDE, gm: GaussianMixture, x0: torch.Tensor) -> torch.Tensor:
    """Encode x0 (at t_eps) to x_T with the PF-ODE, then decode back: the reconstruction."""
    flow = sde.probability_flow(gm)
    ts = torch.tensor([sde.eps, sde.T], dtype=F64)

    def field(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:  # torchdiffeq's (t, y) order
        return flow.drift(x, t.clamp(sde.eps, sde.T))  # its first probe may overshoot T

    x_T = torchdiffeq.odeint(field, x0, ts, method="dopri5", **TIGHT)[-1]
    x_rec, _ = sample("pf_adaptive", sde, gm, x_T, ts.flip(0), **TIGHT)
    return x_rec


def views(sde, gm, x_T, n_steps, seed, bm):  # noqa: ANN001, ANN201 - experiment plumbing
    """Endpoints of the five samplers of the four views on a uniform N-step grid.

    ``bm`` is one Brownian path (shared by DDPM and Euler-Maruyama at every N).
    """
    grid = make_grid(sde, n_steps)
    out = {}
    out["ddpm"], _ = sample("ddpm", sde, gm, x_T, grid, noise_sampler=bm)
    out["euler_maruyama"], _ = sample("euler_maruyama", sde, gm, x_T, grid, noise_sampler=bm)
    out["ddim_eta0"], _ = sample("ddim", sde, gm, x_T, grid)
    for key, name, opts in (("ddim_eta1", "ddim", {"eta": 1.0}), ("ddpm_same_gen", "ddpm", {})):
        gen = torch.Generator().manual_seed(seed + 1)  # same noise for both
        out[key], _ = sample(name, sde, gm, x_T, grid, generator=gen, **opts)
    return out


def study(sde, gm, n, steps, seed, gen):  # noqa: ANN001, ANN201 - experiment plumbing
    """All numbers of one mixture: table rows, convergence series and the identity."""
    x_T = sde.prior_sample((n, gm.dim), generator=gen, dtype=F64)
    ode, info = sample("pf_adaptive", sde, gm, x_T, make_grid(sde, 1), **TIGHT)
    exact = gm.marginal_mixture(sde.eps)
    ref = exact.sample(n, gen)
    floor = noise_floor(exact.sample, n, w2, repeats=8, generator=gen)
    bm = GridBrownian(x_T, sde, 3000, torch.Generator().manual_seed(seed))  # N must divide 3000
    series, fine = [], None
    for N in steps:
        v = views(sde, gm, x_T, N, seed, bm)
        series.append({
            "n_steps": N,
            "sde_pair_error": float((v["ddpm"] - v["euler_maruyama"]).norm(dim=1).mean()),
            "ode_pair_error": float((v["ddim_eta0"] - ode).norm(dim=1).mean()),
            "identity_max_diff": float((v["ddim_eta1"] - v["ddpm_same_gen"]).abs().max()),
        })  # fmt: skip
        fine = v
    assert fine is not None
    last = series[-1]
    rows = [
        {"view": "reverse SDE", "a": "DDPM(β̃)", "b": "Euler–Maruyama", "n_steps": steps[-1],
         "w2_a": w2(fine["ddpm"], ref), "w2_b": w2(fine["euler_maruyama"], ref),
         "endpoint_error": last["sde_pair_error"]},
        {"view": "PF-ODE", "a": "DDIM(η=0)", "b": "PF-ODE (dopri5, tol 1e-10)",
         "n_steps": steps[-1], "w2_a": w2(fine["ddim_eta0"], ref), "w2_b": w2(ode, ref),
         "endpoint_error": last["ode_pair_error"]},
        {"view": "identity", "a": "DDIM(η=1)", "b": "DDPM(β̃), same noise", "n_steps": steps[-1],
         "w2_a": w2(fine["ddim_eta1"], ref), "w2_b": w2(fine["ddpm_same_gen"], ref),
         "endpoint_error": last["identity_max_diff"]},
    ]  # fmt: skip
    x0 = exact.sample(min(n, 500), gen)
    rec = pf_round_trip(sde, gm, x0)
    alpha_T, sigma_T = (float(v) for v in sde.marginal(sde.T))
    x_T_fwd = alpha_T * x0 + sigma_T * torch.randn(x0.shape, generator=gen, dtype=F64)
    back_sde, _ = sample("euler_maruyama", sde, gm, x_T_fwd, make_grid(sde, steps[-1]),
                         generator=gen)  # fmt: skip
    return {
        "dim": gm.dim,
        "n": n,
        "noise_floor_w2": floor,
        "table": rows,
        "series": series,
        "orders": {
            "sde_pair": fit_order(steps, [r["sde_pair_error"] for r in series]),
            "ode_pair": fit_order(steps, [r["ode_pair_error"] for r in series]),
        },
        "rank_corr": {
            "sde_vs_ode_endpoints": rank_corr(fine["euler_maruyama"], ode),
            "ddim_vs_ode_endpoints": rank_corr(fine["ddim_eta0"], ode),
            "x_T_vs_ode": rank_corr(x_T, ode),
            "x_T_vs_sde": rank_corr(x_T, fine["euler_maruyama"]),
        },
        "round_trip": {
            "pf_ode_max_error": float((rec - x0).abs().max()),
            "forward_then_reverse_sde_mean_error": float((back_sde - x0).norm(dim=1).mean()),
            "forward_then_reverse_sde_rank_corr": rank_corr(back_sde, x0),
        },
        "pf_ode_nfe": info.nfe,
    }


def main(argv: list[str] | None = None) -> dict:
    """Regenerate the figures and results.json; return the results."""
    args = parse_args("four_views", __doc__.splitlines()[0], argv)
    started, fast = time.perf_counter(), args.fast
    pyplot = plt()
    sde = VPSDE(eps=1e-3)
    gen = torch.Generator().manual_seed(args.seed)
    steps = [10, 30, 100] if fast else [10, 30, 100, 300, 1000]
    sizes = {"1d": 1000 if fast else 10000, "2d": 300 if fast else 2000}
    gms = mixtures(sde)
    res = {k: study(sde, gm, sizes[k], steps, args.seed, gen) for k, gm in gms.items()}
    if fast:
        pyplot.rcParams["savefig.dpi"] = 50
    figures = [
        save_fig(plot_paths(sde, gms["1d"], args.seed, pyplot), args.out, "views_1d"),
        save_fig(plot_samples_2d(sde, gms["2d"], args.seed, pyplot), args.out, "views_2d"),
        save_fig(plot_convergence(res, steps, pyplot), args.out, "convergence"),
    ]
    results = {"experiment": "four_views", "fast": fast, "seed": args.seed, "sde": repr(sde),
               "dtype": "float64", "t_eps": sde.eps, "steps": steps, "mixtures": res,
               "figures": figures}  # fmt: skip
    save_json(results, args.out, started)
    return results


if __name__ == "__main__":
    torch.set_num_threads(1)
    out = main()
    for key, r in out["mixtures"].items():
        print(key, "floor", round(r["noise_floor_w2"]["mean"], 4), r["orders"], r["rank_corr"])
        for row in r["table"]:
            print("  ", row)
        print("  ", r["round_trip"])
