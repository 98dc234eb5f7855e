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
# # Notebook: DDPM and DDIM as discretizations
#
# Companion of [DDPM and DDIM as discretizations](../concepts/ddpm-ddim.md). Recall
# $\bar\alpha_n = \alpha_{t_n}^2$ (DDPM's $\bar\alpha$ is our $\alpha_t^2$).

# %%
import torch

from scoresde import VPSDE, GaussianMixture, sample
from scoresde.sde import DDPMSchedule

torch.set_default_dtype(torch.float64)
sde = VPSDE()
gm = GaussianMixture([0.35, 0.65], [[-1.5], [1.5]], [[0.05], [0.2]], sde=sde)  # variances
sched = DDPMSchedule.from_sde(sde, 1000)
b, ab = sched.betas, sched.alpha_bars
ab_prev = sched.alpha_bars_prev
gen = torch.Generator().manual_seed(0)

# %% [markdown]
# ## Exercise 1: derive $\tilde\beta_n$ by Gaussian conditioning
#
# Given $\mathbf{x}_0$, $\mathbf{x}_{n-1}$ has variance $1 - \bar\alpha_{n-1}$ and
# $\mathbf{x}_n = \sqrt{1 - \beta_n}\,\mathbf{x}_{n-1} + \sqrt{\beta_n}\mathbf{z}$. Compute
# $\mathrm{Var}(\mathbf{x}_{n-1} \mid \mathbf{x}_n, \mathbf{x}_0) = \mathrm{Var}(x_{n-1}) -
# \mathrm{Cov}^2/\mathrm{Var}(x_n)$ and the regression coefficients, and compare with Ho et al.'s
# Eqs. 6–7 and the library's table.

# %%
var_prev, var_n = 1 - ab_prev, 1 - ab
cov = (1 - b).sqrt() * var_prev
beta_tilde = var_prev - cov**2 / var_n  # conditional variance
coef_xt = cov / var_n  # E[x_{n-1} | x_n, x_0] = coef_x0 x_0 + coef_xt x_n
coef_x0 = ab_prev.sqrt() - coef_xt * ab.sqrt()
assert torch.allclose(beta_tilde, (1 - ab_prev) / (1 - ab) * b, atol=1e-15)  # Ho Eq. 7
assert torch.allclose(beta_tilde, sched.beta_tildes, atol=1e-15)
assert torch.allclose(coef_x0, ab_prev.sqrt() * b / (1 - ab), atol=1e-14)
assert torch.allclose(coef_xt, (1 - b).sqrt() * (1 - ab_prev) / (1 - ab), atol=1e-14)
print("beta_tilde_n / beta_n for n = 1, 10, 100, 1000:", (beta_tilde / b)[[0, 9, 99, 999]])

# %% [markdown]
# ## Exercise 2: Ho et al.'s Eq. 11
#
# Put $\hat{\mathbf{x}}_0 = (\mathbf{x}_n - \sqrt{1 - \bar\alpha_n}\,\hat{\boldsymbol\epsilon})/\sqrt{\bar\alpha_n}$
# into the posterior mean and check it equals
# $\frac{1}{\sqrt{1-\beta_n}}\big(\mathbf{x}_n - \frac{\beta_n}{\sqrt{1-\bar\alpha_n}}\hat{\boldsymbol\epsilon}\big)$
# for every $n$, at random $\mathbf{x}_n$ and $\hat{\boldsymbol\epsilon}$.

# %%
x_n = torch.randn(1000, generator=gen)
eps = torch.randn(1000, generator=gen)
x0_hat = (x_n - (1 - ab).sqrt() * eps) / ab.sqrt()
mean = coef_x0 * x0_hat + coef_xt * x_n
eq11 = (x_n - b / (1 - ab).sqrt() * eps) / (1 - b).sqrt()
print("max |posterior mean - Eq. 11| =", float((mean - eq11).abs().max()))
assert torch.allclose(mean, eq11, atol=1e-9)

# %% [markdown]
# ## Exercise 3: one DDIM step is one Euler step in $\bar\sigma = \sigma/\alpha$
#
# Run the library's DDIM ($\eta = 0$) for one step from $s = 0.6$ to $t = 0.4$ and compare with
# $\bar{\mathbf{x}}_t = \bar{\mathbf{x}}_s + (\bar\sigma_t - \bar\sigma_s)\hat{\boldsymbol\epsilon}(\mathbf{x}_s, s)$,
# $\bar{\mathbf{x}} = \mathbf{x}/\alpha$.

# %%
s, t = torch.tensor(0.6), torch.tensor(0.4)
x_s = torch.randn(500, 1, generator=gen)
x_t, _ = sample("ddim", sde, gm, x_s, torch.stack([s, t]))
(a_s, sig_s), (a_t, sig_t) = sde.marginal(s), sde.marginal(t)
euler = a_t * (x_s / a_s + (sig_t / a_t - sig_s / a_s) * gm.eps(x_s, s))
print("max |DDIM - Euler in sigma_bar| =", float((x_t - euler).abs().max()))
assert torch.allclose(x_t, euler, atol=1e-12)

# %% [markdown]
# ## Exercise 4: a DDPM step and an Euler–Maruyama step agree to higher order
#
# Take one step of DDPM (variance $\beta$) and of Euler–Maruyama on the reverse SDE from the
# same point with the same noise $\mathbf{z}$, for $\Delta t = 0.02, 0.01, 0.005$. Without noise the
# drifts differ by $O(\Delta t^2)$ (ratio 4 per halving); with it, the noise scales
# $\sqrt{\beta_n}$ and $g\sqrt{\Delta t}$ differ by $O(\Delta t^{3/2})$ (ratio $2^{3/2} \approx 2.8$).
# Both are below the $O(\Delta t)$ of a step itself: the same SDE, weak order 1.

# %%
x = torch.randn(2000, 1, generator=gen)
z = torch.randn(2000, 1, generator=gen)


def one_step_gap(dt, noise):
    grid = torch.tensor([0.5, 0.5 - dt])
    ns = lambda x, t, t_next: noise  # noqa: E731 - a fixed standardized increment
    a, _ = sample("ddpm", sde, gm, x, grid, variance="beta", noise_sampler=ns)
    e, _ = sample("euler_maruyama", sde, gm, x, grid, noise_sampler=ns)
    return float((a - e).abs().mean())


for noise, expected in ((torch.zeros_like(z), 4.0), (z, 2**1.5)):
    gaps = [one_step_gap(dt, noise) for dt in (0.02, 0.01, 0.005)]
    ratios = [gaps[0] / gaps[1], gaps[1] / gaps[2]]
    print("gaps", [f"{g:.2e}" for g in gaps], "ratios", [round(r, 2) for r in ratios])
    assert all(abs(r - expected) < 0.2 * expected for r in ratios)
