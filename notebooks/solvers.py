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
# # Notebook: exponential integrators and EDM
#
# Companion of [exponential integrators](../concepts/exponential-integrators.md) and
# [EDM in our notation](../concepts/edm.md).

# %%
import torch

from scoresde import VPSDE, GaussianMixture, make_grid, sample
from scoresde.samplers import karras_grid

torch.set_default_dtype(torch.float64)
sde = VPSDE(eps=1e-3)
gm = GaussianMixture([0.35, 0.65], [[-1.5], [1.5]], [[0.05], [0.2]], sde=sde)  # variances
gen = torch.Generator().manual_seed(0)
x_T = sde.prior_sample((2000, 1), generator=gen, dtype=torch.float64)
ref, _ = sample("pf_adaptive", sde, gm, x_T, make_grid(sde, 1), rtol=1e-10, atol=1e-10)


def fit_order(ns, errs):
    ln, le = torch.tensor(ns, dtype=torch.float64).log(), torch.tensor(errs).log()
    ln, le = ln - ln.mean(), le - le.mean()
    return float(-(ln * le).sum() / (ln * ln).sum())


# %% [markdown]
# ## Exercise 1: the λ trap
#
# Write the DPM-Solver-1 step $\mathbf{x}_t = \frac{\alpha_t}{\alpha_s}\mathbf{x}_s -
# \sigma_t(e^h - 1)\hat{\boldsymbol\epsilon}_s$ twice: with DPM-Solver's $h$ (half our log-SNR
# difference) and with our log-SNR difference. Only one of them is DDIM.

# %%
s, t = torch.tensor(0.7), torch.tensor(0.5)
x_s = torch.randn(500, 1, generator=gen)
(a_s, sig_s), (a_t, sig_t) = sde.marginal(s), sde.marginal(t)
eps_s = gm.eps(x_s, s)
h_ours = sde.log_snr(t) - sde.log_snr(s)  # log(alpha^2 / sigma^2) difference
step = lambda h: (a_t / a_s) * x_s - sig_t * torch.expm1(h) * eps_s  # noqa: E731
ddim, _ = sample("ddim", sde, gm, x_s, torch.stack([s, t]))
right, wrong = step(h_ours / 2), step(h_ours)
print("|DDIM - step(h/2)| =", float((ddim - right).abs().max()), "  |DDIM - step(h)| =",
      float((ddim - wrong).abs().max()))  # fmt: skip
assert float((ddim - right).abs().max()) < 1e-12 and float((ddim - wrong).abs().max()) > 0.1

# %% [markdown]
# ## Exercise 2: measure the orders
#
# Fit the global order in the number of log-SNR steps $N$ of DDIM, DPM-Solver-2 and
# DPM-Solver++(2M) against a tight PF-ODE solution. Expected: 1, 2, 2.

# %%
ns = [10, 20, 40, 80]
orders = {}
for name in ("ddim", "dpm_solver_2", "dpm_solver_pp_2m"):
    errs = [float((sample(name, sde, gm, x_T, make_grid(sde, n, "log_snr"))[0] - ref).abs().mean())
            for n in ns]  # fmt: skip
    orders[name] = fit_order(ns, errs)
    print(f"{name:17s} errors {[f'{e:.1e}' for e in errs]}  order {orders[name]:.2f}")
assert abs(orders["ddim"] - 1) < 0.2
assert orders["dpm_solver_2"] > 1.6 and orders["dpm_solver_pp_2m"] > 1.6

# %% [markdown]
# ## Exercise 3: the ρ-grid
#
# Check that `karras_grid` is uniform in $\sigma^{1/\rho}$ with $\sigma = \sigma_t/\alpha_t$, and
# that as $\rho$ grows it approaches the log-SNR grid (uniform in $\log\sigma$).

# %%
for rho in (1.0, 7.0):
    sig = (lambda g: sde.marginal(g)[1] / sde.marginal(g)[0])(karras_grid(sde, 12, rho=rho))
    steps = (sig ** (1 / rho)).diff()
    assert torch.allclose(steps, steps.mean().expand_as(steps), rtol=1e-6), rho
far = karras_grid(sde, 12, rho=1e4)
print(
    "max |karras(rho=1e4) - log_snr grid| =",
    float((far - make_grid(sde, 12, "log_snr")).abs().max()),
)
assert torch.allclose(far, make_grid(sde, 12, "log_snr"), atol=1e-3)

# %% [markdown]
# ## Exercise 4: EDM's churn does not change the law
#
# Take exact samples of $p_\sigma$ in the scaled variable $\bar{\mathbf{x}} = \mathbf{x}/\alpha_t$,
# add $\sqrt{\hat\sigma^2 - \sigma^2}\,\mathbf{z}$ with $\hat\sigma = (1 + \gamma)\sigma$, and check the
# result against exact samples of $p_{\hat\sigma}$ (W2 within the noise floor): the churn is the
# forward process itself.


# %%
def w2_1d(a, b):
    return float((a[:, 0].sort().values - b[:, 0].sort().values).pow(2).mean().sqrt())


t0 = torch.tensor(0.3)
a0, s0 = sde.marginal(t0)
sigma = s0 / a0
sigma_hat = (1 + (2**0.5 - 1)) * sigma  # the largest churn EDM allows
t_hat = sde.t_from_log_snr(-2 * torch.log(sigma_hat))
n = 5000
xbar = gm.marginal_mixture(float(t0)).sample(n, gen) / a0
xbar_hat = xbar + (sigma_hat**2 - sigma**2).sqrt() * torch.randn(xbar.shape, generator=gen)
exact_hat = gm.marginal_mixture(float(t_hat)).sample(n, gen) / sde.marginal(t_hat)[0]
floor = [w2_1d(gm.marginal_mixture(float(t_hat)).sample(n, gen),
               gm.marginal_mixture(float(t_hat)).sample(n, gen)) / float(sde.marginal(t_hat)[0])
         for _ in range(8)]  # fmt: skip
w = w2_1d(xbar_hat, exact_hat)
print(f"W2 after churn {w:.3f}; floor {min(floor):.3f}..{max(floor):.3f}")
assert w < 1.5 * max(floor)
