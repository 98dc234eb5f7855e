"""Benchmark: what a likelihood costs, before/after, on exact mixtures and the MNIST-5000 model.

Prints NFE per solve, CPU seconds per sample (``time.process_time``, one thread) and the error
parts, with ratios against today's settings measured in the same run:

* **Exact mixtures** (d = 2, 16, 64; the 4-component VP mixtures of ``bench_likelihood.py``,
  seed 0, held out from the choice of defaults, which used seeds 10 and 11): the exact
  divergence at the old default tolerance 1e-5 against the new default, error = mean |log p -
  exact log p_0| (exact p_T as prior); Hutchinson with 2 probes fixed along an adaptive path
  against 2 probes drawn anew at every evaluation of a fixed grid: per-sample standard error
  and its coverage (Student's t with the reported dof).
* **MNIST** (``--run-dir`` holding ``checkpoint.pt`` of ``experiments/mnist.py``): today's
  dopri5 at rtol = atol = 1e-2 in t with one fixed probe, against rk4 on fixed grids (path in
  sigma~, log-density in log-SNR) of N / 4 and N steps; the solver error of each from paired
  re-solves (the same fixed probe) on a grid of 4 N steps; the cost of one evaluation with m probes against the exact
  divergence (784 vector-Jacobian products), for one image's log p to +-0.01 bits/dim.

    python benchmarks/bench_likelihood_cost.py [--run-dir runs/mnist] [--n-steps 32] [--images 8]
"""

# ruff: noqa: B023  (each lambda is called at once, inside its own loop iteration)
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_likelihood import mixture  # noqa: E402

from scoresde import VPSDE  # noqa: E402
from scoresde.likelihood import (  # noqa: E402
    log_likelihood,
    score_and_divergence,
    score_and_probe_products,
)

OLD_TOL = 1e-5  # log_likelihood's default rtol = atol before issue 30


def timed(fn):  # noqa: ANN001, ANN201
    c0 = time.process_time()
    out = fn()
    return out, time.process_time() - c0


def coverage(err: torch.Tensor, se: torch.Tensor, dof: torch.Tensor) -> float:
    q = torch.from_numpy(stats.t.ppf(0.8413, dof.clamp_min(1).numpy()))
    return float(((err / se).abs() < q).double().mean())


def mixtures(dims: list[int], n: int, n64: int) -> None:
    print("== exact mixtures (seed 0, held out), VP, float64, exact p_T prior ==")
    head = f"{'d':>3} {'n':>4} {'setting':<44} {'NFE':>5} {'CPU s/pt':>9} {'error':>9}  ratios"
    print(head)
    warm = mixture(2, VPSDE())  # one small solve first: no row pays for lazy initialisation
    log_likelihood(VPSDE(), warm, warm.sample(8), n_steps=2, divergence="hutchinson", n_probes=2)
    log_likelihood(VPSDE(), warm, warm.sample(8), rtol=1e-3, atol=1e-3)
    for d in dims:
        npts = n64 if d == 64 else n
        sde = VPSDE()
        gm = mixture(d, sde)
        x = gm.sample(npts, torch.Generator().manual_seed(1))
        exact, prior = gm.log_prob(x), gm.marginal_mixture(sde.T).log_prob
        rows = {}
        for label, kw in (
            ("exact, old default tol 1e-5", {"rtol": OLD_TOL, "atol": OLD_TOL}),
            ("exact, new default", {}),
        ):
            r, cpu = timed(lambda kw=kw: log_likelihood(sde, gm, x, prior_log_prob=prior, **kw))
            rows[label] = (r.nfe, cpu / npts, float((r.log_prob - exact).abs().mean()))
        base = rows["exact, old default tol 1e-5"]
        for label, (nfe, cpu, err) in rows.items():
            print(f"{d:>3} {npts:>4} {label:<44} {nfe:>5} {cpu:>9.2e} {err:>9.1e}  "
                  f"NFE x{nfe / base[0]:.2f} CPU x{cpu / base[1]:.2f}")  # fmt: skip
        g = torch.Generator().manual_seed(2)
        fixed, cpu_f = timed(lambda g=g: log_likelihood(
            sde, gm, x, prior_log_prob=prior, divergence="hutchinson", n_probes=2, generator=g))  # fmt: skip
        ref_grid = log_likelihood(sde, gm, x, prior_log_prob=prior, n_steps=16, solver="rk4")
        fresh, cpu_r = timed(lambda g=g: log_likelihood(
            sde, gm, x, prior_log_prob=prior, divergence="hutchinson", n_probes=2, generator=g,
            n_steps=16, solver="rk4"))  # fmt: skip
        assert fixed.stderr is not None and fresh.stderr is not None and fresh.dof is not None
        one = torch.ones_like(fixed.stderr)
        cov_f = coverage(fixed.log_prob - exact, fixed.stderr, one)
        cov_r = coverage(fresh.log_prob - ref_grid.log_prob, fresh.stderr, fresh.dof)
        for label, r, cpu, cov in (
            ("hutchinson 2 fixed probes, dopri5 1e-5", fixed, cpu_f, cov_f),
            ("hutchinson 2 refreshed probes, rk4 16 steps", fresh, cpu_r, cov_r),
        ):
            se = float(r.stderr.pow(2).mean().sqrt())  # type: ignore[union-attr]
            print(f"{d:>3} {npts:>4} {label:<44} {r.nfe:>5} {cpu / npts:>9.2e} "
                  f"{'se ' + format(se, '.2f'):>9}  1-SE coverage {cov:.0%} (nominal 68%)")  # fmt: skip
        # per-sample step control, its best case: every sample solved alone (new default)
        few = x[:20]
        batch = log_likelihood(sde, gm, few, prior_log_prob=prior).nfe
        alone = [log_likelihood(sde, gm, few[i : i + 1], prior_log_prob=prior).nfe
                 for i in range(few.shape[0])]  # fmt: skip
        print(
            f"{d:>3} {20:>4} per-sample steps: batch of 20 takes {batch} NFE, alone "
            f"{sum(alone) / 20:.0f} on average (x{sum(alone) / 20 / batch:.2f}; max {max(alone)})"
        )
        # the end time: the truncation bias against the cost
        for t_eps in (1e-4, 1e-3) if d == 16 else ():
            r, cpu = timed(lambda t_eps=t_eps: log_likelihood(
                sde, gm, x, prior_log_prob=prior, t_eps=t_eps))  # fmt: skip
            err = float((r.log_prob - exact).abs().mean())
            print(
                f"{d:>3} {npts:>4} {'exact, new default, t_eps=' + format(t_eps, 'g'):<44} "
                f"{r.nfe:>5} {cpu / npts:>9.2e} {err:>9.1e}  (error = truncation + solver)"
            )


def mnist(run_dir: Path, n_steps: int, images: int, probes: int) -> None:
    from scoresde.data import load_mnist
    from scoresde.training.checkpoint import load_model

    print(f"== MNIST-5000 model ({run_dir}), {images} test images, float32 ==")
    model = load_model(run_dir / "checkpoint.pt", use_ema=False).model.eval()
    k = load_mnist().test.long()[(torch.arange(images) * 1000) // images]
    u = torch.rand(k.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    y = -1 + 2 * (k.double() + u) / 256
    D, seeds = 784, list(range(images))
    to_bpd = 1.0 / (D * math.log(2))

    def run(**kw):  # noqa: ANN003, ANN202
        return timed(lambda: log_likelihood(model.sde, model, y, divergence="hutchinson",
                                            seeds=seeds, dtype=torch.float32, **kw))  # fmt: skip

    grid = {"solver": "rk4", "time_variable": "sigma"}  # path in sigma~, log-density in lambda
    run(n_steps=1, **grid)  # warm-up
    old, cpu_old = run(solver="dopri5", rtol=1e-2, atol=1e-2)
    ref, _ = run(n_steps=4 * n_steps, refresh_probes=False, **grid)
    print(f"{'setting':<46} {'NFE':>5} {'CPU s/img':>9} {'solver err bpd (mean, max)':>28}")
    err_old = (ref.log_prob.double() - old.log_prob.double()) * to_bpd  # in bits/dim
    rows = [("today: dopri5 rtol=atol=1e-2 in t, 1 probe", old, cpu_old, err_old)]
    for steps in (n_steps // 4, n_steps):
        r, cpu = run(n_steps=steps, refresh_probes=False, **grid)
        err = (ref.log_prob.double() - r.log_prob.double()) * to_bpd
        rows.append((f"rk4 {steps} steps, sigma~ path, 1 probe", r, cpu, err))
    new, cpu_new = run(n_steps=n_steps // 4, n_probes=probes, **grid)
    for label, r, cpu, e in rows:
        print(f"{label:<46} {r.nfe:>5} {cpu / images:>9.3f} "
              f"{float(e.mean()):>+14.5f} {float(e.abs().max()):>12.5f}  "
              f"NFE x{r.nfe / old.nfe:.3f} CPU x{cpu / cpu_old:.3f}")  # fmt: skip
    print(
        f"(errors against rk4 {4 * n_steps} steps; the test set's estimate uses "
        f"{n_steps // 4} steps on every image plus ({n_steps} - {n_steps // 4}) on a subset)"
    )
    assert new.stderr is not None
    se = new.stderr.double() * to_bpd
    print(f"per-image probe SE with {probes} refreshed probes: rms {float(se.pow(2).mean().sqrt()):.4f}"
          f" bits/dim (fixed probes, per probe: see experiments/mnist.md)")  # fmt: skip
    # one evaluation on one image: m probes vs the exact divergence (784 VJPs)
    t = torch.tensor(0.1)
    x1 = y[:1].float()
    _, cpu_exact = timed(lambda: score_and_divergence(model, x1, t))
    m_need = max(1, math.ceil(probes * float(se.pow(2).mean()) / 0.01**2))
    probe_draw = torch.ones(m_need, *x1.shape)
    _, cpu_m = timed(lambda: score_and_probe_products(model, x1, t, probe_draw))
    print(f"one image to +-0.01 bits/dim (1 SE): {m_need} probes per evaluation; one evaluation "
          f"costs {cpu_m:.3f} CPU s vs {cpu_exact:.3f} for the exact divergence: "
          f"x{cpu_m / cpu_exact:.4f} on the same grid (target <= 0.1)")  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dims", type=int, nargs="*", default=[2, 16, 64])
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--n64", type=int, default=50)
    p.add_argument("--run-dir", type=Path, default=None, help="MNIST run folder (skip if None)")
    p.add_argument("--n-steps", type=int, default=32, help="MNIST fine grid (the chosen one)")
    p.add_argument("--probes", type=int, default=2)
    p.add_argument("--images", type=int, default=8)
    args = p.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, threads={torch.get_num_threads()}, CPU seconds from "
          "time.process_time")  # fmt: skip
    if args.dims:
        mixtures(args.dims, args.n, args.n64)
    if args.run_dir is not None:
        mnist(args.run_dir, args.n_steps, args.images, args.probes)


if __name__ == "__main__":
    main()
