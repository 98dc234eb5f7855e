"""Convergence orders of the modern fast solvers against an independent reference.

The reference is scipy's ``solve_ivp(method="DOP853", rtol=1e-12)`` on the probability-flow ODE
dx/dt = a(t) x - 1/2 g(t)^2 grad log p_t(x) of the 2-D test mixture with its exact score (none of
the sampler code is involved). Errors are the mean |x_N - x_ref| over 40 starting points, in
float64; slopes are fitted over step counts in the asymptotic range, on a log-SNR-uniform grid
and on EDM's (non-uniform in log-SNR) Karras grid, for VP, sub-VP and VE.

Multistep solvers whose first step is first order (DPM-Solver++(3M), DEIS, iPNDM) carry an
O(h^2) error from that step, whose constant is the variation of x0_theta (or eps_theta) over the
first step: negligible where the prior is far noisier than the data (VP, sub-VP, VE with
sigma_max = 50 here), dominant at fine grids on a VE SDE with sigma_max = 10, where the last test
shows the slope falling to 2 (and UniPC's corrector, which reuses the next evaluation, keeping
its order).
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from scoresde import VESDE, VPSDE, SubVPSDE
from scoresde.samplers import make_grid, sample_dpm_solver_pp, sample_edm, sample_unipc
from scoresde.samplers.deis import sample_deis, sample_ipndm

from .test_samplers_common import mixture, prior

SDES = {"vp": VPSDE(eps=1e-3), "subvp": SubVPSDE(eps=1e-3), "ve": VESDE(sigma_max=50.0, eps=1e-3)}

#: name -> (sampler, options, declared order, step counts of the fit).
CASES = {
    "dpm_solver_pp_3m": (sample_dpm_solver_pp, {"order": 3}, 3.0, (32, 64, 128)),
    "unipc_p1_bh1": (sample_unipc, {"order": 1, "variant": "bh1"}, 2.0, (32, 64, 128)),
    "unipc_p2_bh1": (sample_unipc, {"order": 2, "variant": "bh1"}, 3.0, (32, 64, 128)),
    "unipc_p2_bh2": (sample_unipc, {"order": 2, "variant": "bh2"}, 3.0, (32, 64, 128)),
    "unipc_p3_bh2": (sample_unipc, {"order": 3, "variant": "bh2"}, 4.0, (48, 96, 192)),
    "unip_p2_no_corrector": (sample_unipc, {"order": 2, "corrector": False}, 2.0, (32, 64, 128)),
    "deis_2": (sample_deis, {"order": 2}, 2.0, (64, 128, 256)),
    "deis_3": (sample_deis, {"order": 3}, 3.0, (64, 128, 256)),
    "ipndm": (sample_ipndm, {}, 4.0, (96, 192, 384)),
    "edm_heun": (sample_edm, {}, 2.0, (32, 64, 128)),
}


def fitted_slope(steps: tuple[int, ...], errors: list[float]) -> float:
    """-d log(error) / d log(N), the order in the step h ~ 1 / N."""
    return float(-np.polyfit(np.log(steps), np.log(errors), 1)[0])


def dop853_reference(sde, gm, x_T: torch.Tensor) -> torch.Tensor:
    """x_eps from x_T by DOP853 (rtol = atol = 1e-12) on the PF-ODE with the exact score."""
    shape = x_T.shape

    def field(t: float, y: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(y).reshape(shape)
        tt = torch.tensor(t, dtype=torch.float64)
        drift = sde.drift_coef(tt) * x - 0.5 * sde.g2(tt) * gm.score(x, tt.expand(shape[0]))
        return drift.reshape(-1).numpy()

    sol = solve_ivp(field, (sde.T, sde.eps), x_T.reshape(-1).numpy(), method="DOP853",
                    rtol=1e-12, atol=1e-12)  # fmt: skip
    assert sol.success, sol.message
    return torch.from_numpy(sol.y[:, -1]).reshape(shape)


@functools.cache
def reference(sde_name: str) -> tuple[torch.Tensor, torch.Tensor]:
    sde = SDES[sde_name]
    x_T = prior(sde, 40, seed=3)
    return x_T, dop853_reference(sde, mixture(sde), x_T)


def errors_of(case: str, sde_name: str, kind: str, steps: tuple[int, ...]) -> list[float]:
    fn, opts, _, _ = CASES[case]
    sde = SDES[sde_name]
    x_T, x_ref = reference(sde_name)
    return [
        float((fn(sde, mixture(sde), x_T, make_grid(sde, n, kind), **opts)[0] - x_ref).abs().mean())
        for n in steps
    ]


#: Fast cases: every solver on the log-SNR grid, two on the Karras grid; the rest is marked slow.
FAST = {("edm_heun", "karras"), ("unipc_p2_bh2", "karras"), ("dpm_solver_pp_3m", "karras")}
SLOW_CASES = {"deis_2", "deis_3", "ipndm", "unipc_p3_bh2"}
PARAMS = [
    pytest.param(c, s, k, marks=[] if (k == "log_snr" and c not in SLOW_CASES) or (c, k) in FAST
                 else [pytest.mark.slow])
    for c in sorted(CASES) for s in sorted(SDES) for k in ("log_snr", "karras")
]  # fmt: skip


@pytest.mark.parametrize(("case", "sde_name", "kind"), PARAMS)
def test_declared_order_against_dop853(case: str, sde_name: str, kind: str) -> None:
    _, _, order, steps = CASES[case]
    errs = errors_of(case, sde_name, kind, steps)
    assert max(errs) < 0.05 and min(errs) > 1e-12, errs
    slope = fitted_slope(steps, errs)
    assert abs(slope - order) < 0.35, (errs, slope)


@pytest.mark.slow
def test_warm_up_floor_on_a_short_ve_sde_and_unipc_stays_above_it() -> None:
    """sigma_max = 10 is only ~7x the data scale: the order-1 first step dominates at fine
    grids and DPM-Solver++(3M) tends to order 2, while UniPC-3 (whose corrector reuses the next
    evaluation) stays far above it (slope > 3.2 here, 4 asymptotically on the other SDEs)."""
    sde = VESDE(sigma_max=10.0, eps=1e-3)
    gm, x_T = mixture(sde), prior(sde, 20, seed=4)
    x_ref = dop853_reference(sde, gm, x_T)
    steps = (128, 256, 512)

    def errs(fn, **kw) -> list[float]:
        return [float((fn(sde, gm, x_T, make_grid(sde, n, "log_snr"), **kw)[0] - x_ref)
                      .abs().mean()) for n in steps]  # fmt: skip

    assert abs(fitted_slope(steps, errs(sample_dpm_solver_pp, order=3)) - 2.0) < 0.35
    assert fitted_slope((48, 96, 192), [
        float((sample_unipc(sde, gm, x_T, make_grid(sde, n, "log_snr"), order=3)[0] - x_ref)
              .abs().mean()) for n in (48, 96, 192)]) > 3.2  # fmt: skip


#: Fast DEIS / iPNDM orders: (sampler, options, declared order, step counts).
GAUSSIAN_CASES = {
    "deis_2": (sample_deis, {"order": 2}, 2.0, (64, 128, 256)),
    "deis_3": (sample_deis, {"order": 3}, 3.0, (64, 128, 256)),
    "ipndm": (sample_ipndm, {}, 4.0, (96, 192, 384)),
}


@pytest.mark.parametrize("case", sorted(GAUSSIAN_CASES))
def test_deis_and_ipndm_orders_on_a_one_dimensional_gaussian(case: str) -> None:
    """The fast order check of the eps-polynomial solvers (the mixture cases above are slow):
    1-D data N(mu, c) on VP, where the PF-ODE map is exact, x_eps = alpha_eps mu +
    sqrt(alpha_eps^2 c + sigma_eps^2) (x_T - alpha_T mu) / sqrt(alpha_T^2 c + sigma_T^2)
    (the standardised state is constant along the flow). A solver that confuses half log-SNR
    log(alpha / sigma) with log-SNR loses its order (or diverges)."""
    fn, opts, order, steps = GAUSSIAN_CASES[case]
    sde, mu, c = SDES["vp"], 0.7, 0.05

    def score(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a, s = (v[:, None] for v in sde.marginal(t))
        return -(x - a * mu) / (a**2 * c + s**2)

    x_T = torch.linspace(-2.0, 2.0, 9, dtype=torch.float64)[:, None]
    (a_T, a_e), (s_T, s_e) = sde.marginal(torch.tensor([sde.T, sde.eps], dtype=torch.float64))
    x_ref = a_e * mu + torch.sqrt(a_e**2 * c + s_e**2) * (x_T - a_T * mu) / torch.sqrt(
        a_T**2 * c + s_T**2
    )
    errs = [
        float((fn(sde, score, x_T, make_grid(sde, n, "log_snr"), **opts)[0] - x_ref).abs().max())
        for n in steps
    ]
    assert max(errs) < 0.01, errs
    slope = fitted_slope(steps, errs)
    assert order - 0.35 < slope < order + 1.0, (errs, slope)
