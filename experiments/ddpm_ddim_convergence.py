"""DDPM and DDIM as discretizations: convergence to the reverse SDE and the PF-ODE as steps grow.

Data: a 1-D two-component Gaussian mixture with its exact score under the VP SDE, in float64, so
every error is the discretization's. Integration ends at t_eps = 1e-3.

* DDIM(eta = 0) (Song, Meng & Ermon 2021, Eq. 12) is a first-order discretization of the PF-ODE
  (Song et al. 2021, Eq. 13): from the same prior draw x_T its output converges to the ODE
  solution (RK4 on a fine grid) with global order 1 in the step. PF-Euler is shown beside it.
* DDPM ancestral sampling (Ho et al. 2020, Alg. 2) is a discretization of the reverse VP SDE
  (Song et al. 2021, Eq. 6), as is Euler-Maruyama: driven by the *same* Brownian path
  (``BrownianNoise``), both converge pathwise (strong error) to the fine-grid solution; additive
  noise makes the strong order 1. The weak error of E[x_0^2] against its exact value is shown too.
* DDIM(eta = 1) is DDPM with the posterior variance beta_tilde: same x_T and same noise give the
  same samples to rounding, while DDPM with variance beta differs by O(1/N).

Figures:
    convergence.png  error vs steps for the three studies, with fitted slopes.
    paths.png        DDIM(eta=0) paths at N = 4, 8, 16, 64 steps against the exact PF-ODE path.

Results (results.json): errors per N, fitted log-log orders, and the identity's max difference.

Run: ``python experiments/ddpm_ddim_convergence.py [--fast] [--out DIR]``.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parse_args, plt, save_fig, save_json  # noqa: E402

from scoresde.analytic import GaussianMixture  # noqa: E402
from scoresde.samplers import make_grid, sample  # noqa: E402
from scoresde.sde import VPSDE  # noqa: E402
from scoresde.studies import mean_se  # noqa: E402

F64 = torch.float64


def fit_order(steps: list[int], errors: list[float]) -> float:
    """Least-squares slope p of log(error) = c - p log(N): the measured order."""
    x = torch.tensor(steps, dtype=F64).log()
    y = torch.tensor(errors, dtype=F64).log()
    x, y = x - x.mean(), y - y.mean()
    return float(-(x * y).sum() / (x * x).sum())


def ode_study(sde, gm, x_T, steps, ref_steps, grid_kind):
    """|DDIM(eta=0) - PF-ODE| and |PF-Euler - PF-ODE| (mean over draws) per number of steps."""
    ref, _ = sample("pf_rk4", sde, gm, x_T, make_grid(sde, ref_steps, grid_kind))
    rows = []
    for n in steps:
        grid = make_grid(sde, n, grid_kind)
        row = {"n_steps": n}
        for name in ("ddim", "pf_euler"):
            x, _ = sample(name, sde, gm, x_T, grid)
            row[name] = float((x - ref).abs().mean())
        rows.append(row)
    return rows, ref


class GridBrownian:
    """One Brownian path on a fine uniform grid of [eps, T], as a ``noise_sampler``.

    The noise of a step from t to t_next (both fine-grid points) is (W(t) - W(t_next)) /
    sqrt(t - t_next), so every uniform grid whose step count divides ``m`` sees the same path.
    (The library's ``BrownianNoise`` does this for any times, at a much higher cost per query.)
    """

    def __init__(self, like: torch.Tensor, sde: VPSDE, m: int, gen: torch.Generator) -> None:
        self.t0, self.dt = sde.T, (sde.T - sde.eps) / m
        dw = torch.randn((m, *like.shape), generator=gen, dtype=like.dtype) * math.sqrt(self.dt)
        self.w = torch.cat([torch.zeros_like(like)[None], dw.cumsum(0)])  # W at t0 - k dt

    def __call__(self, x: torch.Tensor, t: torch.Tensor, t_next: torch.Tensor) -> torch.Tensor:
        """The standardized increment of the path over [t_next, t]."""
        i, j = (round((self.t0 - float(s)) / self.dt) for s in (t, t_next))
        return (self.w[j] - self.w[i]) / math.sqrt((j - i) * self.dt)


def sde_study(sde, gm, x_T, steps, ref_steps, seed):
    """Strong error vs a fine Euler-Maruyama solution on one Brownian path; weak error of E x^2."""
    bm = GridBrownian(x_T, sde, ref_steps, torch.Generator().manual_seed(seed))
    ref, _ = sample("euler_maruyama", sde, gm, x_T, make_grid(sde, ref_steps), noise_sampler=bm)
    exact_m2 = float(gm.marginal_mixture(sde.eps).covariance.trace())
    exact_m2 += float(gm.marginal_mixture(sde.eps).mean.pow(2).sum())
    rows = []
    for n in steps:
        row = {"n_steps": n}
        for name in ("ddpm", "euler_maruyama"):
            x, _ = sample(name, sde, gm, x_T, make_grid(sde, n), noise_sampler=bm)
            err, dm2 = (x - ref).norm(dim=1), x.pow(2).sum(1) - ref.pow(2).sum(1)
            row[name] = float(err.mean())  # strong error E|x_N - x_ref|
            row[f"{name}_rms"] = float(err.pow(2).mean().sqrt())
            row[f"{name}_weak"] = float(dm2.mean().abs())  # |E x_N^2 - E x_ref^2|, paired
            row[f"{name}_weak_se"] = float(mean_se(dm2)[1])
        rows.append(row)
    ref_m2 = ref.pow(2).sum(1)
    floor = {"fine_em_m2": float(ref_m2.mean()), "se": float(mean_se(ref_m2)[1])}
    return rows, {"exact_m2": exact_m2, **floor}


def identity_study(sde, gm, x_T, steps, seed):
    """max |DDIM(eta=1) - DDPM(beta_tilde)| and |.. - DDPM(beta)|, same x_T and same noise."""
    rows = []
    for n in steps:
        grid = make_grid(sde, n)
        run = {}
        for key, name, opts in (("ddim_eta1", "ddim", {"eta": 1.0}), ("ddpm", "ddpm", {}),
                                ("ddpm_beta", "ddpm", {"variance": "beta"})):  # fmt: skip
            gen = torch.Generator().manual_seed(seed + 1)
            run[key], _ = sample(name, sde, gm, x_T, grid, generator=gen, **opts)
        rows.append({
            "n_steps": n,
            "max_diff_beta_tilde": float((run["ddim_eta1"] - run["ddpm"]).abs().max()),
            "mean_diff_beta": float((run["ddim_eta1"] - run["ddpm_beta"]).abs().mean()),
        })  # fmt: skip
    return rows


def plot_convergence(ode_rows, sde_rows, sde_ref, id_rows, orders, pyplot):
    fig, axes = pyplot.subplots(1, 4, figsize=(17, 3.9))
    n = [r["n_steps"] for r in ode_rows]

    def guide(ax, ns, err0, p, label):
        ax.plot(ns, [err0 * (ns[0] / k) ** p for k in ns], "k:", lw=1, label=label)

    ax = axes[0]
    for k, (name, label) in enumerate((("ddim", "DDIM (eta=0)"), ("pf_euler", "PF-ODE Euler"))):
        ax.loglog(n, [r[name] for r in ode_rows], "o-", color=f"C{k}",
                  label=f"{label}: order {orders['ode'][name]:.2f}")  # fmt: skip
    guide(ax, n, ode_rows[0]["ddim"], 1, "slope -1")
    ax.set(title="DDIM(eta=0) → PF-ODE solution\n(same x_T; log-SNR grid)", xlabel="steps N",
           ylabel="mean |x_N - x_ODE|")  # fmt: skip
    ns = [r["n_steps"] for r in sde_rows]
    sde_names = (("ddpm", "DDPM ancestral"), ("euler_maruyama", "Euler–Maruyama"))
    ax = axes[1]
    for k, (name, label) in enumerate(sde_names):
        ax.loglog(ns, [r[name] for r in sde_rows], "o-", color=f"C{k + 2}",
                  label=f"{label}, E|e|: order {orders['strong'][name]:.2f}")  # fmt: skip
        ax.loglog(ns, [r[f"{name}_rms"] for r in sde_rows], "x--", color=f"C{k + 2}", alpha=0.6,
                  label=f"{label}, RMS: order {orders['strong_rms'][name]:.2f}")  # fmt: skip
    guide(ax, ns, sde_rows[0]["ddpm"], 1, "slope -1")
    ax.set(title="Strong error vs the reverse-SDE solution\n(same x_T, same Brownian path)",
           xlabel="steps N", ylabel="|x_N - x_fine|")  # fmt: skip
    ax = axes[2]
    for k, (name, label) in enumerate(sde_names):
        err = [r[f"{name}_weak"] for r in sde_rows]
        se = [2 * r[f"{name}_weak_se"] for r in sde_rows]
        ax.errorbar(ns, err, yerr=se, fmt="o-", ms=4, capsize=2, color=f"C{k + 2}",
                    label=f"{label}: order {orders['weak'][name]:.2f}")  # fmt: skip
    guide(ax, ns, sde_rows[0]["ddpm_weak"], 1, "slope -1")
    ax.set(xscale="log", yscale="log", title="Weak error of E[x_0²] (paired with the fine run)",
           xlabel="steps N", ylabel="|E x_N² − E x_fine²|  (bars: 2 s.e.)")  # fmt: skip
    ax = axes[3]
    ni = [r["n_steps"] for r in id_rows]
    ax.loglog(ni, [max(r["max_diff_beta_tilde"], 1e-17) for r in id_rows], "o-", color="C4",
              label="max |DDIM(η=1) − DDPM(β̃)|")  # fmt: skip
    ax.loglog(ni, [r["mean_diff_beta"] for r in id_rows], "s-", color="C5",
              label="mean |DDIM(η=1) − DDPM(β)|")  # fmt: skip
    ax.axhline(torch.finfo(F64).eps, color="0.5", ls="--", lw=1, label="float64 machine eps")
    ax.set(title="DDIM(η=1) is DDPM with β̃\n(same x_T, same noise)", xlabel="steps N",
           ylabel="difference of samples")  # fmt: skip
    from matplotlib.ticker import NullFormatter, NullLocator

    for a, ticks in zip(axes, (n, ns, ns, ni), strict=True):
        a.set_xticks(ticks, [str(k) for k in ticks])
        a.xaxis.set_minor_locator(NullLocator())
        a.xaxis.set_minor_formatter(NullFormatter())
        a.grid(alpha=0.3, which="both")
        a.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_paths(sde, gm, x_T, ref_steps, pyplot):
    fig, ax = pyplot.subplots(figsize=(7, 4))
    ys = torch.linspace(-3.5, 3.5, 200, dtype=F64)
    ts = torch.linspace(sde.T, sde.eps, 120, dtype=F64)
    dens = torch.stack([gm.marginal_mixture(float(t)).log_prob(ys[:, None]).exp() for t in ts])
    dens = dens / dens.max(dim=1, keepdim=True).values
    ax.imshow(dens.T.numpy(), origin="lower", aspect="auto", cmap="Greys", alpha=0.5,
              extent=(sde.T, sde.eps, -3.5, 3.5))  # fmt: skip
    _, info = sample("pf_rk4", sde, gm, x_T, make_grid(sde, ref_steps, "log_snr"),
                     return_trajectory=True)  # fmt: skip
    ax.plot(info.grid.numpy(), info.trajectory[..., 0].numpy(), "k", lw=2)
    ax.plot([], [], "k", lw=2, label="PF-ODE (RK4, fine grid)")
    for k, n in enumerate((4, 8, 16, 64)):
        _, info = sample("ddim", sde, gm, x_T, make_grid(sde, n, "log_snr"),
                         return_trajectory=True)  # fmt: skip
        ax.plot(info.grid.numpy(), info.trajectory[..., 0].numpy(), "o-", ms=2.5, lw=1,
                color=f"C{k}", alpha=0.9)  # fmt: skip
        ax.plot([], [], "o-", ms=2.5, color=f"C{k}", label=f"DDIM, N = {n}")
    ax.set(xlim=(sde.T, 0), ylim=(-3.5, 3.5), xlabel="t (integrated from T to t_eps)", ylabel="x",
           title="DDIM(η=0) paths from the same x_T approach the PF-ODE path as N grows")  # fmt: skip
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def main(argv: list[str] | None = None) -> dict:
    """Regenerate the figures and results.json; return the results."""
    args = parse_args("ddpm_ddim_convergence", __doc__.splitlines()[0], argv)
    started, fast = time.perf_counter(), args.fast
    pyplot = plt()
    sde = VPSDE(eps=1e-3)
    gm = GaussianMixture([0.35, 0.65], [[-1.5], [1.5]], [[0.1], [0.3]], sde=sde)
    gen = torch.Generator().manual_seed(args.seed)
    n = 500 if fast else 5000
    x_T = sde.prior_sample((n, 1), generator=gen, dtype=F64)
    ode_steps = [8, 16, 32, 64] if fast else [8, 16, 32, 64, 128, 256, 512]
    ode_rows, _ = ode_study(sde, gm, x_T, ode_steps, 500 if fast else 4000, "log_snr")
    sde_steps = [16, 32, 64, 128] if fast else [16, 32, 64, 128, 256, 512]
    n_sde = 500 if fast else 20000
    x_T_sde = sde.prior_sample((n_sde, 1), generator=gen, dtype=F64)
    sde_rows, sde_ref = sde_study(sde, gm, x_T_sde, sde_steps, 1024 if fast else 8192, args.seed)
    id_rows = identity_study(
        sde, gm, x_T[:200], [4, 16, 64] if fast else [4, 16, 64, 256], args.seed
    )
    orders = {
        "ode": {k: fit_order(ode_steps, [r[k] for r in ode_rows]) for k in ("ddim", "pf_euler")},
        "strong": {
            k: fit_order(sde_steps, [r[k] for r in sde_rows]) for k in ("ddpm", "euler_maruyama")
        },
        "strong_rms": {
            k: fit_order(sde_steps, [r[f"{k}_rms"] for r in sde_rows])
            for k in ("ddpm", "euler_maruyama")
        },
        "weak": {
            k: fit_order(sde_steps, [r[f"{k}_weak"] for r in sde_rows])
            for k in ("ddpm", "euler_maruyama")
        },
    }
    if fast:
        pyplot.rcParams["savefig.dpi"] = 50
    fig = plot_convergence(ode_rows, sde_rows, sde_ref, id_rows, orders, pyplot)
    figures = [save_fig(fig, args.out, "convergence")]
    figures.append(save_fig(plot_paths(sde, gm, x_T[:6], 400, pyplot), args.out, "paths"))
    results = {
        "experiment": "ddpm_ddim_convergence",
        "fast": fast,
        "seed": args.seed,
        "sde": repr(sde),
        "dtype": "float64",
        "n_ode": n,
        "n_sde": n_sde,
        "orders": orders,
        "ode": ode_rows,
        "reverse_sde": sde_rows,
        "sde_reference": sde_ref,
        "identity": id_rows,
        "figures": figures,
    }
    save_json(results, args.out, started)
    return results


if __name__ == "__main__":
    torch.set_num_threads(1)
    res = main()
    for kind, row in res["orders"].items():
        print(kind, {k: round(v, 3) for k, v in row.items()})
    print("identity", [f"{r['max_diff_beta_tilde']:.1e}" for r in res["identity"]])
