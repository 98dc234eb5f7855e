"""L_simple vs L_vlb: the study notes' claim that the unweighted loss gives better samples.

Ho et al. (2020, Sec. 3.4) found that L_simple, the plain eps-MSE, samples better than the
variational bound L_vlb, which weights the eps-MSE at time t by the likelihood weight
g(t)^2 / sigma_t^2 (continuous form: Song et al. 2021b, Thm. 1; Kingma et al. 2021, Eq. 17).
For the VP SDE that weight is beta(t) / sigma_t^2 ~ 1 / t near t = 0: the bound spends its
effort on the smallest noise levels and its stochastic gradient has a far larger variance.

Two tiny MLP eps-models with the same seed, initial weights and data stream are trained on the
notes' 4-Gaussian set, one per loss (``DSMLoss(weighting="sigma2")`` is L_simple,
``weighting="likelihood"`` is L_vlb), then sampled with DDPM ancestral steps from the same prior
draws. Sample quality: sliced W2 to exact data and the cross-entropy gap under the exact density
(both with their exact-sample noise floors).

Figures:
    samples.png   samples of both models next to exact data.
    weights.png   the per-time weight on the eps-MSE, and the training losses.

Run: ``python experiments/lsimple_vs_lvlb.py [--fast] [--out DIR]``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parse_args, plt, save_fig, save_json  # noqa: E402
from _notes import notes_data, train_tiny  # noqa: E402

from scoresde.losses import DSMLoss  # noqa: E402
from scoresde.metrics import cross_entropy_gap, noise_floor, sliced_wasserstein  # noqa: E402
from scoresde.samplers import sample  # noqa: E402
from scoresde.sde import VPSDE  # noqa: E402

F64 = torch.float64
LOSSES = {"L_simple": "sigma2", "L_vlb": "likelihood"}


def weighted_loss_spread(sde, model, gm, weighting: str, n: int, gen) -> float:
    """Coefficient of variation of the per-sample weighted loss (what the gradient averages)."""
    loss = DSMLoss(sde, weighting=weighting)
    x0 = gm.sample(n, gen).float()
    t, noise = loss.draw(x0, generator=gen)
    terms = loss.terms(model, x0, t, noise).double()
    return float(terms.std() / terms.mean())


def main(argv: list[str] | None = None) -> dict:
    """Regenerate the figures and results.json; return the results."""
    args = parse_args("lsimple_vs_lvlb", __doc__.splitlines()[0], argv)
    started, fast = time.perf_counter(), args.fast
    pyplot, gen = plt(), torch.Generator().manual_seed(args.seed)
    sde, gm = VPSDE(), notes_data()
    steps, n, n_sample = (200, 2000, 100) if fast else (3000, 10000, 500)
    trained = {k: train_tiny(sde, gm, weighting=w, steps=steps, seed=args.seed)
               for k, w in LOSSES.items()}  # fmt: skip
    ref = gm.sample(n, gen)
    x_T = sde.prior_sample((n, 2), generator=gen)
    quality, samples = {}, {}
    for k, (model, _) in trained.items():
        x, _ = sample("ddpm", sde, model, x_T, n_sample, generator=torch.Generator().manual_seed(1))
        samples[k] = x.double()
        gap = cross_entropy_gap(samples[k], gm, generator=gen)
        quality[k] = {
            "sw2": sliced_wasserstein(samples[k], ref, 64, generator=gen),
            "ce_gap": gap.gap,
            "ce_gap_se": gap.gap_se,
            "spread_of_weighted_loss": weighted_loss_spread(sde, model, gm, LOSSES[k], n, gen),
        }
    floor = noise_floor(
        gm.sample, n, lambda a, b: sliced_wasserstein(a, b, 64, generator=gen), generator=gen
    )
    # -- figures ---------------------------------------------------------------------------
    fig, axes = pyplot.subplots(1, 3, figsize=(11, 3.6), sharex=True, sharey=True)
    named = {"exact data": ref, **samples}
    for ax, (k, s) in zip(axes, named.items(), strict=True):
        s = s[:3000]
        ax.scatter(s[:, 0], s[:, 1], s=1, alpha=0.4)
        sub = "" if k == "exact data" else f": sliced W2 {quality[k]['sw2']:.3f}"
        ax.set(xlim=(-5, 5), ylim=(-5, 5), title=k + sub)
    fig.suptitle(f"DDPM sampling ({n_sample} steps) of models trained {steps} steps")
    fig.tight_layout()
    figures = [save_fig(fig, args.out, "samples")]
    fig, axes = pyplot.subplots(1, 2, figsize=(10, 3.4))
    t = torch.linspace(sde.eps, sde.T, 400, dtype=F64)
    for k, w in LOSSES.items():
        axes[0].loglog(t, DSMLoss(sde, weighting=w).weight(t), label=k)
        axes[1].semilogy(torch.tensor(trained[k][1]).clamp_min(1e-3), lw=0.6, label=k)
    axes[0].set(xlabel="t", ylabel="weight on the eps-MSE", title="loss weight per time")
    axes[1].set(xlabel="training step", ylabel="loss (own weighting)", title="training losses")
    for ax in axes:
        ax.legend(fontsize=7)
    fig.tight_layout()
    figures.append(save_fig(fig, args.out, "weights"))
    results = {"experiment": "lsimple_vs_lvlb", "fast": fast, "seed": args.seed, "n": n,
               "train_steps": steps, "ddpm_steps": n_sample, "quality": quality,
               "noise_floor_sw2": floor, "figures": figures}  # fmt: skip
    save_json(results, args.out, started)
    return results


if __name__ == "__main__":
    res = main()
    print(res["quality"], res["noise_floor_sw2"])
