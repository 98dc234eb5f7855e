"""DDPM reverse variances: beta, beta_tilde, Analytic-DPM and the learned v, at 10-100 steps.

Data: the 8-Gaussians mixture (entropy 2.832 nats), whose exact density, score and eps are known
under the linear VP SDE. Two score sources, both evaluated in float64:

* **exact**: the mixture's own eps (so every difference is the variance's), rows beta,
  beta_tilde and analytic;
* **trained**: an eps + v network trained with the hybrid loss L_simple + lambda L_vlb
  (Nichol & Dhariwal 2021, lambda = 0.001, stop-gradient on the mean, N = 1000 training steps;
  ``experiments/_hybrid.py``) on one thread, its CPU time measured; rows beta, beta_tilde,
  analytic (Gamma_t from the trained score, no retraining) and learned (v read from the network).

DDPM runs on improved DDPM's respaced chains: n + 1 of the 1,000 training times
t_i = (i + 1) / 1000, i = round(linspace(999, 0, n + 1)), so beta and beta_tilde are those of
the respaced chain and v interpolates that pair (``sample_ddpm(variance=...)``). The same x_T
and the same noise serve every variance. Analytic-DPM's Gamma_t is a Monte Carlo average over
fresh data at every grid time (``score_norms``).

Measured per (source, variance, steps):

* ``ce_gap``: mean -log p_0(samples) - H(p_0) under the exact density (nats, ± s.e.);
* ``sliced_w2`` to fresh data (its two-sample noise floor is ``noise_floor_sw2``);
* ``vlb_bpd``: ``ddpm_vlb`` of the same respaced chain (its n KL terms, the discretized decoder
  from t = 1e-3 and L_T) on data quantised to 4096 levels on [-5, 5]^2, in bits/dim, and
  ``vlb_gap``: its excess over the data's own discrete NLL -log2 P(bin) / 2 on the same points
  (P(bin) = p(centre) width^2; paired standard error ``vlb_gap_se``). The bins (width 0.0024)
  are narrower than the chain's smallest noise (sigma = 0.0105 at t = 1e-3), so the lattice is
  invisible to the continuous model and the gap is the reverse chain's own (with 256 levels,
  width 0.039, a continuous score cannot see the lattice the bound is computed on).

Figure: variances.png, sliced W2 and VLB gap against steps, per source.

Run: ``python experiments/reverse_variance.py [--fast] [--out DIR]`` (the trained weights are
cached in the temporary folder, keyed by every training setting).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parse_args, plt, save_fig, save_json  # noqa: E402
from _hybrid import N_TRAIN, train_hybrid  # noqa: E402

from scoresde.data.toy import eight_gaussians_mixture  # noqa: E402
from scoresde.likelihood import ddpm_vlb  # noqa: E402
from scoresde.losses import learned_log_variance  # noqa: E402
from scoresde.metrics import cross_entropy_gap, noise_floor, sliced_wasserstein  # noqa: E402
from scoresde.samplers import sample_ddpm  # noqa: E402
from scoresde.samplers.analytic_dpm import analytic_dpm_chain_variances, score_norms  # noqa: E402
from scoresde.samplers.reverse_sde import ddpm_table  # noqa: E402
from scoresde.sde import VPSDE, index_to_time  # noqa: E402

F64 = torch.float64
LO, HI, LEVELS = -5.0, 5.0, 4096
SOURCES = {"exact": ("beta", "beta_tilde", "analytic"),
           "trained": ("beta", "beta_tilde", "analytic", "learned")}  # fmt: skip


def respaced_grid(n: int) -> Tensor:
    """n + 1 of the training chain's times, from T = 1 down to t_0 = 1e-3 (improved DDPM)."""
    idx = torch.linspace(N_TRAIN - 1, 0, n + 1, dtype=F64).round().long()
    return index_to_time(idx, N_TRAIN).to(F64)


def _mean_se(v: Tensor) -> tuple[float, float]:
    return float(v.mean()), float(v.std() / math.sqrt(v.numel()))


def _vlb(table, t_asc, var, gamma, eps_fn, v_fn, k, seed):  # noqa: ANN001, ANN202
    """``ddpm_vlb`` of the chain ``table`` (index j at time ``t_asc[j]``) with variance ``var``."""
    vlb_var: str | Tensor | Callable = var
    if var == "analytic":  # Gamma at every state of the chain, the decoder's included
        vlb_var = analytic_dpm_chain_variances(table, gamma.flip(0))
    elif var == "learned":
        vlb_var = lambda x, i: learned_log_variance(table, i, v_fn(x, t_asc[i])).exp()  # noqa: E731
    return ddpm_vlb(table, lambda x, i: eps_fn(x, t_asc[i]), k, levels=LEVELS,
                    model_range=(LO, HI), variance=vlb_var,
                    generator=torch.Generator().manual_seed(seed + 2))  # fmt: skip


def evaluate(sde, mix, score_fn, eps_fn, v_fn, variances, steps, sizes, seed) -> dict:
    """Every metric of every (variance, steps) cell for one score source."""
    g = torch.Generator().manual_seed(seed)
    ref = mix.sample(sizes["n_samples"], generator=g)
    y = mix.sample(sizes["n_vlb"], generator=g)
    k = ((y - LO) / (HI - LO) * (LEVELS - 1)).round().clamp(0, LEVELS - 1)
    width = (HI - LO) / (LEVELS - 1)
    centres = LO + width * k
    data_nll = -(mix.log_prob(centres) + 2 * math.log(width)) / (2 * math.log(2))  # bits/dim
    rows: dict[str, dict[str, dict[str, float]]] = {v: {} for v in variances}
    for n in steps:
        grid = respaced_grid(n)
        gamma, _ = score_norms(sde, score_fn, mix.sample(sizes["n_gamma"], generator=g), grid,
                               generator=g)  # fmt: skip
        table, t_asc = ddpm_table(sde, grid), grid.flip(0)  # table index j is time t_asc[j]
        x_T = sde.prior_sample((sizes["n_samples"], 2), generator=g, dtype=F64)
        for var in variances:
            opts: dict = {"gamma": gamma[:-1]} if var == "analytic" else {}
            opts |= {"v_fn": v_fn} if var == "learned" else {}
            gen = torch.Generator().manual_seed(seed + 1)  # the same noise for every variance
            x, _ = sample_ddpm(sde, score_fn, x_T, grid, variance=var, generator=gen, **opts)
            ce = cross_entropy_gap(x, mix, n_reference=20_000,
                                   generator=torch.Generator().manual_seed(seed))  # fmt: skip
            sw = sliced_wasserstein(x, ref, generator=torch.Generator().manual_seed(seed))
            res = _vlb(table, t_asc, var, gamma, eps_fn, v_fn, k, seed)
            vlb, vlb_se = _mean_se(res.bpd)
            gap, gap_se = _mean_se(res.bpd - data_nll)
            rows[var][str(n)] = {"ce_gap": ce.gap, "ce_gap_se": ce.gap_se, "sliced_w2": float(sw),
                                 "vlb_bpd": vlb, "vlb_se": vlb_se, "vlb_gap": gap,
                                 "vlb_gap_se": gap_se}  # fmt: skip
            print(f"{var:>10} N={n:>3}: CE gap {ce.gap:+.3f} ± {ce.gap_se:.3f}  SW2 {float(sw):.4f}"
                  f"  VLB {vlb:.3f} bpd (gap {gap:+.3f} ± {gap_se:.3f})", flush=True)  # fmt: skip
    return {"rows": rows, "data_nll_bpd": _mean_se(data_nll)[0]}


def _figure(res: dict, out: Path) -> str:
    fig, axes = plt().subplots(2, 2, figsize=(9, 6.4), sharex=True)
    ns = res["steps"]
    for col, (source, variances) in enumerate(SOURCES.items()):
        for var in variances:
            cells = [res[source]["rows"][var][str(n)] for n in ns]
            axes[0, col].loglog(ns, [c["sliced_w2"] for c in cells], "o-", label=var)
            axes[1, col].loglog(ns, [max(c["vlb_gap"], 1e-3) for c in cells], "o-", label=var)
        axes[0, col].axhline(res["noise_floor_sw2"]["mean"], color="grey", ls=":", label="floor")
        axes[0, col].set(title=f"{source} score", ylabel="sliced W2 to data")
        axes[1, col].set(xlabel="DDPM steps", ylabel="VLB - data NLL (bits/dim)")
        axes[0, col].legend(fontsize=7)
    fig.tight_layout()
    return save_fig(fig, out, "variances")


def main(argv: list[str] | None = None) -> dict:
    args = parse_args("reverse_variance", __doc__.splitlines()[0], argv)
    t0 = time.perf_counter()
    if args.fast:
        sizes, steps, train_steps = {"n_samples": 400, "n_gamma": 300, "n_vlb": 200}, [10, 25], 300
    else:
        sizes = {"n_samples": 20_000, "n_gamma": 5000, "n_vlb": 4000}
        steps, train_steps = [10, 25, 50, 100], 12_000
    sde = VPSDE()
    mix = eight_gaussians_mixture().with_sde(sde)
    res: dict = {"steps": steps, **sizes, "levels": LEVELS, "model_range": [LO, HI]}
    print("exact score", flush=True)
    res["exact"] = evaluate(sde, mix, mix.score, mix.eps, None, SOURCES["exact"], steps, sizes,
                            args.seed)  # fmt: skip
    model, res["training"] = train_hybrid(sde, mix, steps=train_steps, seed=args.seed,
                                          cache=not args.fast)  # fmt: skip
    print(f"trained: {res['training']}", flush=True)
    with torch.no_grad():
        res["trained"] = evaluate(sde, mix, model.score_fn, lambda x, t: model(x, t)[0],
                                  model.v_fn, SOURCES["trained"], steps, sizes, args.seed)  # fmt: skip
    floor_g = torch.Generator().manual_seed(args.seed + 3)
    res["noise_floor_sw2"] = noise_floor(
        mix.sample, sizes["n_samples"],
        lambda a, b: float(sliced_wasserstein(a, b, generator=floor_g)), repeats=10, generator=floor_g,
    )  # fmt: skip
    res.update(experiment="reverse_variance", fast=args.fast, seed=args.seed)
    res["figures"] = [_figure(res, args.out)]
    save_json(res, args.out, t0)
    return res


if __name__ == "__main__":
    main()
