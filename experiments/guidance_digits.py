"""A class-conditional U-Net on scikit-learn's digits, sampled with classifier-free guidance.

One network learns s(x, t | y) for the ten digit classes and, with null-label dropout 0.1, the
unconditional s(x, t | ∅) (Ho & Salimans 2022); at sampling time the guided score
(1 + w) s(x, t | y) - w s(x, t | ∅) (:func:`scoresde.samplers.guidance.classifier_free_guidance`)
drives the recommended PF-ODE sampler at NFE 50 (VP SDE, same prior draws for every w).

Measured per guidance weight w in {0, 1, 3}:

- ``accuracy``: the fraction of samples of class y that a classifier trained on the real
  training images (logistic regression, scikit-learn; its test accuracy is reported) assigns to y;
- ``spread``: the mean per-pixel standard deviation of the samples within each class, divided
  by that of the real test images of the class (1 = as varied as the data; guidance lowers it);
- a figure: one row per class, one panel per w.

Training is limited to 10 CPU-minutes on one thread (``--cpu-minutes``). Run:
``python experiments/guidance_digits.py [--fast] [--out DIR]``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from scoresde import VPSDE, sample
from scoresde.data import Dataset, load_digits
from scoresde.losses import DSMLoss
from scoresde.nets import UNet
from scoresde.parameterization import ScoreModel
from scoresde.samplers.defaults import recommended, score_kind_of
from scoresde.samplers.guidance import bind_label, classifier_free_guidance
from scoresde.training import load_model, train

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, parse_args, plt, save_fig, save_json  # noqa: E402

WEIGHTS = [0.0, 1.0, 3.0]
LABEL_DROPOUT = 0.1
NFE = 50


def build_model(fast: bool, seed: int) -> ScoreModel:
    """The conditional U-Net (10 classes + the null label) on the VP SDE, eps-prediction."""
    kw: dict[str, Any] = {"base_channels": 32, "channel_mult": (1, 2), "dropout": 0.1}
    if fast:
        kw = {"base_channels": 8, "channel_mult": (1,), "attn_resolutions": ()}
    torch.manual_seed(seed)
    net = UNet(num_classes=10, time_scale=50.0, **kw)  # sinusoidal embedding of the log-SNR
    sde = VPSDE(beta_min=0.1, beta_max=20.0, eps=1e-5)
    return ScoreModel(net, sde, time_input="log_snr", x0_clip=1.25)


def train_budgeted(
    data: Dataset, run_dir: Path, steps: int, cpu_s: float, fast: bool, seed: int
) -> tuple[ScoreModel, int, float]:
    """Train in chunks of 250 steps until ``steps`` or ``cpu_s`` CPU seconds are spent.

    The CPU seconds (this process, one thread) accumulate across restarts in
    ``run_dir/cpu_time.json``; a finished run is only loaded.
    """
    model = build_model(fast, seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    ledger = run_dir / "cpu_time.json"
    done = json.loads(ledger.read_text()) if ledger.is_file() else {"cpu_s": 0.0, "step": 0}
    used, step = float(done["cpu_s"]), int(done["step"])
    while step < steps and used < cpu_s:
        c0 = time.process_time()
        res = train(
            model,
            DSMLoss(model.sde),
            data,
            opt,
            steps=steps,
            batch_size=16 if fast else 64,
            out_dir=run_dir,
            ema_decay=0.999,
            ema_warmup=True,
            seed=seed,
            log_every=10 if fast else 250,
            ckpt_every=250,
            stop_after=250,
            label_dropout=LABEL_DROPOUT,
            progress=not fast,
        )
        used, step = used + time.process_time() - c0, res.step
        ledger.write_text(json.dumps({"cpu_s": used, "step": step}))
    return load_model(run_dir / "checkpoint.pt").model, step, used


@torch.no_grad()
def guided_samples(model: ScoreModel, per_class: int, w: float, seed: int) -> torch.Tensor:
    """``per_class`` samples of every class at weight ``w`` (model units), class-major order."""
    y = torch.arange(10).repeat_interleave(per_class)
    field = classifier_free_guidance(bind_label(model, y), model, w)
    sde = model.sde
    x_T = sde.prior_sample((y.numel(), 1, 8, 8), torch.Generator().manual_seed(seed))
    x, _ = sample("auto", sde, field, x_T, NFE, generator=torch.Generator().manual_seed(seed))
    return x


def classifier(data: Dataset) -> tuple[Any, float]:
    """Logistic regression on the real training images (levels 0..16) and its test accuracy."""
    from sklearn.linear_model import LogisticRegression

    assert data.train is not None and data.labels is not None and data.labels.train is not None
    clf = LogisticRegression(max_iter=3000)
    clf.fit(data.train.reshape(len(data.train), -1).numpy(), data.labels.train.numpy())
    acc = clf.score(data.test.reshape(len(data.test), -1).numpy(), data.labels.test.numpy())
    return clf, float(acc)


def measure(levels: torch.Tensor, per_class: int, clf: Any, data: Dataset) -> dict[str, Any]:
    """Class accuracy and within-class spread (relative to the real test images) of samples."""
    assert data.labels is not None
    y = torch.arange(10).repeat_interleave(per_class)
    pred = torch.as_tensor(clf.predict(levels.reshape(len(levels), -1).numpy()))
    spread = []
    for k in range(10):
        real = data.test[data.labels.test == k]
        spread.append(float(levels[y == k].std(0).mean() / real.std(0).mean()))
    per_class_acc = [float((pred[y == k] == k).float().mean()) for k in range(10)]
    return {
        "accuracy": float((pred == y).float().mean()),
        "accuracy_per_class": per_class_acc,
        "spread": sum(spread) / 10,
        "spread_per_class": spread,
    }


def plot_grids(grids: dict[float, torch.Tensor], per_row: int, pyplot: Any) -> Any:
    """One panel per w: 10 rows (classes) x ``per_row`` samples, levels 0..16 in grey."""
    fig, axes = pyplot.subplots(1, len(grids), figsize=(2.6 * len(grids), 3.6))
    for ax, (w, lv) in zip(axes, grids.items(), strict=True):
        img = lv.reshape(10, -1, 8, 8)[:, :per_row].permute(0, 2, 1, 3).reshape(80, 8 * per_row)
        ax.imshow(img.numpy(), cmap="gray_r", vmin=0, vmax=16, aspect="equal")
        ax.set_title(f"w = {w:g}")
        ax.set_yticks([4 + 8 * k for k in range(10)], [str(k) for k in range(10)])
        ax.set_xticks([])
    fig.suptitle("classifier-free guidance, one row per class (digits 0-9)")
    return fig


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Train (or resume) the conditional model, sample each class at w = 0, 1, 3, measure."""
    p = "A class-conditional digits model with classifier-free guidance at w = 0, 1, 3."
    args = parse_args("guidance_digits", p, argv)
    torch.set_num_threads(1)
    started, fast = time.perf_counter(), args.fast
    data = load_digits()
    run_dir = args.out / "run" if fast else ROOT / "runs" / "guidance_digits"
    steps, budget = (30, 60.0) if fast else (4000, 600.0)
    model, step, cpu_s = train_budgeted(data, run_dir, steps, budget, fast, args.seed)
    clf, clf_acc = classifier(data)
    per_class, per_row = (4, 4) if fast else (50, 8)
    grids, rows = {}, []
    for w in WEIGHTS:
        x = guided_samples(model, per_class, w, args.seed + 1)
        levels = data.scaler.inverse(x).clamp(0, 16)
        grids[w] = levels
        rows.append({"w": w, **measure(levels, per_class, clf, data)})
        print(f"w = {w:g}: accuracy {rows[-1]['accuracy']:.3f}, spread {rows[-1]['spread']:.3f}")
    fig = save_fig(plot_grids(grids, per_row, plt()), args.out, "guidance_digits")
    results = {
        "fast": fast,
        "train": {
            "steps": step,
            "cpu_minutes": round(cpu_s / 60, 2),
            "batch_size": 16 if fast else 64,
            "label_dropout": LABEL_DROPOUT,
            "threads": 1,
        },
        "sampler": recommended(model.sde, NFE, score_kind_of(model)),
        "nfe": NFE,
        "samples_per_class": per_class,
        "classifier_test_accuracy": clf_acc,
        "rows": rows,
        "figures": [fig],
    }
    save_json(results, args.out, started)
    return results


if __name__ == "__main__":
    main()
