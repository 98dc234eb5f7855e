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
# # Notebook: likelihood, the ELBO and bits per dimension
#
# Companion of [likelihood, the ELBO and bits/dim](../concepts/likelihood.md). With an exact
# mixture density every estimate can be compared with the truth.

# %%
import math

import torch

from scoresde import VPSDE, GaussianMixture
from scoresde.likelihood import dequantized_bits_per_dim, elbo, log_likelihood

torch.set_default_dtype(torch.float64)
sde = VPSDE()
gm = GaussianMixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.5]], [[0.1, 0.2], [0.3, 0.1]], sde=sde)
gen = torch.Generator().manual_seed(0)
x = gm.sample(40, gen)
prior = gm.marginal_mixture(sde.T).log_prob  # the exact p_T: only solver errors remain

# %% [markdown]
# ## Exercise 1: the PF-ODE log-likelihood is exact up to the solver
#
# Compute $\log p(\mathbf{x})$ with `log_likelihood` (exact divergence) at rtol = atol =
# $10^{-3}$ and $10^{-6}$ and compare with `gm.log_prob`. The error should follow the tolerance.

# %%
errs = {}
for tol in (1e-3, 1e-6):
    res = log_likelihood(sde, gm, x, rtol=tol, atol=tol, prior_log_prob=prior)
    errs[tol] = float((res.log_prob - gm.log_prob(x)).abs().mean())
    print(f"tol {tol:.0e}: mean |error| {errs[tol]:.1e} nats, {res.nfe} NFE")
assert errs[1e-6] < 1e-4 and errs[1e-6] < errs[1e-3] / 10

# %% [markdown]
# ## Exercise 2: Hutchinson's estimator is unbiased
#
# Take the Jacobian $A = \partial\mathbf{s}/\partial\mathbf{x}$ of the score at one point and time.
# Average $\mathbf{v}^\top A\mathbf{v}$ over 20,000 Rademacher probes: it should match
# $\operatorname{tr}A$ within 4 standard errors, and its variance should be
# $2\sum_{i\ne j}A_{ij}^2$ (the Jacobian of a score is symmetric).

# %%
x1, t1 = torch.tensor([0.3, -0.2]), torch.tensor(0.2)
A = torch.autograd.functional.jacobian(lambda y: gm.score(y[None], t1)[0], x1)
v = torch.randint(0, 2, (20_000, 2), generator=gen).double() * 2 - 1
est = torch.einsum("ni,ij,nj->n", v, A, v)
var_pred = 2 * (A.pow(2).sum() - A.diagonal().pow(2).sum())
print(
    f"trace {float(A.trace()):.4f}, Hutchinson {float(est.mean()):.4f} ± {float(est.std()) / math.sqrt(len(est)):.4f}"
)
assert abs(float(est.mean() - A.trace())) < 4 * float(est.std()) / math.sqrt(len(est))
assert abs(float(est.var()) - float(var_pred)) < 0.05 * float(var_pred)

# %% [markdown]
# ## Exercise 3: the ELBO is tight with the exact score, and opens by the score error
#
# With the exact score and $\pi = p_T$ the ELBO equals $\log p$ on average (single draws are
# noisy). Shift the score by a constant $c\,\mathbf{e}_1$: the average gap becomes
# $J_{\text{SM}} = \tfrac{c^2}{2}\int_{t_\epsilon}^T g(t)^2\,dt$ (Song, Durkan, Murray & Ermon 2021,
# Thm. 1). Check both to Monte Carlo accuracy.


# %%
def gap(score_fn):
    b = elbo(sde, score_fn, x, n_samples=256, generator=gen, prior_log_prob=prior)
    d = gm.log_prob(x) - b.elbo
    return float(d.mean()), float(d.std() / math.sqrt(len(d)) + b.stderr.mean() / math.sqrt(len(d)))


c = 1.0
int_g2 = (
    float(sde.marginal(torch.tensor(sde.eps))[0].log() - sde.marginal(torch.tensor(sde.T))[0].log())
    * 2
)
shifted = lambda y, t: gm(y, t) + torch.tensor([c, 0.0])  # noqa: E731
for name, fn, pred in (("exact", gm, 0.0), ("shifted", shifted, 0.5 * c**2 * int_g2)):
    m, se = gap(fn)
    print(f"{name:8s} mean gap {m:.3f} ± {se:.3f} nats, predicted {pred:.3f}")
    assert abs(m - pred) < 4 * se + 0.05

# %% [markdown]
# ## Exercise 4: bits per dimension of simple densities
#
# A uniform density on the model's range $[-1, 1]^D$ costs exactly $\log_2 K$ bits/dim for $K$
# levels. A standard normal density on 2-D data with 16 levels: compute its bits/dim with
# `dequantized_bits_per_dim` and check it against numerical integration of the cell
# probabilities (the bound is tight when the density is nearly flat within a cell).

# %%
k = torch.randint(0, 16, (200, 2), generator=gen)
uniform = dequantized_bits_per_dim(
    lambda y: torch.full((len(y),), -2 * math.log(2.0)), k, levels=16
)
assert abs(uniform.mean - 4.0) < 1e-12
normal = lambda y: -0.5 * y.pow(2).sum(1) - math.log(2 * math.pi)  # noqa: E731
bpd = dequantized_bits_per_dim(normal, k, levels=16, n_draws=64, generator=gen)
edges = torch.linspace(-1, 1, 17)
cdf = 0.5 * (1 + torch.erf(edges / math.sqrt(2)))
cell = (cdf[1:] - cdf[:-1])[k]  # exact probability of each coordinate's cell
exact_bpd = float(-cell.log().sum(1).mean() / (2 * math.log(2)))
print(f"dequantized bound {bpd.mean:.4f} bits/dim, exact discrete {exact_bpd:.4f}")
assert bpd.mean >= exact_bpd - 0.01 and bpd.mean - exact_bpd < 0.01
