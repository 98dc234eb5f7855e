"""Shared problems for the sampler tests, and the tests of the time grids.

The target is a 2-component Gaussian mixture with non-zero mean and non-unit variances, so that
neither the x0-prediction nor the score is linear in x (the orders are then not trivially exact).
"""

from __future__ import annotations

import pytest
import torch

from scoresde import VESDE, VPSDE, GaussianMixture, SubVPSDE
from scoresde.samplers import GRIDS, grid_for_nfe, make_grid
from scoresde.sde import LinearSDE

WEIGHTS = [0.3, 0.7]
MEANS = [[-1.0, 0.5], [1.5, -0.5]]
VARS = [[0.2, 0.1], [0.3, 0.4]]


def make_sdes(eps: float = 1e-3) -> dict[str, LinearSDE]:
    """VP, sub-VP and VE (sigma_max = 10 covers the mixture) on [eps, 1]."""
    return {"vp": VPSDE(eps=eps), "subvp": SubVPSDE(eps=eps), "ve": VESDE(sigma_max=10.0, eps=eps)}


def mixture(sde: LinearSDE, dim: int = 2) -> GaussianMixture:
    """The 2-component test mixture in ``dim`` dimensions (the 2-D one repeated), bound to sde."""
    reps = dim // 2
    means = torch.tensor(MEANS, dtype=torch.float64).repeat(1, reps)
    var = torch.tensor(VARS, dtype=torch.float64).repeat(1, reps)
    return GaussianMixture(WEIGHTS, means, var, sde=sde)


def prior(sde: LinearSDE, n: int, dim: int = 2, seed: int = 0) -> torch.Tensor:
    """x_T ~ p_T in float64, from a seeded generator."""
    return sde.prior_sample((n, dim), torch.Generator().manual_seed(seed), dtype=torch.float64)


def sliced_w2(x: torch.Tensor, y: torch.Tensor, n_proj: int = 256, seed: int = 0) -> float:
    """Sliced Wasserstein-2 between equal-size samples (sorted 1-D projections)."""
    g = torch.Generator().manual_seed(seed)
    d = x.reshape(x.shape[0], -1).shape[1]
    theta = torch.randn(d, n_proj, generator=g, dtype=torch.float64)
    theta = theta / theta.norm(dim=0, keepdim=True)
    px = torch.sort(x.reshape(x.shape[0], -1).double() @ theta, dim=0).values
    py = torch.sort(y.reshape(y.shape[0], -1).double() @ theta, dim=0).values
    return float(((px - py) ** 2).mean().sqrt())


# -- tests of the grids ----------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(GRIDS))
@pytest.mark.parametrize("sde_name", ["vp", "subvp", "ve"])
def test_grid_is_strictly_decreasing_from_T_to_eps(kind: str, sde_name: str) -> None:
    sde = make_sdes()[sde_name]
    g = make_grid(sde, 17, kind)
    assert g.shape == (18,) and g.dtype == torch.float64
    assert float(g[0]) == sde.T and float(g[-1]) == sde.eps
    assert bool((g[1:] < g[:-1]).all())


def test_log_snr_grid_is_uniform_in_log_snr() -> None:
    for sde in make_sdes().values():
        lam = sde.log_snr(make_grid(sde, 10, "log_snr"))
        steps = lam[1:] - lam[:-1]
        torch.testing.assert_close(steps, steps.mean().expand(10), rtol=1e-8, atol=1e-8)


def test_karras_grid_is_uniform_in_sigma_to_the_one_over_rho() -> None:
    sde = make_sdes()["ve"]
    sig = torch.exp(-0.5 * sde.log_snr(make_grid(sde, 12, "karras")))
    u = sig ** (1 / 7)
    torch.testing.assert_close(u[1:] - u[:-1], (u[1] - u[0]).expand(12), rtol=1e-7, atol=1e-9)


def test_quadratic_grid_is_denser_near_the_data() -> None:
    g = make_grid(make_sdes()["vp"], 10, "quadratic")
    dt = g[:-1] - g[1:]
    assert bool((dt[1:] < dt[:-1]).all())


@pytest.mark.parametrize(
    ("name", "nfe", "steps", "opts"),
    [
        ("euler_maruyama", 11, 10, {}),  # the final Tweedie step counts 1
        ("pf_heun", 21, 10, {}),
        ("pf_rk4", 21, 5, {}),
        ("dpm_solver_3", 22, 7, {"lower_order_final": False}),
        ("dpm_solver_3", 22, 8, {"lower_order_final": True}),  # six order-3 steps, then 2 and 1
        ("pc", 41, 10, {"n_steps": 2}),  # Metropolis-adjusted: 1 + 2 + 1 per step
        ("pc", 31, 10, {"n_steps": 2, "corrector": "langevin_ula"}),
        ("ddim", 10, 10, {"denoise": False}),
    ],
)
def test_grid_for_nfe_spends_exactly_the_target(
    name: str, nfe: int, steps: int, opts: dict
) -> None:
    g = grid_for_nfe(make_sdes()["vp"], name, nfe, **opts)
    assert g.numel() == steps + 1


def test_grid_for_nfe_rounds_down_on_request() -> None:
    sde = make_sdes()["vp"]
    assert grid_for_nfe(sde, "pf_rk4", 10, exact=False).numel() == 3
    with pytest.raises(ValueError, match="not reachable"):
        grid_for_nfe(sde, "pf_rk4", 10)
