"""Figures and Markdown of a sampler study's run folder (:func:`scoresde.studies.run_study`).

One colour per sampler (the ``method`` column) in every figure of a report, factor settings as
line styles; error bars are the standard error over seeds; the noise floor of exact samples is
a grey band (mean ± sd over draws); log axes carry plain tick labels (5, 10, 20, not 5×10⁰).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..studies import StudyResult, best_per_budget, by_factor, pareto_front, study_summary
from ..studies.table import write_json
from .report import _image_tile, _np, _save, markdown_table, plain_log, pyplot

__all__ = ["plot_pareto", "plot_quality", "plot_samples_grid", "write_study_report"]

_STYLES = ("-", "--", ":", "-.")
_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*")


def _colours(rows: Sequence[dict[str, Any]]) -> dict[str, str]:
    return {m: f"C{i % 10}" for i, m in enumerate(dict.fromkeys(r["method"] for r in rows))}


def _floor_band(ax: Any, floor: Mapping[str, Any] | None, metric: str) -> None:
    fl = (floor or {}).get(metric)
    if fl:
        lo, hi = fl["mean"] - fl["sd"], fl["mean"] + fl["sd"]
        ax.axhspan(lo, hi, color="0.85", zorder=0, label="exact-sample floor (mean ± sd)")
        ax.axhline(fl["mean"], color="0.5", lw=0.8, zorder=0)


def _style(summary: Sequence[dict[str, Any]], rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """config -> (colour, line style, marker): colour by sampler, style by factor setting."""
    colours, method = _colours(rows), {r["sampler"]: r["method"] for r in rows}
    per: dict[str, int] = {}
    out = {}
    for cfg in dict.fromkeys(s["sampler"] for s in summary):
        i = per.get(method[cfg], 0)
        per[method[cfg]] = i + 1
        out[cfg] = (colours[method[cfg]], _STYLES[i % 4], _MARKERS[i % len(_MARKERS)])
    return out


def plot_quality(
    result: StudyResult, metric: str, path: str | Path, x: str = "nfe", ylabel: str | None = None
) -> Path:
    """``metric`` (mean ± s.e. over seeds) against NFE or ``us_per_sample``, with the floor."""
    plt = pyplot()
    rows = result.rows
    fig, ax = plt.subplots(figsize=(7, 4.4))
    summary = [s for s in study_summary(rows, metric, result.floor) if s[x] is not None]
    style = _style(summary, rows)
    for cfg, (c, ls, mk) in style.items():
        pts = sorted((s[x], s["mean"], s["se"]) for s in summary if s["sampler"] == cfg)
        xs, ys, se = zip(*pts, strict=True)
        err = [0.0 if math.isnan(v) else v for v in se]
        ax.errorbar(xs, ys, yerr=err, color=c, ls=ls, marker=mk, ms=4, capsize=2, label=cfg)
    _floor_band(ax, result.floor, metric)
    xlabel = "NFE (score evaluations)" if x == "nfe" else "wall time per sample [µs]"
    plain_log(ax, "x", [s[x] for s in summary] if x == "nfe" else None)
    vals = [s["mean"] for s in summary if not math.isnan(s["mean"])]
    if vals and min(vals) > 0:
        plain_log(ax, "y")
    ax.set(xlabel=xlabel, ylabel=ylabel or metric)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=6, loc="best")
    fig.tight_layout()
    return _save(fig, path)


def plot_pareto(result: StudyResult, metric: str, path: str | Path) -> Path:
    """Quality against wall time per sample: every configuration, the Pareto front joined."""
    plt = pyplot()
    rows = result.rows
    summary = study_summary(rows, metric, result.floor)
    colours, method = _colours(rows), {r["sampler"]: r["method"] for r in rows}
    fig, ax = plt.subplots(figsize=(7, 4.4))
    for m, c in colours.items():
        pts = [s for s in summary if method[s["sampler"]] == m and not math.isnan(s["mean"])]
        ax.scatter(
            [s["us_per_sample"] for s in pts], [s["mean"] for s in pts], color=c, s=14, label=m
        )
    front = pareto_front(summary)
    ax.plot(
        [s["us_per_sample"] for s in front],
        [s["mean"] for s in front],
        "k-",
        lw=1,
        label="Pareto front",
    )
    _floor_band(ax, result.floor, metric)
    plain_log(ax, "x")
    if all(s["mean"] > 0 for s in front):
        plain_log(ax, "y")
    ax.set(xlabel="wall time per sample [µs]", ylabel=metric)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def plot_factors(result: StudyResult, metric: str, path: str | Path) -> Path:
    """One panel per factor: ``metric`` against NFE per factor value, the rest pooled."""
    plt = pyplot()
    factors = list(result.spec.factors)
    fig, axes = plt.subplots(1, len(factors), figsize=(5 * len(factors), 3.8), squeeze=False)
    for ax, f in zip(axes.flat, factors, strict=True):
        table = [t for t in by_factor(result.rows, metric, f) if t["nfe_target"] is not None]
        for i, v in enumerate(dict.fromkeys(t[f] for t in table)):
            pts = sorted((t["nfe_target"], t["mean"], t["se"]) for t in table if t[f] == v)
            xs, ys, se = zip(*pts, strict=True)
            err = [0.0 if math.isnan(e) else e for e in se]
            ax.errorbar(xs, ys, yerr=err, marker=_MARKERS[i % 8], ms=4, capsize=2, label=f"{v}")
        _floor_band(ax, result.floor, metric)
        plain_log(ax, "x", [t["nfe_target"] for t in table])
        ax.set(title=f"by {f} (others pooled)", xlabel="target NFE", ylabel=metric)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def plot_samples_grid(result: StudyResult, path: str | Path, max_rows: int = 12) -> Path:
    """Rows: configurations; columns: the reference, the smallest NFE and the largest NFE."""
    plt = pyplot()
    ref = result.reference
    assert ref is not None
    configs = list(dict.fromkeys(k[0] for k in result.samples))[:max_rows]
    colours, method = _colours(result.rows), {r["sampler"]: r["method"] for r in result.rows}
    fig, axes = plt.subplots(len(configs), 3, figsize=(8.4, 2.8 * len(configs)), squeeze=False)
    flat = ref.reshape(ref.shape[0], -1)
    lo, hi = _np(flat.min(0).values), _np(flat.max(0).values)
    pad = 0.15 * (hi - lo)
    for row, cfg in zip(axes, configs, strict=True):
        nfes = sorted((k[1] for k in result.samples if k[0] == cfg), key=lambda v: v or 0)
        panels = [("reference", ref)] + [
            (f"NFE {n}", result.samples[(cfg, n)]) for n in (nfes[0], nfes[-1])
        ]
        for ax, (title, x) in zip(row, panels, strict=True):
            if x.ndim == 4:
                ax.imshow(_image_tile(x, 6), cmap="gray", vmin=0, vmax=1)
                ax.axis("off")
            else:
                xs = _np(x.reshape(x.shape[0], -1)[:3000, :2])
                c = "0.3" if title == "reference" else colours[method[cfg]]
                ax.scatter(*xs.T, s=2, alpha=0.4, c=c)
                ax.set(xlim=(lo[0] - pad[0], hi[0] + pad[0]), ylim=(lo[1] - pad[1], hi[1] + pad[1]))
                ax.set_aspect("equal")
            ax.set_title(title if title == "reference" else f"{cfg}\n{title}", fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def write_study_report(out: str | Path, result: StudyResult, title: str = "sampler study") -> str:
    """Write the figures, ``results.json`` and ``report.md`` of a study; return the Markdown."""
    out = Path(out)
    rows, spec, floor = result.rows, result.spec, result.floor
    quality = list(spec.metrics) + [c for c in ("ce_gap", "mode_mass_err") if c in floor]
    text = [
        f"# {title}\n",
        f"Spec: `spec.json` ({len(rows)} cells); seeds {spec.seeds}, "
        f"{spec.n} samples per run; environment in `env.json`.\n",
        "## Noise floor (exact samples against the same reference)\n",
        markdown_table(
            [
                {"column": k, "mean": v["mean"], "sd": v["sd"], "draws": len(v["values"])}
                for k, v in floor.items()
            ],
            ["column", "mean", "sd", "draws"],
        ),
    ]
    results: dict[str, Any] = {
        "floor": floor,
        "skipped": result.skipped,
        "summary": {},
        "rows": rows,
    }
    cols = ["sampler", "nfe_target", "nfe", "mean", "se", "floor_sd", "us_per_sample"]
    for m in quality:
        summary = study_summary(rows, m, floor)
        if m == "ce_gap":
            _mc_se(summary, rows)
        results["summary"][m] = summary
        plot_quality(result, m, out / f"quality_vs_nfe_{m}.png")
        text += [
            f"## {m}\n",
            "`floor_sd`: (mean - floor) / floor sd. "
            + (
                "`se`: Monte Carlo SE of the gap, combined over seeds.\n"
                if m == "ce_gap"
                else "`se`: over seeds.\n"
            ),
            markdown_table(summary, cols),
            f"\n![{m} vs NFE](quality_vs_nfe_{m}.png)\n",
        ]
    m0 = spec.metrics[0]
    s0 = results["summary"][m0]
    best, front = best_per_budget(s0), pareto_front(s0)
    results.update(best_per_budget=best, pareto=front)
    plot_pareto(result, m0, out / "pareto.png")
    text += [
        f"## Best configuration per NFE budget ({m0})\n",
        markdown_table(
            best, ["budget_nfe", "sampler", "nfe", "mean", "se", "floor_sd", "us_per_sample"]
        ),
        f"\n## Pareto front: {m0} vs wall time per sample\n",
        markdown_table(front, ["sampler", "nfe", "mean", "se", "us_per_sample"]),
        "\n![Pareto](pareto.png)\n",
    ]
    if spec.factors:
        plot_factors(result, m0, out / "factors.png")
        results["by_factor"] = {f: by_factor(rows, m0, f) for f in spec.factors}
        for f, table in results["by_factor"].items():
            text += [
                f"## By {f} ({m0}; samplers, other factors and seeds pooled)\n",
                markdown_table(table, [f, "nfe_target", "mean", "se", "n"]),
            ]
        text.append("\n![by factor](factors.png)\n")
    if result.samples and result.reference is not None:
        plot_samples_grid(result, out / "samples_grid.png")
        text.append(
            "## Samples (reference, smallest and largest NFE)\n\n![samples](samples_grid.png)\n"
        )
    if result.skipped:
        text.append("## Skipped\n\n" + "".join(f"- {s}\n" for s in result.skipped))
    write_json(results, out / "results.json")
    md = "\n".join(text)
    (out / "report.md").write_text(md)
    return md


def _mc_se(summary: list[dict[str, Any]], rows: Sequence[dict[str, Any]]) -> None:
    """Replace the CE gap's seed SE by the Monte Carlo SE of the mean of per-seed gaps."""
    for s in summary:
        ses = [
            r["ce_gap_se"]
            for r in rows
            if r["sampler"] == s["sampler"] and r["nfe_target"] == s["nfe_target"]
        ]
        s["se"] = math.sqrt(sum(v * v for v in ses)) / len(ses) if ses else math.nan
