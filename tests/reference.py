"""Independent references for the tests: nothing here calls a scoresde solver or sampler.

* :func:`schedule_coefs`: a(t) = d log alpha_t / dt and g(t)^2 = d sigma_t^2 / dt - 2 a sigma_t^2
  by autograd through ``sde.marginal`` (Song et al. 2021, Eq. 29 / Appendix B), so a reference
  never reuses the library's own ``drift_coef`` / ``g2``.
* :func:`pf_ode_scipy`: the probability-flow ODE (Eq. 13) of a mixture solved by scipy's
  ``solve_ivp`` (DOP853) at tight tolerance (:func:`ode_scipy` for any field).
* :class:`RecordingPath`: replays the Brownian increments torchsde drew.
* :func:`em_on_path`: Euler–Maruyama of the reverse SDE (Eq. 6), written out here, driven by one
  Brownian path (:func:`path_noise` reads a torchsde path in s = -t).
* :func:`affine_law`: the exact law of a sampler whose output is affine in (x_T, noise) (a
  Gaussian target makes the score linear): run it once on probe inputs, read off the
  coefficients, and get mean and variance with no Monte Carlo error.
* :func:`alternating_log_snr_grid`: a grid whose log-SNR steps alternate h, rho h (abrupt
  step-ratio changes, the weak spot of multistep solvers).

**Which tests are the independent reference of which module.** A reference test compares a
module's *values* with a closed form, a quadrature or a computation written out in the test
(never with the module's own formula, and within a tolerance far tighter than a plausible
bug); ``benchmarks/mutation_list.py`` names, per formula, the tests that must catch it. A new
formula module gets a row here, a reference test, and its mutations.

============================== ============================================================
module                          reference tests (``tests/``)
============================== ============================================================
sde/vp, ve, base, schedules     test_sde (moment ODEs by autograd, log-SNR inverses),
                                test_reference_sde (chains and reverse SDE, this file)
sde/snr_schedules, shift        test_sde_notes (continuous forms, shifted log-SNR),
                                test_reference_schedules (shifted VE sigma vs the base)
sde/learned                     test_sde_learned (gamma' by autograd, VDM invariance)
sde/ddpm                        test_reference_schedules (every field by hand, float32
                                index round trip)
sde/tables                      test_reference_schedules (linear vs ``LinearBeta`` at N != 1000),
                                test_sde_notes (cosine, sqrt vs their continuous forms)
sde/prior                       test_reference_schedules (exact Gaussian KL, non-zero means)
sde/reverse                     test_reference_sde, test_solvers_orders
analytic                        test_analytic
parameterization/               test_parameterization (EDM: unit-variance input and target)
losses                          test_losses (DSM identity with the exact score)
losses/vdm                      test_reference_losses (each term vs its closed form for
                                Gaussian data; E_x of the bound = entropy + known gaps)
losses/hybrid                   test_reference_losses (``terms()`` on a 1-D chain by hand)
likelihood/bounds               test_reference_bounds (ELBO weight and prior term exactly,
                                time average vs quad, decoder vs integrated bin mass),
                                test_reference_likelihood (DDPM VLB term means)
likelihood/ode, coordinates     test_likelihood, test_reference_likelihood
likelihood/bpd, dequant         test_reference_likelihood, test_dequant (exact cell masses)
distributed/bpd                 test_reference_sharded_bpd (a fresh-probe-per-draw loop)
samplers/reverse_sde, torchsde  test_reference_sde (``em_on_path``, this file)
samplers/langevin               test_reference_langevin, test_langevin
samplers/ode, dpm_solver(_pp),  test_samplers_orders, test_solvers_orders (DOP853 reference;
unipc, edm, deis, multistep     DEIS/iPNDM fast on an exact 1-D Gaussian flow),
                                test_solvers_weak (exact affine laws)
samplers/ddim, hooks, run       test_reference_corners
samplers/analytic_dpm           test_analytic_dpm, test_ddpm_variance
samplers/fixed_langevin         test_fixed_langevin (exact ULA bias, SGLD steps)
metrics/                        test_metrics (closed forms for Gaussians)
nets/embeddings                 test_nets (sinusoidal and Fourier formulas)
training/steps (EMA)            test_training (closed-form weighted average)
============================== ============================================================
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from scipy.integrate import solve_ivp
from torch import Tensor


def schedule_coefs(sde, t: Tensor) -> tuple[Tensor, Tensor]:
    """(a(t), g(t)^2) from the marginal alone, by autograd; float64, shaped like ``t``."""
    t = torch.as_tensor(t, dtype=torch.float64).detach().clone().requires_grad_(True)
    alpha, sigma = sde.marginal(t)
    (dlog_alpha,) = torch.autograd.grad(torch.log(alpha).sum(), t, retain_graph=True)
    (dvar,) = torch.autograd.grad((sigma**2).sum(), t)
    var = sigma.detach() ** 2
    return dlog_alpha.detach(), dvar - 2 * dlog_alpha.detach() * var


def ode_scipy(field, x_T: Tensor, t0: float, t1: float, tol: float = 1e-12) -> Tensor:
    """x(t1) of dx/dt = field(x, t) (t of shape ``(batch,)``) from x(t0) = x_T, by DOP853."""
    shape = x_T.shape

    def rhs(t: float, y: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(y).reshape(shape)
        return field(x, torch.full((shape[0],), t, dtype=torch.float64)).reshape(-1).numpy()

    y0 = x_T.detach().double().reshape(-1).numpy()
    sol = solve_ivp(rhs, (t0, t1), y0, method="DOP853", rtol=tol, atol=tol)
    assert sol.success, sol.message
    return torch.from_numpy(sol.y[:, -1]).reshape(shape)


def pf_ode_scipy(sde, score_fn, x_T: Tensor, t0: float, t1: float, tol: float = 1e-12) -> Tensor:
    """x(t1) of the PF-ODE dx/dt = a x - 1/2 g^2 score(x, t) from x(t0) = x_T (DOP853)."""

    def field(x: Tensor, t: Tensor) -> Tensor:
        a, g2 = schedule_coefs(sde, t[0])
        return a * x - 0.5 * g2 * score_fn(x, t)

    return ode_scipy(field, x_T, t0, t1, tol)


def path_noise(bm, t: Tensor, t_next: Tensor) -> Tensor:
    """(W(s_next) - W(s)) / sqrt(|ds|) of a torchsde Brownian path in s = -t."""
    lo, hi = -float(t), -float(t_next)
    return bm(lo, hi) / math.sqrt(hi - lo)


class RecordingPath:
    """A torchsde Brownian motion that records every increment torchsde draws from it, so that
    another sampler can be driven by exactly the same increments (``noise``, as a noise_sampler)."""

    def __init__(self, bm) -> None:
        self.bm, self.increments = bm, []

    def __getattr__(self, name: str):
        return getattr(self.bm, name)

    def __call__(self, ta, tb=None, *args, **kw):
        out = self.bm(ta, tb, *args, **kw)
        self.increments.append(out)
        return out

    def noise(self, x: Tensor, t: Tensor, t_next: Tensor) -> Tensor:
        """The next recorded increment, scaled to N(0, I) for the step from t to t_next."""
        return self.increments.pop(0) / math.sqrt(float(t) - float(t_next))


def em_on_path(sde, score_fn, x_T: Tensor, grid: Tensor, noise) -> Tensor:
    """Euler–Maruyama of dx = [a x - g^2 s] dt + g dw_bar on ``grid``; ``noise(x, t, t_next)``
    gives the N(0, I) draw of each step (e.g. the increments of one Brownian path)."""
    a, g2 = schedule_coefs(sde, grid)
    x = x_T.clone()
    for i in range(grid.numel() - 1):
        t, dt = grid[i], float(grid[i + 1] - grid[i])
        drift = a[i] * x - g2[i] * score_fn(x, t.expand(x.shape[0]))
        x = x + drift * dt + torch.sqrt(g2[i] * -dt) * noise(x, t, grid[i + 1])
    return x


def affine_law(
    run: Callable[..., Tensor], n_noise: int, mean_T: float, var_T: float
) -> tuple[float, float]:
    """Mean and variance of a 1-D sampler output that is affine in x_T and its noise draws.

    Args:
        run: ``run(x_T, noise_sampler) -> x`` for x_T of shape ``(B, 1)``.
        n_noise: An upper bound on the number of noise draws.
        mean_T: Mean of x_T.
        var_T: Variance of x_T.

    Returns:
        ``(mean, variance)`` of the output when x_T ~ N(mean_T, var_T) and the draws are N(0, 1).
    """
    B = 2 + n_noise
    x_T = torch.zeros(B, 1, dtype=torch.float64)
    x_T[1] = 1.0
    calls = [0]

    def noise(x: Tensor, t: Tensor, t_next: Tensor) -> Tensor:
        z = torch.zeros_like(x)
        if calls[0] + 2 < B:
            z[calls[0] + 2] = 1.0
        calls[0] += 1
        return z

    x = run(x_T, noise)[:, 0]
    assert calls[0] <= n_noise, (calls[0], n_noise)
    offset, c_T, c_z = x[0], x[1] - x[0], x[2:] - x[0]
    return float(offset + c_T * mean_T), float(c_T**2 * var_T + (c_z**2).sum())


def alternating_log_snr_grid(sde, n_pairs: int, rho: float = 4.0) -> Tensor:
    """T = t_0 > ... > t_{2n} = eps with log-SNR steps h, rho h, h, rho h, ... (float64)."""
    lam = sde.log_snr(torch.tensor([sde.T, sde.eps], dtype=torch.float64))
    h = float(lam[1] - lam[0]) / (n_pairs * (1 + rho))
    steps = torch.tensor([h, rho * h] * n_pairs, dtype=torch.float64)
    lams = float(lam[0]) + torch.cat([torch.zeros(1, dtype=torch.float64), steps.cumsum(0)])
    grid = sde.t_from_log_snr(lams)
    grid[0], grid[-1] = sde.T, sde.eps
    return grid
