"""x0 vs eps vs v prediction at low SNR: how each turns a network error into an x0 error.

The study notes say "predicting x0 is more stable at low SNR (t near T)". Under x_t = alpha_t x0 +
sigma_t eps, an error delta in the predicted quantity becomes, in x0 (Salimans & Ho 2022, Sec. 4):

    eps:  x0 = (x_t - sigma_t eps) / alpha_t            ->  |dx0| = (sigma_t / alpha_t) delta
    v:    x0 = (alpha_t x_t - sigma_t v)/(alpha_t^2 + sigma_t^2) -> |dx0| = sigma_t delta (VP)
    x0:   x0 itself                                        ->  |dx0| = delta

so eps amplifies by exp(-lambda / 2), 150 at the end of the default VP SDE (lambda = -10).

Part 1 (exact): perturb the exact eps / v / x0 of the notes' 4-Gaussian set by delta z and
measure the x0 error against the closed forms above, over log-SNR.
Part 2 (trained): three tiny MLPs, the same seed, weights and data, predicting eps, x0 and v,
trained with the same DSM loss, plus the eps network behind ``x0_clip`` (the notes' switch: x0
clamped to the data's box where sigma_t > alpha_t); their x0 error against the exact denoiser
E[x0 | x_t] by log-SNR, and the DDIM paths that run away (|x| > 12) from the same prior draws.

Figures:
    amplification.png  measured x0-error / delta against the closed forms, per parameterization.
    trained.png        x0 RMSE of the trained models by log-SNR, and their DDIM samples.

Run: ``python experiments/parameterization_stability.py [--fast] [--out DIR]``.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parse_args, plt, save_fig, save_json  # noqa: E402
from _notes import notes_data, train_tiny  # noqa: E402

from scoresde.checks import UnstableParameterizationWarning  # noqa: E402
from scoresde.parameterization import ScoreModel, convert  # noqa: E402
from scoresde.samplers import sample  # noqa: E402
from scoresde.sde import VPSDE  # noqa: E402

F64 = torch.float64
KINDS = ("eps", "v", "x0")
DELTA = 0.1
CLIP = 4.0  # a bound of the 4gaussians data per coordinate (2 + 4 std)


def _at(sde, gm, lam: float, n: int, gen):
    """Points x_t of p_t at log-SNR ``lam``, their exact eps / v / x0 and (alpha, sigma, t)."""
    t = sde.t_from_log_snr(torch.tensor(lam, dtype=F64)).clamp(sde.eps, sde.T)
    alpha, sigma = (float(v) for v in sde.marginal(t))
    x = gm.marginal_mixture(float(t)).sample(n, gen)
    tt = torch.full((n,), float(t), dtype=F64)
    x0 = gm.denoise(x, tt)
    eps = (x - alpha * x0) / sigma
    exact = {"eps": eps, "x0": x0, "v": alpha * eps - sigma * x0}
    return x, tt, exact, alpha, sigma


def amplification(sde, gm, lams, n, gen) -> dict:
    """Measured x0 RMSE / delta and the closed form, per kind and log-SNR."""
    rows = {k: {"measured": [], "closed_form": []} for k in KINDS}
    for lam in lams:
        x, _, exact, alpha, sigma = _at(sde, gm, float(lam), n, gen)
        closed = {"eps": sigma / alpha, "v": sigma / (alpha**2 + sigma**2), "x0": 1.0}
        for k in KINDS:
            noisy = exact[k] + DELTA * torch.randn(x.shape, generator=gen, dtype=F64)
            x0 = convert(noisy, x, alpha, sigma, k, "x0")
            rmse = float(((x0 - exact["x0"]) ** 2).mean().sqrt())
            rows[k]["measured"].append(rmse / DELTA)
            rows[k]["closed_form"].append(closed[k])
    return rows


def trained_errors(models, sde, gm, lams, n, gen) -> dict:
    """x0 RMSE of each trained model against the exact denoiser, per log-SNR."""
    out = {k: [] for k in models}
    for lam in lams:
        x, tt, exact, _, _ = _at(sde, gm, float(lam), n, gen)
        for k, m in models.items():
            err = m.denoise(x.float(), tt.float()).double() - exact["x0"]
            out[k].append(float((err**2).mean().sqrt()))
    return out


def main(argv: list[str] | None = None) -> dict:
    """Regenerate the figures and results.json; return the results."""
    args = parse_args("parameterization_stability", __doc__.splitlines()[0], argv)
    started, fast = time.perf_counter(), args.fast
    pyplot, gen = plt(), torch.Generator().manual_seed(args.seed)
    sde, gm = VPSDE(), notes_data().with_sde(VPSDE())
    lam_T = float(sde.log_snr(torch.tensor(sde.T, dtype=F64)))
    lams = torch.linspace(lam_T, 8.0, 7 if fast else 19)
    n, steps = (2000, 150) if fast else (10000, 1500)
    amp = amplification(sde, gm, lams, n, gen)
    models = {k: train_tiny(sde, gm, predicts=k, steps=steps, seed=args.seed)[0] for k in KINDS}
    # the notes' switch: the same eps network, its x0 clamped to the data's box where sigma > alpha
    models["eps + x0_clip"] = ScoreModel(models["eps"].net, sde, predicts="eps", x0_clip=CLIP)
    errs = trained_errors(models, sde, gm, lams, n, gen)
    x_T = sde.prior_sample((n, 2), generator=gen)
    samples, runaway = {}, {}
    for k, m in models.items():
        with warnings.catch_warnings():  # eps without x0_clip under DDIM: the point here
            warnings.simplefilter("ignore", UnstableParameterizationWarning)
            samples[k], _ = sample("ddim", sde, m, x_T, 20)
        runaway[k] = int((samples[k].norm(dim=1) > 12).sum())
    # -- figures ---------------------------------------------------------------------------
    fig, ax = pyplot.subplots(figsize=(5.5, 3.8))
    for i, k in enumerate(KINDS):
        ax.semilogy(lams, amp[k]["closed_form"], color=f"C{i}", lw=1, label=f"{k}: closed form")
        ax.semilogy(lams, amp[k]["measured"], "o", color=f"C{i}", ms=4, label=f"{k}: measured")
    ax.set(xlabel="log-SNR lambda", ylabel="x0 error / prediction error",
           title="Error amplification into x0 (exact predictions + noise)")  # fmt: skip
    ax.legend(fontsize=7)
    figures = [save_fig(fig, args.out, "amplification")]
    fig, axes = pyplot.subplots(1, 5, figsize=(19, 3.6))
    for i, k in enumerate(models):
        axes[0].semilogy(lams, errs[k], "o-", color=f"C{i}", ms=3, label=k)
        s = samples[k][:3000]
        axes[i + 1].scatter(s[:, 0], s[:, 1], s=1, alpha=0.4, color=f"C{i}")
        axes[i + 1].set(
            xlim=(-6, 6), ylim=(-6, 6), title=f"{k}: DDIM 20 NFE, {runaway[k]} run away"
        )
    axes[0].set(xlabel="log-SNR lambda", ylabel="x0 RMSE vs exact E[x0|x_t]",
                title=f"trained {steps} steps")  # fmt: skip
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    figures.append(save_fig(fig, args.out, "trained"))
    results = {"experiment": "parameterization_stability", "fast": fast, "seed": args.seed,
               "n": n, "train_steps": steps, "delta": DELTA, "log_snr": lams,
               "amplification": amp, "trained_x0_rmse": errs, "ddim_runaway": runaway,
               "figures": figures}  # fmt: skip
    save_json(results, args.out, started)
    return results


if __name__ == "__main__":
    res = main()
    for k, v in res["trained_x0_rmse"].items():
        print(k, [round(e, 3) for e in v], res["ddim_runaway"][k])
