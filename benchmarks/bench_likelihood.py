"""Benchmark: log-likelihood through the PF-ODE on analytic Gaussian mixtures (issue 4).

Prints, for d = 2, 16, 64: mean absolute error against the exact log p_0(x), NFE and wall time
for scoresde's exact divergence at several tolerances, Hutchinson with 1 and 8 probes, and two
plain baselines: the score_sde recipe (scipy ``solve_ivp`` RK45 on one flattened numpy state,
fixed Rademacher probes, numpy/torch conversion at every evaluation) and an exact-divergence
solve with ``torch.func.jacrev`` at every stage under torchdiffeq dopri5.

Every method uses the exact p_T of the mixture as prior and float64, so the error is the
solver's and the estimator's alone (t_eps truncation bias printed separately).

    python benchmarks/bench_likelihood.py [--n 1000] [--n64 200] [--threads 1] [--dims 2 16 64]
"""

# ruff: noqa: B023  (each lambda is called at once, inside its own loop iteration)
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torchdiffeq
from scipy import integrate

from scoresde import VPSDE, GaussianMixture
from scoresde.likelihood import log_likelihood

F64 = torch.float64


def mixture(d: int, sde: VPSDE, K: int = 4, seed: int = 0) -> GaussianMixture:
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(K, d, d, generator=g, dtype=F64) / d**0.5
    cov = 0.5 * A @ A.transpose(-1, -2) + 0.1 * torch.eye(d, dtype=F64)
    return GaussianMixture(
        torch.ones(K) / K, 2 * torch.randn(K, d, generator=g, dtype=F64), cov, sde=sde
    )


def scipy_recipe(sde, score_fn, x, prior, tol, n_probes, generator):
    """score_sde's likelihood.py, written plainly (RK45 over one flat numpy state)."""
    shape, B = x.shape, x.shape[0]
    probes = (2 * torch.randint(0, 2, (n_probes, *shape), generator=generator) - 1).to(F64)
    pf = sde.probability_flow(score_fn)

    def div_fn(y, t):
        with torch.enable_grad():
            y = y.clone().requires_grad_(True)
            out = pf.drift(y, t)
            total = 0
            for eps in probes:
                (gr,) = torch.autograd.grad((out * eps).sum(), y, retain_graph=True)
                total = total + (gr * eps).sum(1)
        return total / n_probes

    def ode_func(t, state):
        y = torch.from_numpy(state[:-B].reshape(shape))
        vec_t = torch.full((B,), t, dtype=F64)
        drift = pf.drift(y, vec_t).numpy().reshape(-1)
        return np.concatenate([drift, div_fn(y, vec_t).numpy()])

    init = np.concatenate([x.numpy().reshape(-1), np.zeros(B)])
    sol = integrate.solve_ivp(ode_func, (sde.eps, sde.T), init, rtol=tol, atol=tol, method="RK45")
    zp = sol.y[:, -1]
    z = torch.from_numpy(zp[:-B].reshape(shape))
    return prior(z) + torch.from_numpy(zp[-B:]), sol.nfev


def jacrev_plain(sde, score_fn, x, prior, tol, land_on_T=False):
    """Exact divergence by torch.func.jacrev at every stage, torchdiffeq dopri5, default norm.

    ``land_on_T`` adds ``step_t=[T]`` so that dopri5 ends its last step on T instead of
    stepping past T (through the clamped drift) and interpolating back.
    """
    pf = sde.probability_flow(score_fn)
    nfe = 0

    def func(t, state):
        nonlocal nfe
        nfe += 1
        t = t.clamp(max=sde.T)  # dopri5's first-step probe may overshoot T
        y = state[0]
        jac = torch.func.vmap(torch.func.jacrev(lambda yi: pf.drift(yi[None], t)[0]))(y)
        return pf.drift(y, t), jac.diagonal(dim1=-2, dim2=-1).sum(-1)

    span = torch.tensor([sde.eps, sde.T], dtype=F64)
    with torch.no_grad():
        opts = {"step_t": span[1:]} if land_on_T else None
        y0 = (x, x.new_zeros(x.shape[0]))
        xs, ls = torchdiffeq.odeint(func, y0, span, rtol=tol, atol=tol, options=opts)
    return prior(xs[-1]) + ls[-1], nfe


def run(label, fn, exact, rows, d, n):
    t0 = time.perf_counter()
    logp, nfe, extra = fn()
    wall = time.perf_counter() - t0
    err = float((logp - exact).abs().mean())
    rows.append((d, n, label, err, nfe, wall, extra))
    ms = 1e3 * wall / max(nfe, 1)
    print(
        f"{d:>3} {n:>5} {label:<38} {err:>9.2e} {nfe:>5} {wall:>8.2f} {ms:>7.1f}  {extra}",
        flush=True,
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--n64", type=int, default=1000, help="points at d=64")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--dims", type=int, nargs="+", default=[2, 16, 64])
    p.add_argument("--tols", type=float, nargs="+", default=[1e-4, 1e-5, 1e-6])
    p.add_argument("--plain-tols", type=float, nargs="+", default=[1e-5, 1e-6, 1e-7])
    p.add_argument("--hutch-norms", nargs="+", default=["sample_max", "sample_rms"])
    p.add_argument("--sections", nargs="+", default=["exact", "hutch", "scipy", "plain"])
    p.add_argument("--landed-tols", type=float, nargs="+", default=[1e-6])
    p.add_argument("--norms", nargs="+", default=["sample_max", "sample_rms"])
    p.add_argument("--variables", nargs="*", default=["sigma", "log_snr"], help="at tol 1e-5")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, threads={torch.get_num_threads()}, float64, VP SDE, K=4")
    print("ours: exact <time_variable> <error_norm> tol=<rtol=atol>; default t, sample_max")
    print(
        f"{'d':>3} {'n':>5} {'method':<38} {'MAE nats':>9} {'NFE':>5} {'wall s':>8} {'ms/NFE':>8}  notes"
    )
    _ours(*_warmup())  # one small solve first, so that no row pays for lazy initialisation
    rows: list = []
    for d in args.dims:
        n = args.n64 if d == 64 else args.n
        sde = VPSDE()
        gm = mixture(d, sde)
        x = gm.sample(n, torch.Generator().manual_seed(1))
        exact = gm.log_prob(x)
        prior = gm.marginal_mixture(sde.T).log_prob
        bias = float((gm.marginal_log_prob(x, sde.eps) - exact).abs().mean())
        print(f"{d:>3} {n:>5} (t_eps truncation bias |log p_eps - log p_0|) {bias:.1e}")
        for norm in args.norms if "exact" in args.sections else ():
            for tol in args.tols:
                run(
                    f"exact t {norm} tol={tol:g}",
                    lambda tol=tol, norm=norm: _ours(
                        sde, gm, x, prior, tol, exact=exact, error_norm=norm
                    ),
                    exact,
                    rows,
                    d,
                    n,
                )
        for var in args.variables if "exact" in args.sections else ():
            run(
                f"exact {var} sample_max tol=1e-05",
                lambda var=var: _ours(sde, gm, x, prior, 1e-5, exact=exact, time_variable=var),
                exact,
                rows,
                d,
                n,
            )
        hutch = (
            [(k, m) for m in args.hutch_norms for k in (1, 8)] if "hutch" in args.sections else []
        )
        for k, norm in hutch:
            run(
                f"hutchinson {norm} {k} probe(s) tol=1e-5",
                lambda k=k, m=norm: _ours(sde, gm, x, prior, 1e-5, k, exact=exact, error_norm=m),
                exact,
                rows,
                d,
                n,
            )
        for k in (1, 8) if "scipy" in args.sections else ():
            g = torch.Generator().manual_seed(2)
            run(
                f"scipy RK45 recipe {k} probe(s) tol=1e-5",
                lambda k=k, g=g: (*scipy_recipe(sde, gm, x, prior, 1e-5, k, g), ""),
                exact,
                rows,
                d,
                n,
            )
        for tol in args.plain_tols if "plain" in args.sections else ():
            run(
                f"plain jacrev dopri5 tol={tol:g}",
                lambda tol=tol: (*jacrev_plain(sde, gm, x, prior, tol), ""),
                exact,
                rows,
                d,
                n,
            )
        for tol in args.landed_tols if "plain" in args.sections else ():
            run(
                f"plain jacrev dopri5 step_t=[T] tol={tol:g}",
                lambda tol=tol: (*jacrev_plain(sde, gm, x, prior, tol, land_on_T=True), ""),
                exact,
                rows,
                d,
                n,
            )
        print_ratios([r for r in rows if r[0] == d])


def print_ratios(rows: list) -> None:
    """Each row's wall time, NFE and error over the baseline's, measured in this run: the plain
    exact-divergence solve (jacrev + dopri5) if it ran, else the score_sde recipe, else row 1."""
    if not rows:
        return
    base = next((r for r in rows if r[2].startswith("plain jacrev")), None)
    base = base or next((r for r in rows if r[2].startswith("scipy RK45")), rows[0])
    print(f"    ratios vs baseline '{base[2]}' (threads={torch.get_num_threads()}):")
    for _, _, label, err, nfe, wall, _ in rows:
        print(f"    {label:<38} wall x{wall / base[5]:6.2f}  NFE x{nfe / max(base[4], 1):6.2f}"
              f"  MAE x{err / max(base[3], 1e-300):8.2e}")  # fmt: skip


def _warmup():
    sde = VPSDE()
    gm = mixture(2, sde)
    return sde, gm, gm.sample(8), gm.marginal_mixture(sde.T).log_prob, 1e-3


def _ours(sde, gm, x, prior, tol, n_probes=0, exact=None, **kw):
    if n_probes == 0:
        r = log_likelihood(sde, gm, x, rtol=tol, atol=tol, prior_log_prob=prior, **kw)
        if exact is None:
            return r.log_prob, r.nfe, ""
        err = float((r.log_prob - exact).abs().max())
        return r.log_prob, r.nfe, f"vjp={r.n_vjp}, max err {err:.1e}"
    g = torch.Generator().manual_seed(2)
    r = log_likelihood(
        sde,
        gm,
        x,
        rtol=tol,
        atol=tol,
        prior_log_prob=prior,
        divergence="hutchinson",
        n_probes=n_probes,
        generator=g,
        **kw,
    )
    err = (r.log_prob - exact).abs()
    if n_probes == 1:
        return r.log_prob, r.nfe, "stderr n/a with 1 probe"
    cover = float((err < 2 * r.stderr).double().mean())
    return r.log_prob, r.nfe, f"mean stderr {float(r.stderr.mean()):.2f}, |err|<2se for {cover:.0%}"


if __name__ == "__main__":
    main()
