"""Quality on CPU: test NLL of 8 Gaussians and checkerboard after a fixed training time budget.

Targets (issue 5): 8 Gaussians <= 2.88 nats (entropy 2.832), checkerboard <= 3.55 nats
(entropy log 32 = 3.466), each within 5 minutes of CPU training. The NLL is the exact PF-ODE
likelihood of :mod:`scoresde.likelihood` on the fixed test set, with the EMA weights.

The learning rate decays (cosine) over ``--steps`` steps, sized so that a run ends within the
budget on a 2-core CPU shared with other work (about 40 steps/s); ``time_limit`` stops it early
on a slower machine.

Baseline measured in the same run: a single Gaussian fitted (closed form: mean and covariance)
to the same training data; the printed ratio is the model's NLL gap to the entropy over the
baseline's (0 = perfect, 1 = no better than a Gaussian).

Usage: ``python benchmarks/train_quality.py [--minutes 5] [--steps 11000] [--sets 8gaussians]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from scoresde.cli.build import build_data, build_sde, train_from_config
from scoresde.cli.config import RunConfig
from scoresde.studies import mean_se

try:
    from scoresde.likelihood import log_likelihood
except ImportError:
    from scoresde.likelihood.ode import log_likelihood


def config(name: str, steps: int) -> RunConfig:
    return RunConfig.from_dict(
        {
            "data": {"name": name},
            "net": {"kwargs": {"hidden": 128, "depth": 4, "embed_dim": 64}},
            "loss": {"weighting": "likelihood", "t_sampling": "importance"},
            "optim": {
                "lr": 2e-3,
                "warmup_steps": 200,
                "lr_decay": "cosine",
                "ema_decay": 0.999,
                "grad_clip": 1.0,
            },
            "schedule": {"steps": steps, "batch_size": 512, "log_every": 500, "ckpt_every": steps},
        }
    )


def nll(cfg: RunConfig, model, n_test: int) -> tuple[float, float, str]:
    sde, x = build_sde(cfg), build_data(cfg).test[:n_test]
    with torch.no_grad():
        try:
            res, how = log_likelihood(sde, model.score_fn, x, rtol=1e-5, atol=1e-5), "dopri5"
        except ValueError:  # adaptive steps may probe t > T; fall back to fixed-step RK4
            res = log_likelihood(sde, model.score_fn, x, solver="rk4", options={"step_size": 1e-3})
            how = "rk4(h=1e-3)"
    lp = res.log_prob.double()
    mean, se = mean_se(lp)
    return -float(mean), float(se), how


def gaussian_baseline_nll(cfg: RunConfig, n_test: int, n_train: int = 100_000) -> float:
    """Test NLL (nats) of N(mean, cov) fitted to training data of the same run (the data space
    in which the model's NLL is measured)."""
    data = build_data(cfg)
    train = data.batch(0, n_train, 0).double().reshape(n_train, -1)
    test = data.test[:n_test].double()
    fit = torch.distributions.MultivariateNormal(train.mean(0), torch.cov(train.T))
    return -float(fit.log_prob(test.reshape(test.shape[0], -1)).mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--n-test", type=int, default=2000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=11000, help="cosine LR horizon")
    p.add_argument("--sets", nargs="+", default=["8gaussians", "checkerboard"])
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    targets = {"8gaussians": 2.88, "checkerboard": 3.55}
    print(f"threads={torch.get_num_threads()} budget={args.minutes} min per set")
    for name in args.sets:
        cfg = config(name, args.steps)
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            res = train_from_config(
                cfg, d, progress=False, device="cpu", time_limit=60 * args.minutes
            )
            train_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        value, se, how = nll(cfg, res.model, args.n_test)
        entropy = build_data(cfg).entropy
        base = gaussian_baseline_nll(cfg, args.n_test)
        ratio = (value - entropy) / (base - entropy) if entropy is not None else float("nan")
        print(
            f"{name:13s} steps={res.step:6d} train={train_s:5.0f}s  test NLL={value:.4f} "
            f"+- {se:.4f} nats ({how}, {time.perf_counter() - t1:.0f}s)  entropy={entropy:.4f}"
            f"  target<={targets.get(name)}  {'OK' if value <= targets.get(name, 0) else 'MISS'}"
            f"  Gaussian baseline NLL={base:.4f}, gap ratio model/baseline={ratio:.3f}"
        )


if __name__ == "__main__":
    main()
