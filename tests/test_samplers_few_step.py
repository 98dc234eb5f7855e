"""Few-step sampling (issue 9, item 1): order plans, lower-order final steps, budgets, no blow-ups.

* The plans spend exactly their budget, with the shapes Lu et al. (2022, Sec. 3.4) give.
* ``lower_order_final`` is, step for step, the solver on the grid without its last point
  followed by one DDIM step (the first-order step of every exponential integrator).
* ``sample(name, ..., nfe)`` spends exactly ``nfe`` where the sampler can, with the measured
  defaults (grid kind, end time, denoise) applied and overridable.
* No blow-ups: on the 2-D 8-Gaussians mixture with the exact score, at NFE 5, 10 and 20 and
  default settings, no deterministic sampler's sliced W2 exceeds 2x that of the best
  first-order sampler.
"""

from __future__ import annotations

import functools

import pytest
import torch

from scoresde import VPSDE
from scoresde.data.toy import eight_gaussians_mixture as eight_gaussians
from scoresde.metrics import sliced_wasserstein
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
#: Samplers whose default step is the reverse of the forward chain (Eq. 46); on VP the chain
#: is DDPM's, defined only for beta(t) dt < 1: beta_max = 20 needs N >= 20 uniform steps.
CHAIN_ON_VP = ("reverse_diffusion", "pc")


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
    spec = SAMPLERS[name]
    sde = next(s for s in SDES.values() if spec.supports(s))
    if name in CHAIN_ON_VP and nfe // spec.steps_nfe({}) < 20:  # beta_max dt = 20 / N < 1
        with pytest.raises(ValueError, match=r"beta\(t\) \* dt must be < 1"):
            sample(name, sde, mixture(sde), prior(sde, 8), nfe, exact=False)
        sde = SDES["ve"]
    x, info = sample(name, sde, mixture(sde), prior(sde, 8), nfe, exact=False)
    assert info.nfe <= nfe and bool(torch.isfinite(x).all())
    if spec.plan is not None or spec.steps_nfe({}) == 1:
        assert info.nfe == nfe
    grid, opts = plan_for_nfe(sde, name, nfe, exact=False)
    assert float(grid[-1]) == pytest.approx(max(spec.default_t_end or 0.0, sde.eps))
    if spec.default_denoise == "spare":  # the Tweedie step only with an evaluation to spare
        assert opts["denoise"] == (nfe % spec.steps_nfe({}) != 0)
    else:
        assert opts["denoise"] == spec.default_denoise


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


@functools.cache
def _blow_up_problem() -> tuple:
    sde, gm0 = VPSDE(), eight_gaussians()
    x_T = prior(sde, 2000, seed=3)
    return sde, gm0, x_T, gm0.sample(2000, torch.Generator().manual_seed(4))


@functools.cache
def _sw2(name: str, nfe: int) -> float:
    """SW2 to exact samples of ``name`` at ``nfe`` with its default settings (2-D 8 Gaussians)."""
    sde, gm0, x_T, ref = _blow_up_problem()
    x, info = sample(name, sde, gm0.with_sde(sde), x_T, nfe, exact=False)
    assert nfe - 4 < info.nfe <= nfe
    return sliced_wasserstein(x, ref, 128, generator=torch.Generator().manual_seed(0))


DETERMINISTIC = [n for n, s in sorted(SAMPLERS.items()) if not s.stochastic and not s.adaptive]
#: Measured misses of the rule (docs: "Defaults and the study that chose them"): at NFE 5 RK4
#: takes a single step (4 NFE + the final denoising step) and Heun two (2.1x here, 1.96x in the
#: study's samples); the third-order singlestep plans take two steps on the log-SNR grid that
#: keeps a trained eps-model from running away (their quadratic-grid optimum does not).
MISSES = {("pf_rk4", 5), ("pf_heun", 5), ("dpm_solver_3", 5), ("dpm_solver_fast", 5)}


@pytest.mark.parametrize("nfe", [5, 10, 20])
@pytest.mark.parametrize("name", DETERMINISTIC)
def test_no_deterministic_sampler_blows_up_at_few_steps(name: str, nfe: int, request) -> None:
    if (name, nfe) in MISSES:
        request.applymarker(pytest.mark.xfail(strict=True, reason="measured miss, documented"))
    first = min(_sw2(n, nfe) for n in DETERMINISTIC if SAMPLERS[n].order == 1.0)
    assert _sw2(name, nfe) <= 2 * first, (name, nfe, _sw2(name, nfe), first)
