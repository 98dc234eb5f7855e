"""scoresde's samplers next to k-diffusion's and diffusers', on held-out problems of the family.

Issue 21, item 6. The problems are the HELD-OUT members of the random-mixture family
(``benchmarks/_family.py``; nothing was chosen on them) under the default VP SDE (beta 0.1-20,
eps = 1e-5). Every sampler starts from the *same* standard normal draws and gets the exact
score (the peers through a denoiser or eps-model wrapper of the mixture, ``_peers.py``), in
float32. scoresde's samplers run at their defaults (``sample(name, sde, score, x_T, nfe)``:
the table of ``scoresde/samplers/defaults_table.py`` and the final Tweedie step) and ``auto`` is the
recommended sampler; k-diffusion runs on its Karras sigmas (rho = 7), each diffusers scheduler at
its own defaults. Each spends at most the budget.

A run scores its CE gap mean(-log p0(x)) - H(p0) (nats). Per NFE, the best of each side is the
sampler with the smallest mean |CE gap| over the problems (one sampler for all problems, so a
lucky draw on one problem does not pick it), and the printed ratio is

    ratio = mean |gap| of the best scoresde sampler / mean |gap| of the best peer

(the issue's target: <= 0.5 at NFE 5, 10 and 20). Peers come from the optional extra
``pip install -e ".[bench]"`` (k-diffusion with ``--no-deps``); a missing peer is skipped.

    nice python benchmarks/sampler_peers.py --threads 1 --out docs/experiments/sampler_peers
    nice python benchmarks/sampler_peers.py --threads 1 --seeds test \\
        --out docs/experiments/sampler_peers_test

``auto``'s sampler is chosen on the held-out seeds (``few_step_defaults.py``), so its ratio there
is optimistic; ``--seeds test`` runs the family's test seeds, on which nothing was chosen.
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
from _family import HELD_OUT_SEEDS, TEST_SEEDS, ce_gap, make_problem  # noqa: E402
from _peers import peer_runners  # noqa: E402

from scoresde.samplers import SAMPLERS, sample  # noqa: E402

NFES = (5, 10, 20)


def ours(sde, gm) -> dict:
    """Every fixed-step registered sampler that supports VP, and ``auto``, at their defaults."""

    def runner(name):
        def run(z, nfe, seed):
            gen = torch.Generator().manual_seed(seed)
            x, info = sample(name, sde, gm, z, nfe, generator=gen)
            return x, info.nfe

        return run

    names = [
        n for n, s in SAMPLERS.items() if not s.adaptive and n != "torchsde" and s.supports(sde)
    ]
    return {n: runner(n) for n in [*names, "auto"]}


def study(seed: int, n: int, log) -> list[dict]:
    """Rows (problem, family, sampler, NFE target, NFE spent, CE gap) of one held-out problem."""
    p = make_problem(seed, n)
    sde = p.sdes["vp"]
    gm = p.gm.with_sde(sde)
    z = p.x_T["vp"].to(torch.float32)  # the VP prior is N(0, I): the same draws for everyone
    runners = {k: ("scoresde", r) for k, r in ours(sde, gm).items()}
    for k, (r, _) in peer_runners(sde, gm).items():
        runners[k] = ("k-diffusion" if k.startswith("k:") else "diffusers", r)
    rows = []
    for name, (family, run) in runners.items():
        for nfe in NFES:
            row = {"problem": seed, "family": family, "sampler": name, "nfe_target": nfe}
            try:
                with torch.no_grad(), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    x, used = run(z, nfe, 4)
                row.update(nfe=int(used), ce_gap=ce_gap(p, x.to(torch.float64)), error="")
            except Exception as err:  # noqa: BLE001 - a failing run is a result
                row.update(nfe=None, ce_gap=math.inf, error=str(err).splitlines()[0][:120])
            rows.append(row)
        log(f"problem {seed} {name:30s} " + " ".join(f"{r['ce_gap']:+.3f}" for r in rows[-3:]))
    return rows


def best(rows: list[dict], families: tuple[str, ...], nfe: int) -> tuple[str, float]:
    """The sampler of ``families`` with the smallest mean |CE gap| at ``nfe``, and that mean."""
    means = {}
    for name in {r["sampler"] for r in rows if r["family"] in families}:
        gaps = [abs(r["ce_gap"]) for r in rows if r["sampler"] == name and r["nfe_target"] == nfe]
        means[name] = sum(gaps) / len(gaps)
    name = min(means, key=lambda k: means[k])
    return name, means[name]


def summary(rows: list[dict]) -> list[dict]:
    """Per NFE: best scoresde, auto, best peer, and the ratio (target <= 0.5)."""
    out = []
    for nfe in NFES:
        (o, om), (q, qm) = (
            best(rows, ("scoresde",), nfe),
            best(rows, ("k-diffusion", "diffusers"), nfe),
        )
        auto = [abs(r["ce_gap"]) for r in rows if r["sampler"] == "auto" and r["nfe_target"] == nfe]
        am = sum(auto) / len(auto)
        out.append({"nfe": nfe, "ours": o, "ours_mean": om, "auto_mean": am, "peer": q,
                    "peer_mean": qm, "ratio": om / qm, "auto_ratio": am / qm})  # fmt: skip
    return out


def peer_versions() -> str:
    """Installed peer versions ('none' if missing)."""
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
    p.add_argument("--n", type=int, default=1000, help="samples per run (default 1000)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--out", type=Path, default=Path("runs/sampler_peers"))
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--seeds", choices=("held-out", "test"), default="held-out",
                   help="the family's held-out seeds (default; where `auto` is chosen) or its "
                   "test seeds (where nothing is chosen)")  # fmt: skip
    args = p.parse_args(argv)
    seeds = HELD_OUT_SEEDS if args.seeds == "held-out" else TEST_SEEDS
    torch.set_num_threads(args.threads)
    log = (lambda m: None) if args.quiet else (lambda m: print(m, flush=True))
    started, cpu = time.perf_counter(), time.process_time()
    log(f"threads={args.threads}, n={args.n}, {args.seeds} seeds {seeds}, {peer_versions()}")
    rows = [r for s in seeds for r in study(s, args.n, log)]
    summ = summary(rows)
    meta = {"n": args.n, "threads": args.threads, "seeds": list(seeds), "seed_set": args.seeds,
            "peers": peer_versions(), "wall_s": time.perf_counter() - started,
            "cpu_s": time.process_time() - cpu}  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    clean = [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()}
             for r in rows]  # fmt: skip
    (args.out / "results.json").write_text(
        json.dumps({"meta": meta, "summary": summ, "rows": clean}, indent=1) + "\n"
    )
    for s in summ:
        print(f"NFE {s['nfe']:3d}: best scoresde {s['ours']} {s['ours_mean']:.3f}, auto "
              f"{s['auto_mean']:.3f}, best peer {s['peer']} {s['peer_mean']:.3f}: ratio "
              f"{s['ratio']:.2f} (auto {s['auto_ratio']:.2f}; target <= 0.5: "
              f"{'MET' if s['ratio'] <= 0.5 else 'MISSED'})")  # fmt: skip
    print(f"wrote {args.out}/results.json ({meta['cpu_s'] / 60:.1f} CPU-minutes, "
          f"{args.threads} thread)")  # fmt: skip
    return {"meta": meta, "summary": summ, "rows": rows}


if __name__ == "__main__":
    main()
