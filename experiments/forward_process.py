"""The forward process: how VP (linear, cosine), sub-VP and VE SDEs turn data into noise.

Data: the "8 Gaussians" ring (the same as ``scoresde.data.toy``'s ``8gaussians``) as an exact
:class:`~scoresde.analytic.GaussianMixture`, so every p_t is known in closed form:
p_t = sum_k w_k N(alpha_t mu_k, alpha_t^2 Sigma_k + sigma_t^2 I) (Song et al. 2021, Eq. 29).

Figures:
    marginals.png     x_t at several t for each SDE, samples over contours of the exact p_t.
    schedules.png     alpha_t, sigma_t, the log-SNR lambda(t) and g(t)^2 for each SDE.
    kl_to_prior.png   KL(p_t || prior) against t (Monte Carlo with exact densities, with the
                      closed-form bounds); its value at t = T is the prior mismatch.
    paths_1d.png      a 1-D mixture: the exact density p_t(x) as a heat map over (t, x), with
                      forward SDE paths simulated by Euler-Maruyama on top.

Results (results.json): per SDE, alpha_T, sigma_T, lambda(T), KL(p_T || prior) with its standard
error and bounds, and a check of the closed-form kernel against an Euler-Maruyama simulation of
dx = f dt + g dw (mean squared norm at t = T/2, with standard error).

Run: ``python experiments/forward_process.py [--fast] [--out DIR]``.
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
from scoresde.data.toy import eight_gaussians_mixture  # noqa: E402
from scoresde.metrics import kl_monte_carlo  # noqa: E402
from scoresde.sde import VESDE, VPSDE, LinearSDE, SubVPSDE  # noqa: E402
from scoresde.studies import mean_se  # noqa: E402

COLORS = {"VP linear": "C0", "VP cosine": "C1", "sub-VP": "C2", "VE": "C3"}


def make_sdes() -> dict[str, LinearSDE]:
    """The four SDEs with the library's defaults (those of Song et al. 2021)."""
    return {
        "VP linear": VPSDE(),
        "VP cosine": VPSDE(schedule="cosine"),
        "sub-VP": SubVPSDE(),
        "VE": VESDE(),
    }


def gaussian_kl(mean: torch.Tensor, cov: torch.Tensor, prior_var: float) -> float:
    """KL(N(mean, cov) || N(0, prior_var I)) in closed form."""
    d = mean.numel()
    logdet = torch.linalg.slogdet(cov)[1]
    val = torch.trace(cov) / prior_var + mean @ mean / prior_var - d
    return float(0.5 * (val + d * math.log(prior_var) - logdet))


def kl_bounds(p: GaussianMixture, prior_var: float) -> tuple[float, float]:
    """Closed-form bounds on KL(p || N(0, v I)) for a mixture p.

    Lower: KL of the moment-matched Gaussian (log q is quadratic, so E_p log q only sees the
    first two moments and KL(p || q) = KL(p || p_G) + KL(p_G || q)). Upper: convexity of KL in
    its first argument, KL(sum_k w_k p_k || q) <= sum_k w_k KL(p_k || q).
    """
    lower = gaussian_kl(p.mean, p.covariance, prior_var)
    covs = torch.diag_embed(p.covariances) if p.diagonal else p.covariances
    upper = sum(
        float(w) * gaussian_kl(m, c, prior_var)
        for w, m, c in zip(p.weights, p.means, covs, strict=True)
    )
    return lower, upper


def kl_to_prior(gm: GaussianMixture, sde: LinearSDE, t: float, n: int, gen: torch.Generator):
    """KL(p_t || prior), its standard error, and closed-form bounds.

    Uses the exact split KL(p || q) = KL(p_G || q) + KL(p || p_G), with p_G the moment-matched
    Gaussian: the first term is closed-form and only the second (tiny when p_t is nearly
    Gaussian) is estimated by Monte Carlo with exact densities, a control variate that shrinks
    the standard error by orders of magnitude near t = T.
    """
    pt = gm.with_sde(sde).marginal_mixture(t)
    lo, hi = kl_bounds(pt, sde.prior_std**2)
    p_gauss = GaussianMixture([1.0], pt.mean[None], pt.covariance[None])
    est, se = kl_monte_carlo(pt, p_gauss.log_prob, n, generator=gen)
    return {"kl": lo + est, "se": se, "lower": lo, "upper": hi, "non_gaussian_part": est}


def em_check(gm: GaussianMixture, sde: LinearSDE, n: int, steps: int, gen: torch.Generator):
    """E|x_t|^2 at t = T/2: Euler-Maruyama on dx = f dt + g dw vs the closed-form kernel."""
    t_end = sde.T / 2
    x = gm.sample(n, gen)
    dt = t_end / steps
    for i in range(steps):
        t = torch.tensor(i * dt, dtype=torch.float64)
        noise = torch.randn(x.shape, generator=gen, dtype=torch.float64)
        x = x + sde.drift(x, t) * dt + sde.diffusion(t) * math.sqrt(dt) * noise
    alpha, sigma = (float(v) for v in sde.marginal(torch.tensor(t_end, dtype=torch.float64)))
    second = float(gm.covariance.trace() + gm.mean @ gm.mean)
    exact = alpha**2 * second + gm.dim * sigma**2
    sq = (x**2).sum(1)
    return {
        "t": t_end,
        "em_mean_sq_norm": float(sq.mean()),
        "se": float(mean_se(sq)[1]),
        "exact": exact,
        "steps": steps,
    }


def structure_times(gm: GaussianMixture, sde: LinearSDE) -> dict[str, float]:
    """When the ring's structure disappears from the exact p_t (bisection in t, to 1e-3 T).

    ``modes_merge``: the density midway between two neighbouring modes reaches the density at a
    mode (eight separate blobs before, a smooth ring after). ``hole_closes``: the density at the
    centre reaches the density at a mode (a ring before, one blob after).
    """
    bound = gm.with_sde(sde)
    zero = torch.zeros(1, 2, dtype=torch.float64)

    def gap(t: float, where: str) -> float:
        p = bound.marginal_mixture(t)
        alpha = float(sde.marginal(torch.tensor(t, dtype=torch.float64))[0])
        mode = alpha * gm.means[:1]
        probe = zero if where == "centre" else alpha * (gm.means[:1] + gm.means[1:2]) / 2
        return float(p.log_prob(probe) - p.log_prob(mode))

    out = {}
    for key, where in (("modes_merge", "between"), ("hole_closes", "centre")):
        lo, hi = sde.eps, sde.T
        while hi - lo > 1e-3 * sde.T:
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if gap(mid, where) < 0 else (lo, mid)
        out[key] = (lo + hi) / 2
    return out


def plot_kl(curves, pyplot):
    fig, ax = pyplot.subplots(figsize=(6, 3.8))
    for name, rows in curves.items():
        t = [r["t"] for r in rows]
        ax.plot(t, [max(r["kl"], 1e-12) for r in rows], "o-", ms=3, color=COLORS[name], label=name)
        ax.fill_between(
            t,
            [r["lower"] for r in rows],
            [r["upper"] for r in rows],
            color=COLORS[name],
            alpha=0.15,
        )
    ax.set(yscale="log", xlabel="t / T", ylabel="KL(p_t || prior)  [nats]")
    ax.set_title("Distance of p_t from the prior (Monte Carlo; bands: closed-form bounds)")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_paths_1d(sdes, n_paths, steps, gen, pyplot):
    gm = GaussianMixture([0.35, 0.65], [[-1.5], [1.5]], [[0.05], [0.2]])
    fig, axes = pyplot.subplots(1, len(sdes), figsize=(4 * len(sdes), 3.2))
    for ax, (name, sde) in zip(axes, sdes.items(), strict=True):
        bound = gm.with_sde(sde)
        ts = torch.linspace(0.0, sde.T, steps + 1, dtype=torch.float64)
        x = gm.sample(n_paths, gen)
        paths = [x]
        for i in range(steps):
            dt = float(ts[i + 1] - ts[i])
            z = torch.randn(x.shape, generator=gen, dtype=torch.float64)
            x = x + sde.drift(x, ts[i]) * dt + sde.diffusion(ts[i]) * math.sqrt(dt) * z
            paths.append(x)
        paths_t = torch.cat(paths, 1)
        lim = 4.0
        # VE states grow like sigma_t: show y = x_t / sqrt(1 + sigma_t^2), the VP-like scaling
        # under which a VE SDE's marginals look like a VP SDE's (same log-SNR).
        scale = torch.ones_like(ts)
        if name == "VE":
            scale = torch.sqrt(1 + sde.marginal(ts)[1] ** 2)
        ys = torch.linspace(-lim, lim, 200, dtype=torch.float64)
        idx = list(range(0, steps + 1, max(1, steps // 100)))
        dens = torch.stack(
            [
                bound.marginal_mixture(float(ts[i])).log_prob(ys[:, None] * scale[i]).exp()
                for i in idx
            ]
        )
        dens = dens / dens.max(dim=1, keepdim=True).values
        ax.imshow(dens.T.numpy(), origin="lower", aspect="auto", cmap="Blues",
                  extent=(0, sde.T, -lim, lim))  # fmt: skip
        ax.plot(ts.numpy(), (paths_t / scale).T.numpy(), color="k", lw=0.6, alpha=0.7)
        label = "VE  (shown: x_t / sqrt(1 + σ_t²))" if name == "VE" else name
        ax.set(title=label, xlabel="t", ylim=(-lim, lim))
    axes[0].set_ylabel("x")
    fig.suptitle("Forward SDE paths (Euler–Maruyama) over the exact p_t(x), each column normalised")
    fig.tight_layout()
    return fig


def main(argv: list[str] | None = None) -> dict:
    """Regenerate the figures and results.json; return the results."""
    args = parse_args("forward_process", __doc__.splitlines()[0], argv)
    started = time.perf_counter()
    gen = torch.Generator().manual_seed(args.seed)
    fast = args.fast
    pyplot = plt()
    gm, sdes = eight_gaussians_mixture(), make_sdes()
    n_mc = 4_000 if fast else 200_000
    fracs = [0.0, 0.4, 1.0] if fast else [0.0, 0.05, 0.2, 0.4, 0.7, 1.0]
    if fast:
        pyplot.rcParams["savefig.dpi"] = 40
    x0 = gm.sample(300 if fast else 2000, gen)
    z = torch.randn(x0.shape, generator=gen, dtype=torch.float64)
    marg = plot_marginals(
        gm,
        sdes,
        lambda sde: [f * sde.T for f in fracs],
        x0,
        z,
        pyplot,
        radius=2.83,
        res=40 if fast else 120,
        title="x_t = α_t x_0 + σ_t ε: samples (dots) on the exact density p_t (shading)",
    )
    figures = [save_fig(marg, args.out, "marginals")]
    panels = ["alpha", "sigma", "log_snr", "g2"]
    schedules = plot_schedules(sdes, panels, COLORS, pyplot, dashed=["sub-VP"])
    figures.append(save_fig(schedules, args.out, "schedules"))
    t_fracs = [0.1, 0.5, 1.0] if fast else [0.05 * k for k in range(1, 21)]
    curves, summary = {}, {}
    for name, sde in sdes.items():
        curves[name] = [
            {"t": f, **kl_to_prior(gm, sde, f * sde.T, n_mc // 4, gen)} for f in t_fracs
        ]
        alpha, sigma = (float(v) for v in sde.marginal(torch.tensor(sde.T, dtype=torch.float64)))
        summary[name] = {
            "sde": repr(sde),
            "T": sde.T,
            "alpha_T": alpha,
            "sigma_T": sigma,
            "log_snr_T": float(sde.log_snr(torch.tensor(sde.T, dtype=torch.float64))),
            "prior_std": sde.prior_std,
            "kl_pT_prior": kl_to_prior(gm, sde, sde.T, n_mc, gen),
            "structure_t": structure_times(gm, sde),
            "em_check": em_check(gm, sde, 2_000 if fast else 50_000, 50 if fast else 1000, gen),
        }
    figures.append(save_fig(plot_kl(curves, pyplot), args.out, "kl_to_prior"))
    paths_fig = plot_paths_1d(sdes, 6 if fast else 12, 100 if fast else 1000, gen, pyplot)
    figures.append(save_fig(paths_fig, args.out, "paths_1d"))
    results = {
        "experiment": "forward_process",
        "fast": fast,
        "seed": args.seed,
        "data": "8gaussians (exact GaussianMixture)",
        "n_monte_carlo": n_mc,
        "sdes": summary,
        "kl_curves": curves,
        "figures": figures,
    }
    save_json(results, args.out, started)
    return results


if __name__ == "__main__":
    res = main()
    for k, v in res["sdes"].items():
        kl = v["kl_pT_prior"]
        print(f"{k:10s} KL(p_T||prior) = {kl['kl']:.3e} ± {kl['se']:.1e}  "
              f"[{kl['lower']:.3e}, {kl['upper']:.3e}]  lambda(T) = {v['log_snr_T']:.2f}")  # fmt: skip
