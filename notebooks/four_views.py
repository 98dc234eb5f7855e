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
# # Notebook: one model, four views
#
# The runnable companion of [One model, four views](../concepts/four-views.md). A 1-D Gaussian
# mixture $0.35\,\mathcal{N}(-1.5, 0.05) + 0.65\,\mathcal{N}(1.5, 0.2)$ (**variances**) under the
# VP SDE has an exact score, so every difference below is a solver's. Each exercise states a
# claim, computes it, and ends with an `assert` that checks the answer against an independent
# ground truth; change the code and re-run to explore.

# %%
import torch

from scoresde import VPSDE, GaussianMixture, make_grid, sample

torch.set_default_dtype(torch.float64)
sde = VPSDE(eps=1e-3)
gm = GaussianMixture([0.35, 0.65], [[-1.5], [1.5]], [[0.05], [0.2]], sde=sde)
gen = torch.Generator().manual_seed(0)
x_T = sde.prior_sample((4000, 1), generator=gen, dtype=torch.float64)  # the same x_T everywhere
exact = gm.marginal_mixture(sde.eps)  # p_{t_eps}, itself a GaussianMixture


def w2_1d(a, b):
    """Exact W2 between two equal-size 1-D samples: match sorted values."""
    return float((a[:, 0].sort().values - b[:, 0].sort().values).pow(2).mean().sqrt())


# %% [markdown]
# ## Exercise 1: DDIM(η = 1) *is* DDPM with $\tilde\beta$
#
# Run DDIM with $\eta = 1$ and DDPM (default variance $\tilde\beta_n$) on the same 50-step grid,
# from the same $\mathbf{x}_T$, with generators seeded identically. Claim: the outputs agree to
# rounding (not "approximately": the updates are algebraically the same).

# %%
grid = make_grid(sde, 50)
x_ddim, _ = sample("ddim", sde, gm, x_T, grid, eta=1.0, generator=torch.Generator().manual_seed(1))
x_ddpm, _ = sample("ddpm", sde, gm, x_T, grid, generator=torch.Generator().manual_seed(1))
identity_gap = float((x_ddim - x_ddpm).abs().max())
print(f"max |DDIM(eta=1) - DDPM(beta_tilde)| = {identity_gap:.2e}")
assert identity_gap < 1e-11

# %% [markdown]
# ## Exercise 2: DDIM(η = 0) is a first-order solver of the PF-ODE
#
# Measure the mean distance between DDIM's endpoint and a tight PF-ODE solution for
# $N = 10, 20, 40, 80$ steps and fit the slope of log error against log $N$. Claim: the slope
# is about $-1$.

# %%
ode, _ = sample("pf_adaptive", sde, gm, x_T, make_grid(sde, 1), rtol=1e-9, atol=1e-9)
ns = [10, 20, 40, 80]
errs = [float((sample("ddim", sde, gm, x_T, make_grid(sde, n))[0] - ode).abs().mean()) for n in ns]
logn, loge = torch.tensor(ns).log(), torch.tensor(errs).log()
order = float(
    -((logn - logn.mean()) * (loge - loge.mean())).sum() / (logn - logn.mean()).pow(2).sum()
)
print("errors", [f"{e:.2e}" for e in errs], "fitted order", round(order, 3))
assert abs(order - 1) < 0.15

# %% [markdown]
# ## Exercise 3: same law, different couplings
#
# Compute the rank correlation between $x_T$ and the endpoint of (a) the PF-ODE and (b) the
# reverse SDE (Euler–Maruyama, 500 steps). Claim: (a) is exactly 1 in 1-D (the flow is
# monotone), (b) is close to 0 (the noise forgets $x_T$), yet both endpoints are within the
# noise floor of exact samples.


# %%
def rank_corr(a, b):
    ra, rb = (v[:, 0].argsort().argsort().double() for v in (a, b))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / (ra.norm() * rb.norm()))


x_sde, _ = sample("euler_maruyama", sde, gm, x_T, make_grid(sde, 500), generator=gen)
floor = [w2_1d(exact.sample(4000, gen), exact.sample(4000, gen)) for _ in range(8)]
ref = exact.sample(4000, gen)
print("rank corr ODE", rank_corr(x_T, ode), "SDE", rank_corr(x_T, x_sde))
print("W2 ODE", w2_1d(ode, ref), "SDE", w2_1d(x_sde, ref), "floor range", min(floor), max(floor))
assert rank_corr(x_T, ode) > 0.9999 and abs(rank_corr(x_T, x_sde)) < 0.1
assert max(w2_1d(ode, ref), w2_1d(x_sde, ref)) < 1.5 * max(floor)

# %% [markdown]
# ## Exercise 4: how many steps does DDIM need to match DDPM?
#
# DDPM with 200 steps is within the noise floor. Find the smallest $N$ in
# $\{5, 10, 20, 40, 80\}$ at which DDIM(η = 0)'s W2 to exact samples is no worse than DDPM's at
# 200 steps plus one floor standard deviation. Claim: far fewer than 200; the deterministic
# sampler takes larger steps (compare with the DDPM row at the same $N$).

# %%
x_ddpm200, _ = sample("ddpm", sde, gm, x_T, make_grid(sde, 200), generator=gen)
target = w2_1d(x_ddpm200, ref) + float(torch.tensor(floor).std())
rows = []
for n in [5, 10, 20, 40, 80]:
    w_ddim = w2_1d(sample("ddim", sde, gm, x_T, make_grid(sde, n))[0], ref)
    w_ddpm = w2_1d(sample("ddpm", sde, gm, x_T, make_grid(sde, n), generator=gen)[0], ref)
    rows.append((n, w_ddim, w_ddpm))
    print(f"N = {n:3d}: W2 DDIM {w_ddim:.3f}   DDPM {w_ddpm:.3f}   (target {target:.3f})")
n_match = next(n for n, w, _ in rows if w <= target)
print("DDIM matches DDPM(200 steps) at N =", n_match)
assert n_match <= 40
assert rows[0][1] < rows[0][2]  # at 5 steps DDIM is better than DDPM

# %% [markdown]
# ## Exercise 5: forward, then backward
#
# Push 300 data points to $T$ with the exact kernel $x_T = \alpha_T x_0 + \sigma_T\epsilon$ and
# bring them back with the reverse SDE; then encode the same points with the PF-ODE run
# *forwards* (`ddim_invert` is its first-order version; here a tight solve through
# `torchdiffeq`) and decode them. Claim: the ODE round trip returns each point, the SDE does not.

# %%
import torchdiffeq  # noqa: E402

x0 = exact.sample(300, gen)
flow = sde.probability_flow(gm)
ts = torch.tensor([sde.eps, sde.T])
enc = torchdiffeq.odeint(lambda t, x: flow.drift(x, t.clamp(sde.eps, sde.T)), x0, ts,
                         rtol=1e-10, atol=1e-10)[-1]  # fmt: skip
dec, _ = sample("pf_adaptive", sde, gm, enc, ts.flip(0), rtol=1e-10, atol=1e-10)
a_T, s_T = (float(v) for v in sde.marginal(sde.T))
back, _ = sample("euler_maruyama", sde, gm, a_T * x0 + s_T * torch.randn(x0.shape, generator=gen),
                 make_grid(sde, 500), generator=gen)  # fmt: skip
print("ODE round trip max error", float((dec - x0).abs().max()))
print("SDE round trip mean error", float((back - x0).abs().mean()))
assert float((dec - x0).abs().max()) < 1e-5 and float((back - x0).abs().mean()) > 0.5
