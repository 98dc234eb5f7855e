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
# # Notebook: the forward SDE, VP, sub-VP and VE (worked solutions)
#
# Companion of [the forward SDE](../../concepts/forward-sde.md) and
# [VP, sub-VP and VE in closed form](../../concepts/sdes.md). The exercises with blanks are in
# [the exercise notebook](../forward_sde.py). Every check compares
# with an independent ground truth (autograd, a simulation, a closed form).

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
# ## Exercise 1: the log-SNR falls at rate $g^2/\sigma^2$
#
# With $\lambda(t) = \log(\alpha_t^2/\sigma_t^2)$ (`sde.log_snr`), write `dlambda_dt(sde, t)` from
# $g^2$ and $\sigma_t$ alone. The check differentiates the closed form $\lambda(t)$ with autograd,
# for all four SDEs.
#
# *Hint:* `sde.g2(t)`, `sde.marginal(t) -> (alpha_t, sigma_t)`; differentiate
# $\log\alpha_t^2 - \log\sigma_t^2$ using $d\sigma_t^2/dt = 2a\sigma_t^2 + g^2$ and $a = d\log\alpha_t/dt$.


# %%
def check_dlambda(label, fn):
    for name, sde in SDES.items():
        t = torch.linspace(0.05, 0.95 * sde.T, 50)
        close(f"{label} ({name})", fn(sde, t), ddt(sde.log_snr, t), 1e-8, rel=True)


# %% tags=["exercise"]
def dlambda_dt(sde, t):
    return -sde.g2(t) / sde.marginal(t)[1] ** 2


check_dlambda("Exercise 1", dlambda_dt)

# %% [markdown]
# ## Exercise 2: any $(\alpha_t, \sigma_t)$ defines a linear SDE
#
# Write `coefficients(sde, t) -> (a, g2)` from the marginal alone: $a(t) = d\log\alpha_t/dt$ and
# $g^2 = d\sigma_t^2/dt - 2a\sigma_t^2$ (use `ddt`). The check compares with the SDE's own
# `drift_coef` and `g2`. Which SDEs keep $\alpha_t^2 + \sigma_t^2 = 1$, which keep it $\le 1$?
#
# *Hint:* `ddt(lambda s: sde.marginal(s)[0].log(), t)` is $a(t)$.


# %%
def check_coefficients(label, fn):
    for name, sde in SDES.items():
        t = torch.linspace(0.05, 0.95 * sde.T, 50)
        got = fn(sde, t)
        if got is None:
            raise AssertionError(f"{label}: fill in the blank first")
        close(f"{label} a ({name})", got[0], sde.drift_coef(t), 1e-8)
        close(f"{label} g^2 ({name})", got[1], sde.g2(t), 1e-7, rel=True)
        alpha, sigma = sde.marginal(t)
        total = alpha**2 + sigma**2
        print(
            f"  {name:10s} alpha^2 + sigma^2 in [{float(total.min()):.4f}, {float(total.max()):.4f}]"
        )


# %% tags=["exercise"]
def coefficients(sde, t):
    a = ddt(lambda s: sde.marginal(s)[0].log(), t)
    g2 = ddt(lambda s: sde.marginal(s)[1] ** 2, t) - 2 * a * sde.marginal(t)[1] ** 2
    return a, g2


check_coefficients("Exercise 2", coefficients)

# %% [markdown]
# ## Exercise 3: the kernel is the solution of the moment ODEs
#
# Write `simulate(n, steps, t_end, gen)`: Euler–Maruyama for the forward VP SDE
# $dx = -\tfrac12\beta x\,dt + \sqrt\beta\,dw$ from $x_0 = 1$, returning the $n$ endpoints. The
# check compares their mean and variance at $t = 0.5$ with $\alpha_t$ and $\sigma_t^2$ (four
# standard errors plus the $O(\Delta t)$ bias).
#
# *Hint:* `sde.drift_coef(t)` is $-\tfrac12\beta(t)$, `sde.g2(t)` is $\beta(t)$; one step is
# $x \leftarrow x + a x\,\Delta t + g\sqrt{\Delta t}\,z$.


# %%
def check_simulation(label, fn):
    sde, n, t_end = SDES["VP"], 20_000, 0.5
    x = fn(n, 400, t_end, torch.Generator().manual_seed(0))
    if x is None:
        raise AssertionError(f"{label}: fill in the blank first")
    alpha, sigma = (float(v) for v in sde.marginal(torch.tensor(t_end)))
    m, v = float(x.mean()), float(x.var())
    check(
        f"{label} (mean)",
        abs(m - alpha) < 4 * sigma / math.sqrt(n) + 0.01,
        f"{m:.4f} vs alpha_t {alpha:.4f}",
    )
    check(
        f"{label} (variance)",
        abs(v - sigma**2) < 4 * sigma**2 * math.sqrt(2 / n) + 0.01,
        f"{v:.4f} vs sigma_t^2 {sigma**2:.4f}",
    )


# %% tags=["exercise"]
def simulate(n, steps, t_end, gen):
    sde, x, dt = SDES["VP"], torch.ones(n), t_end / steps
    for i in range(steps):
        t = torch.tensor(i * dt)
        z = torch.randn(n, generator=gen)
        x = x + sde.drift_coef(t) * x * dt + sde.g2(t).sqrt() * math.sqrt(dt) * z
    return x


def simulate_beta_drift(n, steps, t_end, gen):  # a plausible slip: drift -beta x
    sde, x, dt = SDES["VP"], torch.ones(n), t_end / steps
    for i in range(steps):
        t = torch.tensor(i * dt)
        z = torch.randn(n, generator=gen)
        x = x - sde.g2(t) * x * dt + sde.g2(t).sqrt() * math.sqrt(dt) * z
    return x


check_simulation("Exercise 3", simulate)
rejects("Exercise 3 with drift -beta x", check_simulation, simulate_beta_drift)

# %% [markdown]
# ## Exercise 4: reproduce a prior KL
#
# For Gaussian data $\mathcal{N}(\mu, v)$ ($v$ a **variance**), $p_T$ is
# $\mathcal{N}(\alpha_T\mu, \alpha_T^2 v + \sigma_T^2)$. Write `kl_closed(sde)`, the closed form of
# $\mathrm{KL}(p_T\,\|\,\mathcal{N}(0, s^2))$ with $s$ = `sde.prior_std`, for $\mu = 3$, $v = 0.5$.
# The check compares with a Monte Carlo estimate $\mathbb{E}_{p_T}[\log p_T - \log\pi]$ from the
# library's exact `log_prob` and `prior_log_prob`. Which SDE has the largest mismatch, and why?
#
# *Hint:* $\mathrm{KL}(\mathcal{N}(m, V)\,\|\,\mathcal{N}(0, s^2)) = \tfrac12\big(V/s^2 + m^2/s^2 - 1 + \log(s^2/V)\big)$.

# %%
mu, v = 3.0, 0.5


def check_kl(label, fn):
    for name, sde in SDES.items():
        pT = GaussianMixture([1.0], [[mu]], [[v]], sde=sde).marginal_mixture(sde.T)
        z = pT.sample(200_000, torch.Generator().manual_seed(1))
        diff = pT.log_prob(z) - sde.prior_log_prob(z)
        mc, se = float(diff.mean()), float(diff.std() / math.sqrt(len(diff)))
        got = fn(sde)
        if got is None:
            raise AssertionError(f"{label}: fill in the blank first")
        check(
            f"{label} ({name})",
            abs(got - mc) < 5 * se + 1e-9,
            f"closed form {got:.4e}, Monte Carlo {mc:.4e} +- {se:.1e}",
        )


# %% tags=["exercise"]
def kl_closed(sde):
    alpha, sigma = (float(u) for u in sde.marginal(torch.tensor(sde.T)))
    m, var, s2 = alpha * mu, alpha**2 * v + sigma**2, sde.prior_std**2
    return 0.5 * (var / s2 + m**2 / s2 - 1 + math.log(s2 / var))


def kl_zero_mean(sde):  # a plausible slip: the data's mean forgotten
    alpha, sigma = (float(u) for u in sde.marginal(torch.tensor(sde.T)))
    var, s2 = alpha**2 * v + sigma**2, sde.prior_std**2
    return 0.5 * (var / s2 - 1 + math.log(s2 / var))


check_kl("Exercise 4", kl_closed)
worst = max(SDES, key=lambda k: kl_closed(SDES[k]))
print("largest mismatch:", worst, "(alpha = 1: the data's mean never decays, only the noise grows)")
rejects("Exercise 4 without the mean", check_kl, kl_zero_mean)
