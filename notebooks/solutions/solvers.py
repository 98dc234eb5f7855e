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
# # Notebook: exponential integrators and EDM (worked solutions)
#
# Companion of [exponential integrators](../../concepts/exponential-integrators.md) and
# [EDM in our notation](../../concepts/edm.md). The exercises with blanks are in
# [the exercise notebook](../solvers.py). Errors are measured point by point against
# the exact 1-D PF-ODE map (the quantile transport $F_{t_\epsilon}^{-1}\circ F_T$).

# %%
import torch
from scipy.stats import kstest

from scoresde import VPSDE, GaussianMixture, make_grid, sample
from scoresde.samplers import karras_grid

torch.set_default_dtype(torch.float64)
sde = VPSDE(eps=1e-3)
gm = GaussianMixture([0.35, 0.65], [[-1.5], [1.5]], [[0.05], [0.2]], sde=sde)  # variances
gen = torch.Generator().manual_seed(0)
x_T = sde.prior_sample((2000, 1), generator=gen, dtype=torch.float64)


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


exact = pf_exact(x_T)


def fit_order(ns, errs):
    ln, le = torch.tensor(ns, dtype=torch.float64).log(), torch.tensor(errs).log()
    ln, le = ln - ln.mean(), le - le.mean()
    return float(-(ln * le).sum() / (ln * ln).sum())


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
# ## Exercise 1: the λ trap
#
# The DPM-Solver-1 step is $\mathbf{x}_t = \frac{\alpha_t}{\alpha_s}\mathbf{x}_s - \sigma_t(e^h - 1)\hat{\boldsymbol\epsilon}_s$
# with DPM-Solver's $h = \lambda_t^{\text{DPM}} - \lambda_s^{\text{DPM}}$. Our `sde.log_snr` is
# $\lambda = \log(\alpha^2/\sigma^2)$. Write `h` from `sde.log_snr` so that the step is DDIM (the
# check compares with the library's DDIM, to $10^{-12}$).
#
# *Hint:* DPM-Solver's $\lambda$ is $\log(\alpha/\sigma)$, ours $\log(\alpha^2/\sigma^2)$.

# %%
s, t = torch.tensor(0.7), torch.tensor(0.5)
x_s = torch.randn(500, 1, generator=gen)
(a_s, sig_s), (a_t, sig_t) = sde.marginal(s), sde.marginal(t)
eps_s = gm.eps(x_s, s)
ddim, _ = sample("ddim", sde, gm, x_s, torch.stack([s, t]))


def dpm_solver_1(h):
    if h is None:
        return None
    return (a_t / a_s) * x_s - sig_t * torch.expm1(h) * eps_s


# %% tags=["exercise"]
h = (sde.log_snr(t) - sde.log_snr(s)) / 2  # DPM-Solver's lambda is half our log-SNR
close("Exercise 1", dpm_solver_1(h), ddim, 1e-12)
rejects("Exercise 1 with our log-SNR difference", close, dpm_solver_1(2 * h), ddim, 1e-12)

# %% [markdown]
# ## Exercise 2: measure the orders
#
# Write `paired_error(name, n)`: the mean distance between sampler `name`'s endpoint from `x_T`
# on `make_grid(sde, n, "log_snr")` and the exact map `exact`, point by point. The check fits the
# global order in $N$ of DDIM, DPM-Solver-2 and DPM-Solver++(2M). Expected: 1, 2, 2.
#
# *Hint:* `sample(name, sde, gm, x_T, make_grid(sde, n, "log_snr"))` returns `(x, info)`.

# %%
ns = [10, 20, 40, 80]


def check_orders(label, paired_error):
    orders = {}
    for name in ("ddim", "dpm_solver_2", "dpm_solver_pp_2m"):
        errs = [paired_error(name, n) for n in ns]
        if any(e is None for e in errs):
            raise AssertionError(f"{label}: fill in the blank first")
        orders[name] = fit_order(ns, errs)
        print(f"  {name:17s} errors {[f'{e:.1e}' for e in errs]}  order {orders[name]:.2f}")
    check(label, abs(orders["ddim"] - 1) < 0.2 and min(orders["dpm_solver_2"], orders["dpm_solver_pp_2m"]) > 1.6,
          f"orders {', '.join(f'{k} {v:.2f}' for k, v in orders.items())}")  # fmt: skip


# %% tags=["exercise"]
def paired_error(name, n):
    x, _ = sample(name, sde, gm, x_T, make_grid(sde, n, "log_snr"))
    return float((x - exact).abs().mean())


check_orders("Exercise 2", paired_error)

# %% [markdown]
# ## Exercise 3: the ρ-grid
#
# Write `karras_sigmas(n, rho)`: the $n + 1$ noise levels $\sigma = \sigma_t/\alpha_t$ spaced
# uniformly in $\sigma^{1/\rho}$ from $\sigma_{\max} = \sigma(T)$ down to $\sigma_{\min} = \sigma(t_\epsilon)$
# (EDM's Eq. 5 in our indexing). The check compares with the library's `karras_grid` mapped to
# $\sigma$, for $\rho = 1, 7$, and shows that a huge $\rho$ gives the log-SNR grid.
#
# *Hint:* $\sigma(t) = e^{-\lambda(t)/2}$ with `sde.log_snr`.


# %%
def sigma_of(grid):
    return sde.marginal(grid)[1] / sde.marginal(grid)[0]


def check_karras(label, karras_sigmas):
    for rho in (1.0, 7.0):
        close(
            f"{label} (rho = {rho})",
            karras_sigmas(12, rho),
            sigma_of(karras_grid(sde, 12, rho=rho)),
            1e-9,
        )
    far = karras_grid(sde, 12, rho=1e4)
    close(f"{label} (rho = 1e4 is the log-SNR grid)", far, make_grid(sde, 12, "log_snr"), 1e-3)


# %% tags=["exercise"]
def karras_sigmas(n, rho):
    s_max, s_min = (torch.exp(-0.5 * sde.log_snr(torch.tensor(u))) for u in (sde.T, sde.eps))
    u = torch.linspace(0, 1, n + 1)
    return (s_max ** (1 / rho) + u * (s_min ** (1 / rho) - s_max ** (1 / rho))) ** rho


check_karras("Exercise 3", karras_sigmas)

# %% [markdown]
# ## Exercise 4: EDM's churn does not change the law
#
# Exact samples of $p_\sigma$ in the scaled variable $\bar{\mathbf{x}} = \mathbf{x}/\alpha_t$ are
# given. Write `churn(xbar, sigma, sigma_hat, gen)`: EDM's noise injection that raises the noise
# level from $\sigma$ to $\hat\sigma = (1 + \gamma)\sigma$. The check tests the result against the
# exact law of $\bar{\mathbf{x}}$ at $\hat\sigma$ (KS at the 0.1% level, 20,000 samples): the
# churn is the forward process itself.
#
# *Hint:* independent Gaussian noise adds variances: add $\sqrt{\hat\sigma^2 - \sigma^2}\,\mathbf{z}$.

# %%
t0 = torch.tensor(0.3)
a0, s0 = sde.marginal(t0)
sigma = s0 / a0
sigma_hat = (1 + (2**0.5 - 1)) * sigma  # the largest churn EDM allows
t_hat = sde.t_from_log_snr(-2 * torch.log(sigma_hat))
a_hat = sde.marginal(t_hat)[0]
xbar = gm.marginal_mixture(float(t0)).sample(20_000, gen) / a0


def check_churn(label, churn):
    out = churn(xbar, sigma, sigma_hat, torch.Generator().manual_seed(3))
    if out is None:
        raise AssertionError(f"{label}: fill in the blank first")
    p = float(kstest(cdf(t_hat, a_hat * out).numpy(), "uniform").pvalue)  # x = alpha * xbar
    check(label, p > 1e-3, f"KS p-value {p:.3f} against the exact law at sigma_hat")


# %% tags=["exercise"]
def churn(xbar, sigma, sigma_hat, gen):
    return xbar + (sigma_hat**2 - sigma**2).sqrt() * torch.randn(xbar.shape, generator=gen)


check_churn("Exercise 4", churn)
linear = lambda xb, s, sh, g: xb + (sh - s) * torch.randn(xb.shape, generator=g)  # noqa: E731
rejects("Exercise 4 adding (sigma_hat - sigma) z", check_churn, linear)
