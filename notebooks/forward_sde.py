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
# # Notebook: the forward SDE, VP, sub-VP and VE
#
# Companion of [the forward SDE](../concepts/forward-sde.md) and
# [VP, sub-VP and VE in closed form](../concepts/sdes.md). Every exercise ends with an `assert`
# against an independent ground truth (autograd, a simulation, a closed form).

# %%
import math

import torch

from scoresde import GaussianMixture
from scoresde.sde import VESDE, VPSDE, SubVPSDE

torch.set_default_dtype(torch.float64)
SDES = {"VP": VPSDE(), "VP cosine": VPSDE(schedule="cosine"), "sub-VP": SubVPSDE(), "VE": VESDE()}


def ddt(fn, t):
    """d fn(t) / dt by autograd, elementwise over a 1-D tensor of times."""
    t = t.clone().requires_grad_(True)
    return torch.autograd.grad(fn(t).sum(), t)[0]


# %% [markdown]
# ## Exercise 1: the log-SNR falls at rate $g^2/\sigma^2$
#
# With $\lambda(t) = \log(\alpha_t^2/\sigma_t^2)$ (`sde.log_snr`), show
# $d\lambda/dt = -g(t)^2/\sigma_t^2$ for all four SDEs, differentiating the closed form with
# autograd and comparing with `sde.g2(t) / sigma_t**2`.

# %%
for name, sde in SDES.items():
    t = torch.linspace(0.05, 0.95 * sde.T, 50)
    lhs = ddt(sde.log_snr, t)
    rhs = -sde.g2(t) / sde.marginal(t)[1] ** 2
    err = float(((lhs - rhs) / rhs).abs().max())
    print(f"{name:10s} max relative error {err:.1e}")
    assert err < 1e-8

# %% [markdown]
# ## Exercise 2: any $(\alpha_t, \sigma_t)$ defines a linear SDE
#
# Check $a(t) = d\log\alpha_t/dt$ (`sde.drift_coef`) and $g^2 = d\sigma_t^2/dt - 2a\sigma_t^2$
# (`sde.g2`) with autograd. Which of the four SDEs keeps $\alpha_t^2 + \sigma_t^2 = 1$ (variance
# preserving), and which keeps it $\le 1$?

# %%
for name, sde in SDES.items():
    t = torch.linspace(0.05, 0.95 * sde.T, 50)
    a = ddt(lambda s, sde=sde: sde.marginal(s)[0].log(), t)
    g2 = ddt(lambda s, sde=sde: sde.marginal(s)[1] ** 2, t) - 2 * a * sde.marginal(t)[1] ** 2
    assert torch.allclose(a, sde.drift_coef(t), rtol=1e-8, atol=1e-10), name
    assert torch.allclose(g2, sde.g2(t), rtol=1e-7), name
    alpha, sigma = sde.marginal(t)
    total = alpha**2 + sigma**2
    print(f"{name:10s} alpha^2 + sigma^2 in [{float(total.min()):.4f}, {float(total.max()):.4f}]")
assert torch.allclose(sum(v**2 for v in SDES["VP"].marginal(t)), torch.ones_like(t))
sub = SDES["sub-VP"].marginal(t)
assert bool((sub[0] ** 2 + sub[1] ** 2 <= 1 + 1e-12).all())

# %% [markdown]
# ## Exercise 3: the kernel is the solution of the moment ODEs
#
# Simulate the forward VP SDE $dx = -\tfrac12\beta x\,dt + \sqrt\beta\,dw$ by Euler–Maruyama from
# $x_0 = 1$ (400 steps, 20,000 paths) and compare the mean and variance at $t = 0.5$ with
# $\alpha_t$ and $\sigma_t^2$. The tolerance is four standard errors plus the $O(\Delta t)$ bias.

# %%
sde, gen = SDES["VP"], torch.Generator().manual_seed(0)
n, steps, t_end = 20_000, 400, 0.5
x, dt = torch.ones(n), t_end / steps
for i in range(steps):
    t = torch.tensor(i * dt)
    x = (
        x
        + sde.drift_coef(t) * x * dt
        + sde.g2(t).sqrt() * math.sqrt(dt) * torch.randn(n, generator=gen)
    )
alpha, sigma = (float(v) for v in sde.marginal(torch.tensor(t_end)))
print(
    f"mean {float(x.mean()):.4f} vs alpha_t {alpha:.4f};  var {float(x.var()):.4f} vs sigma_t^2 {sigma**2:.4f}"
)
assert abs(float(x.mean()) - alpha) < 4 * sigma / math.sqrt(n) + 0.01
assert abs(float(x.var()) - sigma**2) < 4 * sigma**2 * math.sqrt(2 / n) + 0.01

# %% [markdown]
# ## Exercise 4: reproduce a prior KL
#
# For Gaussian data $\mathcal{N}(\mu, v)$ (a one-component mixture; $v$ a **variance**), $p_T$ is
# $\mathcal{N}(\alpha_T\mu, \alpha_T^2 v + \sigma_T^2)$, and $\mathrm{KL}(p_T\,\|\,\mathcal{N}(0, s^2))$
# has a closed form. Write it, and check it against a Monte Carlo estimate
# $\mathbb{E}_{p_T}[\log p_T - \log\pi]$ with the library's exact `log_prob` and `prior_log_prob`.
# Which SDE has the largest prior mismatch for $\mu = 3$, $v = 0.5$?

# %%
mu, v = 3.0, 0.5


def kl_closed(sde):
    alpha, sigma = (float(u) for u in sde.marginal(torch.tensor(sde.T)))
    m, var, s2 = alpha * mu, alpha**2 * v + sigma**2, sde.prior_std**2
    return 0.5 * (var / s2 + m**2 / s2 - 1 + math.log(s2 / var))


for name, sde in SDES.items():
    pT = GaussianMixture([1.0], [[mu]], [[v]], sde=sde).marginal_mixture(sde.T)
    z = pT.sample(200_000, torch.Generator().manual_seed(1))
    diff = pT.log_prob(z) - sde.prior_log_prob(z)
    mc, se = float(diff.mean()), float(diff.std() / math.sqrt(len(diff)))
    print(f"{name:10s} closed form {kl_closed(sde):.3e}   Monte Carlo {mc:.3e} ± {se:.1e}")
    assert abs(kl_closed(sde) - mc) < 5 * se + 1e-9
worst = max(SDES, key=lambda k: kl_closed(SDES[k]))
print("largest mismatch:", worst)
assert worst == "VE"  # alpha = 1: the data's mean never decays, only the noise grows
