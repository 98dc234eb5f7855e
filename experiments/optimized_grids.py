"""Optimized time grids against the best fixed grid, on held-out starting points.

For DDIM and DPM-Solver++(2M) at NFE 5, 10, 20 on a 2-D ('8gaussians') and a 16-D Gaussian
mixture under VP (eps = 1e-3), :func:`scoresde.samplers.optimize_grid` fits the grid on 512
calibration prior draws (teacher: the same sampler at 500 NFE on a log-SNR grid). Everything
is then measured on 2000 *held-out* prior draws:

* RMSE per dimension to the teacher solution from the same x_T (what was optimized);
* CE gap = mean(-log p0(x)) - H(p0) under the exact density (which was *not* used).

The best fixed grid is the best of uniform / quadratic / log-SNR / Karras on the same held-out
points and metric. Every run uses the sampler's few-step defaults (end time, final step,
lower-order final steps: ``plan_for_nfe``), the optimized grid included. Figures: ``gain.png`` (held-out RMSE against NFE, each fixed kind and the
optimized grid) and ``grids.png`` (where the points go, in log-SNR). The optimized grids are
saved as JSON next to results.json (``--grid`` of ``scoresde sample``/``compare``).

Run: ``python experiments/optimized_grids.py [--fast] [--out DIR]``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parse_args, plt, save_fig, save_json  # noqa: E402

from scoresde.analytic import GaussianMixture  # noqa: E402
from scoresde.data.toy import eight_gaussians_mixture  # noqa: E402
from scoresde.samplers import GRIDS, grid_for_nfe, optimize_grid, plan_for_nfe, sample  # noqa: E402
from scoresde.sde import VPSDE  # noqa: E402

F64 = torch.float64
SAMPLERS = ("ddim", "dpm_solver_pp_2m")


def mixtures() -> dict[int, GaussianMixture]:
    """2-D: 8 Gaussians on a circle; 16-D: 4 diagonal components with random means."""
    g = torch.Generator().manual_seed(16)
    mu = 1.5 * torch.randn(4, 16, generator=g, dtype=F64)
    var = 0.1 + 0.4 * torch.rand(4, 16, generator=g, dtype=F64)
    return {2: eight_gaussians_mixture(), 16: GaussianMixture([0.1, 0.2, 0.3, 0.4], mu, var)}


def measure(sde, gm, sampler, grid, opts, x_T, teacher, entropy) -> dict:
    """Held-out RMSE to the teacher and CE gap of the sampler on ``grid`` with ``opts``."""
    x, info = sample(sampler, sde, gm, x_T, grid, **opts)
    rmse = float((x - teacher).square().mean().sqrt())
    return {"rmse": rmse, "ce_gap": float(-gm.log_prob(x).mean()) - entropy, "nfe": info.nfe}


def run_case(sde, gm, sampler, nfe, cal, held, teacher, entropy, cfg, seed) -> dict:
    fixed = {k: measure(sde, gm, sampler, *plan_for_nfe(sde, sampler, nfe, k), held, teacher,
                        entropy) for k in GRIDS}  # fmt: skip
    started = time.perf_counter()
    og = optimize_grid(sde, gm, sampler, nfe, cal, max_evals=cfg["evals"],
                       teacher_nfe=cfg["teacher_nfe"], seed=seed)  # fmt: skip
    seconds = time.perf_counter() - started
    opt = measure(sde, gm, sampler, og.times, og.options, held, teacher, entropy)
    best = min(fixed, key=lambda k: fixed[k]["rmse"])
    return {"sampler": sampler, "nfe": nfe, "fixed": fixed, "best_fixed": best,
            "optimized": opt, "gain_rmse": fixed[best]["rmse"] / opt["rmse"],
            "times": og.times.tolist(), "start_kind": og.info["start_kind"],
            "evals": og.info["evals"], "seconds": seconds, "grid": og}  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    args = parse_args("optimized_grids", __doc__.splitlines()[0], argv)
    started = time.perf_counter()
    torch.manual_seed(args.seed)
    cfg = ({"dims": (2,), "nfes": (5, 10), "m": 64, "held": 256, "evals": 20, "teacher_nfe": 100}
           if args.fast else
           {"dims": (2, 16), "nfes": (5, 10, 20), "m": 512, "held": 2000, "evals": 300,
            "teacher_nfe": 500})  # fmt: skip
    sde = VPSDE(eps=1e-3)
    cases = []
    for dim in cfg["dims"]:
        gm = mixtures()[dim].with_sde(sde)
        gen = torch.Generator().manual_seed(args.seed)
        cal = sde.prior_sample((cfg["m"], dim), gen).to(F64)
        held = sde.prior_sample((cfg["held"], dim), gen).to(F64)
        entropy = float(-gm.log_prob(gm.sample(100_000, gen)).mean())
        for sampler in SAMPLERS:
            fine, opts = plan_for_nfe(sde, sampler, cfg["teacher_nfe"], "log_snr", exact=False)
            teacher, _ = sample(sampler, sde, gm, held, fine, **opts)  # as optimize_grid's
            for nfe in cfg["nfes"]:
                case = run_case(sde, gm, sampler, nfe, cal, held, teacher, entropy, cfg, args.seed)
                case["dim"] = dim
                name = f"{sampler}_nfe{nfe}_{dim}d.json"
                case.pop("grid").save(args.out / name)
                case["file"] = name
                cases.append(case)
                print(f"{dim:2d}-D {sampler:17s} NFE {nfe:2d}: best fixed {case['best_fixed']} "
                      f"RMSE {case['fixed'][case['best_fixed']]['rmse']:.4f} -> optimized "
                      f"{case['optimized']['rmse']:.4f} (x{case['gain_rmse']:.2f}), CE gap "
                      f"{case['fixed'][case['best_fixed']]['ce_gap']:+.3f} -> "
                      f"{case['optimized']['ce_gap']:+.3f}", flush=True)  # fmt: skip
    figures = [plot_gain(cases, args.out), plot_grids(cases, sde, args.out)]
    res = {"fast": args.fast, "config": cfg, "cases": cases, "figures": figures}
    save_json(res, args.out, started)
    return res


def plot_gain(cases, out: Path) -> str:
    pyplot = plt()
    keys = sorted({(c["dim"], c["sampler"]) for c in cases})
    fig, axes = pyplot.subplots(1, len(keys), figsize=(3.6 * len(keys), 3.2), squeeze=False)
    for ax, (dim, sampler) in zip(axes[0], keys, strict=True):
        mine = sorted((c for c in cases if (c["dim"], c["sampler"]) == (dim, sampler)),
                      key=lambda c: c["nfe"])  # fmt: skip
        nfes = [c["nfe"] for c in mine]
        for kind in GRIDS:
            ax.plot(nfes, [c["fixed"][kind]["rmse"] for c in mine], "--", alpha=0.7, label=kind)
        ax.plot(nfes, [c["optimized"]["rmse"] for c in mine], "ko-", label="optimized")
        ax.set(xscale="log", yscale="log", xlabel="NFE", title=f"{sampler}, {dim}-D")
        ax.set_xticks(nfes, [str(n) for n in nfes])
        ax.tick_params(axis="x", which="minor", labelbottom=False)
    axes[0][0].set_ylabel("held-out RMSE to teacher")
    axes[0][0].legend(fontsize=7)
    return save_fig(fig, out, "gain")


def plot_grids(cases, sde, out: Path) -> str:
    pyplot = plt()
    fig, ax = pyplot.subplots(figsize=(6.5, 3.2))
    mid = sorted({c["nfe"] for c in cases})[len({c["nfe"] for c in cases}) // 2]
    rows = [c for c in cases if c["nfe"] == mid]
    for k, c in enumerate(rows):
        lam_opt = sde.log_snr(torch.tensor(c["times"], dtype=F64))
        fixed = grid_for_nfe(sde, c["sampler"], c["nfe"], c["best_fixed"])
        ax.plot(lam_opt, [k + 0.15] * len(lam_opt), "k|", ms=12)
        ax.plot(sde.log_snr(fixed), [k - 0.15] * len(fixed), "|", color="C1", ms=12)
    ax.set_yticks(range(len(rows)), [f"{c['sampler']} {c['dim']}-D" for c in rows])
    ax.set(xlabel="log-SNR lambda(t)", title=f"NFE {mid}: optimized (black) vs best fixed (orange)")
    return save_fig(fig, out, "grids")


if __name__ == "__main__":
    main()
