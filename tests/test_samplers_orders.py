"""Convergence orders, asserted: every registry entry's declared order is what is measured.

Errors against a reference solution on the test mixture, in float64, with step counts in the
asymptotic range (well above round-off). The slope of log(error) against log(step) is fitted
over three step counts, in the variable the order is declared in ('t' or 'log_snr').

References share no code with the samplers (``tests/reference.py``):

* ODE samplers: the PF-ODE map x_T -> x_eps, reference scipy DOP853 at rtol = atol = 1e-12 on
  the field a x - 1/2 g^2 s, with a and g^2 by autograd through ``sde.marginal``.
* SDE samplers: strong error E|x_N - x_ref| on one shared Brownian path per SDE (additive noise,
  so Euler–Maruyama has strong order 1), reference: Euler–Maruyama written in the test on 2048
  steps of that path.
* DPM-Solver++(2M) also on grids whose log-SNR step alternates h, 4h (abrupt ratio changes).
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
import torchsde

from scoresde.samplers import SAMPLERS, BrownianNoise, make_grid, sample

from .reference import alternating_log_snr_grid, em_on_path, path_noise, pf_ode_scipy
from .test_samplers_common import make_sdes, mixture, prior

SDES = make_sdes()
#: Step counts per declared order (finer for low orders, where the asymptote comes later).
STEPS = {1: (64, 128, 256), 2: (32, 64, 128), 3: (24, 48, 96), 4: (24, 48, 96)}
#: Step counts of the strong-order fits, and of their reference.
SDE_STEPS, SDE_REF = (32, 64, 128), 2048
ODE_CASES = [
    (n, s) for n, spec in sorted(SAMPLERS.items()) for s in sorted(SDES)
    if not spec.stochastic and spec.order is not None and spec.supports(SDES[s])
]  # fmt: skip
SDE_CASES = [
    (n, s) for n, spec in sorted(SAMPLERS.items()) for s in sorted(SDES)
    if spec.stochastic and spec.order is not None and spec.supports(SDES[s])
]  # fmt: skip


def fitted_slope(steps: tuple[int, ...], errors: list[float]) -> float:
    """-d log(error) / d log(N), i.e. the order in the step size h ~ 1 / N."""
    return float(-np.polyfit(np.log(steps), np.log(errors), 1)[0])


@functools.cache
def ode_reference(sde_name: str) -> tuple[torch.Tensor, torch.Tensor]:
    sde = SDES[sde_name]
    x_T = prior(sde, 200, seed=11)
    return x_T, pf_ode_scipy(sde, mixture(sde), x_T, sde.T, sde.eps)


@pytest.mark.parametrize(("name", "sde_name"), ODE_CASES)
def test_ode_sampler_global_order(name: str, sde_name: str) -> None:
    spec, sde = SAMPLERS[name], SDES[sde_name]
    x_T, x_ref = ode_reference(sde_name)
    kind = "uniform" if spec.order_variable == "t" else "log_snr"
    steps = STEPS[int(spec.order)]
    errors = [
        float(
            (sample(name, sde, mixture(sde), x_T, make_grid(sde, n, kind))[0] - x_ref).abs().mean()
        )
        for n in steps
    ]
    assert max(errors) < 0.2 and min(errors) > 1e-11, errors
    assert abs(fitted_slope(steps, errors) - spec.order) < 0.3, (
        errors,
        fitted_slope(steps, errors),
    )


def _brownian(sde_name: str, x_T: torch.Tensor, seed: int, torchsde_time: bool):
    """One Brownian path, shared by every run of a test (a BrownianInterval is consistent
    across queries of one instance, not across instances)."""
    sde = SDES[sde_name]
    if torchsde_time:  # torchsde runs in s = -t and takes the Brownian motion itself
        return torchsde.BrownianInterval(t0=-sde.T, t1=-sde.eps, size=x_T.shape, dtype=x_T.dtype,
                                         entropy=seed, levy_area_approximation="space-time")  # fmt: skip
    return BrownianNoise(x_T, sde.eps, sde.T, torch.Generator().manual_seed(seed))


@functools.cache
def sde_reference(sde_name: str, torchsde_time: bool):
    """x_T, one Brownian path, and the in-test Euler–Maruyama on 2048 steps of it (cached: every
    sampler of this SDE is compared on the same path)."""
    sde = SDES[sde_name]
    x_T = prior(sde, 200, seed=5)
    path = _brownian(sde_name, x_T, 9, torchsde_time)
    noise = (lambda x, t, tn: path_noise(path, t, tn)) if torchsde_time else path
    return x_T, path, em_on_path(sde, mixture(sde), x_T, make_grid(sde, SDE_REF), noise)


def _sde_run(name: str, sde_name: str, n: int, x_T: torch.Tensor, path) -> torch.Tensor:
    """Sampler ``name`` on ``n`` uniform steps, driven by the shared Brownian path."""
    sde, gm = SDES[sde_name], mixture(SDES[sde_name])
    opts = {"bm": path} if name == "torchsde" else {"noise_sampler": path}
    return sample(name, sde, gm, x_T, make_grid(sde, n), **opts)[0]


@pytest.mark.parametrize(
    ("name", "sde_name"),
    [pytest.param(*c, marks=pytest.mark.slow) if c[0] == "torchsde" else c for c in SDE_CASES],
)
def test_sde_sampler_strong_order_on_a_shared_brownian_path(name: str, sde_name: str) -> None:
    spec = SAMPLERS[name]
    x_T, path, x_ref = sde_reference(sde_name, name == "torchsde")
    errors = [
        float((_sde_run(name, sde_name, n, x_T, path) - x_ref).abs().mean()) for n in SDE_STEPS
    ]
    slope = fitted_slope(SDE_STEPS, errors)
    assert abs(slope - spec.order) < 0.3, (errors, slope)


@pytest.mark.parametrize("sde_name", sorted(SDES))
def test_dpm_solver_pp_2m_is_second_order_on_grids_with_abrupt_step_ratios(sde_name: str) -> None:
    """Multistep solvers' weak spot: h_{i-1} / h_i alternates 1/4 and 4; order 2 must survive."""
    sde = SDES[sde_name]
    x_T, x_ref = ode_reference(sde_name)
    pairs = (12, 24, 48)
    errors = [
        float((sample("dpm_solver_pp_2m", sde, mixture(sde), x_T,
                      alternating_log_snr_grid(sde, k))[0] - x_ref).abs().mean())
        for k in pairs
    ]  # fmt: skip
    slope = fitted_slope(pairs, errors)
    assert abs(slope - 2.0) < 0.3 and max(errors) < 0.05, (errors, slope)


@pytest.mark.parametrize("sde_name", sorted(SDES))
def test_dpm_solver_pp_2m_multistep_step_has_local_order_3_after_an_abrupt_ratio_change(
    sde_name: str,
) -> None:
    """Globally, inverting 2M's step ratio r = h_{i-1} / h_i stays second order on every grid
    (the O(h^2) local errors (h_{i-1}^2 - h_i^2) x0' / 2 telescope), so the global test above
    cannot see it. The local error can: from exact p_t draws, a tiny first step (h_0 = 0.02 h,
    local error O(h_0^2)) then one multistep step of size h must be O(h^3) against scipy."""
    sde = SDES[sde_name]
    gm, t_a, hs = mixture(sde), 0.5, (0.4, 0.2, 0.1)
    lam_a = float(0.5 * sde.log_snr(torch.tensor(t_a, dtype=torch.float64)))
    x_a = gm.marginal_mixture(t_a).sample(200, torch.Generator().manual_seed(0))
    errors = []
    for h in hs:
        lams = torch.tensor([lam_a, lam_a + 0.02 * h, lam_a + 1.02 * h], dtype=torch.float64)
        grid = sde.t_from_log_snr(2 * lams)  # the grid is in t; lambda = log_snr / 2
        grid[0] = t_a
        x, _ = sample("dpm_solver_pp_2m", sde, gm, x_a, grid)
        ref = pf_ode_scipy(sde, gm, x_a, float(grid[0]), float(grid[-1]))
        errors.append(float((x - ref).abs().mean()))
    slope = -fitted_slope(hs, errors)  # fitted_slope is in 1 / h
    assert abs(slope - 3.0) < 0.4, (errors, slope)
