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
# # Notebook: denoising score matching (worked solutions)
#
# Companion of [denoising score matching](../../concepts/dsm.md). The exercises with blanks are in
# [the exercise notebook](../dsm.py). Exact scores of
# Gaussian mixtures make the minimiser of each loss known in advance.

# %%
import math

import torch

from scoresde import VPSDE, GaussianMixture

torch.set_default_dtype(torch.float64)
sde = VPSDE()
gen = torch.Generator().manual_seed(0)
gm = GaussianMixture([0.35, 0.65], [[-1.5], [1.5]], [[0.05], [0.2]], sde=sde)  # variances


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
# ## Exercise 1: the DSM minimiser is the score
#
# For data $\mathcal{N}(0, v)$ ($v$ a variance) the score of $p_t$ is
# $-x/(\alpha_t^2 v + \sigma_t^2)$. Write `fit_w(xt, eps, sigma)`: the least-squares slope $w$ of a
# linear model $s(x) = w\,x$ fitted to the DSM targets $-\boldsymbol\epsilon/\sigma_t$ (the DSM loss
# is quadratic in $w$). The check fits at $t = 0.1, 0.5, 0.9$ and compares with the exact slope
# (2%).
#
# *Hint:* $\arg\min_w \mathbb{E}(w x_t + \epsilon/\sigma_t)^2 = -\mathbb{E}[x_t\epsilon]/(\sigma_t\mathbb{E}[x_t^2])$.


# %%
def check_fit(label, fit_w):
    v, n = 0.3, 400_000
    for t in (0.1, 0.5, 0.9):
        alpha, sigma = (float(u) for u in sde.marginal(torch.tensor(t)))
        x0 = math.sqrt(v) * torch.randn(n, generator=gen)
        eps = torch.randn(n, generator=gen)
        w = fit_w(alpha * x0 + sigma * eps, eps, sigma)
        if w is None:
            raise AssertionError(f"{label}: fill in the blank first")
        exact = -1 / (alpha**2 * v + sigma**2)
        check(
            f"{label} (t = {t})",
            abs(w - exact) < 0.02 * abs(exact),
            f"fitted {w:.4f}, exact {exact:.4f}",
        )


# %% tags=["exercise"]
def fit_w(xt, eps, sigma):
    return float((xt * (-eps / sigma)).sum() / (xt * xt).sum())


check_fit("Exercise 1", fit_w)

# %% [markdown]
# ## Exercise 2: DSM = explicit score matching + a constant (Vincent 2011)
#
# For models off by a constant, $s = \nabla\log p_t + c$, the explicit loss is $c^2$ and the DSM
# loss is $c^2 + C$ with the same $C$ for every $c$. Write `C` from the samples below (the DSM
# targets `cond` and the true scores `true` at $t = 0.2$). The check compares DSM − ESM with
# your $C$ for $c = 0, 1, 2$ (5%).
#
# *Hint:* $C = \mathbb{E}\|\nabla\log p_{0t}(\mathbf{x}_t\mid\mathbf{x}_0)\|^2 - \mathbb{E}\|\nabla\log p_t(\mathbf{x}_t)\|^2$.

# %%
t = torch.tensor(0.2)
alpha, sigma = sde.marginal(t)
x0 = gm.sample(200_000, gen)
eps = torch.randn(x0.shape, generator=gen)
xt = alpha * x0 + sigma * eps
cond, true = -eps / sigma, gm.score(xt, t)


def check_constant(label, C):
    if C is None:
        raise AssertionError(f"{label}: fill in the blank first")
    for c in (0.0, 1.0, 2.0):
        esm = float((true + c - true).pow(2).sum(1).mean())
        dsm = float((true + c - cond).pow(2).sum(1).mean())
        check(
            f"{label} (c = {c})",
            abs(dsm - esm - C) < 0.05 * abs(dsm - esm),
            f"DSM - ESM {dsm - esm:.3f}, C = {C:.3f}",
        )


# %% tags=["exercise"]
C = float((cond.pow(2) - true.pow(2)).sum(1).mean())
check_constant("Exercise 2", C)
rejects("Exercise 2 with E|cond|^2 alone", check_constant, float(cond.pow(2).sum(1).mean()))

# %% [markdown]
# ## Exercise 3: the likelihood weighting in ε space
#
# $\sigma_t^2\|\mathbf{s} + \boldsymbol\epsilon/\sigma_t\|^2 = \|\hat{\boldsymbol\epsilon} - \boldsymbol\epsilon\|^2$ with
# $\hat{\boldsymbol\epsilon} = -\sigma_t\mathbf{s}$, so $\lambda(t) = \sigma_t^2$ is DDPM's $L_{\text{simple}}$,
# and the likelihood weighting $g^2$ on the score loss becomes a weight `weight(t)` on the
# $\boldsymbol\epsilon$ loss. Write it. The check compares with $-d\lambda/dt$ (autograd), which
# is why sampling $t$ uniformly in log-SNR is its importance sampler.
#
# *Hint:* $\|\mathbf{s} + \boldsymbol\epsilon/\sigma_t\|^2 = \|\hat{\boldsymbol\epsilon} - \boldsymbol\epsilon\|^2/\sigma_t^2$;
# `sde.g2(t)`, `sde.marginal(t)`.


# %%
def check_weight(label, weight):
    tt = torch.linspace(0.01, 0.99, 99, requires_grad=True)
    dlam = torch.autograd.grad(sde.log_snr(tt).sum(), tt)[0]
    close(label, weight(tt.detach()), -dlam, 1e-10, rel=True)


# %% tags=["exercise"]
def weight(t):
    return sde.g2(t) / sde.marginal(t)[1] ** 2


check_weight("Exercise 3", weight)
rejects("Exercise 3 with g^2 alone", check_weight, sde.g2)

# %% [markdown]
# ## Exercise 4: Tweedie's formula
#
# Write `tweedie(x, t)`: $\mathbb{E}[\mathbf{x}_0 \mid \mathbf{x}_t = \mathbf{x}]$ from the score
# `gm.score(x, t)`. The check compares with a Monte Carlo conditional mean (pairs whose $x_t$ falls
# within 0.01 of 0.5, 4 standard errors + 0.01).
#
# *Hint:* $\mathbb{E}[\mathbf{x}_0 \mid \mathbf{x}_t] = (\mathbf{x}_t + \sigma_t^2\nabla\log p_t)/\alpha_t$.


# %%
def check_tweedie(label, tweedie):
    t = torch.tensor(0.3)
    alpha, sigma = sde.marginal(t)
    x0 = gm.sample(2_000_000, gen)
    xt = alpha * x0 + sigma * torch.randn(x0.shape, generator=gen)
    in_bin = (xt[:, 0] - 0.5).abs() < 0.01
    mc = float(x0[in_bin, 0].mean())
    se = float(x0[in_bin, 0].std() / math.sqrt(int(in_bin.sum())))
    got = tweedie(torch.tensor([[0.5]]), t)
    if got is None:
        raise AssertionError(f"{label}: fill in the blank first")
    check(
        label,
        abs(mc - float(got)) < 4 * se + 0.01,
        f"Monte Carlo {mc:.4f} +- {se:.4f}, yours {float(got):.4f}",
    )


# %% tags=["exercise"]
def tweedie(x, t):
    alpha, sigma = sde.marginal(t)
    return (x + sigma**2 * gm.score(x, t)) / alpha


check_tweedie("Exercise 4", tweedie)
