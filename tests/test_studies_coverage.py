"""Precision/recall per mixture component: blur and dropped modes fail the floor, exact passes."""

from __future__ import annotations

import math

import pytest
import torch

from scoresde.analytic import GaussianMixture
from scoresde.samplers import make_grid, sample
from scoresde.sde import VPSDE
from scoresde.studies import below_floor, noise_floor_table, precision_recall
from scoresde.studies.coverage import inside_ellipsoids

# well separated: 3 modes, 8 sds apart
GM = GaussianMixture([0.3, 0.3, 0.4], [[-4.0, 0.0], [4.0, 0.0], [0.0, 4.0]], [[0.25, 0.25]] * 3)
N = 2000


def _exact(n: int, seed: int) -> torch.Tensor:
    return GM.sample(n, torch.Generator().manual_seed(seed), dtype=torch.float32)


def _floor() -> dict:
    ref = _exact(N, 99)
    return noise_floor_table(lambda n, g: GM.sample(n, g, dtype=torch.float32), ref, [], n=N,
                             repeats=5, density=GM, seed=3)  # fmt: skip


def test_blurred_sampler_fails_the_floor_and_exact_samples_pass() -> None:
    floor = _floor()
    assert floor["precision"]["mean"] == pytest.approx(0.99, abs=0.005)
    assert floor["recall"]["mean"] == pytest.approx(1.0, abs=0.03)  # capped ratios: just below 1
    for seed in (5, 6, 7):  # exact samples (an exact sampler) pass
        pr = precision_recall(_exact(N, seed), GM)
        assert not below_floor(pr["precision"], floor["precision"]), pr
        assert not below_floor(pr["recall"], floor["recall"]), pr
    # 3-step PF-Heun with the exact score: a blurred cloud between the modes
    sde = VPSDE()
    x_T = sde.prior_sample((N, 2), torch.Generator().manual_seed(0))
    x, info = sample("pf_heun", sde, GM.with_sde(sde), x_T, make_grid(sde, 3, "uniform"))
    assert info.n_steps == 3
    blurred = precision_recall(x, GM)
    assert below_floor(blurred["precision"], floor["precision"]), blurred
    assert below_floor(blurred["recall"], floor["recall"]), blurred
    # the same sampler with enough steps comes back inside the band
    x, _ = sample("pf_heun", sde, GM.with_sde(sde), x_T, make_grid(sde, 200, "uniform"))
    fine = precision_recall(x, GM)
    assert not below_floor(fine["precision"], floor["precision"]), fine


def test_a_dropped_mode_costs_its_weight_in_recall() -> None:
    x = _exact(4000, 1)
    keep = inside_ellipsoids(x, GM)[:, 2].logical_not()
    pr = precision_recall(x[keep], GM)
    assert pr["recall_k"][2] < 0.01 and pr["recall"] == pytest.approx(0.6, abs=0.02)
    assert pr["precision"] > 0.98  # what is left is where the data are
    full = GaussianMixture(GM.weights, GM.means, torch.eye(2).expand(3, 2, 2) * 0.25)
    assert inside_ellipsoids(x, full).equal(inside_ellipsoids(x, GM))  # full == diagonal
    with pytest.raises(ValueError, match="expected samples of dimension 2, received 3"):
        precision_recall(torch.zeros(4, 3), GM)
    assert below_floor(math.nan, {"mean": 1.0, "sd": 0.1})
