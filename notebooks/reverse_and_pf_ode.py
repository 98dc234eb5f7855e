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
# # Notebook: the reverse SDE and the probability-flow ODE
#
# Companion of [the reverse SDE and the PF-ODE](../concepts/reverse-and-pf-ode.md). A 1-D
# mixture $0.35\,\mathcal{N}(-1.5, 0.05) + 0.65\,\mathcal{N}(1.5, 0.2)$ (**variances**) has an
# exact density at every $t$, so the Fokker–Planck equation and the samplers can be checked
# to rounding or to the noise floor.

# %%
import torch

from scoresde import VPSDE, GaussianMixture, make_grid, sample

torch.set_default_dtype(torch.float64)
sde = VPSDE(eps=1e-3)
gm = GaussianMixture([0.35, 0.65], [[-1.5], [1.5]], [[0.05], [0.2]], sde=sde)
gen = torch.Generator().manual_seed(0)


def d(y, wrt):
    """Elementwise derivative (y[i] depends on wrt[i] only)."""
    return torch.autograd.grad(y.sum(), wrt, create_graph=True)[0]


def w2_1d(a, b):
    return float((a[:, 0].sort().values - b[:, 0].sort().values).pow(2).mean().sqrt())


# %% [markdown]
# ## Exercise 1: one Fokker–Planck equation for a family of processes
#
# For $\gamma \ge 0$ the backward process $dx = [f - \tfrac{1+\gamma^2}{2}g^2\nabla\log p_t]dt +
# \gamma g\,d\bar w$ has marginals solving
# $\partial_t q = -\partial_x(b\,q) - \tfrac12\gamma^2 g^2\partial_x^2 q$. Check with autograd that
# $q = p_t$ solves it for $\gamma = 0, 0.5, 1, 2$ at $t = 0.3$, and that the right-hand side equals
# $\partial_t p_t$.

# %%
x = torch.linspace(-3, 3, 61)[:, None].requires_grad_(True)
t = torch.full((61,), 0.3, requires_grad=True)
p = gm.marginal_log_prob(x, t).exp()
f, g2, s = sde.drift(x, t)[:, 0], sde.g2(t), gm.score(x, t)[:, 0]
p_xx = d(d(p, x)[:, 0], x)[:, 0]
for gamma in (0.0, 0.5, 1.0, 2.0):
    b = f - 0.5 * (1 + gamma**2) * g2 * s
    rhs = -d(b * p, x)[:, 0] - 0.5 * gamma**2 * g2 * p_xx
    err = float((rhs - d(p, t)).abs().max().detach())
    print(f"gamma = {gamma}: max |rhs - dp/dt| = {err:.1e}")
    assert err < 1e-9

# %% [markdown]
# ## Exercise 2: the PF-ODE is $d\bar x/d\bar\sigma = \hat\epsilon$
#
# Along the PF-ODE, $\bar x = x/\alpha_t$ and $\bar\sigma = \sigma_t/\alpha_t$. Show numerically that
# $\frac{d\bar x}{dt} = \hat\epsilon(x, t)\,\frac{d\bar\sigma}{dt}$ with
# $\hat\epsilon = -\sigma_t\nabla\log p_t$, at random points and times (chain rule:
# $\frac{d\bar x}{dt} = (\dot x - a x)/\alpha_t$ with $\dot x$ the PF drift).

# %%
xs = torch.randn(200, 1, generator=gen) * 2
ts = torch.rand(200, generator=gen) * 0.9 + 0.05
alpha, sigma = sde.marginal(ts)
alpha, sigma = alpha[:, None], sigma[:, None]
xdot = sde.probability_flow(gm).drift(xs, ts)
xbar_dot = (xdot - sde.drift_coef(ts)[:, None] * xs) / alpha
sbar_dot = torch.autograd.functional.jvp(
    lambda u: sde.marginal(u)[1] / sde.marginal(u)[0], ts, torch.ones_like(ts)
)[1][:, None]
eps_hat = -sigma * gm.score(xs, ts)
assert torch.allclose(xbar_dot, eps_hat * sbar_dot, rtol=1e-8, atol=1e-10)
print("d xbar / d sigmabar = eps_hat at 200 random (x, t): yes")

# %% [markdown]
# ## Exercise 3: a sampler for every γ
#
# Write Euler–Maruyama for the $\gamma$ family (10 lines) and check that $\gamma = 0.5$ samples
# $p_{t_\epsilon}$: its W2 distance to exact samples is within the range of the noise floor (W2
# between two exact sample sets). Compare with the library's reverse SDE ($\gamma = 1$).


# %%
def sample_gamma(x, grid, gamma, gen):
    for t0, t1 in zip(grid[:-1], grid[1:], strict=True):
        dt = t1 - t0  # negative
        drift = sde.drift(x, t0) - 0.5 * (1 + gamma**2) * sde.g2(t0) * gm.score(x, t0)
        x = x + drift * dt + gamma * (sde.g2(t0) * -dt).sqrt() * torch.randn(x.shape, generator=gen)
    return x


n = 4000
x_T = sde.prior_sample((n, 1), generator=gen, dtype=torch.float64)
grid = make_grid(sde, 500)
exact = gm.marginal_mixture(sde.eps)
ref = exact.sample(n, gen)
floor = [w2_1d(exact.sample(n, gen), exact.sample(n, gen)) for _ in range(8)]
w_half = w2_1d(sample_gamma(x_T, grid, 0.5, gen), ref)
w_one = w2_1d(sample("euler_maruyama", sde, gm, x_T, grid, generator=gen)[0], ref)
print(f"W2 gamma=0.5 {w_half:.3f}, gamma=1 {w_one:.3f}; floor {min(floor):.3f}..{max(floor):.3f}")
assert max(w_half, w_one) < 1.5 * max(floor)

# %% [markdown]
# ## Exercise 4: ODE paths never cross, SDE paths do
#
# In 1-D a flow map is monotone: the order of the particles is the same at every time. Count,
# over a 200-step trajectory of 300 particles, how many adjacent pairs swap order for the PF-ODE
# (RK4) and for the reverse SDE.

# %%
x_T = sde.prior_sample((300, 1), generator=gen, dtype=torch.float64)
order = x_T[:, 0].argsort()
_, ode = sample("pf_rk4", sde, gm, x_T, make_grid(sde, 200), return_trajectory=True)
_, sdei = sample("euler_maruyama", sde, gm, x_T, make_grid(sde, 200), generator=gen,
                 return_trajectory=True)  # fmt: skip


def swaps(traj):
    path = traj[:, order, 0]  # particles sorted by x_T
    return int((path[:, 1:] < path[:, :-1]).any(0).sum())


print("pairs that cross: PF-ODE", swaps(ode.trajectory), " reverse SDE", swaps(sdei.trajectory))
assert swaps(ode.trajectory) == 0 and swaps(sdei.trajectory) > 100
