"""The study that chooses each sampler's few-step defaults (DESIGN contract 12, issue 9 item 1).

With the exact score of three Gaussian mixtures (2-D: 8 equal Gaussians on a circle; 16-D and
64-D: 4 components with random means and diagonal variances), VP SDE (beta 0.1-20, eps 1e-5;
VE for the VE-only samplers), every registered sampler runs for every

    grid kind (uniform, quadratic, log_snr, karras) x end time t_N (1e-5, 1e-4, 1e-3, 1e-2)
    x final Tweedie denoising step (off, on, and for samplers with several evaluations per step
    "spare": on only when whole steps leave an evaluation unspent; it counts 1 NFE)
    x its own few-step switch
    (``lower_order_final`` for DPM-Solver-2/3 and ++(2M)) at NFE 10,

from the same starting noise (``dpm_solver_1`` is DDIM step for step, so it is not run twice);
its best configuration and its previous defaults then run at NFE 5, 10 and 20. A run is scored by

* SW2: sliced Wasserstein-2 against as many exact samples, divided by the two-sample floor
  (SW2 between two independent exact sample sets of that size);
* CE gap: mean(-log p0(x)) - H(p0), H(p0) from exact samples of the same run; its noise delta
  is the standard error of mean(-log p0) over n exact samples.

The score of a configuration at one NFE is the mean over the three problems of
1/2 log(SW2 / floor) + 1/2 log((|CE gap| + delta) / delta): 0 for exact samples, and each
dimension weighs alike. Each sampler's default is its best configuration at NFE 10 among those
that do not blow up (see :func:`sweep`); the tables show it at NFE 5, 10 and 20 next to the
previous defaults.

The registry follows this choice except where a trained model disagrees (``dpm_solver_3`` and
``dpm_solver_fast``: see the comment in ``samplers/registry.py`` and the docs).

    python benchmarks/few_step_defaults.py [--n 4000] [--threads 1] [--out table.md]

Cost: about 2-3 CPU-minutes per 1000 samples (one thread).
"""

from __future__ import annotations

import argparse
import itertools
import math
import time
from dataclasses import dataclass
from typing import Any

import torch

from scoresde import VESDE, VPSDE, GaussianMixture
from scoresde.data.toy import eight_gaussians_mixture as eight_gaussians
from scoresde.metrics import sliced_wasserstein
from scoresde.samplers import SAMPLERS, sample

NFES = (5, 10, 20)
KINDS = ("uniform", "quadratic", "log_snr", "karras")
T_ENDS = (1e-5, 1e-4, 1e-3, 1e-2)
#: Each sampler's own few-step switches (the other options stay at their defaults).
SWITCHES: dict[str, dict[str, tuple[Any, ...]]] = {
    "dpm_solver_2": {"lower_order_final": (False, True)},
    "dpm_solver_3": {"lower_order_final": (False, True)},
    "dpm_solver_pp_2m": {"lower_order_final": (False, True)},
}
#: Not in the sweep: an adaptive solver has no NFE budget; torchsde's Euler is our
#: euler_maruyama through another library (and 20x slower); PC belongs to the Langevin study;
#: the fast solvers (docs/howto/fast-solvers.md) have their own, benchmarks/fast_solvers.py.
SKIP = ("pf_adaptive", "torchsde", "pc", "dpm_solver_1")
SKIP += ("dpm_solver_pp_3m", "dpm_solver_pp_2m_sde", "unipc", "deis", "ipndm", "edm")
#: The defaults before this study (grid kind of the old registry, t_N = eps, no denoise).
BEFORE = {"grid_kind": None, "t_end": 1e-5, "denoise": False, "lower_order_final": False}


@dataclass
class Problem:
    """One target: the mixture, its SDEs and starting noise, and its exact reference."""

    label: str
    gm: GaussianMixture
    sdes: dict[str, Any]
    x_T: dict[str, torch.Tensor]
    ref: torch.Tensor
    entropy: float
    delta: float
    floor: float


def mixture(dim: int, seed: int) -> GaussianMixture:
    """4 components, means 1.5 N(0, I), variances uniform in [0.1, 0.5]."""
    g = torch.Generator().manual_seed(seed)
    means = 1.5 * torch.randn(4, dim, generator=g, dtype=torch.float64)
    var = 0.1 + 0.4 * torch.rand(4, dim, generator=g, dtype=torch.float64)
    return GaussianMixture([0.1, 0.2, 0.3, 0.4], means, var)


def problem(label: str, gm: GaussianMixture, n: int) -> Problem:
    """Reference samples, entropy, its noise and the SW2 floor of ``n`` exact samples."""
    span = float(torch.cdist(gm.means, gm.means).max()) + 3.0
    sdes = {"vp": VPSDE(), "ve": VESDE(sigma_min=0.01, sigma_max=span)}
    x_T = {
        k: s.prior_sample((n, gm.dim), torch.Generator().manual_seed(4), dtype=torch.float64)
        for k, s in sdes.items()
    }
    ref = gm.sample(n, torch.Generator().manual_seed(2))
    nll = -gm.log_prob(gm.sample(max(n, 50_000), torch.Generator().manual_seed(3)))
    floor = sliced_wasserstein(
        gm.sample(n, torch.Generator().manual_seed(5)), ref, 64, generator=torch.Generator()
    )
    delta = float(nll.std()) / math.sqrt(n)
    return Problem(label, gm, sdes, x_T, ref, float(nll.mean()), delta, floor)


def evaluate(p: Problem, name: str, nfe: int, cfg: dict[str, Any]) -> tuple[int, float, float]:
    """(NFE used, SW2 / floor, CE gap) of one run; inf where it fails or is not finite."""
    spec = SAMPLERS[name]
    sde_key = "vp" if spec.supports(p.sdes["vp"]) else "ve"
    sde = p.sdes[sde_key]
    opts = {k: v for k, v in cfg.items() if k in SWITCHES.get(name, {})}
    try:
        x, info = sample(
            name,
            sde,
            p.gm.with_sde(sde),
            p.x_T[sde_key],
            nfe,
            generator=torch.Generator().manual_seed(1),
            grid_kind=cfg["grid_kind"],
            t_end=max(cfg["t_end"], sde.eps),
            denoise=cfg["denoise"],
            exact=False,
            **opts,
        )
    except ValueError:  # not reachable, a DDPM chain with beta dt >= 1, or NaN scores
        return nfe, math.inf, math.inf
    if not bool(torch.isfinite(x).all()):
        return info.nfe, math.inf, math.inf
    gap = float(-p.gm.log_prob(x).mean()) - p.entropy
    sw = sliced_wasserstein(x, p.ref, 64, generator=torch.Generator().manual_seed(0))
    return info.nfe, sw / p.floor, gap


def score(p: Problem, sw: float, gap: float) -> float:
    """1/2 log(SW2 / floor) + 1/2 log((|gap| + delta) / delta); 0 for exact samples."""
    if not (math.isfinite(sw) and math.isfinite(gap)):
        return math.inf
    return 0.5 * math.log(max(sw, 1e-12)) + 0.5 * math.log((abs(gap) + p.delta) / p.delta)


def configs(name: str) -> list[dict[str, Any]]:
    """Every configuration of the sweep for sampler ``name``."""
    spare = ("spare",) if SAMPLERS[name].steps_nfe({}) > 1 else ()  # a step costs > 1 NFE
    axes = {"grid_kind": KINDS, "t_end": T_ENDS, "denoise": (False, True, *spare)}
    axes |= SWITCHES.get(name, {})
    return [dict(zip(axes, v)) for v in itertools.product(*axes.values())]


def run_config(problems: list[Problem], name: str, nfe: int, cfg: dict[str, Any]) -> tuple:
    """Per-problem (NFE used, SW2 ratio, CE gap) and the mean score of one configuration."""
    runs = [evaluate(p, name, nfe, cfg) for p in problems]
    total = sum(score(p, sw, gap) for p, (_, sw, gap) in zip(problems, runs)) / len(runs)
    return runs, total


def blow_up_ratio(p2: Problem, name: str, nfe: int, cfg: dict, ref: dict[int, float]) -> float:
    """SW2 of ``name`` on the 2-D problem over the best first-order default's (``ref``)."""
    return evaluate(p2, name, nfe, cfg)[1] / ref[nfe]


def sweep(problems: list[Problem], names: list[str]) -> tuple[dict, dict]:
    """Score every config at NFE 10; choose each sampler's default; run it and the previous
    defaults at every NFE.

    The choice is the best score at NFE 10 among the configurations that pass the no-blow-up
    rule on the 2-D problem (SW2 <= 2x the best first-order deterministic default at NFE 5, 10
    and 20; first-order samplers themselves are unconstrained); where no configuration passes
    at NFE 5, the rule is applied at NFE 10 and 20 only, and the miss is reported.

    Returns:
        ``(results, chosen)``: (name, nfe, config items) -> (per-problem runs, score), and
        name -> (config, note).
    """
    out, chosen = {}, {}
    ref: dict[int, float] = {}  # best first-order deterministic SW2 on 2-D, per NFE
    first = [n for n in names if SAMPLERS[n].order == 1.0 and not SAMPLERS[n].stochastic]
    for name in first + [n for n in names if n not in first]:
        t0 = time.perf_counter()
        cands = configs(name)
        for cfg in cands:
            out[(name, 10, tuple(cfg.items()))] = run_config(problems, name, 10, cfg)
        ranked = sorted(cands, key=lambda c: out[(name, 10, tuple(c.items()))][1])
        note, cfg = "", ranked[0]
        if SAMPLERS[name].stochastic or name in first:
            pass
        else:
            for nfes, tag in (((5, 10, 20), ""), ((10, 20), "misses the rule at NFE 5")):
                ok = [
                    c
                    for c in ranked
                    if all(blow_up_ratio(problems[0], name, n, c, ref) <= 2.0 for n in nfes)
                ]
                if ok:
                    cfg, note = ok[0], tag
                    break
            else:
                note = "misses the rule at NFE 10 or 20"
        chosen[name] = (cfg, note)
        for nfe in NFES:
            for items in {tuple(cfg.items()), tuple(before(name).items())}:
                if (name, nfe, items) not in out:
                    out[(name, nfe, items)] = run_config(problems, name, nfe, dict(items))
        if name in first:
            for nfe in NFES:
                sw = out[(name, nfe, tuple(cfg.items()))][0][0][1]
                ref[nfe] = min(ref.get(nfe, math.inf), sw)
        print(f"  {name}: {time.perf_counter() - t0:.1f}s {cfg} {note}", flush=True)
    return out, chosen


def before(name: str) -> dict[str, Any]:
    """The previous defaults of ``name`` in the sweep's terms."""
    cfg = dict(
        BEFORE, grid_kind="log_snr" if SAMPLERS[name].order_variable == "log_snr" else "uniform"
    )
    return {k: v for k, v in cfg.items() if k != "lower_order_final" or name in SWITCHES}


def fmt_runs(runs: list[tuple[int, float, float]]) -> str:
    return " | ".join(
        f"{sw:.2f} / {gap:+.2f}" if math.isfinite(sw) else "fail" for _, sw, gap in runs
    )


def report(res: dict, chosen: dict, problems: list[Problem], names: list[str]) -> str:
    """Markdown: the chosen defaults, and before/after at every NFE."""
    labels = " | ".join(f"{p.label} SW2/floor / CE gap" for p in problems)
    lines = [
        "| sampler | grid | t_N | denoise | other | score @10 (before) | note |",
        "|---|---|---|---|---|---|---|",
    ]
    detail = [
        f"| sampler | NFE | config | {labels} | score |",
        "|---|---|---|" + "---|" * len(problems) + "---|",
    ]
    for name in names:
        cfg, note = chosen[name]
        new_score = res[(name, 10, tuple(cfg.items()))][1]
        if not math.isfinite(new_score):
            note = "fails at every configuration at NFE 10"
        old = before(name)
        old_score = (
            res[(name, 10, tuple(old.items()))][1]
            if (name, 10, tuple(old.items())) in res
            else math.nan
        )
        other = ", ".join(f"{k}={v}" for k, v in cfg.items() if k in SWITCHES.get(name, {}))
        lines.append(
            f"| `{name}` | {cfg['grid_kind']} | {cfg['t_end']:g} | {cfg['denoise']} "
            f"| {other or '-'} | {new_score:.2f} ({old_score:.2f}) | {note} |"
        )
        for nfe in NFES:
            for tag, c in (("before", old), ("after", cfg)):
                runs, total = res[(name, nfe, tuple(c.items()))]
                used = "/".join(str(u) for u in sorted({r[0] for r in runs}))
                detail.append(f"| `{name}` | {used} | {tag} | {fmt_runs(runs)} | {total:.2f} |")
    head = [
        f"Problems: {', '.join(p.label for p in problems)}; "
        f"n = {problems[0].ref.shape[0]} samples; CE-gap noise delta = "
        + ", ".join(f"{p.delta:.3f}" for p in problems)
        + " nats.",
        "",
    ]
    return "\n".join(head + lines + ["", *detail]) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=4000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--samplers", default="", help="comma-separated subset (default: all)")
    ap.add_argument("--out", default="", help="write the Markdown tables to this file")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    problems = [
        problem("2-D 8 Gaussians", eight_gaussians(), a.n),
        problem("16-D", mixture(16, 0), a.n),
        problem("64-D", mixture(64, 1), a.n),
    ]
    names = [n for n in (a.samplers.split(",") if a.samplers else SAMPLERS) if n not in SKIP]
    print(f"threads={a.threads}, n={a.n}, samplers={names}", flush=True)
    res, chosen = sweep(problems, names)
    text = report(res, chosen, problems, names)
    print(text)
    print("chosen:", {k: v[0] for k, v in chosen.items()})
    print(f"total {time.perf_counter() - t0:.0f}s")
    if a.out:
        with open(a.out, "w") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
