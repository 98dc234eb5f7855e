"""Every bad input raises a clear error (type and message checked)."""

from __future__ import annotations

import math

import pytest
import torch

from scoresde.samplers import (
    InpaintHook,
    grid_for_nfe,
    make_grid,
    sample,
    sample_ddim,
    sample_dpm_solver,
    sample_euler_maruyama,
    sample_pc,
    sample_pf_adaptive,
    sample_torchsde,
)

from .test_samplers_common import make_sdes, mixture, prior

SDES = make_sdes()
VP = SDES["vp"]
GM = mixture(VP)
X = prior(VP, 8)


def _em(**kw):
    args = {"sde": VP, "score_fn": GM, "x_T": X, "grid": make_grid(VP, 30)}
    args.update(kw)
    return sample_euler_maruyama(
        args.pop("sde"), args.pop("score_fn"), args.pop("x_T"), args.pop("grid"), **args
    )


@pytest.mark.parametrize(
    ("grid", "match"),
    [
        (torch.linspace(VP.eps, 1.0, 10, dtype=torch.float64), "strictly decreasing"),
        (torch.tensor([1.0, 0.5, 0.5, 0.1], dtype=torch.float64), "strictly decreasing"),
        (torch.linspace(1.5, VP.eps, 10, dtype=torch.float64), r"\[eps, T\]"),
        (torch.linspace(1.0, 0.0, 10, dtype=torch.float64), r"\[eps, T\]"),
        (torch.ones(2, 3, dtype=torch.float64), "1-D"),
        (torch.tensor([1.0], dtype=torch.float64), "at least 2"),
        (torch.tensor([1, 0]), "floating"),
        (torch.tensor([1.0, math.nan, 0.1], dtype=torch.float64), "finite"),
    ],
)
def test_bad_grids_raise(grid: torch.Tensor, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _em(grid=grid)


def test_grid_must_be_a_tensor() -> None:
    with pytest.raises(TypeError, match="torch.Tensor"):
        _em(grid=[1.0, 0.5])


def test_bad_states_raise() -> None:
    with pytest.raises(TypeError, match="floating-point"):
        _em(x_T=torch.zeros(4, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="finite"):
        _em(x_T=torch.full((4, 2), math.nan, dtype=torch.float64))
    with pytest.raises(ValueError, match="batch"):
        _em(x_T=torch.zeros((), dtype=torch.float64))


def test_score_shape_mismatch_raises() -> None:
    with pytest.raises(ValueError, match=r"shaped like x \(8, 2\), received \(8, 3\)"):
        _em(score_fn=lambda x, t: torch.zeros(x.shape[0], 3, dtype=x.dtype))
    with pytest.raises(TypeError, match="callable score_fn"):
        _em(score_fn=3)


def test_non_finite_score_names_step_and_time() -> None:
    grid = make_grid(VP, 10)

    def bad(x, t):  # Inf from step 4 on (t = grid[4] = 0.6004)
        return GM(x, t) * torch.where(t[:, None] > float(grid[4]) + 1e-12, 1.0, math.inf)

    with pytest.raises(ValueError, match=r"NaN/Inf at step 4 \(t=0\.6"):
        _em(score_fn=bad, grid=grid)


def test_unknown_names_list_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="unknown sampler 'nope'; expected one of .*'ddim'"):
        sample("nope", VP, GM, X, 10)
    with pytest.raises(ValueError, match="unknown grid kind"):
        make_grid(VP, 10, "cubic")
    with pytest.raises(ValueError, match="unknown predictor"):
        sample_pc(VP, GM, X, make_grid(VP, 30), predictor="heun")
    with pytest.raises(ValueError, match="unknown corrector"):
        sample_pc(VP, GM, X, make_grid(VP, 30), corrector="mala")
    with pytest.raises(ValueError, match="unknown method"):
        sample_torchsde(VP, GM, X, make_grid(VP, 30), method="rk45")


def test_unknown_option_raises_type_error() -> None:
    with pytest.raises(TypeError, match="unexpected options 'colour'"):
        _em(colour="red")


@pytest.mark.parametrize(
    ("name", "sde_name", "kw", "match"),
    [
        ("ddpm", "ve", {}, "does not support VESDE"),
        ("ddpm", "subvp", {}, "does not support SubVPSDE"),
        ("smld", "vp", {}, "does not support VPSDE"),
        ("annealed_langevin", "vp", {}, "does not support VPSDE"),
        ("pc", "subvp", {"predictor": "ancestral"}, "does not support SubVPSDE"),
    ],
)
def test_unsupported_sampler_sde_combinations(name, sde_name, kw, match) -> None:
    sde = SDES[sde_name]
    with pytest.raises(ValueError, match=match):
        sample(name, sde, mixture(sde), prior(sde, 4), make_grid(sde, 30), **kw)


def test_bad_options_raise() -> None:
    grid = make_grid(VP, 10)
    with pytest.raises(ValueError, match="eta in"):
        sample_ddim(VP, GM, X, grid, eta=2.0)
    with pytest.raises(ValueError, match="order 1, 2 or 3"):
        sample_dpm_solver(VP, GM, X, grid, order=4)
    with pytest.raises(ValueError, match="snr > 0"):
        sample_pc(VP, GM, X, make_grid(VP, 30), snr=-1.0)
    with pytest.raises(ValueError, match="n_steps"):
        sample_pc(VP, GM, X, make_grid(VP, 30), n_steps=1.5)
    with pytest.raises(ValueError, match="at most one source of noise"):
        _em(generator=torch.Generator(), seeds=list(range(8)))
    with pytest.raises(ValueError, match="8 integer seeds"):
        _em(seeds=[1, 2])
    with pytest.raises(ValueError, match="hooks need a fixed grid"):
        sample_pf_adaptive(VP, GM, X, grid, hook=lambda x, t, i, r: x)
    with pytest.raises(ValueError, match="rtol > 0"):
        sample_pf_adaptive(VP, GM, X, grid, rtol=0.0)
    with pytest.raises(ValueError, match="adaptive solver"):
        grid_for_nfe(VP, "pf_adaptive", 20)
    with pytest.raises(ValueError, match="integer nfe"):
        grid_for_nfe(VP, "ddim", 0)
    with pytest.raises(ValueError, match="steps >= 1"):
        make_grid(VP, 0)


def test_inpaint_hook_validation() -> None:
    with pytest.raises(TypeError, match="boolean mask"):
        InpaintHook(VP, X, torch.ones(8, 2))
    with pytest.raises(ValueError, match="does not broadcast"):
        InpaintHook(VP, X, torch.ones(3, 3, dtype=torch.bool))


def test_a_score_function_carrying_another_sde_is_refused() -> None:
    """DESIGN contract 11: a mixture built for VP, sampled with VE, is an error, not a wrong answer."""
    from scoresde import VESDE, VPSDE, GaussianMixture, sample

    gm = GaussianMixture([1.0], [[0.0, 0.0]], [[1.0, 1.0]], sde=VPSDE())
    x_T = torch.zeros(4, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"ddim: score_fn carries the SDE VPSDE.*used with VESDE"):
        sample("ddim", VESDE(), gm, x_T, 10)
    x, info = sample("ddim", VPSDE(), gm, x_T, 10)  # an equal SDE (same config) is accepted
    assert info.nfe == 10 and bool(torch.isfinite(x).all())
