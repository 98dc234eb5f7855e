"""Figures shared by the experiments: forward marginals on the exact density, and schedules.

One home for the two figures that ``forward_process.py`` and ``sde_comparison.py`` both draw.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from scoresde.analytic import GaussianMixture
from scoresde.sde import LinearSDE

F64 = torch.float64

#: Schedule panels: name -> (title, quantity as a function of (sde, t), y-axis scale).
SCHEDULE_PANELS: dict[str, tuple[str, Callable[[LinearSDE, torch.Tensor], torch.Tensor], str]] = {
    "alpha": ("mean coefficient α_t", lambda sde, t: sde.marginal(t)[0], "linear"),
    "sigma": ("noise std σ_t (log scale)", lambda sde, t: sde.marginal(t)[1], "log"),
    "nsr": (
        "noise-to-signal σ_t / α_t (log scale)",
        lambda sde, t: sde.marginal(t)[1] / sde.marginal(t)[0],
        "log",
    ),
    "log_snr": ("log-SNR λ(t) = log(α_t² / σ_t²)", lambda sde, t: sde.log_snr(t), "linear"),
    "g2": ("diffusion g(t)² (log scale)", lambda sde, t: sde.g2(t), "log"),
}


def plot_marginals(
    gm: GaussianMixture,
    sdes: dict[str, LinearSDE],
    times: Callable[[LinearSDE], Sequence[float]],
    x0: torch.Tensor,
    noise: torch.Tensor,
    pyplot: Any,
    *,
    radius: float,
    res: int,
    title: str,
) -> Any:
    """Samples x_t = α_t x_0 + σ_t ε (dots) on the exact density p_t (shading).

    One row per SDE, one column per time ``times(sde)``; the same ``x0`` and ``noise`` in every
    panel. Each panel spans ±3.2 max(hypot(α_t radius, σ_t), 1).
    """
    cols = len(times(next(iter(sdes.values()))))
    fig, axes = pyplot.subplots(len(sdes), cols, figsize=(2.2 * cols, 2.2 * len(sdes)))
    for r, (name, sde) in enumerate(sdes.items()):
        bound = gm.with_sde(sde)
        for c, t in enumerate(times(sde)):
            tt = torch.tensor(t, dtype=F64)
            alpha, sigma = (float(v) for v in sde.marginal(tt))
            xt = sde.perturb(x0, tt, noise)
            lim = 3.2 * max(math.hypot(alpha * radius, sigma), 1.0)
            g = torch.linspace(-lim, lim, res, dtype=F64)
            gx, gy = torch.meshgrid(g, g, indexing="xy")
            grid = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)
            dens = bound.marginal_mixture(t).log_prob(grid).exp().reshape(res, res)
            ax = axes[r, c]
            ax.contourf(gx.numpy(), gy.numpy(), dens.numpy(), levels=12, cmap="Blues")
            ax.scatter(xt[:, 0].numpy(), xt[:, 1].numpy(), s=1, c="k", alpha=0.35, linewidths=0)
            ax.set(xlim=(-lim, lim), ylim=(-lim, lim), xticks=[], yticks=[], aspect="equal")
            ax.set_title(f"t={t:.3g}  α={alpha:.2f}  σ={sigma:.2g}", fontsize=7)
            ax.text(0.03, 0.03, f"box ±{lim:.3g}", transform=ax.transAxes, fontsize=6)
            if c == 0:
                ax.set_ylabel(name)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_schedules(
    sdes: dict[str, LinearSDE],
    panels: Sequence[str],
    colors: dict[str, str],
    pyplot: Any,
    dashed: Sequence[str] = (),
) -> Any:
    """One panel per entry of ``panels`` (keys of :data:`SCHEDULE_PANELS`), one curve per SDE."""
    fig, axes = pyplot.subplots(1, len(panels), figsize=(15, 3.3))
    for name, sde in sdes.items():
        tt = torch.linspace(sde.eps, sde.T, 400, dtype=F64)
        kw = {"color": colors[name], "label": name}
        if name in dashed:  # e.g. sub-VP's alpha_t equals VP's: dashed on top, both visible
            kw.update(ls=(0, (4, 3)), lw=2)
        for ax, panel in zip(axes, panels, strict=True):
            ax.plot(tt.numpy(), SCHEDULE_PANELS[panel][1](sde, tt).numpy(), **kw)
    for ax, panel in zip(axes, panels, strict=True):
        title, _, scale = SCHEDULE_PANELS[panel]
        ax.set(title=title, xlabel="t", yscale=scale)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    return fig
