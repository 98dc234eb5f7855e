"""The study notes' 2-D demo, run as written and with a schedule that reaches the prior.

The notes train a DDPM with T = 100 steps and beta from 1e-4 to 0.02 on four Gaussians at
(+-2, +-2) (the ``4gaussians`` set). Their own rule, "check alpha_bar_T < 0.001", fails for that
chain: alpha_bar_T = 0.37. In continuous time the chain is the VP SDE with beta(t) from 0.01 to
2 (beta_i = beta(t_i) / N, Song et al. 2021, Appendix B), and KL(p_T || N(0, I)) is bounded by
-1/2 log(1 - alpha_bar_T) = 0.23 nats per dimension for standardised data
(:func:`scoresde.sde.prior_kl`), which ``train`` and ``sample`` now warn about.

Two tiny eps-models with the same seed, weights and data are trained, one per SDE (the notes'
short chain and the default VP SDE, beta up to 20), and sampled from N(0, I) with 100 DDPM
ancestral steps, as the notes do, and with 100 deterministic DDIM steps (eps network behind
``x0_clip``), whose push-forward of the wrong start cannot be corrected by noise. The exact p_T of each SDE (the data are a Gaussian mixture) shows how
far the sampler's start is from what the model was trained on.

Figures:
    samples.png   exact data, and samples of both models, with sliced W2 to the data.
    prior.png     the exact p_T of each SDE against N(0, I) (radial densities).

Run: ``python experiments/notes_demo.py [--fast] [--out DIR]``.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parse_args, plt, save_fig, save_json  # noqa: E402
from _notes import notes_data, train_tiny  # noqa: E402

from scoresde.metrics import sliced_wasserstein  # noqa: E402
from scoresde.parameterization import ScoreModel  # noqa: E402
from scoresde.samplers import sample  # noqa: E402
from scoresde.sde import VPSDE, PriorMismatchWarning, prior_kl  # noqa: E402
from scoresde.sde.prior import PRIOR_KL_THRESHOLD  # noqa: E402

F64 = torch.float64


def main(argv: list[str] | None = None) -> dict:
    """Regenerate the figures and results.json; return the results."""
    args = parse_args("notes_demo", __doc__.splitlines()[0], argv)
    started, fast = time.perf_counter(), args.fast
    pyplot, gen = plt(), torch.Generator().manual_seed(args.seed)
    gm = notes_data()
    sdes = {"notes: T = 100, beta to 0.02": VPSDE(beta_min=0.01, beta_max=2.0),
            "default VP: beta to 20": VPSDE()}  # fmt: skip
    steps, n = (300, 2000) if fast else (3000, 10000)
    ref = gm.sample(n, gen)
    rows, samples, p_T = {}, {}, {}
    for name, sde in sdes.items():
        model, _ = train_tiny(sde, gm, steps=steps, seed=args.seed)
        x_T = sde.prior_sample((n, 2), generator=torch.Generator().manual_seed(1))
        with warnings.catch_warnings():  # the notes' chain warns: reported in results instead
            warnings.simplefilter("ignore", PriorMismatchWarning)
            x, _ = sample("ddpm", sde, model, x_T, 100, generator=torch.Generator().manual_seed(2))
        samples[name] = x.double()
        clipped = ScoreModel(model.net, sde, predicts="eps", x0_clip=4.0)  # deterministic path
        x_ode, _ = sample("ddim", sde, clipped, x_T, 100)
        end = gm.with_sde(sde).marginal_mixture(sde.T)
        p_T[name] = end
        z = end.sample(n, gen)  # Monte Carlo KL(p_T || N(0, I)) per dimension, exact p_T
        gap = (end.log_prob(z) - sde.prior_log_prob(z)) / 2
        check = prior_kl(sde, data_var=float(gm.covariance.diagonal().mean()))
        rows[name] = {
            "alpha_bar_T": check.alpha_T**2,
            "kl_upper": check.upper,
            "kl_lower": check.lower,
            "kl_exact_mc": float(gap.mean()),
            "kl_exact_se": float(gap.std()) / math.sqrt(n),
            "warns": check.upper > PRIOR_KL_THRESHOLD,
            "sw2": sliced_wasserstein(samples[name], ref, 64, generator=gen),
            "mean_abs_coordinate": float(samples[name].abs().mean()),
            "ddim_sw2": sliced_wasserstein(x_ode.double(), ref, 64, generator=gen),
            "ddim_mean_abs_coordinate": float(x_ode.abs().mean()),
        }
    floor = sliced_wasserstein(gm.sample(n, gen), ref, 64, generator=gen)
    data_abs = float(ref.abs().mean())
    # -- figures ---------------------------------------------------------------------------
    fig, axes = pyplot.subplots(1, 3, figsize=(11, 3.6), sharex=True, sharey=True)
    for ax, (k, s) in zip(axes, {"exact data": ref, **samples}.items(), strict=True):
        s = s[:3000]
        ax.scatter(s[:, 0], s[:, 1], s=1, alpha=0.4)
        sub = "" if k == "exact data" else f"\nsliced W2 {rows[k]['sw2']:.3f}"
        ax.set(xlim=(-5, 5), ylim=(-5, 5), title=k + sub)
    fig.suptitle(f"DDPM sampling (100 steps) from N(0, I); eps-models trained {steps} steps")
    fig.tight_layout()
    figures = [save_fig(fig, args.out, "samples")]
    fig, ax = pyplot.subplots(figsize=(5.5, 3.6))
    xs = torch.linspace(-4, 4, 401, dtype=F64)
    grid = torch.stack([xs, xs], dim=1)  # the diagonal x1 = x2, through two of the modes
    prior = torch.exp(-(grid**2).sum(1) / 2) / (2 * math.pi)
    ax.plot(xs, prior, "k--", label="N(0, I)")
    for k, end in p_T.items():
        ax.plot(xs, end.log_prob(grid).exp(), label=f"p_T, {k} (KL <= {rows[k]['kl_upper']:.3g})")
    ax.set(xlabel="x1 = x2", ylabel="density on the diagonal", title="Where sampling starts")
    ax.legend(fontsize=7)
    fig.tight_layout()
    figures.append(save_fig(fig, args.out, "prior"))
    results = {"experiment": "notes_demo", "fast": fast, "seed": args.seed, "n": n,
               "train_steps": steps, "sdes": rows, "noise_floor_sw2": floor, "data_mean_abs": data_abs,
               "figures": figures}  # fmt: skip
    save_json(results, args.out, started)
    return results


if __name__ == "__main__":
    res = main()
    for k, v in res["sdes"].items():
        print(k, {a: round(b, 4) if isinstance(b, float) else b for a, b in v.items()})
