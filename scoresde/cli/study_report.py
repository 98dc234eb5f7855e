"""Figures and Markdown of a sampler study's run folder (:func:`scoresde.studies.run_study`).

One colour per configuration in every figure of a report, a marker per level of the first
varying factor (a line style per level of the second); error bars are the standard error over
seeds; the noise floor of exact samples is a grey band (mean ± sd over draws, in the legend);
the signed CE gap is on a symlog axis, linear within one floor sd; log axes carry plain tick
labels (5, 10, 20, not 5×10⁰). Best-per-budget tables rank with paired tests across seeds
and keep ties (:func:`~scoresde.studies.rank_per_budget`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..studies import (
    StudyResult,
    below_floor,
    best_per_budget,
    by_factor,
    disagreements,
    pareto_front,
    rank_per_budget,
    study_summary,
)
from ..studies.coverage import FLOOR_Z
from ..studies.guided import tilted_summary
from ..studies.significance import FLOOR_TIE_Z
from ..studies.table import write_json
from .report import _image_tile, _np, _save, markdown_table, plain_log, pyplot

__all__ = ["plot_pareto", "plot_quality", "plot_samples_grid", "write_study_report"]

_STYLES = ("-", "--", ":", "-.")
_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*")
#: Columns where higher is better (the floor check is one-sided, from below).
_HIGHER = ("precision", "recall")


def _varying(result: StudyResult) -> list[str]:
    return [k for k, v in result.spec.factors.items() if len({repr(x) for x in v}) > 1]


def _style(result: StudyResult) -> dict[str, tuple[Any, str, str]]:
    """Config -> (colour, marker, line style): one colour per configuration.

    The marker follows the level of the first varying factor, the line style the second's.
    """
    plt = pyplot()
    configs = list(dict.fromkeys(r["sampler"] for r in result.rows))
    cmap = plt.get_cmap("tab10" if len(configs) <= 10 else "tab20")
    varying = _varying(result)
    levels = {f: [repr(v) for v in result.spec.factors[f]] for f in varying}
    first = {r["sampler"]: r for r in result.rows}
    out = {}
    for i, cfg in enumerate(configs):
        r = first[cfg]
        lv = [levels[f].index(repr(r[f])) if repr(r.get(f)) in levels[f] else 0 for f in varying]
        marker = _MARKERS[(lv[0] if lv else i) % len(_MARKERS)]
        ls = _STYLES[lv[1] % len(_STYLES)] if len(lv) > 1 else "-"
        out[cfg] = (cmap(i % cmap.N), marker, ls)
    return out


def _floor_band(ax: Any, floor: Mapping[str, Any] | None, metric: str) -> None:
    fl = (floor or {}).get(metric)
    if fl:
        lo, hi = fl["mean"] - fl["sd"], fl["mean"] + fl["sd"]
        label = f"exact-sample floor {fl['mean']:.3g} ± {fl['sd']:.2g} (mean ± sd)"
        ax.axhspan(lo, hi, color="0.55", alpha=0.35, zorder=0, label=label)
        ax.axhline(fl["mean"], color="0.3", lw=1.0, ls="--", zorder=0)


def _yscale(ax: Any, metric: str, floor: Mapping[str, Any] | None, vals: list[float]) -> None:
    """Signed CE gap: symlog, linear within a floor sd of zero (the band stays visible)."""
    if metric == "ce_gap":
        fl = (floor or {}).get(metric)
        ax.set_yscale("symlog", linthresh=max(fl["sd"] if fl else 0.0, 1e-3))
        ax.axhline(0.0, color="k", lw=0.6)
    elif metric not in _HIGHER and vals and min(vals) > 0:
        plain_log(ax, "y")


def plot_quality(
    result: StudyResult, metric: str, path: str | Path, x: str = "nfe", ylabel: str | None = None
) -> Path:
    """``metric`` (mean ± s.e. over seeds) against NFE or ``us_per_sample``, with the floor."""
    plt = pyplot()
    rows = result.rows
    fig, ax = plt.subplots(figsize=(7, 4.4))
    summary = [s for s in study_summary(rows, metric, result.floor) if s[x] is not None]
    for cfg, (c, mk, ls) in _style(result).items():
        pts = sorted((s[x], s["mean"], s["se"]) for s in summary if s["sampler"] == cfg)
        if not pts:
            continue
        xs, ys, se = zip(*pts, strict=True)
        err = [0.0 if math.isnan(v) else v for v in se]
        ax.errorbar(xs, ys, yerr=err, color=c, ls=ls, marker=mk, ms=4, capsize=2, label=cfg)
    _floor_band(ax, result.floor, metric)
    xlabel = "NFE spent (score evaluations)" if x == "nfe" else "CPU time per sample [µs]"
    plain_log(ax, "x", [s[x] for s in summary] if x == "nfe" else None)
    _yscale(ax, metric, result.floor, [s["mean"] for s in summary if not math.isnan(s["mean"])])
    ax.set(xlabel=xlabel, ylabel=ylabel or metric)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=6, loc="best")
    fig.tight_layout()
    return _save(fig, path)


def plot_pareto(result: StudyResult, metric: str, path: str | Path) -> Path:
    """Quality against CPU time per sample: every configuration, the Pareto front joined."""
    plt = pyplot()
    summary = study_summary(result.rows, metric, result.floor)
    fig, ax = plt.subplots(figsize=(7, 4.4))
    for cfg, (c, mk, _) in _style(result).items():
        pts = [s for s in summary if s["sampler"] == cfg and not math.isnan(s["mean"])]
        ax.scatter(
            [s["us_per_sample"] for s in pts],
            [s["mean"] for s in pts],
            color=c,
            marker=mk,
            s=16,
            label=cfg,
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
    ax.set(xlabel="CPU time per sample [µs] (median of repeats)", ylabel=metric)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=6)
    fig.tight_layout()
    return _save(fig, path)


def plot_factors(result: StudyResult, metric: str, path: str | Path, max_panels: int = 6) -> Path:
    """Per factor, one panel per setting of everything else: ``metric`` vs NFE per level.

    Nothing is pooled: a panel holds the sampler and the other factors fixed (its title), and
    its lines are the levels of one factor.
    """
    plt = pyplot()
    factors = _varying(result) or list(result.spec.factors)
    tables = {
        f: [t for t in by_factor(result.rows, metric, f, factors) if t["nfe_target"] is not None]
        for f in factors
    }
    rests = {f: list(dict.fromkeys(t["rest"] for t in tables[f]))[:max_panels] for f in factors}
    ncol = max(1, max(len(r) for r in rests.values()))
    fig, axes = plt.subplots(
        len(factors), ncol, figsize=(3.6 * ncol, 3.2 * len(factors)), squeeze=False
    )
    for row_axes, f in zip(axes, factors, strict=True):
        for ax, rest in zip(row_axes, rests[f] + [None] * (ncol - len(rests[f])), strict=True):
            if rest is None:
                ax.axis("off")
                continue
            table = [t for t in tables[f] if t["rest"] == rest]
            for i, v in enumerate(dict.fromkeys(t[f] for t in table)):
                pts = sorted((t["nfe_target"], t["mean"], t["se"]) for t in table if t[f] == v)
                xs, ys, se = zip(*pts, strict=True)
                err = [0.0 if math.isnan(e) else e for e in se]
                ax.errorbar(
                    xs,
                    ys,
                    yerr=err,
                    marker=_MARKERS[i % 8],
                    color=f"C{i % 10}",
                    ms=4,
                    capsize=2,
                    label=f"{f}={v}",
                )
            _floor_band(ax, result.floor, metric)
            plain_log(ax, "x", [t["nfe_target"] for t in table])
            ax.set_title(rest, fontsize=7)
            ax.set(xlabel="target NFE", ylabel=metric)
            ax.grid(alpha=0.3, which="both")
            ax.legend(fontsize=6)
    fig.tight_layout()
    return _save(fig, path)


def plot_samples_grid(result: StudyResult, path: str | Path, max_rows: int = 12) -> Path:
    """Rows: configurations; columns: the reference, the smallest NFE and the largest NFE."""
    plt = pyplot()
    ref = result.reference
    assert ref is not None
    configs = list(dict.fromkeys(k[0] for k in result.samples))[:max_rows]
    style = _style(result)
    spent = {
        (r["sampler"], r["nfe_target"]): r["nfe"]
        for r in result.rows
        if r["seed"] == result.spec.seeds[0]
    }
    fig, axes = plt.subplots(len(configs), 3, figsize=(8.4, 2.8 * len(configs)), squeeze=False)
    flat = ref.reshape(ref.shape[0], -1)
    lo, hi = _np(flat.min(0).values), _np(flat.max(0).values)
    pad = 0.15 * (hi - lo)
    for row, cfg in zip(axes, configs, strict=True):
        nfes = sorted((k[1] for k in result.samples if k[0] == cfg), key=lambda v: v or 0)
        panels = [("reference", ref)] + [
            (f"NFE {spent.get((cfg, n)) or n}", result.samples[(cfg, n)])
            for n in (nfes[0], nfes[-1])
        ]
        for ax, (title, x) in zip(row, panels, strict=True):
            if x.ndim == 4:
                ax.imshow(_image_tile(x, 6), cmap="gray", vmin=0, vmax=1)
                ax.axis("off")
            else:
                xs = _np(x.reshape(x.shape[0], -1)[:3000, :2])
                c = "0.3" if title == "reference" else style[cfg][0]
                ax.scatter(*xs.T, s=2, alpha=0.4, color=c)
                ax.set(xlim=(lo[0] - pad[0], hi[0] + pad[0]), ylim=(lo[1] - pad[1], hi[1] + pad[1]))
                ax.set_aspect("equal")
            ax.set_title(title if title == "reference" else f"{cfg}\n{title}", fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def write_study_report(out: str | Path, result: StudyResult, title: str = "sampler study") -> str:
    """Write the figures, ``results.json`` and ``report.md`` of a study; return the Markdown."""
    out = Path(out)
    rows, spec, floor = result.rows, result.spec, result.floor
    extra = ("ce_gap", "mode_mass_err", "precision", "recall")
    quality = list(spec.metrics) + [c for c in extra if c in floor]
    text = [
        f"# {title}\n",
        f"Spec: `spec.json` ({len(rows)} cells); seeds {spec.seeds}, "
        f"{spec.n} samples per run; environment (threads, load average) in `env.json`. "
        "Cost: NFE spent (primary); CPU time per sample, median of repeated runs.\n",
        "## Noise floor (exact samples against the same reference)\n",
        markdown_table(
            [
                {
                    "column": k,
                    "mean ± sd": f"{v['mean']:.4g} ± {v['sd']:.2g}",
                    "draws": ", ".join(f"{x:.3g}" for x in v["values"]),
                }
                for k, v in floor.items()
            ],
            ["column", "mean ± sd", "draws"],
        ),
    ]
    results: dict[str, Any] = {"floor": floor, "skipped": result.skipped, "summary": {}}
    text += _ranking_section(result, results)
    text += _coverage_section(result, results)
    cols = ["sampler", "nfe_target", "nfe", "mean", "se", "floor_sd", "us_per_sample"]
    for m in quality:
        summary = study_summary(rows, m, floor)
        if m == "ce_gap":
            _mc_se(summary, rows)
        results["summary"][m] = summary
        if m in _HIGHER:  # in the precision/recall section above
            continue
        plot_quality(result, m, out / f"quality_vs_nfe_{m}.png")
        se = "Monte Carlo SE of the gap, combined over seeds" if m == "ce_gap" else "over seeds"
        text += [
            f"## {m}\n",
            f"`floor_sd`: (mean - floor) / floor sd. `se`: {se}.\n",
            markdown_table(summary, cols),
            f"\n![{m} vs NFE](quality_vs_nfe_{m}.png)\n",
        ]
    text += _tilted_section(result, results)
    m0 = spec.metrics[0]
    front = pareto_front(results["summary"][m0])
    results["pareto"] = front
    plot_pareto(result, m0, out / "pareto.png")
    text += [
        f"## Pareto front: {m0} vs CPU time per sample\n",
        markdown_table(front, ["sampler", "nfe", "mean", "se", "us_per_sample"]),
        "\n![Pareto](pareto.png)\n",
    ]
    if spec.factors:
        plot_factors(result, m0, out / "factors.png")
        names = list(spec.factors)
        results["by_factor"] = {f: by_factor(rows, m0, f, names) for f in names}
        for f, table in results["by_factor"].items():
            text += [
                f"## By {f} ({m0}; sampler and other factors held fixed in `rest`)\n",
                markdown_table(table, [f, "rest", "nfe_target", "mean", "se", "n"]),
            ]
        text.append("\n![by factor](factors.png)\n")
    if result.samples and result.reference is not None:
        plot_samples_grid(result, out / "samples_grid.png")
        text.append(
            "## Samples (reference, smallest and largest NFE)\n\n![samples](samples_grid.png)\n"
        )
    if result.skipped:
        text.append("## Skipped\n\n" + "".join(f"- {s}\n" for s in result.skipped))
    results["rows"] = rows
    write_json(results, out / "results.json")
    md = "\n".join(text)
    (out / "report.md").write_text(md)
    return md


def _ranking_section(result: StudyResult, results: dict[str, Any]) -> list[str]:
    """Best per NFE budget on the primary metric with ties, and the CE-gap cross-check."""
    spec, rows, floor = result.spec, result.rows, result.floor
    m0 = spec.metrics[0]
    rank = rank_per_budget(rows, m0, floor=floor)
    results["ranking"] = {m0: rank}
    head = (
        f"## Best configuration per NFE budget (primary metric: {m0})\n\n"
        f"Paired two-sided t-test over the {rank['seeds']} seeds (same prior draws, noise "
        f"and projections per seed), level {rank['alpha']}: `within noise` lists the "
        "configurations not distinguishable from the best (or both within "
        f"{FLOOR_TIE_Z:g} floor sd of the exact-sample floor).\n"
    )
    if not rank["ranked"]:
        return [head, f"**Not ranked**: {rank['reason']}.\n"]
    lines = [head] + ([f"Note: {rank['note']}.\n"] if rank["note"] else [])
    table = best_per_budget(rows, m0, floor)
    results["best_per_budget"] = table
    shown = [dict(t, **{"mean ± se": f"{t['mean']:.4g} ± {t['se']:.2g}"}) for t in table]
    cols = ["budget_nfe", "best", "nfe", "mean ± se", "within_noise"]
    if "ce_gap" in floor:
        ce = rank_per_budget(rows, "ce_gap", floor=floor, absolute=True)
        results["ranking"]["|ce_gap|"] = ce
        agree = {d["budget_nfe"]: d for d in disagreements(rank, ce)}
        results["disagreements"] = [d for d in agree.values() if not d["agree"]]
        for t, sh in zip(table, shown, strict=True):
            d = agree.get(t["budget_nfe"])
            t["ce_gap_best"], t["agree"] = (d["|ce_gap|"], d["agree"]) if d else (None, None)
            sh["|ce_gap| best"] = t["ce_gap_best"]
            sh["agree"] = "" if d is None else ("yes" if d["agree"] else "**no**")
        cols += ["|ce_gap| best", "agree"]
    lines.append(markdown_table(shown, cols))
    if results.get("disagreements"):
        lines.append(
            f"\n`agree` **no**: the {m0} ranking and the |CE gap| ranking disagree "
            "(each one's best is outside the other's ties); look at both, and at the "
            "precision/recall check below.\n"
        )
    return lines


def _tilted_section(result: StudyResult, results: dict[str, Any]) -> list[str]:
    """Guided cells against the tilted target q_w (studies.guided), with each w's floor."""
    summary = tilted_summary(result.rows, result.floor)
    if not summary:
        return []
    results["summary"]["tilted_ce_gap"] = summary
    cols = ["sampler", "guidance", "nfe_target", "nfe", "mean", "se", "floor", "floor_sd"]
    return [
        "## tilted_ce_gap (against the tilted target p(x | y)^(1+w) p(x)^(-w))\n",
        "Mean -log q_w(x) - H(q_w), q_w and H(q_w) by quadrature: zero for exact samples of "
        "q_w. Guidance does not sample q_w, so even an exact solve of the guided ODE has a gap "
        "for w != 0: that gap is guidance's, the distance to the guided ODE's limit (above) is "
        "the sampler's. `floor`: exact samples of q_w (mean ± sd, per w); `floor_sd`: "
        "(mean - floor) / floor sd; `se`: Monte Carlo SE of the gap, combined over seeds.\n",
        markdown_table(summary, cols),
    ]


def _coverage_section(result: StudyResult, results: dict[str, Any]) -> list[str]:
    """Precision/recall per configuration, flagged when below the exact-sample floor."""
    floor = result.floor
    if "precision" not in floor:
        return []
    prec = {(s["sampler"], s["nfe_target"]): s for s in study_summary(result.rows, "precision")}
    rec = {(s["sampler"], s["nfe_target"]): s for s in study_summary(result.rows, "recall")}
    table = []
    for key, p in prec.items():
        r = rec[key]
        bad = [
            c
            for c, v in (("precision", p["mean"]), ("recall", r["mean"]))
            if below_floor(v, floor[c])
        ]
        table.append(
            {
                "sampler": key[0],
                "nfe": p["nfe"],
                "precision": p["mean"],
                "recall": r["mean"],
                "below floor": ", ".join(bad) or "no",
            }
        )
    results["coverage"] = table
    fp, fr = floor["precision"], floor["recall"]
    return [
        "## Precision and recall (per-component 99% ellipsoids)\n",
        "`precision`: samples inside some component's 99% ellipsoid; `recall`: each "
        "component's mass recovered, weighted. Exact samples: precision "
        f"{fp['mean']:.4f} ± {fp['sd']:.2g}, recall {fr['mean']:.4f} ± {fr['sd']:.2g} "
        f"(mean ± sd). `below floor`: more than {FLOOR_Z:g} floor sd under it (blur or a "
        "dropped mode).\n",
        markdown_table(table, ["sampler", "nfe", "precision", "recall", "below floor"]),
    ]


def _mc_se(summary: list[dict[str, Any]], rows: Sequence[dict[str, Any]]) -> None:
    """Replace the CE gap's seed SE by the Monte Carlo SE of the mean of per-seed gaps."""
    for s in summary:
        ses = [
            r["ce_gap_se"]
            for r in rows
            if r["sampler"] == s["sampler"] and r["nfe_target"] == s["nfe_target"]
        ]
        s["se"] = math.sqrt(sum(v * v for v in ses)) / len(ses) if ses else math.nan
