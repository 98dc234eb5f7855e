"""DDPM reverse variances: beta, beta_tilde and Analytic-DPM at 10, 25, 50 and 100 steps.

Data: the 8-Gaussians mixture (entropy 2.832 nats) with its exact score under the linear VP SDE,
in float64, so every difference is the sampler's. Analytic-DPM (Bao et al. 2022) needs
Gamma_t = E||s(x_t, t)||^2 / D at each step-start time: estimated once from 5,000 data samples
(``scoresde.samplers.analytic_dpm.score_norms``), no retraining. DDPM runs on the uniform grid from
T = 1 to t_end = 1e-3.

Measured per (variance, steps): the cross-entropy gap of the samples under the exact density
(``cross_entropy_gap``: mean -log p_0(samples) - H(p_0), nats, with its standard error) and the
sliced Wasserstein-2 distance to fresh data samples.

Figure: sliced_w2.png, sliced W2 against steps for each variance.

Results (results.json): rows[variance][steps] = {ce_gap, ce_gap_se, sliced_w2}.

Run: ``python experiments/reverse_variance.py [--fast] [--out DIR]``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parse_args, plt, save_fig, save_json  # noqa: E402

from scoresde.data.toy import eight_gaussians_mixture  # noqa: E402
from scoresde.metrics import cross_entropy_gap, sliced_wasserstein  # noqa: E402
from scoresde.samplers import make_grid, sample_ddpm  # noqa: E402
from scoresde.samplers.analytic_dpm import sample_analytic_ddpm, score_norms  # noqa: E402
from scoresde.sde import VPSDE  # noqa: E402

F64 = torch.float64
VARIANCES = ("beta", "beta_tilde", "analytic")


def run(n_samples: int, steps: list[int], n_gamma: int, seed: int) -> dict:
    sde = VPSDE()
    mix = eight_gaussians_mixture().with_sde(sde)
    g = torch.Generator().manual_seed(seed)
    data = mix.sample(n_gamma, generator=g).to(F64)
    ref = mix.sample(n_samples, generator=g).to(F64)
    rows: dict[str, dict[str, dict[str, float]]] = {v: {} for v in VARIANCES}
    for n in steps:
        grid = make_grid(sde, n, "uniform", t_end=1e-3)
        gamma, _ = score_norms(sde, mix.score, data, grid[:-1], generator=g)
        x_T = sde.prior_sample((n_samples, 2), generator=g, dtype=F64)
        for var in VARIANCES:
            gen = torch.Generator().manual_seed(seed + 1)  # same noise for every variance
            if var == "analytic":
                x, _ = sample_analytic_ddpm(sde, mix.score, x_T, grid, gamma=gamma, generator=gen)
            else:
                x, _ = sample_ddpm(sde, mix.score, x_T, grid, variance=var, generator=gen)
            ce = cross_entropy_gap(
                x, mix, n_reference=20_000, generator=torch.Generator().manual_seed(seed)
            )
            sw = sliced_wasserstein(x, ref, generator=torch.Generator().manual_seed(seed))
            rows[var][str(n)] = {"ce_gap": ce.gap, "ce_gap_se": ce.gap_se, "sliced_w2": float(sw)}
            print(
                f"{var:>10} N={n:>3}: CE gap {ce.gap:+.4f} ± {ce.gap_se:.4f}  SW2 {float(sw):.4f}"
            )
    return {"rows": rows, "n_samples": n_samples, "n_gamma": n_gamma, "steps": steps}


def main(argv: list[str] | None = None) -> dict:
    args = parse_args("reverse_variance", __doc__.splitlines()[0], argv)
    t0 = time.perf_counter()
    if args.fast:
        res = run(n_samples=400, steps=[10, 25], n_gamma=500, seed=args.seed)
    else:
        res = run(n_samples=20_000, steps=[10, 25, 50, 100], n_gamma=5000, seed=args.seed)
    fig, ax = plt().subplots(figsize=(4.5, 3.2))
    for var in VARIANCES:
        ns = res["steps"]
        ax.loglog(ns, [res["rows"][var][str(n)]["sliced_w2"] for n in ns], "o-", label=var)
    ax.set(xlabel="DDPM steps", ylabel="sliced W2 to data", title="8-Gaussians, exact score")
    ax.legend()
    res.update(experiment="reverse_variance", fast=args.fast, seed=args.seed)
    res["figures"] = [save_fig(fig, args.out, "sliced_w2")]
    save_json(res, args.out, t0)
    return res


if __name__ == "__main__":
    main()
