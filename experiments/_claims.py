"""Numbers quoted in the docs, rendered from the experiments' results.json so they cannot drift.

A page marks each generated number or table with an HTML comment pair (invisible in the site):

    <!--claim EXP|PATH|FMT-->0.50<!--/claim-->     a value of docs/experiments/EXP/results.json
    <!--claim =NAME-->...<!--/claim-->             a derived value or table from :data:`DERIVED`

PATH is a '/'-separated key path (integers index lists), FMT a Python format spec. ``python
experiments/_claims.py`` rewrites every marked span in docs/ from the current results;
``--check`` exits 1 listing the spans that differ (tests/test_docs_claims.py runs the check).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PATTERN = re.compile(r"<!--claim (?P<spec>[^>]+?)-->(?P<body>.*?)<!--/claim-->", re.DOTALL)


@cache
def results(exp: str) -> dict[str, Any]:
    """The committed results.json of experiment ``exp``."""
    return json.loads((DOCS / "experiments" / exp / "results.json").read_text())


def lookup(exp: str, path: str) -> Any:
    """The value at ``path`` ('a/b/0/c') in ``exp``'s results."""
    node: Any = results(exp)
    for part in path.split("/"):
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of log y against log x."""
    lx, ly = [math.log(v) for v in xs], [math.log(v) for v in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    num = sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True))
    return num / sum((a - mx) ** 2 for a in lx)


def _sci(v: float) -> str:
    return f"{v:.1e}"


def _four_views_table(key: str) -> str:
    r = results("four_views")["mixtures"][key]
    f = r["noise_floor_w2"]
    head = ("| view | A | B | N | W2(A, exact) | W2(B, exact) | distance A to B at the end |\n"
            "|---|---|---|---|---|---|---|\n")  # fmt: skip
    rows = []
    for row in r["table"]:
        err = row["endpoint_error"]
        err_s = f"{_sci(err)} (max)" if row["view"] == "identity" else f"{err:.4f} (mean)"
        rows.append(f"| {row['view']} | {row['a']} | {row['b']} | {row['n_steps']} | "
                    f"{row['w2_a']:.3f} | {row['w2_b']:.3f} | {err_s} |")  # fmt: skip
    tail = (f"\n\nNoise floor (W2 between two exact sets of {r['n']} points, 8 pairs): "
            f"{f['mean']:.3f} ± {f['std']:.3f}, range {min(f['values']):.3f}–"
            f"{max(f['values']):.3f}.")  # fmt: skip
    return head + "\n".join(rows) + tail


def _hutchinson_slope(d: str) -> float:
    """Fitted exponent p of mean |error| ∝ k^-p over probes k, averaged over tolerances."""
    rows = [r for r in results("likelihood")["study"][d] if r["method"] == "hutchinson"]
    by_rtol: dict[float, list[tuple[int, float]]] = {}
    for r in rows:
        by_rtol.setdefault(r["rtol"], []).append((r["n_probes"], r["mean_abs_error"]))
    fits = [-slope([k for k, _ in v], [e for _, e in v]) for v in by_rtol.values()]
    return sum(fits) / len(fits)


def _rng(vals: list[float], fmt: str) -> str:
    lo, hi = min(vals), max(vals)
    return format(lo, fmt) if format(lo, fmt) == format(hi, fmt) else f"{lo:{fmt}}–{hi:{fmt}}"


def _likelihood_table() -> str:
    """The error/cost table of docs/experiments/likelihood.md from the study rows."""
    study = results("likelihood")["study"]
    dims = sorted(study, key=int)

    def rows(d: str, method: str, k: int | None = None, rtol: float | None = None) -> list:
        return [r for r in study[d] if r["method"] == method
                and (k is None or r["n_probes"] == k) and (rtol is None or r["rtol"] == rtol)]  # fmt: skip

    head = "| estimator | " + " | ".join(f"d = {d} error | VJPs / point" for d in dims) + " |\n"
    head += "|---|" + "---|---|" * len(dims) + "\n"
    lines = []
    for rtol in (1e-2, 1e-4, 1e-6):
        cells = [
            (r["mean_abs_error"], r["n_vjp"]) for d in dims for r in rows(d, "exact", rtol=rtol)
        ]
        lines.append(f"| exact, rtol {rtol:.0e} | " + " | ".join(
            f"{e:.1e} | {v:,}" for e, v in cells) + " |")  # fmt: skip
    for k in (1, 4, 16):
        cells = []
        for d in dims:
            rs = rows(d, "hutchinson", k=k)
            cells.append(f"{_rng([r['mean_abs_error'] for r in rs], '.2f')} | "
                         f"{_rng([r['n_vjp'] for r in rs], ',')}")  # fmt: skip
        lines.append(f"| Hutchinson k = {k} (every rtol) | " + " | ".join(cells) + " |")
    for k in (1, 16, 256):
        cells = [
            f"{r['mean_abs_error']:.2f} | {r['n_vjp']:,}"
            for d in dims
            for r in rows(d, "elbo", k=k)
        ]
        lines.append(f"| ELBO, {k} draw{'s' if k > 1 else ''} | " + " | ".join(cells) + " |")
    return head + "\n".join(lines)


def _sde_comparison_range(lo_nfe: int) -> tuple[float, float]:
    rows = [r for v in results("sde_comparison")["quality"].values() for r in v]
    vals = [r["sw2"] for r in rows if r["nfe_target"] >= lo_nfe]
    return min(vals), max(vals)


def _ddpm_beta_slope() -> float:
    rows = results("ddpm_ddim_convergence")["identity"]
    return -slope([r["n_steps"] for r in rows], [r["mean_diff_beta"] for r in rows])


_SDE_NAMES = {"vp": "VP", "subvp": "sub-VP", "ve": "VE"}


def _fs_cell(rows: list, bound: float | None) -> str:
    """'mean / worst' |CE gap| of held-out rows [(nfe, gap), ...]; worst in bold past ``bound``."""
    gaps = [abs(g) for _, g in rows]
    if not all(math.isfinite(g) for g in gaps):
        return "fails"
    worst = f"{max(gaps):.2f}"
    if bound is not None and max(gaps) > bound:
        worst = f"**{worst}**"
    return f"{sum(gaps) / len(gaps):.2f} / {worst}"


def _fs_bound(name: str, nfe: int | str, stochastic: set[str]) -> float | None:
    """Issue 21's bound on |CE gap|: (b) at NFE 100, (c) at NFE 10 (deterministic only)."""
    if int(nfe) == 100:
        return 0.4 if name in stochastic else 0.25
    return 1.0 if int(nfe) == 10 and name not in stochastic else None


def _few_step_table() -> str:
    """Held-out mean / worst |CE gap| of every sampler at its defaults, per SDE and NFE."""
    r = results("few_step_defaults")
    stochastic = set(r["stochastic"])
    head = ("| sampler | SDE | grid (<= 10 / 11-25 / > 25) | NFE 5 | NFE 10 | NFE 20 | NFE 50 "
            "| NFE 100 |\n|---|---|---|---|---|---|---|---|\n")  # fmt: skip
    lines = []
    for name, per in r["held_out"].items():
        for kind, by_nfe in per.items():
            grids = " / ".join(
                _fs_config(r["table"][name][kind][b]) for b in ("<=10", "11-25", ">25")
            )
            cells = []
            for nfe in ("5", "10", "20", "50", "100"):
                cells.append(_fs_cell(by_nfe[nfe], _fs_bound(name, nfe, stochastic)))
            lines.append(f"| `{name}` | {_SDE_NAMES[kind]} | {grids} | " + " | ".join(cells) + " |")
    return head + "\n".join(lines)


def _fs_config(cfg: dict) -> str:
    """'log_snr (order 3, lower_order_final)': a table entry, its switches in brackets."""
    sw = [k if v is True else f"no {k}" if v is False else f"{k} {v}"
          for k, v in cfg.items() if k != "grid" and v is not None]  # fmt: skip
    return cfg["grid"] + (f" ({', '.join(sw)})" if sw else "")


def _few_step_oracle() -> str:
    """Each miss of (b) and (c) against the least |CE gap| any candidate default reaches there."""
    r = results("few_step_defaults")
    stochastic = set(r["stochastic"])
    head = ("| target | sampler | SDE | problem | at its defaults | best candidate | its settings |\n"
            "|---|---|---|---|---|---|---|\n")  # fmt: skip
    lines = []
    for o in r.get("oracle", []):
        name, kind, nfe = o["sampler"], o["sde"], o["nfe"]
        bound = _fs_bound(name, nfe, stochastic)
        k = [p["seed"] for p in r["held_out_problems"]].index(o["seed"])
        got = abs(r["held_out"][name][kind][str(nfe)][k][1])
        best = f"{o['best_gap']:.2f}" if math.isfinite(o["best_gap"]) else "fails"
        if not o["best_gap"] <= bound:
            best = f"**{best}**"
        lines.append(f"| {'(b)' if nfe == 100 else '(c)'} NFE {nfe} | `{name}` | {_SDE_NAMES[kind]} | "
                     f"seed {o['seed']} | {got:.2f} | {best} | {_fs_config(o['best_config'])} |")  # fmt: skip
    return head + "\n".join(lines)


def _few_step_oracle_count() -> str:
    """'3 of 58': the misses of (b) and (c) that some candidate default would have met."""
    r = results("few_step_defaults")
    stochastic = set(r["stochastic"])
    met = [
        o["best_gap"] <= _fs_bound(o["sampler"], o["nfe"], stochastic) for o in r.get("oracle", [])
    ]
    return f"{sum(met)} of {len(met)}"


def _few_step_problems(key: str) -> str:
    ps = results("few_step_defaults")[key]
    return "; ".join(f"seed {p['seed']}: d = {p['dim']}, K = {p['components']}, narrowest std "
                     f"{p['narrowest_std']:.3f}" for p in ps)  # fmt: skip


def _few_step_recommended(key: str = "recommended") -> str:
    """The recommended sampler per SDE and band (chosen on the held-out seeds), with its mean /
    worst |CE gap| on the test seeds, which played no part in any choice."""
    r = results("few_step_defaults")
    auto = r["auto_test"]["exact" if key == "recommended" else "learned"]
    bands = {"<=10": ("5", "10"), "11-25": ("20",), ">25": ("50", "100")}
    head = "| SDE | NFE <= 10 | NFE 11-25 | NFE > 25 |\n|---|---|---|---|\n"
    lines = []
    for kind, rec in r[key].items():
        cells = []
        for band, nfes in bands.items():
            name = rec[band]
            assert all(auto[kind][n]["sampler"] == name for n in nfes), (kind, band, name)
            got = ", ".join(f"{n}: {_fs_cell(auto[kind][n]['rows'], None)}" for n in nfes)
            cells.append(f"`{name}` ({got})")
        lines.append(f"| {_SDE_NAMES[kind]} | " + " | ".join(cells) + " |")
    return head + "\n".join(lines)


def _few_step_targets() -> str:
    t = results("few_step_defaults")["targets"]

    def fmt(misses: list) -> str:
        if not misses:
            return "met"
        return "missed: " + ", ".join(f"`{n}` on {_SDE_NAMES[k]} ({w:.2f})" for n, k, w in misses)

    raised = ", ".join(f"`{n}` on {_SDE_NAMES[k]}" for n, k in t["a_failures"]) or "none"
    r = results("few_step_defaults")
    deltas = [p.get("delta_nfe100", p["delta"]) for p in r["held_out_problems"]]
    beyond = []  # misses of (b) by more than twice the CE-gap noise of the problem
    for name, kind, _ in t["b_misses"]:
        bound = _fs_bound(name, 100, set(r["stochastic"]))
        rows = r["held_out"][name][kind]["100"]
        if any(abs(g) - 2 * d > bound for (_, g), d in zip(rows, deltas, strict=True)):
            beyond.append(f"`{name}` on {_SDE_NAMES[kind]}")
    return ("| target (held-out) | result |\n|---|---|\n"
            f"| (a) no sampler fails at its defaults | {'met' if not t['a_failures'] else 'missed'}"
            f" (failed: {raised}) |\n"
            f"| (b) NFE 100: worst \\|CE gap\\| <= 0.25 deterministic, <= 0.4 stochastic | "
            f"{fmt(t['b_misses'])} |\n"
            f"| (b) counting only misses beyond 2 SE of the gap's noise | "
            f"{'met' if not beyond else 'missed: ' + ', '.join(beyond)} |\n"
            f"| (c) NFE 10: no deterministic sampler above 1 nat on any problem | "
            f"{fmt(t['c_misses'])} |")  # fmt: skip


def _few_step_beyond() -> str:
    """Each miss of target (b) at NFE 100, 200, 400 on its worst held-out problem."""
    r = results("few_step_defaults")
    head = ("| sampler | SDE | problem | NFE 100 | NFE 200 | NFE 400 | order (200 to 400) |\n"
            "|---|---|---|---|---|---|---|\n")  # fmt: skip
    lines = []
    for m in r.get("miss_convergence", []):
        g = m["gaps"]
        order = "-" if m["order"] is None else f"{m['order']:.1f}"
        if max(abs(v) for v in g.values()) <= 2 * m["delta"]:
            order += " (within noise)"
        lines.append(f"| `{m['sampler']}` | {_SDE_NAMES[m['sde']]} | seed {m['seed']} | "
                     + " | ".join(f"{g[k]:+.2f}" for k in ("100", "200", "400"))
                     + f" | {order} |")  # fmt: skip
    return head + "\n".join(lines)


def _few_step_ablation() -> str:
    """NFE 100 with and without the final Tweedie step (first two held-out problems)."""
    r = results("few_step_defaults")
    head = ("| sampler | " + " | ".join(f"{v} with / without" for v in _SDE_NAMES.values())
            + " |\n|---|---|---|---|\n")  # fmt: skip
    lines = []
    for name, per in r["no_denoise_nfe100"].items():
        cells = []
        for kind in _SDE_NAMES:
            if kind not in per:
                cells.append("-")
                continue
            w = [abs(g) for _, g in r["held_out"][name][kind]["100"][: len(per[kind])]]
            wo = [abs(g) for g in per[kind]]
            cells.append(f"{sum(w) / len(w):.2f} / {sum(wo) / len(wo):.2f}")
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return head + "\n".join(lines)


def _peers_table(exp: str = "sampler_peers") -> str:
    """Per NFE: the best scoresde sampler, auto and the best peer by mean |CE gap|, and ratios."""
    r = results(exp)
    head = ("| NFE | best scoresde (mean \\|gap\\|) | `auto` | best peer (mean \\|gap\\|) "
            "| ratio best / peer | ratio auto / peer |\n|---|---|---|---|---|---|\n")  # fmt: skip
    lines = [f"| {s['nfe']} | `{s['ours']}` {s['ours_mean']:.3f} | {s['auto_mean']:.3f} | "
             f"`{s['peer']}` {s['peer_mean']:.3f} | {s['ratio']:.2f} | {s['auto_ratio']:.2f} |"
             for s in r["summary"]]  # fmt: skip
    return head + "\n".join(lines)


def _study_best_table() -> str:
    """Best per NFE budget of the documented sampler study, with ties and the CE-gap check."""
    study = results("sampler_study")["study"]
    floor = study["floor"]["sw2"]
    summary = {(s["sampler"], s["nfe_target"]): s for s in study["summary"]["sw2"]}
    ce = {(s["sampler"], s["nfe_target"]): s for s in study["summary"]["ce_gap"]}
    head = ("| budget (NFE) | best (sliced W2) | NFE used | sliced W2, mean ± s.e. | distance to "
            "floor (floor sd) | within noise of the best | best by abs. CE gap | agree |\n"
            "|---|---|---|---|---|---|---|---|\n")  # fmt: skip
    lines = []
    for b in study["best_per_budget"]:
        key = next(k for k in summary if k[0] == b["best"] and summary[k]["nfe"] == b["nfe"])
        z = (b["mean"] - floor["mean"]) / floor["sd"]
        gap = ce[key]["mean"]
        lines.append(f"| {b['budget_nfe']} | {b['best']} (CE gap {gap:+.3f}) | {b['nfe']} | "
                     f"{b['mean']:.3f} ± {b['se']:.3f} | {z:.1f} | {b['within_noise']} | "
                     f"{b['ce_gap_best']} | {'yes' if b['agree'] else '**no**'} |")  # fmt: skip
    return head + "\n".join(lines)


def _study_coverage_table() -> str:
    """Precision/recall of every configuration of the documented study against its floor."""
    study = results("sampler_study")["study"]
    head = "| sampler | NFE | precision | recall | below the floor |\n|---|---|---|---|---|\n"
    rows = [f"| {c['sampler']} | {c['nfe']:.0f} | {c['precision']:.3f} | {c['recall']:.3f} | "
            f"{c['below floor']} |" for c in study["coverage"]]  # fmt: skip
    return head + "\n".join(rows)


def _calibration(key: str, i: int) -> str:
    rows = results("sampler_study")["calibration"]["rows"]
    return f"{sum(r[key][i] for r in rows)} of {len(rows) * results('sampler_study')['calibration']['trials']}"


def _guidance_table() -> str:
    res = results("guidance")
    s, cols = res["summary"], [(w, n) for w in (0.0, 3.0, 7.0) for n in (5, 10, 20)]
    names = list(dict.fromkeys(k.split(":")[0] for k in s))
    head = "| sampler | " + " | ".join(f"w = {w:g}, NFE {n}" for w, n in cols) + " |\n"
    head += "|---|" + "---|" * len(cols) + "\n"
    lines = []
    for name in names:
        vals = [s.get(f"{name}:{w:g}:{n}", {}).get("ode_rmse_max") for w, n in cols]
        if all(v is None for v in vals):
            continue  # stochastic samplers have no deterministic limit to compare with
        lines.append(f"| `{name}` | " + " | ".join(
            "–" if v is None else f"{v:.3f}" for v in vals) + " |")  # fmt: skip
    return head + "\n".join(lines)


def _guidance_reference_gap(w: float) -> str:
    gaps = [r["ce_gap"] for r in results("guidance")["rows"]
            if r["sampler"] == "reference" and r["w"] == w]  # fmt: skip
    return f"{min(gaps):+.2f} to {max(gaps):+.2f}"


#: Derived claims: name -> function returning the rendered text.
DERIVED: dict[str, Callable[[], str]] = {
    "four_views.table_1d": lambda: _four_views_table("1d"),
    "four_views.table_2d": lambda: _four_views_table("2d"),
    "four_views.identity_max": lambda: _sci(max(
        s["identity_max_diff"] for m in results("four_views")["mixtures"].values()
        for s in m["series"])),  # fmt: skip
    "likelihood.table": _likelihood_table,
    "guidance.table": _guidance_table,
    "guidance.ref_gap_w0": lambda: _guidance_reference_gap(0.0),
    "guidance.ref_gap_w7": lambda: _guidance_reference_gap(7.0),
    "likelihood.hutchinson_slope_2": lambda: f"{_hutchinson_slope('2'):.2f}",
    "likelihood.hutchinson_slope_16": lambda: f"{_hutchinson_slope('16'):.2f}",
    "sde_comparison.sw2_min_200": lambda: f"{_sde_comparison_range(200)[0]:.3f}",
    "sde_comparison.sw2_max_200": lambda: f"{_sde_comparison_range(200)[1]:.3f}",
    "ddpm_ddim_convergence.beta_slope": lambda: f"{_ddpm_beta_slope():.2f}",
    "few_step_defaults.table": _few_step_table,
    "few_step_defaults.recommended": _few_step_recommended,
    "few_step_defaults.recommended_learned": lambda: _few_step_recommended("recommended_learned"),
    "few_step_defaults.targets": _few_step_targets,
    "few_step_defaults.ablation": _few_step_ablation,
    "few_step_defaults.beyond": _few_step_beyond,
    "few_step_defaults.oracle": _few_step_oracle,
    "few_step_defaults.oracle_count": _few_step_oracle_count,
    "few_step_defaults.train": lambda: _few_step_problems("train"),
    "few_step_defaults.held_out": lambda: _few_step_problems("held_out_problems"),
    "few_step_defaults.test": lambda: _few_step_problems("test_problems"),
    "few_step_defaults.cpu_min": lambda: f"{results('few_step_defaults')['cpu_s'] / 60:.1f}",
    "few_step_defaults.diag_cpu_min": lambda: (
        f"{results('few_step_defaults')['diagnostics_cpu_s'] / 60:.1f}"
    ),
    "sampler_peers.table": _peers_table,
    "sampler_peers_test.table": lambda: _peers_table("sampler_peers_test"),
    "sampler_peers.cpu_min": lambda: f"{results('sampler_peers')['meta']['cpu_s'] / 60:.1f}",
    "ddpm_ddim_convergence.identity_min": lambda: _sci(
        min(r["max_diff_beta_tilde"] for r in results("ddpm_ddim_convergence")["identity"])),
    "sampler_study.best_table": _study_best_table,
    "sampler_study.coverage_table": _study_coverage_table,
    "sampler_study.floor_z_hits": lambda: _calibration("below_floor", 1),
    "sampler_study.tie_z_hits": lambda: _calibration("above_floor", 1),
    "ddpm_ddim_convergence.identity_max": lambda: _sci(
        max(r["max_diff_beta_tilde"] for r in results("ddpm_ddim_convergence")["identity"])),
}  # fmt: skip


def render(spec: str) -> str:
    """The text of one claim ``spec`` ('EXP|PATH|FMT' or '=NAME')."""
    spec = spec.strip()
    if spec.startswith("="):
        name = spec[1:]
        if name not in DERIVED:
            raise ValueError(f"unknown derived claim {name!r}; expected one of {sorted(DERIVED)}")
        text = DERIVED[name]()
        return f"\n\n{text}\n\n" if "\n" in text else text
    parts = spec.split("|")
    if len(parts) != 3:
        raise ValueError(f"claim spec must be 'EXP|PATH|FMT' or '=NAME', received {spec!r}")
    exp, path, fmt = parts
    return format(lookup(exp, path), fmt)


def process(text: str) -> tuple[str, list[tuple[str, str, str]]]:
    """``text`` with every claim re-rendered, and the (spec, old, new) triples that changed."""
    changed = []

    def sub(m: re.Match) -> str:
        new = render(m["spec"])
        if m["body"] != new:
            changed.append((m["spec"], m["body"], new))
        return f"<!--claim {m['spec']}-->{new}<!--/claim-->"

    return PATTERN.sub(sub, text), changed


def pages() -> list[Path]:
    """Every markdown page under docs/."""
    return sorted(DOCS.rglob("*.md"))


def main(argv: list[str] | None = None) -> int:
    """Rewrite (default) or ``--check`` every claim in docs/; return the exit status."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="report stale claims, write nothing")
    args = p.parse_args(argv)
    stale = []
    for page in pages():
        text = page.read_text()
        new, changed = process(text)
        stale += [(page.relative_to(ROOT), *c) for c in changed]
        if changed and not args.check:
            page.write_text(new)
    for page, spec, old, new in stale:
        print(f"{page}: {spec}: {old.strip()!r} -> {new.strip()!r}")
    return 1 if (stale and args.check) else 0


if __name__ == "__main__":
    sys.exit(main())
