"""Noise floor, CE gap and mode-mass error measured on exact samples of Gaussian mixtures."""

from __future__ import annotations

import math

import pytest
import torch

from scoresde.analytic import GaussianMixture
from scoresde.metrics import get_metric
from scoresde.studies import mode_mass, noise_floor_table, score_samples
from scoresde.studies.quality import data_pool_sampler

GM = GaussianMixture([0.2, 0.3, 0.5], [[-4.0, 0.0], [4.0, 0.0], [0.0, 4.0]], [[0.3, 0.3]] * 3)


def _draw(n: int, gen: torch.Generator) -> torch.Tensor:
    return GM.sample(n, gen, dtype=torch.float32)


def test_floor_is_the_metric_of_exact_draws_against_the_reference() -> None:
    ref = _draw(400, torch.Generator().manual_seed(99))
    floor = noise_floor_table(_draw, ref, ["sw2", "mmd"], n=400, repeats=3, density=GM, seed=7)
    # Identity: draw r is the r-th exact draw of a generator seeded 7, scored with seed 7 + r.
    gen = torch.Generator().manual_seed(7)
    sw2 = get_metric("sw2")
    for r in range(3):
        x = _draw(400, gen)
        want = score_samples(x, ref, {"sw2": sw2}, 7 + r, GM)
        assert floor["sw2"]["values"][r] == want["sw2"]
        assert floor["ce_gap"]["values"][r] == want["ce_gap"]
    v = torch.tensor(floor["sw2"]["values"], dtype=torch.float64)
    assert floor["sw2"]["mean"] == pytest.approx(float(v.mean()))
    assert floor["sw2"]["sd"] == pytest.approx(float(v.std())) and floor["sw2"]["sd"] > 0
    # Drawing the reference itself gives distance 0: the floor comes from the draws.
    same = noise_floor_table(lambda n, g: ref, ref, ["sw2"], n=400, repeats=2)
    assert same["sw2"]["mean"] == pytest.approx(0.0, abs=1e-6)
    # A biased "sampler" sits far above the floor, in floor-sd units.
    far = noise_floor_table(lambda n, g: _draw(n, g) + 2.0, ref, ["sw2"], n=400, repeats=2)
    assert far["sw2"]["mean"] > floor["sw2"]["mean"] + 5 * floor["sw2"]["sd"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ce_gap_of_exact_samples_is_within_3_se_of_zero(seed: int) -> None:
    x = _draw(2000, torch.Generator().manual_seed(seed))
    out = score_samples(x, x[:10], {}, seed, GM)
    assert out["ce_gap_se"] > 0
    assert abs(out["ce_gap"]) < 3 * out["ce_gap_se"], out


def test_mode_mass_recovers_weights_and_sees_a_dropped_mode() -> None:
    x = _draw(4000, torch.Generator().manual_seed(0))
    w_hat = mode_mass(x, GM)
    assert float(w_hat.sum()) == pytest.approx(1.0)
    # Mean responsibilities estimate w_k without bias: within 4 binomial SEs.
    se = (GM.weights * (1 - GM.weights) / 4000).sqrt()
    assert bool(((w_hat - GM.weights).abs() < 4 * se).all()), (w_hat, GM.weights)
    # Drop the heaviest mode (0.5): the total-variation error is its weight, CE barely moves.
    k = torch.cdist(x.double(), GM.means).argmin(1)
    kept = x[k != 2]
    err = score_samples(kept, x, {}, 0, GM)["mode_mass_err"]
    assert err == pytest.approx(0.5, abs=0.02)
    exact = score_samples(x, x, {}, 0, GM)["mode_mass_err"]
    assert exact < 3 * math.sqrt(1 / 4000)


def test_failed_runs_score_nan_and_inputs_are_checked() -> None:
    out = score_samples(None, _draw(10, torch.Generator()), {"sw2": get_metric("sw2")}, 0, GM)
    assert math.isnan(out["sw2"]) and math.isnan(out["ce_gap"]) and math.isnan(out["mode_mass_err"])
    with pytest.raises(TypeError, match="expected a GaussianMixture, received str"):
        mode_mass(torch.zeros(3, 2), "gm")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="expected repeats >= 2, received 1"):
        noise_floor_table(_draw, torch.zeros(4, 2), ["sw2"], n=4, repeats=1)
    draw = data_pool_sampler(torch.arange(10.0).reshape(5, 2))
    assert draw(3, torch.Generator().manual_seed(0)).shape == (3, 2)
    with pytest.raises(ValueError, match="has 5 points, fewer than the 6 samples"):
        draw(6, torch.Generator())
