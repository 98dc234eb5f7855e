"""Few-step sampling (issues 9 and 21): order plans, lower-order final steps, budgets.

* The plans spend exactly their budget, with the shapes Lu et al. (2022, Sec. 3.4) give.
* ``lower_order_final`` is, step for step, the solver on the grid without its last point
  followed by one DDIM step (the first-order step of every exponential integrator).
* ``sample(name, ..., nfe)`` never raises at its defaults, spends at most ``nfe``, ends at the
  SDE's eps with the Tweedie step, and its defaults are overridable.
* Reverse diffusion on a VP grid too coarse for score_sde's chain runs the grid's exact chain.

Convergence at the defaults on the problem family: ``tests/test_samplers_family.py``.
"""

from __future__ import annotations

import pytest
import torch

from scoresde import VPSDE
from scoresde.samplers import (
    SAMPLERS,
    budget_orders,
    expected_nfe,
    fast_orders,
    make_grid,
    multistep_order,
    plan_for_nfe,
    sample,
)

from .test_samplers_common import make_sdes, mixture, prior

SDES = make_sdes()


@pytest.mark.parametrize("nfe", range(1, 31))
def test_fast_plan_spends_the_budget_in_floor_n3_plus_1_steps(nfe: int) -> None:
    orders = fast_orders(nfe)
    assert sum(orders) == nfe and set(orders) <= {1, 2, 3}
    if nfe >= 3:
        assert len(orders) == nfe // 3 + 1
        tail = {0: [2, 1], 1: [3, 1], 2: [3, 2]}[nfe % 3]
        assert orders[-2:] == tail and set(orders[:-2]) <= {3}


@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("nfe", [1, 4, 5, 9, 10, 11, 20])
@pytest.mark.parametrize("lof", [False, True])
def test_budget_plan_spends_the_budget(order: int, nfe: int, lof: bool) -> None:
    orders = budget_orders(order, nfe, lof)
    assert sum(orders) == nfe and max(orders) <= order
    assert orders[:-2] == [order] * len(orders[:-2])
    if lof:
        assert orders[-1] == 1


def test_multistep_order_warms_up_and_lowers_the_final_steps() -> None:
    assert [multistep_order(i, 5, 3, False) for i in range(5)] == [1, 2, 3, 3, 3]
    assert [multistep_order(i, 5, 3, True) for i in range(5)] == [1, 2, 3, 2, 1]
    assert [multistep_order(i, 4, 2, True) for i in range(4)] == [1, 2, 2, 1]


def test_plans_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="expected an integer nfe >= 1, received 0"):
        fast_orders(0)
    with pytest.raises(ValueError, match="expected order 1, 2 or 3, received 4"):
        budget_orders(4, 10)
    grid = make_grid(SDES["vp"], 3, "log_snr")
    gm, x = mixture(SDES["vp"]), prior(SDES["vp"], 4)
    with pytest.raises(ValueError, match=r"one order per grid step \(3\), received 2"):
        sample("dpm_solver_fast", SDES["vp"], gm, x, grid, orders=[3, 3])
    with pytest.raises(TypeError, match="expected orders as a sequence of ints"):
        sample("dpm_solver_fast", SDES["vp"], gm, x, grid, orders="332")


def _ddim_step(sde, gm, x, grid):
    return sample("ddim", sde, gm, x, grid[-2:])[0]


@pytest.mark.parametrize("sde_name", sorted(SDES))
@pytest.mark.parametrize("name", ["dpm_solver_2", "dpm_solver_3", "dpm_solver_pp_2m"])
def test_lower_order_final_is_the_solver_then_one_ddim_step(name: str, sde_name: str) -> None:
    sde = SDES[sde_name]
    gm, x_T, grid = mixture(sde), prior(sde, 16), make_grid(sde, 6, "log_snr")
    x_lof, info = sample(name, sde, gm, x_T, grid, lower_order_final=True)
    x_head, _ = sample(name, sde, gm, x_T, grid[:-1], lower_order_final=False)
    torch.testing.assert_close(x_lof, _ddim_step(sde, gm, x_head, grid), rtol=1e-12, atol=1e-12)
    assert info.nfe == expected_nfe(name, 6, lower_order_final=True)
    x_full, _ = sample(name, sde, gm, x_T, grid, lower_order_final=False)
    assert float((x_full - x_lof).abs().max()) > 1e-6  # the switch does something


def test_explicit_orders_reproduce_the_fixed_order_solvers() -> None:
    sde = SDES["vp"]
    gm, x_T, grid = mixture(sde), prior(sde, 16), make_grid(sde, 5, "log_snr")
    refs = {1: sample("ddim", sde, gm, x_T, grid)[0]}
    refs[3] = sample("dpm_solver_3", sde, gm, x_T, grid, lower_order_final=False)[0]
    for k, x_ref in refs.items():
        x, info = sample("dpm_solver_fast", sde, gm, x_T, grid, orders=[k] * 5)
        torch.testing.assert_close(x, x_ref, rtol=1e-12, atol=1e-12)
        assert info.nfe == 5 * k


@pytest.mark.parametrize("name", [n for n, s in sorted(SAMPLERS.items()) if not s.adaptive])
@pytest.mark.parametrize("nfe", [5, 10, 20])
def test_a_budget_is_spent_exactly_or_rounded_down(name: str, nfe: int) -> None:
    """At its defaults a sampler never raises (the DDPM-chain samplers on VP included), spends
    at most the budget, ends at the SDE's eps and finishes with the Tweedie step."""
    spec = SAMPLERS[name]
    for sde in (s for s in SDES.values() if spec.supports(s)):
        x, info = sample(name, sde, mixture(sde), prior(sde, 8), nfe)
        assert info.nfe <= nfe and bool(torch.isfinite(x).all())
        if spec.plan is not None or spec.steps_nfe({}) == 1:
            assert info.nfe == nfe
        grid, opts = plan_for_nfe(sde, name, nfe, exact=False)
        assert float(grid[-1]) == sde.eps and opts["denoise"] is True
        assert info.settings["denoise"] is True and info.settings["t_end"] == sde.eps


def test_budget_defaults_are_overridable() -> None:
    sde = VPSDE()
    grid, opts = plan_for_nfe(sde, "ddim", 10, "karras", t_end=2e-3, denoise=False)
    assert grid.numel() == 11 and float(grid[-1]) == 2e-3 and opts["denoise"] is False
    torch.testing.assert_close(grid, make_grid(sde, 10, "karras", t_end=2e-3))
    with pytest.raises(ValueError, match=r"expected t_end in \[eps, T\)"):
        make_grid(sde, 4, t_end=1.5)
    with pytest.raises(TypeError, match="expected t_end as a float, received str"):
        make_grid(sde, 4, t_end="0.01")
    with pytest.raises(ValueError, match="NFE 10 is not reachable"):
        plan_for_nfe(sde, "pf_rk4", 10, denoise=False)


def test_reverse_diffusion_on_a_coarse_vp_grid_is_the_grids_exact_chain() -> None:
    """Where score_sde's chain beta(t) dt >= 1 is undefined (5 uniform steps on VP), the
    reverse-diffusion predictor runs the grid's exact chain: DDPM with variance beta."""
    sde = SDES["vp"]
    grid, gm, x_T = make_grid(sde, 5), mixture(sde), prior(sde, 16)
    rd, _ = sample(
        "reverse_diffusion", sde, gm, x_T, grid, generator=torch.Generator().manual_seed(0)
    )
    dd, _ = sample(
        "ddpm", sde, gm, x_T, grid, generator=torch.Generator().manual_seed(0), variance="beta"
    )
    torch.testing.assert_close(rd, dd, rtol=0, atol=0)
