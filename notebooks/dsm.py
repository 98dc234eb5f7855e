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
# # Notebook: denoising score matching
#
# Companion of [denoising score matching](../concepts/dsm.md). Exact scores of Gaussian
# mixtures make the minimiser of each loss known in advance.

# %%
import math

import torch

from scoresde import VPSDE, GaussianMixture

torch.set_default_dtype(torch.float64)
sde = VPSDE()
gen = torch.Generator().manual_seed(0)

# %% [markdown]
# ## Exercise 1: the DSM minimiser is the score
#
# For data $\mathcal{N}(0, v)$ ($v$ a variance) the score of $p_t$ is
# $-x/(\alpha_t^2 v + \sigma_t^2)$. Fit a linear model $s(x) = w\,x$ to the DSM targets
# $-\boldsymbol\epsilon/\sigma_t$ by least squares (the DSM loss is quadratic in $w$) at
# $t = 0.1, 0.5, 0.9$ and compare $w$ with $-1/(\alpha_t^2 v + \sigma_t^2)$.

# %%
v, n = 0.3, 400_000
for t in (0.1, 0.5, 0.9):
    alpha, sigma = (float(u) for u in sde.marginal(torch.tensor(t)))
    x0 = math.sqrt(v) * torch.randn(n, generator=gen)
    eps = torch.randn(n, generator=gen)
    xt = alpha * x0 + sigma * eps
    w = float((xt * (-eps / sigma)).sum() / (xt * xt).sum())  # argmin_w E|w x_t + eps/sigma|^2
    exact = -1 / (alpha**2 * v + sigma**2)
    print(f"t = {t}: fitted w = {w:.4f}, exact {exact:.4f}")
    assert abs(w - exact) < 0.02 * abs(exact)

# %% [markdown]
# ## Exercise 2: DSM = explicit score matching + a constant (Vincent 2011)
#
# For models off by a constant, $s = \nabla\log p_t + c$, the explicit loss is $c^2$ and the
# DSM loss is $c^2 + C$ with $C = \mathbb{E}\|\nabla\log p_{0t}\|^2 - \mathbb{E}\|\nabla\log p_t\|^2$
# the same for every $c$. Check it on a mixture at $t = 0.2$.

# %%
gm = GaussianMixture([0.35, 0.65], [[-1.5], [1.5]], [[0.05], [0.2]], sde=sde)
t = torch.tensor(0.2)
alpha, sigma = sde.marginal(t)
x0 = gm.sample(200_000, gen)
eps = torch.randn(x0.shape, generator=gen)
xt = alpha * x0 + sigma * eps
cond, true = -eps / sigma, gm.score(xt, t)
C = float((cond.pow(2) - true.pow(2)).sum(1).mean())
for c in (0.0, 1.0, 2.0):
    esm = float((true + c - true).pow(2).sum(1).mean())
    dsm = float((true + c - cond).pow(2).sum(1).mean())
    print(f"c = {c}: ESM {esm:.3f}  DSM {dsm:.3f}  DSM - ESM {dsm - esm:.3f}  (C = {C:.3f})")
    assert abs(dsm - esm - C) < 0.05 * C

# %% [markdown]
# ## Exercise 3: the ε form and the weightings
#
# Show that $\sigma_t^2\|\mathbf{s} + \boldsymbol\epsilon/\sigma_t\|^2 = \|\hat{\boldsymbol\epsilon} -
# \boldsymbol\epsilon\|^2$ with $\hat{\boldsymbol\epsilon} = -\sigma_t\mathbf{s}$, so $\lambda = \sigma_t^2$
# is DDPM's $L_{\text{simple}}$; and that the likelihood weighting in ε space,
# $g^2/\sigma_t^2$, equals $-d\lambda/dt$ (autograd), so sampling $t$ uniformly in log-SNR
# is its importance sampler.

# %%
s_model = torch.randn(100, 2, generator=gen)
e = torch.randn(100, 2, generator=gen)
sig = 0.37
assert torch.allclose(sig**2 * (s_model + e / sig).pow(2), (-sig * s_model - e).pow(2))
tt = torch.linspace(0.01, 0.99, 99, requires_grad=True)
dlam = torch.autograd.grad(sde.log_snr(tt).sum(), tt)[0]
weight = sde.g2(tt) / sde.marginal(tt)[1] ** 2
assert torch.allclose(weight.detach(), -dlam, rtol=1e-10)
print("g^2 / sigma^2 = -d lambda / dt on [0.01, 0.99]: yes")

# %% [markdown]
# ## Exercise 4: Tweedie's formula
#
# $\mathbb{E}[\mathbf{x}_0 \mid \mathbf{x}_t] = (\mathbf{x}_t + \sigma_t^2\nabla\log p_t)/\alpha_t$.
# Check it against a Monte Carlo conditional mean: draw $(\mathbf{x}_0, \mathbf{x}_t)$ pairs, keep those
# with $x_t$ in a narrow bin around $0.5$, and average their $x_0$.

# %%
t = torch.tensor(0.3)
alpha, sigma = sde.marginal(t)
x0 = gm.sample(2_000_000, gen)
xt = alpha * x0 + sigma * torch.randn(x0.shape, generator=gen)
in_bin = (xt[:, 0] - 0.5).abs() < 0.01
mc = float(x0[in_bin, 0].mean())
se = float(x0[in_bin, 0].std() / math.sqrt(int(in_bin.sum())))
x_q = torch.tensor([[0.5]])
tweedie = float((x_q + sigma**2 * gm.score(x_q, t)) / alpha)
print(f"Monte Carlo E[x0 | x_t = 0.5] = {mc:.4f} ± {se:.4f};  Tweedie {tweedie:.4f}")
assert abs(mc - tweedie) < 4 * se + 0.01
