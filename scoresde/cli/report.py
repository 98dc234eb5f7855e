"""Figures and Markdown for run folders: samples, quality vs NFE, paths, NLL, likelihood study.

matplotlib is imported lazily with the non-interactive Agg backend, so ``import scoresde``
stays fast and nothing needs a display. Every ``plot_*`` function writes one PNG and returns
its path.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..studies.table import summarize

__all__ = [
    "markdown_table",
    "plain_log",
    "plot_likelihood_study",
    "plot_nll_histogram",
    "plot_quality_vs_nfe",
    "plot_samples",
    "plot_trajectories",
    "pyplot",
    "save_image_grid",
]


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (imported on first use)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plain_log(ax: Any, axis: str, ticks: Sequence[float] | None = None) -> None:
    """Log scale on ``axis`` ("x" or "y") with plain labels (5, 10, 20; not 5×10⁰).

    Args:
        ax: A matplotlib axes.
        axis: ``"x"`` or ``"y"``.
        ticks: Major tick positions (e.g. the NFEs run); default 1, 2, 5 per decade.
    """
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    getattr(ax, f"set_{axis}scale")("log")
    a = ax.xaxis if axis == "x" else ax.yaxis
    if ticks:
        a.set_ticks(sorted(set(ticks)))
    else:
        a.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    a.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    a.set_minor_formatter(NullFormatter())


def sde_title(sde: Any) -> str:
    """A readable title for an SDE, e.g. ``VP SDE (linear β 0.1–20)``, from its stored config."""
    cfg = sde.config()
    sched = dict(cfg.get("schedule") or {})
    kind = sched.pop("kind", "")
    symbol = {"beta": "β", "sigma": "σ"}
    lows = {k[: -len("_min")]: v for k, v in sched.items() if k.endswith("_min")}
    parts = [
        f"{symbol.get(k, k)} {lows[k]:g}–{sched[k + '_max']:g}" for k in lows if k + "_max" in sched
    ]
    parts += [
        f"{k} {v:g}" if isinstance(v, float | int) else f"{k} {v}"
        for k, v in sched.items()
        if not k.endswith(("_min", "_max"))
    ]
    inner = " ".join(x for x in (kind, ", ".join(parts)) if x)
    name = {"subvp": "sub-VP"}.get(str(cfg.get("name")), str(cfg.get("name", "")).upper())
    return f"{name} SDE ({inner})" if inner else f"{name} SDE"


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    pyplot().close(fig)
    return path


def _np(x: Tensor) -> Any:
    return x.detach().double().cpu().numpy()


def _image_tile(x: Tensor, nrow: int) -> Any:
    """(n, C, H, W) in [-1, 1] -> one (rows*H, nrow*W[, C]) array in [0, 1]."""
    x = x[: nrow * nrow].detach().float().cpu().clamp(-1, 1) * 0.5 + 0.5
    n, c, h, w = x.shape
    rows = math.ceil(n / nrow)
    canvas = torch.ones(c, rows * (h + 1), nrow * (w + 1))
    for i in range(n):
        r, k = divmod(i, nrow)
        canvas[:, r * (h + 1) : r * (h + 1) + h, k * (w + 1) : k * (w + 1) + w] = x[i]
    return canvas[0].numpy() if c == 1 else canvas.permute(1, 2, 0).numpy()


def save_image_grid(x: Tensor, path: str | Path, nrow: int = 8) -> Path:
    """Save images ``(n, C, H, W)`` in model units ([-1, 1]) as one PNG grid."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(nrow * 0.6, nrow * 0.6))
    ax.imshow(_image_tile(x, nrow), cmap="gray", vmin=0, vmax=1)
    ax.axis("off")
    return _save(fig, path)


def plot_samples(
    samples: dict[str, Tensor], path: str | Path, reference: Tensor | None = None
) -> Path:
    """One panel per sampler (2-D scatter, or an image grid), plus the reference if given."""
    plt = pyplot()
    panels = ({"reference": reference} if reference is not None else {}) | dict(samples)
    n = len(panels)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.2 * rows), squeeze=False)
    ref_flat = None if reference is None else reference.reshape(reference.shape[0], -1)
    for ax, (label, x) in zip(axes.flat, panels.items(), strict=False):
        if x.ndim == 4:
            ax.imshow(_image_tile(x, 6), cmap="gray", vmin=0, vmax=1)
            ax.axis("off")
        else:
            xs = x.reshape(x.shape[0], -1)[:3000]
            ax.scatter(*_np(xs[:, :2]).T, s=2, alpha=0.4, c="C3" if label == "reference" else "C0")
            if ref_flat is not None:
                lo, hi = _np(ref_flat.min(0).values), _np(ref_flat.max(0).values)
                pad = 0.15 * (hi - lo)
                ax.set(xlim=(lo[0] - pad[0], hi[0] + pad[0]), ylim=(lo[1] - pad[1], hi[1] + pad[1]))
            ax.set_aspect("equal")
        ax.set_title(label, fontsize=9)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    return _save(fig, path)


def plot_quality_vs_nfe(
    rows: Sequence[dict[str, Any]],
    metric: str,
    path: str | Path,
    floor: float | dict[str, Any] | None = None,
    ylabel: str | None = None,
) -> Path:
    """Metric (mean ± s.e. over seeds) against the NFE actually used, one line per sampler.

    ``floor``: the exact-sample floor, ``{"mean", "sd"}`` (or ``"std"``) drawn as a band with
    its mean ± sd in the legend; a bare number draws a line.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.2, 4.2))
    summary = [s for s in summarize(rows, metric) if s["nfe"] is not None]
    for i, label in enumerate(dict.fromkeys(s["sampler"] for s in summary)):
        pts = sorted((s["nfe"], s["mean"], s["se"]) for s in summary if s["sampler"] == label)
        nfe, mean, se_raw = zip(*pts, strict=True)
        se = [0.0 if math.isnan(v) else v for v in se_raw]
        style = "o-" if len(pts) > 1 else "*"
        ax.errorbar(nfe, mean, yerr=se, fmt=style, ms=4, capsize=2, color=f"C{i}", label=label)
    if isinstance(floor, dict):
        f_mean, f_sd = float(floor["mean"]), float(floor.get("sd", floor.get("std")) or 0.0)
        ax.axhspan(
            f_mean - f_sd,
            f_mean + f_sd,
            color="0.55",
            alpha=0.35,
            zorder=0,
            label=f"exact-sample floor {f_mean:.3g} ± {f_sd:.2g} (mean ± sd)",
        )
        ax.axhline(f_mean, color="0.3", ls="--", lw=1, zorder=0)
    elif floor is not None and floor > 0:
        ax.axhline(floor, color="k", ls="--", lw=1, label="exact-sample floor")
    # ticks at the requested budgets: a sampler whose steps cost 2+ NFE may spend a little less
    # (pf_heun: 4 at a target of 5), and a tick per spent NFE would crowd (44 next to 50)
    plain_log(ax, "x", sorted({s.get("nfe_target") or s["nfe"] for s in summary}))
    ax.set(xlabel="NFE (score evaluations)", ylabel=ylabel or metric)
    positive = all(s["mean"] > 0 for s in summary if not math.isnan(s["mean"]))
    if positive:
        plain_log(ax, "y")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return _save(fig, path)


def plot_trajectories(
    sde_paths: Tensor, ode_paths: Tensor, grid: Tensor, path: str | Path, reference: Tensor | None
) -> Path:
    """Reverse-SDE and PF-ODE paths from the same x_T: in the plane, and x_1 against t.

    Args:
        sde_paths: ``(n_steps + 1, n, 2)`` states of the reverse SDE.
        ode_paths: ``(n_steps + 1, n, 2)`` states of the PF-ODE, from the same x_T.
        grid: ``(n_steps + 1,)`` times.
        path: Output PNG.
        reference: Optional data points drawn in the background.
    """
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.3))
    t = _np(grid)
    shown = min(sde_paths.shape[1], 6)  # a few paths stay readable; 12 noisy ones are a tangle
    sde_paths, ode_paths = sde_paths[:, :shown], ode_paths[:, :shown]
    for ax, paths, title in ((axes[0], sde_paths, "reverse SDE"), (axes[1], ode_paths, "PF-ODE")):
        if reference is not None:
            ax.scatter(*_np(reference[:2000, :2]).T, s=1, c="0.8")
        p = _np(paths)
        for j in range(p.shape[1]):
            ax.plot(p[:, j, 0], p[:, j, 1], lw=0.7, color=f"C{j % 10}", alpha=0.8)
            ax.plot(p[0, j, 0], p[0, j, 1], "o", ms=3, color=f"C{j % 10}")
            ax.plot(p[-1, j, 0], p[-1, j, 1], "x", ms=5, color="k")
        ax.set(title=f"{title}: paths in the plane (o = x_T, x = x_0)", aspect="equal")
    for j in range(sde_paths.shape[1]):
        axes[2].plot(t, _np(sde_paths[:, j, 0]), lw=0.7, color=f"C{j % 10}", alpha=0.6)
        axes[2].plot(t, _np(ode_paths[:, j, 0]), lw=1.5, color=f"C{j % 10}", ls="--")
    axes[2].set(
        title="first coordinate vs t (solid: SDE, dashed: ODE)", xlabel="t", ylabel="x_1(t)"
    )
    axes[2].invert_xaxis()
    fig.tight_layout()
    return _save(fig, path)


def plot_nll_histogram(
    nll: Tensor, path: str | Path, entropy: float | None = None, unit: str = "nats"
) -> Path:
    """Histogram of per-point negative log-likelihoods, with the data entropy if known."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.8))
    v = _np(nll)
    ax.hist(v, bins=50, color="C0", alpha=0.8)
    ax.axvline(v.mean(), color="C1", lw=2, label=f"mean NLL {v.mean():.3f} {unit}")
    if entropy is not None:
        ax.axvline(entropy, color="k", ls="--", lw=1.5, label=f"data entropy {entropy:.3f}")
    ax.set(xlabel=f"-log p(x) [{unit}]", ylabel="test points")
    ax.legend()
    fig.tight_layout()
    return _save(fig, path)


def plot_likelihood_study(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Mean |error| (against the study's reference) vs solver tolerance and cost, per estimator."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r.get("kind") in ("reference", "model"):  # the yardstick and the model's own gap
            continue
        key = r["method"] + ("" if r["n_probes"] is None else f" ({r['n_probes']})")
        groups.setdefault(key, []).append(r)
    for i, (key, grp) in enumerate(groups.items()):
        err = [max(r["mean_abs_error"], 1e-12) for r in grp]
        if grp[0]["rtol"] is not None:
            axes[0].plot([r["rtol"] for r in grp], err, "o-", color=f"C{i}", label=key)
        axes[1].plot([r["n_vjp"] for r in grp], err, "o-", color=f"C{i}", label=key)
    ylabel = "mean |log p̂ − log p_ref| [nats]"
    axes[0].set(xscale="log", yscale="log", xlabel="solver rtol = atol", ylabel=ylabel)
    axes[0].invert_xaxis()
    axes[0].set_title("error against solver tolerance")
    axes[1].set(
        xscale="log",
        yscale="log",
        xlabel="vector-Jacobian products per point",
        ylabel=ylabel,
        title="error against cost",
    )
    for ax in axes:
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A GitHub-flavoured Markdown table of ``columns`` (floats to 4 significant digits)."""

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return "nan" if math.isnan(v) else f"{v:.4g}"
        return "" if v is None else str(v)

    head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    return head + "".join("| " + " | ".join(fmt(r.get(c)) for c in columns) + " |\n" for r in rows)
