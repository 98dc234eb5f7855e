"""Choose every sampler's few-step defaults on training problems of a family; report held-out.

DESIGN contract 12, issue 21. The problems are random standardised Gaussian mixtures
(:func:`scoresde.data.family.random_mixture`: dimension 2-64, 2-10 components, unequal weights,
full anisotropic covariances, narrowest std log-uniform in [0.01, 0.5]) with their exact score,
under the library's default VP, sub-VP and VE SDEs (``benchmarks/_family.py``).

What is derived, not chosen: every run ends at ``sde.eps`` with a final Tweedie step (counted in
the NFE; docs/howto/sample.md, "The end of sampling"). What is chosen, per sampler, SDE kind and
NFE band (<= 10, 11-25, > 25), on the TRAINING seeds: the grid kind (uniform, quadratic, log-SNR,
Karras) and the sampler's own switches (``lower_order_final`` of DPM-Solver-2/3 and ++(2M), the
coordinates of the fixed-step PF-ODE solvers, DDPM's variance, the correctors' snr), then, on
that choice, the multistep solvers' order and ``lower_order_final`` (``REFINE``). A
configuration's score on a band is mean + 1/2 max of |CE gap| over the training problems,
averaged over the band's NFEs (5 and 10; 20; 50 and 100); a run that fails scores inf.

Then, on the HELD-OUT seeds, every sampler at its chosen defaults runs at NFE 5, 10, 20, 50 and
100, and the issue's targets are evaluated: (a) nothing raises, (b) |CE gap| at NFE 100 <= 0.25
(deterministic) / 0.4 (stochastic), (c) at NFE 10 no deterministic sampler above 1 nat. The
same held-out runs without the final Tweedie step (NFE 100, first two problems) show what it
removes. The sampler with the best held-out score (the same criterion) per SDE kind and band is
the one ``sample("auto", ...)`` runs for an exact score; the best stochastic one, for a learned
score (issue 21, item 5; docs/howto/sample.md). It is chosen there, not on the training seeds,
because every sampler's settings were tuned on those, and a sampler with more switches would
look better there than it is. ``auto`` is then reported on the TEST seeds, which play no part
in any choice.

Diagnostics of the misses, after that (not part of choosing or reporting, and timed apart:
``diagnostics_cpu_s``; ``--skip-diagnostics`` leaves them out, ``--diagnostics-only`` reruns
them on OUT/results.json): each miss of (b) at NFE 200 and 400 on the problem where it is worst
(does it converge?), and for each miss of (b) and (c) the least |CE gap| any candidate reaches
on that problem (``oracle``: picked on that problem, so a bound on what choosing defaults among
the candidates could do, not a choice).

    nice python benchmarks/few_step_defaults.py --threads 1 --jobs 2 \\
        --out docs/experiments/few_step_defaults --write-table

``--jobs`` runs samplers in parallel processes; the results do not depend on it, and the
CPU-minutes reported count every process.

``--write-table`` rewrites ``scoresde/samplers/defaults_table.py``; then
``python experiments/_claims.py`` regenerates the held-out tables of docs/howto/sample.md.
``dpm_solver_1`` (DDIM step for step) takes DDIM's choice and ``torchsde`` (Euler-Maruyama
through torchsde, one step per grid interval) Euler-Maruyama's; ``pf_adaptive`` has no NFE budget.

The targets at NFE 100 are tighter than the CE gap's noise at ``--n-test`` draws (its standard
error is 0.18 nats at n = 1000 on a 29-D held-out problem, and every converged solver shares it,
since they share the prior draws), so NFE 100 runs on ``--n-test-100`` draws (default 8,000).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _family import (  # noqa: E402
    HELD_OUT_SEEDS,
    TEST_SEEDS,
    TRAIN_SEEDS,
    Problem,
    make_problem,
    run,
    supported,
)

from scoresde.samplers import (  # noqa: E402
    GRIDS,
    SAMPLERS,
    defaults,  # noqa: E402
)
from scoresde.samplers.defaults import BANDS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SDE_KINDS = ("vp", "subvp", "ve")
BAND_NFES = {"<=10": (5, 10), "11-25": (20,), ">25": (50, 100)}
REPORT_NFES = (5, 10, 20, 50, 100)
SWITCHES: dict[str, dict[str, tuple[Any, ...]]] = {
    **{
        n: {"lower_order_final": (False, True)}
        for n in ("dpm_solver_2", "dpm_solver_3", "dpm_solver_pp_2m")
    },
    # the ODE's coordinates: t and x (Eq. 13) or sigma_t / alpha_t and x / alpha_t (EDM, Eq. 4)
    **{n: {"coords": ("t", "noise")} for n in ("pf_euler", "pf_heun", "pf_rk4")},
    # Ho et al. (2020), Sec. 3.2: the two variances optimal for a point mass / for N(0, I) data
    "ddpm": {"variance": ("beta_tilde", "beta")},
    # the corrector's signal-to-noise ratio (Song et al. 2021, Alg. 4 and 5)
    "pc": {"snr": (0.05, 0.16, 0.3)},
    "annealed_langevin": {"snr": (None, 0.05, 0.16)},
}
#: Switches chosen in a second stage, on the grid (and switches) the first stage chose: their
#: product with every grid would cost more than the 30 CPU-minutes the issue allows. Each value
#: is one its paper defines: UniPC's predictor order p and B(h) (Zhao et al. 2023, Sec. 3.1 and
#: 3.2: B1(h) = h, B2(h) = e^h - 1), DEIS's and iPNDM's number of eps values in the polynomial
#: (Zhang & Chen 2023, tAB-DEIS and iPNDM), and whether the multistep methods lower the order of
#: their last steps on short grids (Lu et al. 2022b, Sec. 5). Each axis lists the sampler's own
#: default first, so that a tie (``lower_order_final`` does nothing on 15 steps or more) keeps it.
REFINE: dict[str, dict[str, tuple[Any, ...]]] = {
    "unipc": {"order": (2, 1, 3), "variant": ("bh2", "bh1"), "lower_order_final": (True, False)},
    "deis": {"order": (3, 1, 2, 4), "lower_order_final": (True, False)},
    "ipndm": {"order": (4, 1, 2, 3), "lower_order_final": (True, False)},
    "dpm_solver_pp_3m": {"lower_order_final": (True, False)},
    "dpm_solver_pp_2m_sde": {"lower_order_final": (True, False)},
}
#: Samplers that copy another's choice instead of being swept (see the module docstring).
COPY = {"dpm_solver_1": "ddim", "torchsde": "euler_maruyama"}
SKIP = ("pf_adaptive",)
#: Grids that are no candidates: on them a trained, clipped eps-model loses paths at 10 NFE
#: (tests/test_eps_safety.py: 3 of 800 for the third-order singlestep solvers on the quadratic
#: grid), however well they do with the exact score.
EXCLUDE = {"dpm_solver_3": ("quadratic",), "dpm_solver_fast": ("quadratic",)}


def swept(only: list[str] | None = None) -> list[str]:
    """The samplers whose defaults the study chooses (all, or those of ``only``)."""
    return [n for n in SAMPLERS if n not in SKIP and n not in COPY and (not only or n in only)]


def _product(axes: dict[str, tuple[Any, ...]]) -> list[dict[str, Any]]:
    return [dict(zip(axes, v, strict=True)) for v in itertools.product(*axes.values())]


def configs(name: str) -> list[dict[str, Any]]:
    """Every first-stage candidate: grid kind x the sampler's own switches."""
    grids = tuple(k for k in GRIDS if k not in EXCLUDE.get(name, ()))
    return _product({"grid": grids, **SWITCHES.get(name, {})})


def refinements(name: str, first: dict[str, Any]) -> list[dict[str, Any]]:
    """Second-stage candidates: the first stage's choice x the product of ``REFINE[name]``."""
    return [first | r for r in _product(REFINE.get(name, {}))] if name in REFINE else []


def settings(cfg: dict[str, Any]) -> dict[str, Any]:
    """``sample`` keyword arguments of a table entry."""
    return {("grid_kind" if k == "grid" else k): v for k, v in cfg.items()}


def score(gaps: list[float]) -> float:
    """mean + 1/2 max of |gap| over problems (inf if any run failed)."""
    a = [abs(g) for g in gaps]
    return sum(a) / len(a) + 0.5 * max(a) if all(map(math.isfinite, a)) else math.inf


#: What the worker processes of ``--jobs`` read (set before they fork).
_STATE: dict[str, Any] = {}


def _pool_map(fn: Any, items: list[Any], jobs: int) -> list[Any]:
    """``[fn(i) for i in items]``, in ``jobs`` forked processes when jobs > 1."""
    if jobs <= 1 or len(items) <= 1:
        return [fn(i) for i in items]
    import multiprocessing as mp

    pool = mp.get_context("fork").Pool(min(jobs, len(items)))
    try:
        return pool.map(fn, items, chunksize=1)
    finally:  # reaped, so that their CPU time counts in os.times()' children
        pool.close()
        pool.join()


def cpu_seconds() -> float:
    """CPU seconds of this process and its reaped children (the ``--jobs`` workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _choose_one(name: str) -> tuple[str, dict, dict, float]:
    """One sampler's choice per SDE kind and band (first stage, then ``REFINE``)."""
    train = _STATE["train"]
    defaults.TABLE.clear()  # what a candidate leaves open is the sampler's default, not a table's
    t0 = time.perf_counter()
    table: dict[str, dict[str, dict[str, Any]]] = {}
    scores: dict[str, dict[str, float]] = {}
    for kind in (k for k in SDE_KINDS if supported(name, k)):
        for band, nfes in BAND_NFES.items():

            def train_score(cfg: dict[str, Any], kind: str = kind, nfes: tuple = nfes) -> float:
                per_nfe = [
                    score([run(p, name, kind, nfe, **settings(cfg))[1] for p in train])
                    for nfe in nfes
                ]
                return sum(per_nfe) / len(per_nfe)

            best = min(((train_score(c), c) for c in configs(name)), key=lambda b: b[0])
            if name in REFINE:  # the first refinement is the first stage's choice, made explicit
                best = min(
                    ((train_score(c), c) for c in refinements(name, best[1])), key=lambda b: b[0]
                )
            table.setdefault(kind, {})[band] = best[1]
            scores.setdefault(kind, {})[band] = best[0]
    return name, table, scores, time.perf_counter() - t0


def choose(
    train: list[Problem], log: Any, only: list[str] | None = None, jobs: int = 1
) -> tuple[dict, dict]:
    """TABLE[name][sde][band] and the training score of each choice.

    A sampler in :data:`REFINE` is chosen in two stages: grid x ``SWITCHES`` first, then its
    ``REFINE`` switches on that choice (the first stage runs them at the sampler's defaults).
    """
    table: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    scores: dict[str, dict[str, dict[str, float]]] = {}
    _STATE["train"] = train
    for name, t, s, secs in _pool_map(_choose_one, swept(only), jobs):
        table[name], scores[name] = t, s
        log(f"  chose {name}: {secs:.0f}s {t}")
    for name, src in COPY.items():
        if src in table:
            table[name] = {k: v for k, v in table[src].items() if supported(name, k)}
    return table, scores


def held_out_scores(held: dict) -> dict[str, dict[str, dict[str, float]]]:
    """scores[name][sde][band]: the training criterion on the held-out rows of ``held``."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, per in held.items():
        for kind, by_nfe in per.items():
            for band, nfes in BAND_NFES.items():
                s = [score([g for _, g in by_nfe[str(n)]]) for n in nfes]
                out.setdefault(name, {}).setdefault(kind, {})[band] = sum(s) / len(s)
    return out


def recommend(scores: dict, stochastic_only: bool = False) -> dict[str, dict[str, str]]:
    """The best sampler by ``scores`` per SDE kind and band (among stochastic ones only: the
    recommendation for learned scores, docs/howto/sample.md). Ties go to the first registered;
    ``dpm_solver_1`` and ``torchsde`` are no candidates (DDIM's and Euler-Maruyama's method).
    """
    out: dict[str, dict[str, str]] = {}
    for kind in SDE_KINDS:
        for band in BANDS:
            cands = [
                (s[kind][band], i, n)
                for i, (n, s) in enumerate(scores.items())
                if kind in s
                and n not in COPY  # the same method as the one it copies
                and (SAMPLERS[n].stochastic or not stochastic_only)
            ]
            out.setdefault(kind, {})[band] = min(cands)[2]
    return out


def _auto_one(item: tuple[str, str, int]) -> tuple[str, str, int, str, list]:
    """``auto`` for one score kind, SDE kind and NFE on the test problems."""
    score_kind, kind, nfe = item
    table = defaults.RECOMMENDED if score_kind == "exact" else defaults.RECOMMENDED_LEARNED
    name = table[kind][defaults.band_of(nfe)]
    probs = _STATE["test_big"] if nfe == 100 else _STATE["test_small"]
    return score_kind, kind, nfe, name, [list(run(p, name, kind, nfe)) for p in probs]


def auto_on_test(n: int, n_100: int, jobs: int, log: Any) -> dict[str, Any]:
    """auto[score_kind][sde][nfe] = {"sampler", "rows": (NFE spent, CE gap) per test problem}.

    The TEST seeds played no part in any choice: this is what ``sample("auto", ...)`` does on
    problems it was not chosen on (the held-out table is where it was chosen).
    """
    _STATE["test_small"] = [make_problem(s, n) for s in TEST_SEEDS]
    _STATE["test_big"] = [make_problem(s, n_100) for s in TEST_SEEDS]
    items = [(sk, k, nfe) for sk in ("exact", "learned") for k in SDE_KINDS for nfe in REPORT_NFES]
    out: dict[str, Any] = {}
    for sk, kind, nfe, name, rows in _pool_map(_auto_one, items, jobs):
        out.setdefault(sk, {}).setdefault(kind, {})[str(nfe)] = {"sampler": name, "rows": rows}
    log(f"  auto on the test seeds {TEST_SEEDS}: done")
    return out


def _held_out_one(name: str) -> tuple[str, dict, float]:
    """One sampler's held-out rows at the defaults of ``_STATE['table']``."""
    test, big = _STATE["test"], _STATE["big"]
    defaults.TABLE.clear()  # the runs read the new choices through sample()
    defaults.TABLE.update(_STATE["table"])
    t0 = time.perf_counter()
    per: dict[str, dict[str, list]] = {}
    for kind in (k for k in SDE_KINDS if supported(name, k)):
        for nfe in REPORT_NFES:
            per.setdefault(kind, {})[str(nfe)] = [
                list(run(p, name, kind, nfe)) for p in (big if nfe == 100 else test)
            ]
    return name, per, time.perf_counter() - t0


def held_out(
    test: list[Problem], big: list[Problem], names: list[str], table: dict, log: Any,
    jobs: int = 1,
) -> dict:  # fmt: skip
    """held[name][sde][nfe] = (NFE spent, CE gap) per held-out problem, at the defaults ``table``.

    NFE 100 runs on ``big`` (the same problems with more prior draws).
    """
    _STATE.update(test=test, big=big, table=table)
    held: dict[str, dict[str, dict[str, list]]] = {}
    for name, per, secs in _pool_map(_held_out_one, names, jobs):
        held[name] = per
        log(f"  held-out {name}: {secs:.0f}s")
    return held


def _ablation_one(name: str) -> dict[str, list[float]]:
    test = _STATE["big"]
    defaults.TABLE.clear()
    defaults.TABLE.update(_STATE["table"])
    return {
        kind: [run(p, name, kind, 100, denoise=False)[1] for p in test[:2]]
        for kind in SDE_KINDS
        if supported(name, kind)
    }


def ablation(big: list[Problem], names: list[str], table: dict, jobs: int = 1) -> dict:
    """NFE 100 without the final Tweedie step, first two held-out problems (of ``big``)."""
    _STATE.update(big=big, table=table)
    return dict(zip(names, _pool_map(_ablation_one, names, jobs), strict=True))


def targets(held: dict) -> dict[str, Any]:
    """The issue's targets (a)-(c) on the held-out runs."""
    worst = {}
    for name, per in held.items():
        for kind, rows in per.items():
            worst[(name, kind, 100)] = max(abs(g) for _, g in rows["100"])
            worst[(name, kind, 10)] = max(abs(g) for _, g in rows["10"])
    b_miss = [
        [n, k, w] for (n, k, nfe), w in worst.items() if nfe == 100 and not w <= bound_of(n, 100)
    ]
    c_miss = [
        [n, k, w]
        for (n, k, nfe), w in worst.items()
        if nfe == 10 and not SAMPLERS[n].stochastic and not w <= 1.0
    ]
    raised = [[n, k] for (n, k, _), w in worst.items() if not math.isfinite(w)]
    return {"a_failures": raised, "b_misses": b_miss, "c_misses": c_miss}


#: NFEs past 100 at which a miss of target (b) is rerun: does it converge, and at what rate?
BEYOND_NFES = (100, 200, 400)


def miss_convergence(
    big: list[Problem], held: dict, misses: list, log: Any, jobs: int = 1
) -> list[dict]:
    """Each (b) miss at NFE 100, 200 and 400 on the held-out problem where it is worst.

    The observed order is the slope of log |gap| against log NFE from 200 to 400: about 1 for a
    first-order method that converges, about 0 for one that plateaus (gaps within the noise
    ``delta`` of the problem say nothing).
    """
    _STATE["big"] = big
    items = []
    for name, kind, _ in misses:
        rows = held[name][kind]["100"]
        items.append((name, kind, max(range(len(rows)), key=lambda i: abs(rows[i][1]))))
    out = _pool_map(_beyond_one, items, jobs)
    for o in out:
        log(f"  beyond NFE 100: {o['sampler']} {o['sde']} seed {o['seed']}: {o['gaps']}")
    return out


def _beyond_one(item: tuple[str, str, int]) -> dict[str, Any]:
    name, kind, k = item
    p = _STATE["big"][k]
    gaps = {n: run(p, name, kind, n)[1] for n in BEYOND_NFES}
    lo, hi = abs(gaps[BEYOND_NFES[-2]]), abs(gaps[BEYOND_NFES[-1]])
    order = math.log(lo / hi) / math.log(BEYOND_NFES[-1] / BEYOND_NFES[-2]) if hi > 0 else None
    return {"sampler": name, "sde": kind, "seed": p.seed, "delta": p.delta, "gaps": gaps,
            "order": order}  # fmt: skip


def _oracle_one(item: tuple[str, str, int, int]) -> dict[str, Any]:
    """The best |CE gap| any candidate default reaches for one miss, on its worst problem."""
    name, kind, nfe, k = item
    p = (_STATE["big"] if nfe == 100 else _STATE["test"])[k]
    src = COPY.get(name, name)
    chosen = _STATE["table"][name][kind][defaults.band_of(nfe)]
    defaults.TABLE.clear()  # what a candidate leaves open is the sampler's default
    cands = configs(src) + refinements(src, chosen)
    cands += [] if chosen in cands else [chosen]
    gaps = [(abs(run(p, name, kind, nfe, **settings(c))[1]), c) for c in cands]
    best = min(gaps, key=lambda g: g[0])
    return {"sampler": name, "sde": kind, "nfe": nfe, "seed": p.seed, "delta": p.delta,
            "best_gap": best[0], "best_config": best[1], "candidates": len(cands)}  # fmt: skip


def oracle(held: dict, met: dict, table: dict, jobs: int, log: Any) -> list[dict[str, Any]]:
    """For each miss of (b) and (c): the least |CE gap| ANY candidate reaches on its worst problem.

    Not a choice (it is picked on the held-out problem itself): a lower bound on what choosing
    defaults among these candidates could do. Where it misses the bound too, no default among
    the candidates meets the target for that sampler, SDE and NFE.
    """
    _STATE["table"] = table
    items = []
    for nfe, key in ((100, "b_misses"), (10, "c_misses")):
        for name, kind, _ in met[key]:
            rows = held[name][kind][str(nfe)]
            items.append((name, kind, nfe, max(range(len(rows)), key=lambda i: abs(rows[i][1]))))
    out = _pool_map(_oracle_one, items, jobs)
    log(f"  oracle: {sum(o['best_gap'] <= bound_of(o['sampler'], o['nfe']) for o in out)} of "
        f"{len(out)} misses have a candidate within the bound on their worst problem")  # fmt: skip
    return out


def bound_of(name: str, nfe: int) -> float:
    """The issue's bound on |CE gap| for ``name`` at NFE 100 (b) or 10 (c)."""
    if nfe == 10:
        return 1.0
    return 0.4 if SAMPLERS[name].stochastic else 0.25


def write_table(table: dict, rec: dict, rec_learned: dict) -> None:
    """Rewrite scoresde/samplers/defaults_table.py (its docstring and imports kept), formatted."""
    path = ROOT / "scoresde" / "samplers" / "defaults_table.py"
    head = path.read_text().split("\nTABLE:")[0]
    path.write_text(
        f"{head}\nTABLE: dict[str, dict[str, dict[str, dict[str, Any]]]] = {table!r}\n"
        f"RECOMMENDED: dict[str, dict[str, str]] = {rec!r}\n"
        f"RECOMMENDED_LEARNED: dict[str, dict[str, str]] = {rec_learned!r}\n"
    )
    if shutil.which("ruff"):  # the repr is one long line: give it the project's format
        subprocess.run(["ruff", "format", "--quiet", str(path)], check=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-train", type=int, default=300)
    ap.add_argument("--n-test", type=int, default=1000)
    ap.add_argument("--n-test-100", type=int, default=8_000, help="prior draws at NFE 100")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process")
    ap.add_argument("--jobs", type=int, default=1, help="processes (samplers run in parallel; "
                    "the results do not depend on it)")  # fmt: skip
    ap.add_argument("--out", type=Path, default=Path("runs/few_step_defaults"))
    ap.add_argument("--write-table", action="store_true")
    ap.add_argument("--diagnostics-only", action="store_true", help="only rerun the diagnostics "
                    "of the misses in OUT/results.json (NFE 200 and 400, best candidate) and "
                    "update it")  # fmt: skip
    ap.add_argument("--skip-diagnostics", action="store_true", help="choose and report only")
    ap.add_argument("--only", default="", help="comma list: rechoose these samplers and update "
                    "OUT/results.json (and the table) in place")  # fmt: skip
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    t_start, cpu_start = time.perf_counter(), cpu_seconds()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t_start:6.0f}s] {msg}", flush=True)

    log(f"threads={a.threads}, n_train={a.n_train}, n_test={a.n_test}/{a.n_test_100}")
    if a.diagnostics_only:
        prev = json.loads((a.out / "results.json").read_text())
        prev |= diagnostics(prev, a.jobs, log)
        (a.out / "results.json").write_text(json.dumps(prev, indent=1) + "\n")
        return
    train = [make_problem(s, a.n_train) for s in TRAIN_SEEDS]
    test = [make_problem(s, a.n_test) for s in HELD_OUT_SEEDS]
    big = [make_problem(s, a.n_test_100) for s in HELD_OUT_SEEDS]
    for tag, ps in (("training", train), ("held-out", test)):
        log(f"{tag}: " + "; ".join(p.label for p in ps))
    only = [v for v in a.only.split(",") if v]
    table, scores = choose(train, log, only, a.jobs)
    prev = json.loads((a.out / "results.json").read_text()) if only else {}
    if only:  # a partial rerun: the other samplers keep their choice and held-out rows
        table, scores = prev["table"] | table, prev["train_scores"] | scores
    defaults.TABLE.clear()  # the held-out runs read the new choices through sample()
    defaults.TABLE.update(table)
    names = [n for n in SAMPLERS if n not in SKIP and (not only or n in only)]
    held = held_out(test, big, names, table, log, a.jobs)
    abl = ablation(big, [n for n in names if n != "torchsde"], table, a.jobs)
    if only:
        held = prev["held_out"] | held
        abl = prev["no_denoise_nfe100"] | abl
    met = targets(held)
    h_scores = held_out_scores(held)
    rec, rec_learned = recommend(h_scores), recommend(h_scores, stochastic_only=True)
    log(f"recommended (on the held-out seeds): {rec}; for learned scores: {rec_learned}")
    if a.write_table:
        write_table(table, rec, rec_learned)
    defaults.TABLE.clear()  # a pool worker may have cleared it
    defaults.TABLE.update(table)
    defaults.RECOMMENDED.clear()
    defaults.RECOMMENDED.update(rec)
    defaults.RECOMMENDED_LEARNED.clear()
    defaults.RECOMMENDED_LEARNED.update(rec_learned)
    auto = auto_on_test(a.n_test, a.n_test_100, a.jobs, log)
    out = {
        "threads": a.threads,
        "n_train": a.n_train,
        "n_test": a.n_test,
        "n_test_100": a.n_test_100,
        "train": [problem_info(p) for p in train],
        "held_out_problems": [
            problem_info(p) | {"delta_nfe100": q.delta} for p, q in zip(test, big, strict=True)
        ],
        "band_nfes": BAND_NFES,
        "stochastic": [n for n, spec in SAMPLERS.items() if spec.stochastic],
        "table": table,
        "train_scores": scores,
        "held_out_scores": h_scores,
        "recommended": rec,
        "recommended_learned": rec_learned,
        "test_problems": [problem_info(p) for p in _STATE["test_small"]],
        "auto_test": auto,
        "held_out": held,
        "no_denoise_nfe100": abl,
        "targets": met,
        "wall_s": time.perf_counter() - t_start,
        "cpu_s": cpu_seconds() - cpu_start,
    }
    if only:  # the cost of a full run stays the one measured; the partial one is added
        out |= {k: prev[k] for k in ("wall_s", "cpu_s")} | {"rechosen": only}
    if not a.skip_diagnostics:
        out |= diagnostics(out, a.jobs, log, (test, big))
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "results.json").write_text(json.dumps(out, indent=1) + "\n")
    log(f"targets: {out['targets']}")
    log(f"done: {out['wall_s']:.0f}s wall, {out['cpu_s'] / 60:.1f} CPU-minutes")


def diagnostics(
    res: dict[str, Any], jobs: int, log: Any, problems: tuple[list, list] | None = None
) -> dict[str, Any]:
    """What the misses of ``res`` (a results dict) do past NFE 100, and the best any candidate
    reaches on their worst problems (``miss_convergence``, ``oracle``), with their CPU cost:
    not part of choosing or reporting, so not counted in ``cpu_s``. ``problems``: the held-out
    problems at ``n_test`` and ``n_test_100`` draws, if already made."""
    cpu0 = cpu_seconds()
    defaults.TABLE.clear()  # the runs at their defaults read the chosen table through sample()
    defaults.TABLE.update(res["table"])
    if problems is None:
        problems = (
            [make_problem(s, res["n_test"]) for s in HELD_OUT_SEEDS],
            [make_problem(s, res["n_test_100"]) for s in HELD_OUT_SEEDS],
        )
    _STATE["test"], big = problems
    held, met = res["held_out"], res["targets"]
    out = {"miss_convergence": miss_convergence(big, held, met["b_misses"], log, jobs)}
    out["oracle"] = oracle(held, met, res["table"], jobs, log)
    out["diagnostics_cpu_s"] = cpu_seconds() - cpu0
    log(f"diagnostics: {out['diagnostics_cpu_s'] / 60:.1f} CPU-minutes")
    return out


def problem_info(p: Problem) -> dict[str, Any]:
    """Seed, dimension, components, narrowest std and CE-gap noise of a problem."""
    from scoresde.data.family import narrowest_std

    return {
        "seed": p.seed,
        "dim": p.gm.dim,
        "components": p.gm.K,
        "narrowest_std": narrowest_std(p.gm),
        "delta": p.delta,
    }


if __name__ == "__main__":
    main()
