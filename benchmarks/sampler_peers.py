"""scoresde's samplers next to k-diffusion's and diffusers', with the exact score of mixtures.

On 2-D (8 Gaussians on a circle), 16-D and 64-D Gaussian mixtures under VP (beta 0.1..20,
eps = 1e-3), every sampler starts from the *same* standard normal draws and gets the exact score
(peers through a denoiser / eps-model wrapper of :class:`GaussianMixture`, see ``_peers.py``).
At NFE 5, 10, 20, 50 (each sampler spends at most the budget; the table gives what it spent):

* sliced W2 to as many exact samples (256 projections, the same for everyone);
* CE gap = mean(-log p0(x)) - H(p0), in nats, H from 100k exact samples; an "exact" row scores
  fresh exact samples, which gives the noise level of the gap.

scoresde samplers run on their registry defaults (grid kind, options), and ``<name>+opt`` on a
grid from ``optimize_grid`` (fitted per NFE on 512 other prior draws, no density used); peers on
their own
(Karras sigmas for k-diffusion, each scheduler's defaults for diffusers). Peers come from the
optional extra ``pip install -e ".[bench]"`` (k-diffusion with ``--no-deps``); a missing peer
is skipped. Writes ``table.md``, ``results.json`` and ``quality_vs_nfe.png`` to ``--out`` and
prints the targets of issue 9 (met or not).

    python benchmarks/sampler_peers.py [--n 4000] [--dims 2,16,64] [--threads 1] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _peer_report import check_targets, plot, write_tables  # noqa: E402
from _peers import peer_runners  # noqa: E402

from scoresde import VPSDE, GaussianMixture  # noqa: E402
from scoresde.data.toy import eight_gaussians_mixture  # noqa: E402
from scoresde.metrics import sliced_wasserstein  # noqa: E402
from scoresde.samplers import SAMPLERS, optimize_grid, plan_for_nfe, sample  # noqa: E402

NFES = (5, 10, 20, 50)


def mixture(dim: int) -> GaussianMixture:
    """2-D: the '8gaussians' set; 16-D / 64-D: 4 diagonal components with random means."""
    if dim == 2:
        return eight_gaussians_mixture()
    g = torch.Generator().manual_seed(dim)
    means = 1.5 * torch.randn(4, dim, generator=g, dtype=torch.float64)
    var = 0.1 + 0.4 * torch.rand(4, dim, generator=g, dtype=torch.float64)
    return GaussianMixture([0.1, 0.2, 0.3, 0.4], means, var)


def scoresde_runners(sde, gm) -> dict:
    """Every fixed-step registered sampler that supports VP, on its default grid and options."""

    def runner(name):
        def run(z, nfe, seed):
            grid, opts = plan_for_nfe(sde, name, nfe, exact=False)  # the sampler's defaults
            gen = torch.Generator().manual_seed(seed)
            x, info = sample(name, sde, gm, z, grid, generator=gen, **opts)
            return x, info.nfe

        return run

    return {name: (runner(name), spec.stochastic, spec.order) for name, spec in SAMPLERS.items()
            if not spec.adaptive and name != "torchsde" and spec.supports(sde)}  # fmt: skip


def optimized_runners(sde, gm, names, seed) -> dict:
    """``<name>+opt``: the sampler on a grid from ``optimize_grid`` per NFE (512 calibration
    prior draws, independent of the benchmark's starting noise; teacher at 500 NFE)."""

    def runner(name):
        def run(z, nfe, _seed):
            cal = torch.randn(512, z.shape[1], generator=torch.Generator().manual_seed(seed + 5))
            og = optimize_grid(sde, gm, name, nfe, cal.double(), max_evals=300, seed=seed)
            x, info = og.sample(sde, gm, z)
            return x, info.nfe

        return run

    return {f"{n}+opt": (runner(n), False, SAMPLERS[n].order) for n in names}


def score(x, gm, ref, entropy, seed) -> dict:
    """Sliced W2 to the reference samples and the CE gap (with its standard error)."""
    x = x.to(torch.float64)
    if not bool(torch.isfinite(x).all()):
        return {"sw2": math.inf, "ce_gap": math.inf, "ce_se": math.nan}
    nll = -gm.log_prob(x)
    gen = torch.Generator().manual_seed(seed)
    return {"sw2": sliced_wasserstein(x, ref, 256, generator=gen),
            "ce_gap": float(nll.mean()) - entropy, "ce_se": float(nll.std()) / len(x) ** 0.5}  # fmt: skip


def study(dim: int, n: int, nfes, seed: int, log, opt=()) -> list[dict]:
    sde = VPSDE(eps=1e-3)
    gm = mixture(dim).with_sde(sde)
    z = torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))  # shared x_T
    ref = gm.sample(n, torch.Generator().manual_seed(seed + 1))
    entropy = float(
        -gm.log_prob(gm.sample(100_000, torch.Generator().manual_seed(seed + 2))).mean()
    )
    exact = score(gm.sample(n, torch.Generator().manual_seed(seed + 3)), gm, ref, entropy, seed)
    rows = [{"dim": dim, "family": "exact", "sampler": "exact samples", "stochastic": True,
             "order": None, "nfe_target": None, "nfe": 0, "seconds": 0.0, "error": "", **exact}]  # fmt: skip
    runners = {k: ("scoresde", *v) for k, v in scoresde_runners(sde, gm).items()}
    runners.update({k: ("scoresde", *v) for k, v in optimized_runners(sde, gm, opt, seed).items()})
    for k, (run, sto) in peer_runners(sde, gm).items():
        runners[k] = ("k-diffusion" if k.startswith("k:") else "diffusers", run, sto, None)
    for name, (family, run, sto, order) in runners.items():
        for nfe in nfes:
            row = {"dim": dim, "family": family, "sampler": name, "stochastic": sto,
                   "order": order, "nfe_target": nfe}  # fmt: skip
            start = time.perf_counter()
            try:
                with torch.no_grad(), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    x, used = run(z.to(torch.float32), nfe, seed + 4)
                row.update(nfe=used, error="", **score(x, gm, ref, entropy, seed))
            except Exception as err:  # noqa: BLE001 - a failing run is a result
                msg = str(err).splitlines()[0][:120] if str(err) else type(err).__name__
                row.update(nfe=None, error=msg, sw2=math.inf, ce_gap=math.inf, ce_se=math.nan)
            row["seconds"] = time.perf_counter() - start
            rows.append(row)
            log(f"{dim:3d}-D {name:28s} NFE {nfe:3d}: spent {row['nfe']}, SW2 {row['sw2']:.4g}, "
                f"CE gap {row['ce_gap']:+.4g} {row['error']}")  # fmt: skip
    return rows


def peer_versions() -> str:
    """Installed peer versions, e.g. 'k-diffusion 0.1.1, diffusers 0.42.1' ('none' if missing)."""
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in ("k-diffusion", "diffusers"):
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            pass
    return ", ".join(found) or "none"


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=4000, help="samples per run (default 4000)")
    p.add_argument("--dims", default="2,16,64", help="comma list of dimensions")
    p.add_argument("--nfe", default=",".join(map(str, NFES)), help="comma list of NFEs")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("runs/sampler_peers"))
    p.add_argument("--optimized", default="dpm_solver_pp_2m",
                   help="comma list of samplers also run on an optimized grid ('' for none)")  # fmt: skip
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    dims = [int(v) for v in args.dims.split(",")]
    nfes = [int(v) for v in args.nfe.split(",")]
    log = (lambda m: None) if args.quiet else (lambda m: print(m, flush=True))
    started = time.perf_counter()
    opt = [v for v in args.optimized.split(",") if v]
    rows = [r for d in dims for r in study(d, args.n, nfes, args.seed, log, opt)]
    targets = check_targets(rows, nfes)
    meta = {"n": args.n, "threads": args.threads, "seed": args.seed, "dims": dims, "nfes": nfes,
            "seconds": time.perf_counter() - started, "torch": torch.__version__,
            "peers": peer_versions()}  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    clean = [{k: (None if isinstance(v, float) and not math.isfinite(v) else v)
              for k, v in r.items()} for r in rows]  # fmt: skip
    (args.out / "results.json").write_text(json.dumps({"meta": meta, "targets": targets,
                                                       "rows": clean}, indent=1))  # fmt: skip
    write_tables(rows, targets, meta, args.out / "table.md")
    plot(rows, args.out / "quality_vs_nfe.png")
    for t in targets:
        print(("MET   " if t["met"] else "MISSED") + f"  {t['target']}: {t['detail']}")
    print(f"wrote {args.out}/table.md, results.json, quality_vs_nfe.png "
          f"({meta['seconds']:.0f} s, {args.threads} thread(s))")  # fmt: skip
    return {"meta": meta, "targets": targets, "rows": rows}


if __name__ == "__main__":
    main()
