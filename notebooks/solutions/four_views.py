# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Notebook: one model, four views (worked solutions)
#
# The runnable companion of [One model, four views](../../concepts/four-views.md); the exercises
# with blanks are in [the exercise notebook](../four_views.py). A 1-D Gaussian mixture
# $0.35\,\mathcal{N}(-1.5, 0.05) + 0.65\,\mathcal{N}(1.5, 0.2)$ (**variances**) under the VP SDE
# has an exact score, so every difference below is a solver's.
#
# In 1-D the probability-flow ODE's map from $x_T$ to $x_{t_\epsilon}$ is known exactly: a flow
# preserves order, so it is the **quantile transport** $x \mapsto F_{t_\epsilon}^{-1}(F_T(x))$,
# with $F_t$ the CDF of $p_t$ (a mixture of Gaussian CDFs). The checks compare each sampler's
# endpoint with it **point by point** (paired), which fails a biased sampler that a distance
# between two sample sets would let through; stochastic samplers, which have no map, are
# checked by a Kolmogorov–Smirnov test against the exact CDF.
#
# Each exercise cell ends with a check that raises on a wrong answer; some solutions also show
# a plausible wrong answer being rejected (`rejects`).

# %%
import torch
from scipy.stats import kstest

from scoresde import VPSDE, GaussianMixture, make_grid, sample

torch.set_default_dtype(torch.float64)
sde = VPSDE(eps=1e-3)
gm = GaussianMixture([0.35, 0.65], [[-1.5], [1.5]], [[0.05], [0.2]], sde=sde)
gen = torch.Generator().manual_seed(0)
x_T = sde.prior_sample((2000, 1), generator=gen, dtype=torch.float64)  # the same x_T everywhere


def cdf(t, x):
    """F_t(x): the CDF of p_t, a 1-D Gaussian mixture, at x of shape (n, 1)."""
    mix = gm.marginal_mixture(float(t))
    z = (x - mix.means[:, 0]) / mix.covariances[:, 0].sqrt()
    return (mix.weights * torch.special.ndtr(z)).sum(-1)


def quantile(t, u):
    """F_t^{-1}(u) by bisection (64 halvings of [-30, 30]: below 1e-15)."""
    lo, hi = torch.full_like(u, -30.0), torch.full_like(u, 30.0)
    for _ in range(64):
        mid = (lo + hi) / 2
        below = cdf(t, mid[:, None]) < u
        lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
    return ((lo + hi) / 2)[:, None]


def pf_exact(x, t_from=sde.T, t_to=sde.eps):
    """The exact PF-ODE map from t_from to t_to in 1-D: the quantile transport."""
    return quantile(t_to, cdf(t_from, x))


def close(label, got, want, tol):
    """Fail (AssertionError) unless got matches want point by point to tol."""
    if got is None:
        raise AssertionError(f"{label}: fill in the blank first")
    got, want = (
        torch.as_tensor(got, dtype=torch.float64),
        torch.as_tensor(want, dtype=torch.float64),
    )
    if got.shape != want.shape:
        raise AssertionError(f"{label}: expected shape {tuple(want.shape)}, got {tuple(got.shape)}")
    err = float((got - want).abs().max())
    if not err <= tol:
        raise AssertionError(f"{label}: off by up to {err:.3g} (tolerance {tol:.0e})")
    print(f"{label}: correct (max error {err:.1e} <= {tol:.0e})")


def check(label, ok, detail):
    """Fail (AssertionError) unless ok."""
    if not ok:
        raise AssertionError(f"{label}: not yet: {detail}")
    print(f"{label}: correct ({detail})")


def rejects(label, check_fn, *args):
    """Show that a check fails on a plausible wrong answer."""
    try:
        check_fn(label, *args)
    except AssertionError as e:
        print(f"  rejected, as it should be: {e}")
        return
    raise RuntimeError(f"{label}: a wrong answer passed the check")


def ks_p(x, t=sde.eps):
    """p-value of the KS test of samples x against the exact p_t."""
    return float(kstest(cdf(t, x).numpy(), "uniform").pvalue)


exact = pf_exact(x_T)
print("exact PF-ODE endpoints of the first three x_T:", exact[:3, 0].tolist())

# %% [markdown]
# ## Exercise 1: DDIM(η = 1) *is* DDPM with $\tilde\beta$
#
# Run DDIM with $\eta = 1$ on the same 50-step grid as DDPM (default variance $\tilde\beta_n$),
# from the same $\mathbf{x}_T$, with a generator seeded 1 as DDPM's. Claim: the outputs agree to
# rounding (not "approximately": the updates are algebraically the same).
#
# *Hint:* `sample("ddim", sde, gm, x_T, grid, eta=..., generator=...)`.

# %% tags=["exercise"]
grid = make_grid(sde, 50)
x_ddpm, _ = sample("ddpm", sde, gm, x_T, grid, generator=torch.Generator().manual_seed(1))
x_ddim, _ = sample("ddim", sde, gm, x_T, grid, eta=1.0, generator=torch.Generator().manual_seed(1))
close("Exercise 1", x_ddim, x_ddpm, 1e-11)
x_half, _ = sample("ddim", sde, gm, x_T, grid, eta=0.5, generator=torch.Generator().manual_seed(1))
rejects("Exercise 1 with eta = 0.5", close, x_half, x_ddpm, 1e-11)

# %% [markdown]
# ## Exercise 2: DDIM(η = 0) is a first-order solver of the PF-ODE
#
# Write `ddim_error(n)`: the mean distance between DDIM's endpoint after `n` steps and the exact
# map, **paired** (the same $x_T$ on both sides). The check fits the slope of log error
# against log $N$ for $N = 10, 20, 40, 80$. Claim: the slope is about $-1$.
#
# *Hint:* `sample("ddim", sde, gm, x_T, make_grid(sde, n))` returns `(x, info)`; compare
# `x` with `exact`.

# %%
ns = [10, 20, 40, 80]


def check_order(label, errors, want, tol):
    if any(e is None for e in errors):
        raise AssertionError(f"{label}: fill in the blank first")
    ref, _ = sample("ddim", sde, gm, x_T, make_grid(sde, ns[-1]))
    close(f"{label} (the error at N = {ns[-1]})", errors[-1], (ref - exact).abs().mean(), 1e-12)
    logn, loge = torch.tensor(ns).log(), torch.tensor(errors).log()
    slope = float(
        ((logn - logn.mean()) * (loge - loge.mean())).sum() / (logn - logn.mean()).pow(2).sum()
    )
    check(label, abs(-slope - want) < tol, f"fitted order {-slope:.3f}, expected {want} +- {tol}")


# %% tags=["exercise"]
def ddim_error(n):
    x, _ = sample("ddim", sde, gm, x_T, make_grid(sde, n))
    return float((x - exact).abs().mean())


errors = [ddim_error(n) for n in ns]
print("paired errors", errors)
check_order("Exercise 2", errors, 1.0, 0.15)

# %% [markdown]
# ## Exercise 3: same law, different couplings
#
# Compute `x_ode`, the PF-ODE endpoint from $x_T$ (any deterministic solver, accurate enough that
# its mean paired error to the exact map is below $10^{-4}$), and `x_sde`, the reverse SDE's
# (Euler–Maruyama, 500 steps). Claim: both have the law $p_{t_\epsilon}$ (a KS test against the
# exact CDF cannot reject them at the 0.1% level), but only the ODE keeps the pairing: the SDE's
# endpoints are, on average, far from where the map sends their $x_T$.
#
# *Hint:* `sample("pf_adaptive", ..., make_grid(sde, 1), rtol=..., atol=...)` is a dopri5 solve;
# `sample("euler_maruyama", ..., make_grid(sde, 500), generator=gen)`.


# %%
def check_couplings(label, x_ode, x_sde):
    if x_ode is None or x_sde is None:
        raise AssertionError(f"{label}: fill in the blanks first")
    gap_ode, gap_sde = float((x_ode - exact).abs().mean()), float((x_sde - exact).abs().mean())
    check(f"{label} (ODE keeps the pairing)", gap_ode < 1e-4, f"mean paired error {gap_ode:.1e}")
    check(f"{label} (ODE law)", ks_p(x_ode) > 1e-3, f"KS p-value {ks_p(x_ode):.3f}")
    check(f"{label} (SDE law)", ks_p(x_sde) > 1e-3, f"KS p-value {ks_p(x_sde):.3f}")
    check(f"{label} (SDE forgets x_T)", gap_sde > 0.3, f"mean paired distance {gap_sde:.2f}")


# %% tags=["exercise"]
x_ode, _ = sample("pf_adaptive", sde, gm, x_T, make_grid(sde, 1), rtol=1e-7, atol=1e-7)
x_sde, _ = sample("euler_maruyama", sde, gm, x_T, make_grid(sde, 500), generator=gen)
check_couplings("Exercise 3", x_ode, x_sde)
x_ddim10, _ = sample("ddim", sde, gm, x_T, make_grid(sde, 10))  # a biased "ODE": 10 DDIM steps
rejects("Exercise 3 with 10 DDIM steps", check_couplings, x_ddim10, x_sde)

# %% [markdown]
# ## Exercise 4: how many DDIM steps?
#
# Find `n_match`, the smallest $N$ in $\{5, 10, 20, 40, 80, 160\}$ at which DDIM(η = 0)'s mean
# paired error to the exact map is below 0.02. (Compare: DDPM with the same $N$ has no map to
# be paired with at all.)
#
# *Hint:* `next(n for n in candidates if ...)` with your `ddim_error` from Exercise 2.

# %%
candidates = [5, 10, 20, 40, 80, 160]


def check_n_match(label, n):
    if n is None:
        raise AssertionError(f"{label}: fill in the blank first")
    errs = {m: float((sample("ddim", sde, gm, x_T, make_grid(sde, m))[0] - exact).abs().mean())
            for m in candidates}  # fmt: skip
    want = next(m for m in candidates if errs[m] < 0.02)
    check(
        label,
        n == want,
        f"N = {n}; paired errors {', '.join(f'{m}: {e:.3f}' for m, e in errs.items())}",
    )


# %% tags=["exercise"]
n_match = next(n for n in candidates if ddim_error(n) < 0.02)
check_n_match("Exercise 4", n_match)

# %% [markdown]
# ## Exercise 5: forward, then backward
#
# Write `encode(x0)`: the exact PF-ODE map run **forwards**, from $t_\epsilon$ to $T$ (in 1-D the
# quantile transport the other way). Claim: decoding with the exact map returns each point, and
# the codes have the law $p_T$; whereas the forward SDE (the kernel
# $x_T = \alpha_T x_0 + \sigma_T\epsilon$) followed by the reverse SDE does not return the points.
#
# *Hint:* `pf_exact(x, t_from, t_to)`.

# %%
x0 = gm.marginal_mixture(sde.eps).sample(300, gen)


def check_encoder(label, encode):
    z = encode(x0)
    if z is None:
        raise AssertionError(f"{label}: fill in the blank first")
    close(f"{label} (round trip)", pf_exact(z), x0, 1e-8)
    check(f"{label} (codes ~ p_T)", ks_p(z, sde.T) > 1e-3, f"KS p-value {ks_p(z, sde.T):.3f}")


# %% tags=["exercise"]
def encode(x):
    return pf_exact(x, sde.eps, sde.T)


check_encoder("Exercise 5", encode)
a_T, s_T = (float(v) for v in sde.marginal(sde.T))
sde_code = lambda x: a_T * x + s_T * torch.randn(x.shape, generator=gen)  # noqa: E731
rejects("Exercise 5 with the forward SDE as the encoder", check_encoder, sde_code)
