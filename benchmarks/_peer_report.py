"""Targets, Markdown tables and the plot of ``sampler_peers.py``."""

from __future__ import annotations

import math
from pathlib import Path

PEERS = ("k-diffusion", "diffusers")
#: Issue 9: |CE gap| at NFE 10 by dimension.
CE_AT_10 = {2: 0.05, 16: 0.1, 64: 0.3}


def _ok(r: dict) -> bool:
    return not r["error"] and math.isfinite(r["ce_gap"])


def _best(rows: list[dict], key: str = "ce_gap") -> dict | None:
    ok = [r for r in rows if _ok(r)]
    return min(ok, key=lambda r: abs(r[key])) if ok else None


def _sel(rows, dim, nfe=None, family=None, deterministic=None):
    return [r for r in rows if r["dim"] == dim and (nfe is None or r["nfe_target"] == nfe)
            and (family is None or r["family"] in family)
            and (deterministic is None or r["stochastic"] != deterministic)]  # fmt: skip


def check_targets(rows: list[dict], nfes: list[int]) -> list[dict]:
    """The targets of issue 9, each ``{"target", "dim", "met", "detail"}`` (met None: untested)."""
    out = []
    for dim in sorted({r["dim"] for r in rows}):
        noise = 2 * _sel(rows, dim, family=("exact",))[0]["ce_se"]
        bad = []
        for nfe in [n for n in nfes if n >= 5]:
            ours = _sel(rows, dim, nfe, ("scoresde",), deterministic=True)
            first = [r["sw2"] for r in ours if r["order"] == 1.0 and _ok(r)]
            if first:
                bad += [f"{r['sampler']}@{nfe} ({r['sw2']:.3g} > 2 x {min(first):.3g})"
                        for r in ours if not r["sw2"] <= 2 * min(first)]  # fmt: skip
        out.append({"target": "no blow-ups (deterministic SW2 <= 2x best first-order)", "dim": dim,
                    "met": not bad, "detail": "; ".join(bad) or "none"})  # fmt: skip
        for nfe in [n for n in (5, 10, 20) if n in nfes]:
            ours = _best(_sel(rows, dim, nfe, ("scoresde",)))
            peer = _best(_sel(rows, dim, nfe, PEERS))
            if ours is None or peer is None:
                met, detail = None, "no peer ran" if ours else "no scoresde sampler ran"
            else:
                a, b = abs(ours["ce_gap"]), abs(peer["ce_gap"])
                met = b >= 2 * a or a <= noise
                detail = (f"{ours['sampler']} {ours['ce_gap']:+.3f} vs {peer['sampler']} "
                          f"{peer['ce_gap']:+.3f} (noise {noise:.3f})")  # fmt: skip
            out.append({"target": f"best scoresde beats best peer 2x in |CE gap| at NFE {nfe}",
                        "dim": dim, "met": met, "detail": detail})  # fmt: skip
        if 10 in nfes and dim in CE_AT_10:
            ours = _best(_sel(rows, dim, 10, ("scoresde",)))
            met = ours is not None and abs(ours["ce_gap"]) <= CE_AT_10[dim]
            detail = f"{ours['sampler']} {ours['ce_gap']:+.3f}" if ours else "none ran"
            out.append({"target": f"|CE gap| <= {CE_AT_10[dim]} at NFE 10", "dim": dim,
                        "met": met, "detail": detail})  # fmt: skip
    return out


def _cell(r: dict | None) -> str:
    if r is None:
        return ""
    if r["error"] or not math.isfinite(r["ce_gap"]):
        return "fails"
    return f"{r['ce_gap']:+.3f} ({r['sw2']:.3g})"


def summary_table(rows: list[dict]) -> str:
    """'Which sampler at which budget': the best of each family per dimension and NFE."""
    lines = ["| dim | NFE | best scoresde (deterministic) | best scoresde (any) | best k-diffusion "
             "| best diffusers | exact samples |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for dim in sorted({r["dim"] for r in rows}):
        exact = _sel(rows, dim, family=("exact",))[0]
        for nfe in sorted({r["nfe_target"] for r in rows if r["nfe_target"]}):
            cells = []
            for fam, det in ((("scoresde",), True), (("scoresde",), None), (("k-diffusion",), None),
                             (("diffusers",), None)):  # fmt: skip
                b = _best(_sel(rows, dim, nfe, fam, det))
                cells.append(f"`{b['sampler']}` {_cell(b)}" if b else "—")
            lines.append(f"| {dim} | {nfe} | " + " | ".join(cells)
                         + f" | {exact['ce_gap']:+.3f} ± {exact['ce_se']:.3f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def write_tables(rows: list[dict], targets: list[dict], meta: dict, path: Path) -> None:
    """table.md: the summary, the targets, and every sampler's CE gap (SW2) per NFE."""
    nfes = meta["nfes"]
    text = [f"# Sampler peers: CE gap in nats (sliced W2) with the exact score\n\n"
            f"n = {meta['n']} samples per run, seed {meta['seed']}, {meta['threads']} thread(s), "
            f"torch {meta['torch']}, peers: {meta['peers']}, {meta['seconds']:.0f} s.\n\n"
            "## Best per family\n\n",
            summary_table(rows), "\n## Targets (issue 9)\n\n| target | dim | met | detail |\n"
            "|---|---|---|---|\n"]  # fmt: skip
    for t in targets:
        met = {True: "yes", False: "**no**", None: "n/a"}[t["met"]]
        target = t["target"].replace("|", "\\|")
        text.append(f"| {target} | {t['dim']} | {met} | {t['detail']} |\n")
    for dim in sorted({r["dim"] for r in rows}):
        text.append(f"\n## {dim}-D\n\n| sampler | family | NFE spent | "
                    + " | ".join(f"NFE {n}" for n in nfes) + " |\n|---|---|---|"
                    + "---|" * len(nfes) + "\n")  # fmt: skip
        names = dict.fromkeys(r["sampler"] for r in _sel(rows, dim) if r["nfe_target"])
        for name in names:
            mine = [r for r in _sel(rows, dim) if r["sampler"] == name]
            by = {r["nfe_target"]: r for r in mine}
            spent = ",".join(str(by[n]["nfe"]) for n in nfes if n in by)
            text.append(f"| `{name}` | {mine[0]['family']} | {spent} | "
                        + " | ".join(_cell(by.get(n)) for n in nfes) + " |\n")  # fmt: skip
    path.write_text("".join(text))


def plot(rows: list[dict], path: Path) -> None:
    """|CE gap| against NFE, best of each family, per dimension; the exact-sample noise band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dims = sorted({r["dim"] for r in rows})
    fig, axes = plt.subplots(1, len(dims), figsize=(4.2 * len(dims), 3.6), squeeze=False)
    for ax, dim in zip(axes[0], dims, strict=True):
        nfes = sorted({r["nfe_target"] for r in rows if r["nfe_target"]})
        for fam, det, style in ((("scoresde",), None, "o-"), (("scoresde",), True, "s--"),
                                (("k-diffusion",), None, "^-"), (("diffusers",), None, "v-")):  # fmt: skip
            ys = [_best(_sel(rows, dim, n, fam, det)) for n in nfes]
            if any(ys):
                label = fam[0] + (" (deterministic)" if det else "")
                ax.plot([n for n, y in zip(nfes, ys, strict=True) if y],
                        [max(abs(y["ce_gap"]), 1e-4) for y in ys if y], style, label=label)  # fmt: skip
        noise = 2 * _sel(rows, dim, family=("exact",))[0]["ce_se"]
        ax.axhspan(1e-4, noise, color="0.85", label="noise of exact samples")
        ax.set(xscale="log", yscale="log", xlabel="NFE", title=f"{dim}-D mixture, VP")
        ax.set_xticks(nfes, [str(n) for n in nfes])
        ax.tick_params(axis="x", which="minor", labelbottom=False)
    axes[0][0].set_ylabel("best |CE gap| (nats)")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
