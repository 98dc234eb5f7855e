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
# Companion of [likelihood, the ELBO and bits/dim](../concepts/likelihood.md). Each exercise has a blank (`None`, with a hint) and a check
# that fails until the blank holds a right answer; worked solutions:
# [solutions/likelihood.py](solutions/likelihood.py). With an
# exact mixture density every estimate can be compared with the truth.

# %%
import math

import torch

from scoresde import VPSDE, GaussianMixture
from scoresde.likelihood import dequantized_bits_per_dim, elbo, log_likelihood  # noqa: F401

torch.set_default_dtype(torch.float64)
sde = VPSDE()
gm = GaussianMixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.5]], [[0.1, 0.2], [0.3, 0.1]], sde=sde)
gen = torch.Generator().manual_seed(0)
x = gm.sample(40, gen)
prior = gm.marginal_mixture(sde.T).log_prob  # the exact p_T: only solver errors remain


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
# ## Exercise 1: the PF-ODE log-likelihood is exact up to the solver
#
# Write `pf_log_prob(tol)`: $\log p(\mathbf{x})$ of the 40 points `x` by `log_likelihood` (exact
# divergence, `prior_log_prob=prior`) at rtol = atol = `tol`. The check compares with the closed
# form `gm.log_prob(x)` at $10^{-3}$ and $10^{-6}$: the error must follow the tolerance.
#
# *Hint:* `log_likelihood(sde, gm, x, rtol=..., atol=..., prior_log_prob=...)` returns an object
# with `.log_prob`.


# %%
def check_pf(label, pf_log_prob):
    errs = {}
    for tol in (1e-3, 1e-6):
        lp = pf_log_prob(tol)
        if lp is None:
            raise AssertionError(f"{label}: fill in the blank first")
        errs[tol] = float((lp - gm.log_prob(x)).abs().mean())
    check(label, errs[1e-6] < 1e-4 and errs[1e-6] < errs[1e-3] / 10,
          f"mean |error| {errs[1e-3]:.1e} at 1e-3, {errs[1e-6]:.1e} at 1e-6")  # fmt: skip


# %% tags=["exercise"]
def pf_log_prob(tol):
    return None  # YOUR CODE: log p(x) through the PF-ODE at rtol = atol = tol


check_pf("Exercise 1", pf_log_prob)

# %% [markdown]
# ## Exercise 2: Hutchinson's estimator is unbiased
#
# Take the Jacobian $A = \partial\mathbf{s}/\partial\mathbf{x}$ of the score at one point and time,
# and 20,000 Rademacher probes $\mathbf{v}$. Write `est`, the 20,000 values $\mathbf{v}^\top A\mathbf{v}$.
# The check: their mean matches $\operatorname{tr}A$ within 4 standard errors, and their variance
# is $2\sum_{i\ne j}A_{ij}^2$ (5%; the Jacobian of a score is symmetric).
#
# *Hint:* `torch.einsum("ni,ij,nj->n", v, A, v)`.

# %%
x1, t1 = torch.tensor([0.3, -0.2]), torch.tensor(0.2)
A = torch.autograd.functional.jacobian(lambda y: gm.score(y[None], t1)[0], x1)
v = torch.randint(0, 2, (20_000, 2), generator=gen).double() * 2 - 1


def check_hutchinson(label, est):
    if est is None:
        raise AssertionError(f"{label}: fill in the blank first")
    se = float(est.std()) / math.sqrt(len(est))
    check(f"{label} (mean)", abs(float(est.mean() - A.trace())) < 4 * se,
          f"trace {float(A.trace()):.4f}, Hutchinson {float(est.mean()):.4f} +- {se:.4f}")  # fmt: skip
    var_pred = float(2 * (A.pow(2).sum() - A.diagonal().pow(2).sum()))
    check(f"{label} (variance)", abs(float(est.var()) - var_pred) < 0.05 * var_pred,
          f"{float(est.var()):.4f} vs 2 sum_(i != j) A_ij^2 = {var_pred:.4f}")  # fmt: skip


# %% tags=["exercise"]
est = None  # YOUR CODE: v^T A v for each of the 20,000 probes
check_hutchinson("Exercise 2", est)

# %% [markdown]
# ## Exercise 3: the ELBO opens by the score error
#
# With the exact score and $\pi = p_T$ the ELBO equals $\log p$ on average. Shift the score by a
# constant $c\,\mathbf{e}_1$: the average gap becomes $J_{\text{SM}} = \tfrac{c^2}{2}\int_{t_\epsilon}^T
# g(t)^2\,dt$ (Song, Durkan, Murray & Ermon 2021, Thm. 1). **Predict** `predicted_gap` for
# $c = 1$ in closed form; the check measures it with `elbo` (4 SE + 0.05).
#
# *Hint:* for VP, $g^2 = \beta$ and $\alpha_t = e^{-\frac12\int_0^t\beta}$, so
# $\int_{t_\epsilon}^T g^2\,dt = 2\log(\alpha_{t_\epsilon}/\alpha_T)$.


# %%
def measured_gap(score_fn):
    b = elbo(sde, score_fn, x, n_samples=256, generator=gen, prior_log_prob=prior)
    d = gm.log_prob(x) - b.elbo
    return float(d.mean()), float(d.std() / math.sqrt(len(d)) + b.stderr.mean() / math.sqrt(len(d)))


def check_gap(label, predicted_gap):
    if predicted_gap is None:
        raise AssertionError(f"{label}: fill in the blank first")
    shifted = lambda y, t: gm(y, t) + torch.tensor([1.0, 0.0])  # noqa: E731
    for name, fn, pred in (("exact score", gm, 0.0), ("shifted by e_1", shifted, predicted_gap)):
        m, se = measured_gap(fn)
        check(
            f"{label} ({name})",
            abs(m - pred) < 4 * se + 0.05,
            f"mean gap {m:.3f} +- {se:.3f}, predicted {pred:.3f}",
        )


# %% tags=["exercise"]
predicted_gap = None  # YOUR CODE: c^2 / 2 * int g^2 dt over [eps, T] for c = 1 (a float)
check_gap("Exercise 3", predicted_gap)

# %% [markdown]
# ## Exercise 4: bits per dimension of a simple density
#
# A standard normal density on 2-D data with 16 levels in $[-1, 1]$: the dequantized bound
# `bpd` is computed below. Write `exact_bpd`, the exact discrete bits/dim
# $-\frac{1}{D}\mathbb{E}\log_2 P(\mathbf{k})$ from the normal's probability of each cell. The
# check: the bound is above it and within 0.01 (tight when the density is nearly flat in a cell).
#
# *Hint:* cell edges `torch.linspace(-1, 1, 17)`; $\Phi(e) = \tfrac12(1 + \mathrm{erf}(e/\sqrt2))$;
# the coordinates are independent.

# %%
k = torch.randint(0, 16, (200, 2), generator=gen)
normal = lambda y: -0.5 * y.pow(2).sum(1) - math.log(2 * math.pi)  # noqa: E731
bpd = dequantized_bits_per_dim(normal, k, levels=16, n_draws=64, generator=gen)


def check_bpd(label, exact_bpd):
    if exact_bpd is None:
        raise AssertionError(f"{label}: fill in the blank first")
    check(label, bpd.mean >= exact_bpd - 0.01 and bpd.mean - exact_bpd < 0.01,
          f"dequantized bound {bpd.mean:.4f}, exact {exact_bpd:.4f} bits/dim")  # fmt: skip


# %% tags=["exercise"]
exact_bpd = None  # YOUR CODE: -(1/2) E log2 P(k) from the normal's cell probabilities
check_bpd("Exercise 4", exact_bpd)
