"""Optimized time grids: the monotone parameterization, the optimizer's gain on held-out starting
points, and the JSON grid file (round trip and validation)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from scoresde import VESDE, VPSDE, GaussianMixture
from scoresde.samplers import GRIDS, grid_for_nfe, make_grid, sample
from scoresde.samplers.grid_file import load_grid
from scoresde.samplers.grid_opt import (
    grid_from_params,
    grid_objective,
    optimize_grid,
    params_from_grid,
)


def ring() -> GaussianMixture:
    ang = torch.arange(6, dtype=torch.float64) * 2 * math.pi / 6
    means = 2.0 * torch.stack([torch.cos(ang), torch.sin(ang)], 1)
    return GaussianMixture(torch.full((6,), 1 / 6), means, torch.full((6, 2), 0.05))


@pytest.mark.parametrize("sde", [VPSDE(), VESDE()], ids=["vp", "ve"])
@pytest.mark.parametrize("kind", sorted(GRIDS))
def test_parameterization_round_trips_every_grid_kind(sde, kind: str) -> None:
    g = make_grid(sde, 7, kind)
    theta = params_from_grid(sde, g)
    assert float(theta[0]) == 0.0
    torch.testing.assert_close(grid_from_params(sde, theta), g, rtol=1e-9, atol=1e-12)


def test_any_parameters_give_a_valid_grid() -> None:
    sde = VPSDE()
    for seed in range(5):
        theta = 3 * torch.randn(
            9, generator=torch.Generator().manual_seed(seed), dtype=torch.float64
        )
        g = grid_from_params(sde, theta)
        assert g[0] == sde.T and g[-1] == sde.eps and bool((g[1:] < g[:-1]).all())


@pytest.fixture(scope="module")
def optimized():
    sde = VPSDE()
    gm = ring().with_sde(sde)
    cal = sde.prior_sample((128, 2), torch.Generator().manual_seed(0)).double()
    og = optimize_grid(sde, gm, "dpm_solver_pp_2m", 6, cal, max_evals=80, teacher_nfe=200)
    return sde, gm, og


def test_optimized_grid_beats_the_best_fixed_grid_on_held_out_points(optimized) -> None:
    sde, gm, og = optimized
    held = sde.prior_sample((512, 2), torch.Generator().manual_seed(1)).double()
    fine = grid_for_nfe(sde, "dpm_solver_pp_2m", 200, "log_snr")
    teacher, _ = sample("dpm_solver_pp_2m", sde, gm, held, fine)
    fixed = {k: grid_objective(sde, gm, "dpm_solver_pp_2m", grid_for_nfe(sde, "dpm_solver_pp_2m", 6, k), held, teacher)
             for k in GRIDS}  # fmt: skip
    opt = grid_objective(sde, gm, "dpm_solver_pp_2m", og.times, held, teacher)
    assert og.info["final"] < og.info["start"][og.info["start_kind"]]
    assert opt < 0.8 * min(fixed.values()), (opt, fixed)
    x, info = og.sample(sde, gm, held)
    assert info.nfe == og.nfe == 6 and x.shape == held.shape


def test_optimization_is_seeded_and_bounded() -> None:
    sde = VPSDE()
    gm = ring().with_sde(sde)
    cal = sde.prior_sample((32, 2), torch.Generator().manual_seed(0)).double()
    calls = []

    def counted(x, t):
        calls.append(1)
        return gm(x, t)

    a = optimize_grid(sde, counted, "ddim", 4, cal, max_evals=15, teacher_nfe=40, seed=3)
    b = optimize_grid(sde, gm, "ddim", 4, cal, max_evals=15, teacher_nfe=40, seed=3)
    torch.testing.assert_close(a.times, b.times, rtol=0, atol=0)
    # teacher (40) + every grid kind (4 x 4) + at most max_evals + 1 evaluations of 4 NFE
    assert len(calls) <= 40 + 4 * 4 + (15 + 1) * 4
    assert a.info["evals"] <= 16


def test_grid_file_round_trip(optimized, tmp_path) -> None:
    sde, _, og = optimized
    path = og.save(tmp_path / "g.json")
    back = load_grid(path, sde)
    assert (back.sampler, back.nfe, back.options) == (og.sampler, og.nfe, og.options)
    torch.testing.assert_close(back.times, og.times, rtol=0, atol=0)


def _write(tmp_path, og, **change):
    d = {**og.to_dict(), **change}
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(d))
    return p


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "other"}, "expected format 'scoresde-grid' version 1, received format 'other'"),
        ({"nfe": 0}, "expected an integer nfe >= 1, received 0"),
        ({"nfe": 7}, "spends 6 NFE on 5 steps, but the file says nfe=7"),  # with the Tweedie step
        ({"times": [1.0, 0.5, 0.5, 0.001]}, "expected strictly decreasing times"),
        ({"times": [1.0, "a"]}, "expected 'times' to be a list of >= 2 numbers"),
        ({"sampler": "nope"}, "unknown sampler 'nope'; expected one of"),
        ({"options": []}, "expected 'options' to be a dict, received list"),
        ({"extra": 1}, "unexpected \\['extra'\\]"),
    ],
)
def test_grid_file_validation(optimized, tmp_path, change: dict, message: str) -> None:
    _, _, og = optimized
    with pytest.raises(ValueError, match=message):
        load_grid(_write(tmp_path, og, **change))


def test_grid_file_refuses_another_sde_and_missing_files(optimized, tmp_path) -> None:
    sde, _, og = optimized
    path = og.save(tmp_path / "g.json")
    with pytest.raises(ValueError, match="made for VPSDE.*received VESDE"):
        load_grid(path, VESDE())
    with pytest.raises(FileNotFoundError, match="grid file not found"):
        load_grid(tmp_path / "none.json")
    (tmp_path / "x.json").write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_grid(tmp_path / "x.json")


def test_optimize_grid_validates_its_inputs() -> None:
    sde = VPSDE()
    gm, cal = ring().with_sde(sde), torch.zeros(8, 2, dtype=torch.float64)
    with pytest.raises(
        ValueError, match="expected a deterministic fixed-step sampler, received 'euler_maruyama'"
    ):
        optimize_grid(sde, gm, "euler_maruyama", 10, cal)
    with pytest.raises(ValueError, match="expected teacher_nfe > nfe, received 10 <= 10"):
        optimize_grid(sde, gm, "ddim", 10, cal, teacher_nfe=10)
    with pytest.raises(ValueError, match="unknown init 'cosine'; expected 'best' or one of"):
        optimize_grid(sde, gm, "ddim", 10, cal, init="cosine")
    with pytest.raises(TypeError, match="x_T_calibration: expected a floating-point torch.Tensor"):
        optimize_grid(sde, gm, "ddim", 10, [[0.0, 0.0]])
    with pytest.raises(ValueError, match="expected teacher shaped like x_T_calibration"):
        optimize_grid(sde, gm, "ddim", 5, cal, teacher=torch.zeros(3, 2))


def test_compare_cli_runs_grid_files_and_denoise(tmp_path) -> None:
    from scoresde.cli import main
    from scoresde.cli.common import PRESETS

    sde = VPSDE()
    gm = PRESETS["2modes"]().with_sde(sde)
    cal = sde.prior_sample((64, 2), torch.Generator().manual_seed(0)).double()
    og = optimize_grid(sde, gm, "ddim", 6, cal, options={"denoise": True}, max_evals=10,
                       teacher_nfe=60)  # fmt: skip
    path = og.save(tmp_path / "ddim6.json")
    out = tmp_path / "c"
    assert main(["compare", "--analytic", "2modes", "--samplers", "ddim", "--nfe", "6",
                 "--seeds", "0", "--n", "200", "--grid", f"log_snr,{path}", "--denoise",
                 "--out", str(out), "--quiet"]) == 0  # fmt: skip
    rows = json.loads((out / "results.json").read_text())["rows"]
    by = {r["sampler"]: r for r in rows}
    assert set(by) == {"ddim", "ddim[ddim6]"}
    assert by["ddim"]["nfe"] == 6 and by["ddim"]["n_steps"] == 5  # denoise inside the budget
    assert by["ddim[ddim6]"]["nfe"] == 6 and by["ddim[ddim6]"]["n_steps"] == 5


def test_sample_cli_resolves_grid_files(optimized, tmp_path) -> None:
    import argparse

    from scoresde.cli.commands import _sample_grid
    from scoresde.cli.common import CLIError
    from scoresde.samplers.defaults import recommended

    sde, _, og = optimized
    path = og.save(tmp_path / "g.json")

    def ns(**kw):
        return argparse.Namespace(
            **{"sampler": None, "nfe": None, "grid": None, "denoise": True, **kw}
        )

    name, grid, opts = _sample_grid(ns(grid=path), sde)
    assert name == "dpm_solver_pp_2m" and torch.equal(grid, og.times) and opts == og.options
    with pytest.raises(CLIError, match="--nfe: the grid file .* is for 6, received 10"):
        _sample_grid(ns(grid=path, nfe=10), sde)
    with pytest.raises(CLIError, match="--sampler: the grid file .* is for dpm_solver_pp_2m"):
        _sample_grid(ns(grid=path, sampler="ddim"), sde)
    assert og.options["denoise"] is True  # the final Tweedie step is a default
    with pytest.raises(CLIError, match="--no-denoise: the grid file .* was made with"):
        _sample_grid(ns(grid=path, denoise=False), sde)
    with pytest.raises(ValueError, match="made for VPSDE"):
        _sample_grid(ns(grid=path), VESDE())
    name, grid, opts = _sample_grid(ns(sampler="ddim", nfe=11, grid="karras"), sde)
    assert name == "ddim" and grid.numel() == 11 and opts["denoise"] is True
    name, _, opts = _sample_grid(ns(nfe=11, denoise=False), sde)  # auto, without the Tweedie step
    assert name == recommended(sde, 11, "learned") and opts["denoise"] is False  # a trained net


def test_grid_flag_names_expected_and_received(capsys) -> None:
    from scoresde.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["compare", "--analytic", "2modes", "--grid", "cosine"])
    assert exc.value.code == 2
    assert (
        "expected a grid kind (karras, log_snr, quadratic, uniform) or a .json grid file, "
        "received 'cosine'" in capsys.readouterr().err
    )
