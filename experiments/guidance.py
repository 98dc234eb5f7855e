"""Guided sampling on exact labelled mixtures: every sampler, guidance weights 0-7, NFE 5-50.

For each problem (a labelled 2-D mixture, VP SDE) and guidance weight w, the classifier-free
guided field (1 + w) s(x, t | y) - w s(x, t) is exact, so every error is the sampler's. Two
distances are measured per sampler, NFE and w, from the same prior draws:

- ``ode_rmse``: deterministic samplers' endpoint error against the guided PF-ODE's own limit,
  the adaptive solve (dopri5, rtol = atol = 1e-8) from the same x_T; a solver that is unstable
  at large w shows up here first (Lu et al. 2022b, DPM-Solver++, Sec. 3);
- ``ce_gap``: mean -log q(x) - H(q) against the tilted target q ∝ p(x | y)^(1+w) p(x)^(-w)
  (normalised by quadrature): zero for exact samples of q, so even the reference ODE has a
  non-zero gap for w > 0 (guidance does not sample q; docs/concepts/guidance.md).

No setting is chosen here: every sampler runs at its registered defaults (``sample(name, sde,
score_fn, x_T, nfe)``). Run: ``python experiments/guidance.py [--fast]``.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

import torch

from scoresde import VPSDE, GaussianMixture, sample
from scoresde.conditional import LabeledMixture
from scoresde.samplers import SAMPLERS, get_sampler

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parse_args, plt, save_fig, save_json  # noqa: E402

WEIGHTS = [0.0, 1.0, 3.0, 7.0]
NFES = [5, 10, 20, 50]


def problems(seed: int, count: int) -> list[LabeledMixture]:
    """Random labelled 2-D mixtures: 4-6 components in two classes, anisotropic, unequal weights."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(count):
        k = int(torch.randint(4, 7, (1,), generator=g))
        w = torch.rand(k, generator=g, dtype=torch.float64) + 0.3
        mu = torch.randn(k, 2, generator=g, dtype=torch.float64) * 1.5
        a = torch.randn(k, 2, 2, generator=g, dtype=torch.float64) * 0.3
        cov = a @ a.transpose(1, 2) + 0.02 * torch.eye(2, dtype=torch.float64)
        labels = [i % 2 for i in range(k)]
        out.append(LabeledMixture(GaussianMixture(w / w.sum(), mu, cov, sde=VPSDE()), labels))
    return out


def run(
    lm: LabeledMixture,
    n: int,
    seed: int,
    names: list[str],
    weights: list[float],
    nfes: list[int],
    points: int | None,
) -> list[dict[str, Any]]:
    sde, rows = lm.sde, []
    assert sde is not None
    x_T = sde.prior_sample((n, 2), torch.Generator().manual_seed(seed), dtype=torch.float64)
    grid = torch.tensor([sde.T, sde.eps], dtype=torch.float64)
    for w in weights:
        field, target = lm.guided_score(1, w), lm.tilted(1, w, points=points)
        ref, info = sample("pf_adaptive", sde, field, x_T, grid, rtol=1e-8, atol=1e-8)
        rows.append({"sampler": "reference", "w": w, "nfe": info.nfe, "ode_rmse": 0.0,
                     "ce_gap": target.cross_entropy_gap(ref)})  # fmt: skip
        for name in names:
            det = not get_sampler(name).stochastic
            for nfe in nfes:
                gen = torch.Generator().manual_seed(seed + 1)
                try:
                    x, info = sample(name, sde, field, x_T, nfe, generator=gen)
                except ValueError as err:  # an NFE below the sampler's minimum
                    rows.append({"sampler": name, "w": w, "nfe": nfe, "error": str(err)})
                    continue
                ok = bool(torch.isfinite(x).all())
                rmse = float((x - ref).pow(2).sum(1).mean().sqrt()) if det and ok else None
                gap = target.cross_entropy_gap(x) if ok else math.inf
                rows.append({"sampler": name, "w": w, "nfe": info.nfe, "ode_rmse": rmse,
                             "ce_gap": gap})  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args("guidance", __doc__.splitlines()[0], argv)
    started = time.perf_counter()
    torch.set_num_threads(1)
    names = [k for k, s in SAMPLERS.items() if not s.adaptive and s.supports(VPSDE())]
    if args.fast:
        names = ["ddim", "dpm_solver_2", "dpm_solver_pp_2m"]
    n, count, points = (100, 1, 101) if args.fast else (1000, 2, None)
    weights, nfes = ([0.0, 7.0], [5, 20]) if args.fast else (WEIGHTS, NFES)
    rows: list[dict[str, Any]] = []
    for p, lm in enumerate(problems(args.seed, count)):
        for r in run(lm, n, args.seed + 100 * p, names, weights, nfes, points):
            rows.append({"problem": p, **r})
    summary = _summary(rows, names, weights, nfes)
    figures = [_figure(summary, names, weights, nfes, args.out)]
    results = {"experiment": "guidance", "fast": args.fast, "seed": args.seed, "n": n,
               "problems": count, "weights": weights, "nfes": nfes, "threads": 1,
               "summary": summary, "rows": rows, "figures": figures}  # fmt: skip
    save_json(results, args.out, started)
    return results


def _summary(
    rows: list[dict[str, Any]], names: list[str], weights: list[float], nfes: list[int]
) -> dict[str, Any]:
    """Worst-case over problems of the ODE error, per sampler, w and NFE."""
    out: dict[str, Any] = {}
    for name in names:
        for w in weights:
            for nfe in nfes:
                sel = [r for r in rows if r["sampler"] == name and r["w"] == w
                       and r.get("nfe") is not None and "error" not in r
                       and abs(r["nfe"] - nfe) <= 1]  # fmt: skip
                if not sel:
                    continue
                rm = [r["ode_rmse"] for r in sel]
                key = f"{name}:{w:g}:{nfe}"
                out[key] = {
                    "ode_rmse_max": None if None in rm else max(rm),
                    "ce_gap_mean": sum(r["ce_gap"] for r in sel) / len(sel),
                }
    return out


def _figure(
    summary: dict[str, Any], names: list[str], weights: list[float], nfes: list[int], out: Any
) -> str:
    pyplot = plt()
    fig, axes = pyplot.subplots(1, len(weights), figsize=(4 * len(weights), 3.6), sharey=True)
    markers = "os^vD<>ph*Xd"
    for ax, w in zip(axes, weights):
        for i, name in enumerate(names):
            pts = [(nfe, summary.get(f"{name}:{w:g}:{nfe}", {}).get("ode_rmse_max"))
                   for nfe in nfes]  # fmt: skip
            pts = [(a, b) for a, b in pts if b is not None and math.isfinite(b)]
            if pts:
                ax.plot(*zip(*pts), marker=markers[i % len(markers)], ms=4, lw=1, label=name,
                        color=f"C{i % 10}", ls="-" if i < 10 else "--")  # fmt: skip
        ax.set(xscale="log", yscale="log", title=f"guidance w = {w:g}", xlabel="NFE")
        ax.set_xticks(nfes, [str(v) for v in nfes])
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("endpoint RMSE vs guided ODE (worst problem)")
    axes[-1].legend(fontsize=6, loc="lower left")
    fig.tight_layout()
    return save_fig(fig, out, "ode_error")


if __name__ == "__main__":
    main()
