"""Figures of ``experiments/four_views.py``: paths in 1-D, samples in 2-D, convergence."""

from __future__ import annotations

from typing import Any

import torch

from scoresde import make_grid, sample

F64 = torch.float64


def _density(gm: Any, grid: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    dens = torch.stack([gm.marginal_mixture(float(t)).log_prob(ys[:, None]).exp() for t in grid])
    return dens / dens.max(dim=1, keepdim=True).values


def _traj(name: str, sde: Any, gm: Any, x: torch.Tensor, n: int, **opts: Any) -> Any:
    _, info = sample(name, sde, gm, x, make_grid(sde, n), return_trajectory=True, **opts)
    return info.grid.numpy(), info.trajectory[..., 0].numpy()


def plot_paths(sde: Any, gm: Any, seed: int, pyplot: Any) -> Any:
    """Four panels of 1-D paths from the same x_T over the exact density p_t."""
    gen = torch.Generator().manual_seed(seed + 7)
    x_T = sde.prior_sample((5, 1), generator=gen, dtype=F64)
    fig, axes = pyplot.subplots(1, 4, figsize=(18, 3.8), sharey=True)
    ys = torch.linspace(-3.5, 3.5, 160, dtype=F64)
    ts = torch.linspace(sde.T, sde.eps, 100, dtype=F64)
    ext = (sde.T, 0.0, -3.5, 3.5)
    for ax in axes:
        ax.imshow(_density(gm, ts, ys).T.numpy(), origin="lower", aspect="auto", cmap="Greys",
                  alpha=0.45, extent=ext)  # fmt: skip
        ax.set(xlim=(sde.T, 0.0), xlabel="t (from T to t_eps)")
    seeds = {"generator": torch.Generator().manual_seed(seed)}
    g, p = _traj("ddpm", sde, gm, x_T, 200, **seeds)
    axes[0].plot(g, p, color="C0", lw=1.3)
    seeds = {"generator": torch.Generator().manual_seed(seed)}
    g, p = _traj("euler_maruyama", sde, gm, x_T, 200, **seeds)
    axes[0].plot(g, p, color="C1", lw=0.8, ls="--")
    axes[0].set(title="1. reverse SDE: DDPM(β̃) (solid)\nvs Euler–Maruyama (dashed), same noise",
                ylabel="x")  # fmt: skip
    g, p = _traj("pf_rk4", sde, gm, x_T, 400)
    axes[1].plot(g, p, color="k", lw=2)
    g, p = _traj("ddim", sde, gm, x_T, 8)
    axes[1].plot(g, p, "o-", color="C2", ms=3, lw=1)
    axes[1].set(title="2. PF-ODE (black) vs DDIM(η=0), N = 8 (green)")
    gen1, gen2 = (torch.Generator().manual_seed(seed + 1) for _ in range(2))
    g, p = _traj("ddim", sde, gm, x_T, 50, eta=1.0, generator=gen1)
    axes[2].plot(g, p, color="C3", lw=2.5, alpha=0.5)
    g, p = _traj("ddpm", sde, gm, x_T, 50, generator=gen2)
    axes[2].plot(g, p, color="k", lw=0.7)
    axes[2].set(title="3. DDIM(η=1) (thick) and DDPM(β̃) (thin):\nthe same paths to rounding")
    x0 = gm.marginal_mixture(sde.eps).sample(5, gen)
    fwd = [x0]
    for t0, t1 in zip(ts.flip(0)[:-1], ts.flip(0)[1:], strict=True):  # exact forward transitions
        (a0, s0), (a1, s1) = sde.marginal(t0), sde.marginal(t1)
        r = a1 / a0
        std = (s1**2 - r**2 * s0**2).clamp(min=0).sqrt()
        fwd.append(r * fwd[-1] + std * torch.randn(x0.shape, generator=gen, dtype=F64))
    fwd = torch.stack(fwd)[..., 0].numpy()
    axes[3].plot(ts.flip(0).numpy(), fwd, color="0.4", lw=0.8)
    x_T_fwd = torch.as_tensor(fwd[-1], dtype=F64)[:, None]
    g, p = _traj("euler_maruyama", sde, gm, x_T_fwd, 200, generator=gen)
    axes[3].plot(g, p, color="C0", lw=1)
    g, p = _traj("pf_rk4", sde, gm, x_T_fwd, 400)
    axes[3].plot(g, p, color="C1", lw=1.5)
    axes[3].set(
        title="4. forward SDE (grey, 0 → T), then back:\nreverse SDE (blue), PF-ODE (orange)"
    )
    fig.tight_layout()
    return fig


def plot_samples_2d(sde: Any, gm: Any, seed: int, pyplot: Any) -> Any:
    """Endpoints of every view in 2-D from the same 600 prior draws, with the exact density."""
    gen = torch.Generator().manual_seed(seed + 3)
    x_T = sde.prior_sample((600, 2), generator=gen, dtype=F64)
    grid = make_grid(sde, 100)
    runs = {
        "DDPM(β̃), N=100": sample("ddpm", sde, gm, x_T, grid, generator=gen)[0],
        "Euler–Maruyama, N=100": sample("euler_maruyama", sde, gm, x_T, grid, generator=gen)[0],
        "DDIM(η=0), N=100": sample("ddim", sde, gm, x_T, grid)[0],
        "PF-ODE (dopri5)": sample("pf_adaptive", sde, gm, x_T, make_grid(sde, 1))[0],
    }
    u = torch.linspace(-3, 3, 120, dtype=F64)
    xx, yy = torch.meshgrid(u, u, indexing="xy")
    pts = torch.stack([xx.reshape(-1), yy.reshape(-1)], 1)
    dens = gm.marginal_mixture(sde.eps).log_prob(pts).exp().reshape(120, 120)
    fig, axes = pyplot.subplots(1, 4, figsize=(16, 4), sharex=True, sharey=True)
    for ax, (name, x) in zip(axes, runs.items(), strict=True):
        ax.contour(u.numpy(), u.numpy(), dens.numpy(), levels=6, colors="0.6", linewidths=0.7)
        ax.scatter(x[:, 0].numpy(), x[:, 1].numpy(), s=3, c=x_T[:, 0].numpy(), cmap="coolwarm")
        ax.set(title=name, xlim=(-3, 3), ylim=(-3, 3), aspect="equal")
    fig.suptitle("Same x_T (colour = first coordinate of x_T): same law, different couplings")
    fig.tight_layout()
    return fig


def plot_convergence(res: dict, steps: list[int], pyplot: Any) -> Any:
    """Pair endpoint errors vs N with fitted orders, and the DDIM(η=1)/DDPM identity."""
    fig, axes = pyplot.subplots(1, 2, figsize=(10, 3.8))
    for k, (key, r) in enumerate(res.items()):
        s = r["series"]
        for j, (col, label) in enumerate((("sde_pair_error", "|DDPM − EM|, same noise"),
                                          ("ode_pair_error", "|DDIM(η=0) − PF-ODE|"))):  # fmt: skip
            order = r["orders"][col.replace("_error", "")]
            axes[0].loglog(steps, [row[col] for row in s], "os"[k] + "-", color=f"C{2 * j + k}",
                           label=f"{key}: {label}, order {order:.2f}")  # fmt: skip
        axes[1].loglog(steps, [max(row["identity_max_diff"], 1e-17) for row in s], "o-",
                       color=f"C{k + 4}", label=f"{key}: max |DDIM(η=1) − DDPM(β̃)|")  # fmt: skip
    axes[1].axhline(torch.finfo(F64).eps, color="0.5", ls="--", lw=1, label="float64 eps")
    axes[0].set(xlabel="steps N", ylabel="mean endpoint distance", title="Pairs converge together")
    axes[1].set(xlabel="steps N", ylabel="max difference", title="An identity, not a limit",
                ylim=(1e-17, 1e-2))  # fmt: skip
    for ax in axes:
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
