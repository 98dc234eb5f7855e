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
# # Notebook: the reverse SDE and the probability-flow ODE (worked solutions)
#
# Companion of [the reverse SDE and the PF-ODE](../../concepts/reverse-and-pf-ode.md). The exercises with blanks are in
# [the exercise notebook](../reverse_and_pf_ode.py).
# A 1-D mixture $0.35\,\mathcal{N}(-1.5, 0.05) + 0.65\,\mathcal{N}(1.5, 0.2)$ (**variances**) has an
# exact density at every $t$, so the Fokker–Planck equation is checked to rounding, a
# deterministic sampler point by point against the exact 1-D flow map (the quantile transport
# $F_{t_\epsilon}^{-1}\circ F_T$), and a stochastic one by a Kolmogorov–Smirnov test against the
# exact CDF.

# %%
import torch
from scipy.stats import kstest

from scoresde import VPSDE, GaussianMixture, make_grid, sample

torch.set_default_dtype(torch.float64)
sde = VPSDE(eps=1e-3)
gm = GaussianMixture([0.35, 0.65], [[-1.5], [1.5]], [[0.05], [0.2]], sde=sde)
gen = torch.Generator().manual_seed(0)


def d(y, wrt):
    """Elementwise derivative (y[i] depends on wrt[i] only)."""
    return torch.autograd.grad(y.sum(), wrt, create_graph=True)[0]


def cdf(t, x):
    """F_t(x): the CDF of p_t, a 1-D Gaussian mixture, at x of shape (n, 1)."""
    mix = gm.marginal_mixture(float(t))
    z = (x - mix.means[:, 0]) / mix.covariances[:, 0].sqrt()
    return (mix.weights * torch.special.ndtr(z)).sum(-1)


def pf_exact(x):
    """The exact PF-ODE map from T to t_eps: F_eps^{-1}(F_T(x)), by bisection."""
    u = cdf(sde.T, x)
    lo, hi = torch.full_like(u, -30.0), torch.full_like(u, 30.0)
    for _ in range(64):
        mid = (lo + hi) / 2
        below = cdf(sde.eps, mid[:, None]) < u
        lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
    return ((lo + hi) / 2)[:, None]


def ks_p(x):
    """p-value of the KS test of samples x against the exact p_{t_eps}."""
    return float(kstest(cdf(sde.eps, x).detach().numpy(), "uniform").pvalue)


def close(label, got, want, tol, rel=False):
    """Fail (AssertionError) unless got matches want elementwise to tol (relative if rel)."""
    if got is None:
        raise AssertionError(f"{label}: fill in the blank first")
    got, want = (
        torch.as_tensor(got, dtype=torch.float64),
        torch.as_tensor(want, dtype=torch.float64),
    )
    if got.shape != want.shape:
        raise AssertionError(f"{label}: expected shape {tuple(want.shape)}, got {tuple(got.shape)}")
    err = (got - want).abs() / (want.abs() if rel else 1)
    err = float(err.max())
    if not err <= tol:
        raise AssertionError(f"{label}: off by up to {err:.3g} (tolerance {tol:.0e})")
    print(f"{label}: correct (max {'relative ' if rel else ''}error {err:.1e} <= {tol:.0e})")


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


# %% [markdown]
# ## Exercise 1: one Fokker–Planck equation for a family of processes
#
# For $\gamma \ge 0$ the backward process $dx = b_\gamma\,dt + \gamma g\,d\bar w$ with
# $b_\gamma = f - \tfrac{1+\gamma^2}{2}g^2\nabla\log p_t$ has marginals solving
# $\partial_t q = -\partial_x(b_\gamma q) - \tfrac12\gamma^2 g^2\partial_x^2 q$. Write
# `drift(gamma, f, g2, s)` (the drift from $f$, $g^2$ and the score $s$). The check verifies with
# autograd that $q = p_t$ solves the equation for $\gamma = 0, 0.5, 1, 2$ at $t = 0.3$.
#
# *Hint:* $\gamma = 0$ is the PF-ODE, $\gamma = 1$ the reverse SDE.


# %%
def check_fokker_planck(label, drift):
    x = torch.linspace(-3, 3, 61)[:, None].requires_grad_(True)
    t = torch.full((61,), 0.3, requires_grad=True)
    p = gm.marginal_log_prob(x, t).exp()
    f, g2, s = sde.drift(x, t)[:, 0], sde.g2(t), gm.score(x, t)[:, 0]
    p_xx = d(d(p, x)[:, 0], x)[:, 0]
    for gamma in (0.0, 0.5, 1.0, 2.0):
        b = drift(gamma, f, g2, s)
        if b is None:
            raise AssertionError(f"{label}: fill in the blank first")
        rhs = -d(b * p, x)[:, 0] - 0.5 * gamma**2 * g2 * p_xx
        close(f"{label} (gamma = {gamma})", rhs.detach(), d(p, t).detach(), 1e-9)


# %% tags=["exercise"]
def drift(gamma, f, g2, s):
    return f - 0.5 * (1 + gamma**2) * g2 * s


check_fokker_planck("Exercise 1", drift)
rejects(
    "Exercise 1 with (1 + gamma) / 2",
    check_fokker_planck,
    lambda gm_, f, g2, s: f - 0.5 * (1 + gm_) * g2 * s,
)

# %% [markdown]
# ## Exercise 2: the PF-ODE is $d\bar x/d\bar\sigma = \hat\epsilon$
#
# Along the PF-ODE, $\bar x = x/\alpha_t$ and $\bar\sigma = \sigma_t/\alpha_t$. Compute `xbar_dot`,
# $d\bar x/dt$ at 200 random $(x, t)$, from the PF drift $\dot x$ by the chain rule. The check
# compares with $\hat\epsilon(x, t)\,d\bar\sigma/dt$, $\hat\epsilon = -\sigma_t\nabla\log p_t$.
#
# *Hint:* $\frac{d\bar x}{dt} = \frac{\dot x - a x}{\alpha_t}$ with $a$ = `sde.drift_coef(t)`.

# %%
xs = torch.randn(200, 1, generator=gen) * 2
ts = torch.rand(200, generator=gen) * 0.9 + 0.05
alpha, sigma = sde.marginal(ts)
alpha, sigma = alpha[:, None], sigma[:, None]
xdot = sde.probability_flow(gm).drift(xs, ts)  # the PF drift at (xs, ts)
sbar_dot = torch.autograd.functional.jvp(
    lambda u: sde.marginal(u)[1] / sde.marginal(u)[0], ts, torch.ones_like(ts)
)[1][:, None]
eps_hat = -sigma * gm.score(xs, ts)

# %% tags=["exercise"]
xbar_dot = (xdot - sde.drift_coef(ts)[:, None] * xs) / alpha
close("Exercise 2", xbar_dot, eps_hat * sbar_dot, 1e-9)

# %% [markdown]
# ## Exercise 3: a sampler for every γ
#
# Write `sample_gamma(x, grid, gamma, gen)`, Euler–Maruyama for the $\gamma$ family on a
# decreasing grid. The check runs it from 4000 prior draws on 500 steps: $\gamma = 0$ must follow
# the exact flow map point by point (mean paired error below 0.01); $\gamma = 0.5$ and
# $\gamma = 1$ must pass a KS test against the exact $p_{t_\epsilon}$ at the 0.1% level.
#
# *Hint:* with $\Delta t = t_{k+1} - t_k < 0$:
# $x \leftarrow x + b_\gamma\Delta t + \gamma g\sqrt{-\Delta t}\,z$ (your `drift` helps).


# %%
def check_gamma_sampler(label, fn):
    x_T = sde.prior_sample(
        (4000, 1), generator=torch.Generator().manual_seed(5), dtype=torch.float64
    )
    grid = make_grid(sde, 500)
    out = {g: fn(x_T, grid, g, torch.Generator().manual_seed(6)) for g in (0.0, 0.5, 1.0)}
    if any(v is None for v in out.values()):
        raise AssertionError(f"{label}: fill in the blank first")
    gap = float((out[0.0] - pf_exact(x_T)).abs().mean())
    check(f"{label} (gamma = 0 is the flow map)", gap < 0.01, f"mean paired error {gap:.1e}")
    for g in (0.5, 1.0):
        check(f"{label} (gamma = {g})", ks_p(out[g]) > 1e-3, f"KS p-value {ks_p(out[g]):.3f}")


# %% tags=["exercise"]
def sample_gamma(x, grid, gamma, gen):
    for t0, t1 in zip(grid[:-1], grid[1:], strict=True):
        dt = t1 - t0  # negative
        b = drift(gamma, sde.drift(x, t0), sde.g2(t0), gm.score(x, t0))
        x = x + b * dt + gamma * (sde.g2(t0) * -dt).sqrt() * torch.randn(x.shape, generator=gen)
    return x


check_gamma_sampler("Exercise 3", sample_gamma)

# %% [markdown]
# ## Exercise 4: ODE paths never cross, SDE paths do
#
# In 1-D a flow map is monotone: particles keep their order at every time. Write
# `crossings(traj)`: sort the 300 particles by their starting point $x_T$, and count the
# **adjacent** pairs (in that order) whose order is reversed at some time of the trajectory
# `traj` (shape `(steps + 1, 300, 1)`). The check counts for the PF-ODE (RK4) and the reverse SDE.
#
# *Hint:* `path = traj[:, x_T[:, 0].argsort(), 0]`; a pair $(k, k+1)$ crosses if
# `path[:, k + 1] < path[:, k]` at any time.

# %%
x_T = sde.prior_sample((300, 1), generator=gen, dtype=torch.float64)
_, ode = sample("pf_rk4", sde, gm, x_T, make_grid(sde, 200), return_trajectory=True)
_, sdei = sample("euler_maruyama", sde, gm, x_T, make_grid(sde, 200), generator=gen,
                 return_trajectory=True)  # fmt: skip


def check_crossings(label, fn):
    got = {name: fn(r.trajectory) for name, r in (("PF-ODE", ode), ("reverse SDE", sdei))}
    if any(v is None for v in got.values()):
        raise AssertionError(f"{label}: fill in the blank first")
    order = x_T[:, 0].argsort()
    for name, r in (("PF-ODE", ode), ("reverse SDE", sdei)):
        path = r.trajectory[:, order, 0]
        want = int((path[:, 1:] < path[:, :-1]).any(0).sum())
        check(
            f"{label} ({name})", got[name] == want, f"{got[name]} crossing pairs, expected {want}"
        )


# %% tags=["exercise"]
def crossings(traj):
    path = traj[:, x_T[:, 0].argsort(), 0]  # particles sorted by x_T
    return int((path[:, 1:] < path[:, :-1]).any(0).sum())


check_crossings("Exercise 4", crossings)
