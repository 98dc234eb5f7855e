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
# Companion of [DDPM and DDIM as discretizations](../concepts/ddpm-ddim.md). Each exercise has a blank (`None`, with a hint) and a check
# that fails until the blank holds a right answer; worked solutions:
# [solutions/ddpm_ddim.py](solutions/ddpm_ddim.py). Recall
# $\bar\alpha_n = \alpha_{t_n}^2$ (DDPM's $\bar\alpha$ is our $\alpha_t^2$).

# %%
import torch

from scoresde import VPSDE, GaussianMixture, sample
from scoresde.sde import DDPMSchedule

torch.set_default_dtype(torch.float64)
sde = VPSDE()
gm = GaussianMixture([0.35, 0.65], [[-1.5], [1.5]], [[0.05], [0.2]], sde=sde)  # variances
sched = DDPMSchedule.from_sde(sde, 1000)  # alpha_bar_n = alpha_{t_n}^2 exactly
b, ab = sched.betas, sched.alpha_bars
ab_prev = sched.alpha_bars_prev
gen = torch.Generator().manual_seed(0)


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
# ## Exercise 1: derive $\tilde\beta_n$ by Gaussian conditioning
#
# Given $\mathbf{x}_0$, $\mathbf{x}_{n-1}$ has variance $1 - \bar\alpha_{n-1}$ and
# $\mathbf{x}_n = \sqrt{1 - \beta_n}\,\mathbf{x}_{n-1} + \sqrt{\beta_n}\mathbf{z}$. Compute, for
# every $n$, `beta_tilde` $= \mathrm{Var}(\mathbf{x}_{n-1} \mid \mathbf{x}_n, \mathbf{x}_0)$ and the
# regression coefficients `coef_x0`, `coef_xt` of
# $\mathbb{E}[\mathbf{x}_{n-1} \mid \mathbf{x}_n, \mathbf{x}_0] = c_0\mathbf{x}_0 + c_t\mathbf{x}_n$,
# by **conditioning** (not by copying Ho et al.'s Eqs. 6–7: the check compares with them and with
# the library's table).
#
# *Hint:* with $V_{n-1} = 1 - \bar\alpha_{n-1}$, $V_n = 1 - \bar\alpha_n$ and
# $C = \mathrm{Cov}(x_{n-1}, x_n \mid x_0) = \sqrt{1-\beta_n}\,V_{n-1}$: the conditional variance is
# $V_{n-1} - C^2/V_n$, $c_t = C/V_n$, and $c_0$ follows from the means
# ($\mathbb{E}x_{n-1} = \sqrt{\bar\alpha_{n-1}}x_0$, $\mathbb{E}x_n = \sqrt{\bar\alpha_n}x_0$).


# %%
def check_posterior(label, beta_tilde, coef_x0, coef_xt):
    close(f"{label} beta_tilde (Ho Eq. 7)", beta_tilde, (1 - ab_prev) / (1 - ab) * b, 1e-14)
    close(f"{label} beta_tilde (table)", beta_tilde, sched.beta_tildes, 1e-14)
    close(f"{label} coef_x0 (Ho Eq. 7)", coef_x0, ab_prev.sqrt() * b / (1 - ab), 1e-13)
    close(f"{label} coef_xt (Ho Eq. 7)", coef_xt, (1 - b).sqrt() * (1 - ab_prev) / (1 - ab), 1e-13)


# %% tags=["exercise"]
beta_tilde = coef_x0 = coef_xt = None  # YOUR CODE: Gaussian conditioning, every n at once
check_posterior("Exercise 1", beta_tilde, coef_x0, coef_xt)

# %% [markdown]
# ## Exercise 2: Ho et al.'s Eq. 11
#
# Put $\hat{\mathbf{x}}_0 = (\mathbf{x}_n - \sqrt{1 - \bar\alpha_n}\,\hat{\boldsymbol\epsilon})/\sqrt{\bar\alpha_n}$
# into the posterior mean $c_0\hat{\mathbf{x}}_0 + c_t\mathbf{x}_n$ and simplify: write `eq11`, the
# mean in terms of $\mathbf{x}_n$ and $\hat{\boldsymbol\epsilon}$ only, for every $n$ at random
# $\mathbf{x}_n$, $\hat{\boldsymbol\epsilon}$. (The study notes print $1/\sqrt{\bar\alpha_n}$ in
# front; the check tells you whether that is right.)
#
# *Hint:* collect the $\mathbf{x}_n$ terms; $\bar\alpha_n = (1 - \beta_n)\bar\alpha_{n-1}$ and
# $1 - \bar\alpha_n = \beta_n + (1 - \beta_n)(1 - \bar\alpha_{n-1})$.

# %%
x_n = torch.randn(1000, generator=gen)
eps = torch.randn(1000, generator=gen)
x0_hat = (x_n - (1 - ab).sqrt() * eps) / ab.sqrt()
posterior_mean = sched.posterior_coef_x0 * x0_hat + sched.posterior_coef_xt * x_n

# %% tags=["exercise"]
eq11 = None  # YOUR CODE: the posterior mean from x_n and eps only
close("Exercise 2", eq11, posterior_mean, 1e-9)

# %% [markdown]
# ## Exercise 3: one DDIM step is one Euler step in $\bar\sigma = \sigma/\alpha$
#
# Write `euler`, one Euler step of $d\bar{\mathbf{x}}/d\bar\sigma = \hat{\boldsymbol\epsilon}$ from
# $s = 0.6$ to $t = 0.4$ for 500 points $\mathbf{x}_s$, mapped back to $\mathbf{x}_t = \alpha_t\bar{\mathbf{x}}_t$.
# The check compares with the library's DDIM ($\eta = 0$).
#
# *Hint:* $\bar{\mathbf{x}} = \mathbf{x}/\alpha$; `gm.eps(x, s)` is $\hat{\boldsymbol\epsilon}(\mathbf{x}, s)$.

# %%
s, t = torch.tensor(0.6), torch.tensor(0.4)
x_s = torch.randn(500, 1, generator=gen)
(a_s, sig_s), (a_t, sig_t) = sde.marginal(s), sde.marginal(t)
x_t, _ = sample("ddim", sde, gm, x_s, torch.stack([s, t]))

# %% tags=["exercise"]
euler = None  # YOUR CODE: one Euler step in (xbar, sigma_bar), then x_t = a_t * xbar_t
close("Exercise 3", euler, x_t, 1e-12)

# %% [markdown]
# ## Exercise 4: a DDPM step and an Euler–Maruyama step agree to higher order
#
# One step of DDPM (variance $\beta$) and of Euler–Maruyama on the reverse SDE from the same
# point with the same noise $\mathbf{z}$, for $\Delta t = 0.02, 0.01, 0.005$: how fast does their
# gap shrink per halving of $\Delta t$, without noise and with it? **Predict** both ratios
# (`ratio_without_noise`, `ratio_with_noise`); the check measures them (within 20%).
#
# *Hint:* without noise the drifts differ at $O(\Delta t^2)$; with noise the scales
# $\sqrt{\beta_n}$ (exact, $\beta_n = 1 - \bar\alpha_n/\bar\alpha_{n-1}$) and $g\sqrt{\Delta t}$ differ
# by a relative $O(\Delta t)$ ([DDPM and DDIM](../concepts/ddpm-ddim.md) explains both).

# %%
x = torch.randn(2000, 1, generator=gen)
z = torch.randn(2000, 1, generator=gen)


def one_step_gap(dt, noise):
    grid = torch.tensor([0.5, 0.5 - dt])
    ns = lambda x, t, t_next: noise  # noqa: E731 - a fixed standardized increment
    a, _ = sample("ddpm", sde, gm, x, grid, variance="beta", noise_sampler=ns)
    e, _ = sample("euler_maruyama", sde, gm, x, grid, noise_sampler=ns)
    return float((a - e).abs().mean())


def check_ratios(label, without_noise, with_noise):
    for noise, predicted in ((torch.zeros_like(z), without_noise), (z, with_noise)):
        if predicted is None:
            raise AssertionError(f"{label}: fill in the blanks first")
        gaps = [one_step_gap(dt, noise) for dt in (0.02, 0.01, 0.005)]
        ratios = [gaps[0] / gaps[1], gaps[1] / gaps[2]]
        ok = all(abs(r - predicted) < 0.2 * predicted for r in ratios)
        check(
            label,
            ok,
            f"measured ratios {ratios[0]:.2f}, {ratios[1]:.2f}; predicted {predicted:.2f}",
        )


# %% tags=["exercise"]
ratio_without_noise, ratio_with_noise = None, None  # YOUR PREDICTIONS (numbers)
check_ratios("Exercise 4", ratio_without_noise, ratio_with_noise)
