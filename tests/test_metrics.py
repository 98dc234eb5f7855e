"""Metrics: zero on identical sets, closed-form values for Gaussians, symmetry, validation."""

from __future__ import annotations

import math

import pytest
import torch

from scoresde.analytic import GaussianMixture
from scoresde.metrics import (
    METRICS,
    cross_entropy_gap,
    energy_distance,
    get_metric,
    kl_monte_carlo,
    mmd,
    noise_floor,
    sliced_wasserstein,
    wasserstein,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _gauss(n: int, mean: list[float], seed: int) -> torch.Tensor:
    m = torch.tensor(mean, dtype=torch.float64)
    return m + torch.randn(n, len(mean), generator=_gen(seed), dtype=torch.float64)


def test_identical_sets_give_zero() -> None:
    x = _gauss(300, [0.0, 0.0, 0.0], 1)
    assert sliced_wasserstein(x, x.clone(), generator=_gen()) == pytest.approx(0.0, abs=1e-12)
    assert wasserstein(x, x.clone()) == pytest.approx(0.0, abs=1e-12)
    assert mmd(x, x, unbiased=False) == pytest.approx(0.0, abs=1e-12)
    assert energy_distance(x, x, unbiased=False) == pytest.approx(0.0, abs=1e-12)
    # The unbiased estimators are O(1/n) below zero on identical sets.
    assert abs(mmd(x, x)) < 5 / len(x)
    assert abs(energy_distance(x, x)) < 5 / len(x)


def test_sliced_wasserstein_handles_unequal_sizes_exactly() -> None:
    x = _gauss(200, [0.0, 1.0], 2)
    # Repeating every point leaves the empirical measure unchanged.
    assert sliced_wasserstein(x, x.repeat(2, 1), generator=_gen()) == pytest.approx(0, abs=1e-12)
    # In 1-D the sliced distance is the exact W2; a translation by c gives |c|, for any sizes.
    z = _gauss(300, [0.0], 3)
    assert sliced_wasserstein(z, (z + 0.7).repeat(3, 1), 3, generator=_gen()) == pytest.approx(
        0.7, rel=1e-9
    )


def test_wasserstein_of_a_translation_is_the_shift() -> None:
    x = _gauss(200, [0.0, 0.0], 4)
    c = torch.tensor([0.6, -0.8], dtype=torch.float64)
    assert wasserstein(x, x + c) == pytest.approx(1.0, rel=1e-9)
    # sliced: E_theta (theta . c)^2 = |c|^2 / d, here d = 2
    sw = sliced_wasserstein(x, x + c, 4000, generator=_gen(5))
    assert sw == pytest.approx(1.0 / math.sqrt(2), rel=0.03)


def test_two_gaussians_known_values() -> None:
    n, delta = 1500, 1.0  # fixed seeds; tolerances are about 3 standard deviations
    x, y = _gauss(n, [0.0, 0.0], 6), _gauss(n, [delta, 0.0], 7)
    # W2(N(m1, I), N(m2, I)) = |m1 - m2|; the empirical plan is biased up by O(n^{-1/2}).
    assert wasserstein(x, y) == pytest.approx(delta, abs=0.25)
    # MMD^2 with RBF bandwidth h between N(m1, s^2 I) and N(m2, s^2 I), d dims:
    # 2 (h^2 / (h^2 + 2 s^2))^{d/2} (1 - exp(-|m1 - m2|^2 / (2 (h^2 + 2 s^2)))).
    h, d = 1.0, 2
    exact = 2 * (h**2 / (h**2 + 2)) ** (d / 2) * (1 - math.exp(-(delta**2) / (2 * (h**2 + 2))))
    assert mmd(x, y, bandwidths=h) == pytest.approx(exact, abs=0.035)
    # Energy distance in 1-D: X - Y ~ N(delta, 2) so E|X - Y| = folded-normal mean, and
    # E|X - X'| = 2 / sqrt(pi).
    x1, y1 = _gauss(4000, [0.0], 16), _gauss(4000, [delta], 17)
    sd = math.sqrt(2)
    e_xy = sd * math.sqrt(2 / math.pi) * math.exp(-(delta**2) / (2 * sd**2)) + delta * math.erf(
        delta / (sd * math.sqrt(2))
    )
    assert energy_distance(x1, y1) == pytest.approx(2 * e_xy - 4 / math.sqrt(math.pi), abs=0.09)


@pytest.mark.parametrize("name", sorted(METRICS))
def test_metrics_are_symmetric_and_positive_on_different_sets(name: str) -> None:
    x, y = _gauss(200, [0.0, 0.0], 8), _gauss(200, [2.0, 0.0], 9)
    spec = get_metric(name)
    assert spec(x, y, generator=_gen(1)) == pytest.approx(spec(y, x, generator=_gen(1)), rel=1e-9)
    assert spec(x, y, generator=_gen(1)) > 0.1


def test_images_are_flattened() -> None:
    x = torch.randn(50, 1, 4, 4, generator=_gen(10))
    assert sliced_wasserstein(x, x, generator=_gen()) == pytest.approx(0.0, abs=1e-12)


def test_validation_messages() -> None:
    x = torch.zeros(10, 2)
    with pytest.raises(ValueError, match="same event shape"):
        sliced_wasserstein(x, torch.zeros(10, 3))
    with pytest.raises(ValueError, match=r"shape \(n >= 2"):
        mmd(torch.zeros(10), torch.zeros(10))
    with pytest.raises(ValueError, match="finite"):
        energy_distance(x, torch.full((10, 2), float("nan")))
    with pytest.raises(ValueError, match="positive finite bandwidths"):
        mmd(x, x, bandwidths=-1.0)
    with pytest.raises(ValueError, match="unknown metric 'fid'; expected one of"):
        get_metric("fid")
    with pytest.raises(ValueError, match="max_points"):
        wasserstein(torch.zeros(30, 2), torch.zeros(30, 2), max_points=20)
    try:
        import ot  # noqa: F401
    except ImportError:
        with pytest.raises(ValueError, match="POT"):
            wasserstein(torch.zeros(30, 2), torch.zeros(20, 2))


def _mixture() -> GaussianMixture:
    return GaussianMixture([0.3, 0.7], [[-2.0, 0.0], [2.0, 1.0]], [[0.5, 0.5], [1.0, 0.25]])


def test_cross_entropy_gap_is_zero_for_exact_samples_and_positive_for_wrong_ones() -> None:
    gm = _mixture()
    exact = gm.sample(20_000, _gen(11))
    res = cross_entropy_gap(exact, gm, n_reference=20_000, generator=_gen(12))
    assert abs(res.gap) < 4 * res.gap_se
    assert res.entropy_se > 0 and set(res.as_dict()) >= {"gap", "gap_se", "entropy"}
    wrong = exact + 0.5
    assert cross_entropy_gap(wrong, gm, n_reference=20_000, generator=_gen(12)).gap > 0.1


def test_kl_monte_carlo_matches_gaussian_closed_form() -> None:
    # KL(N(m, s^2) || N(0, 1)) = (s^2 + m^2 - 1) / 2 - log s
    m, s = 0.5, 0.8
    p = GaussianMixture([1.0], [[m]], [[s**2]])
    log_q = GaussianMixture([1.0], [[0.0]], [[1.0]]).log_prob
    est, se = kl_monte_carlo(p, log_q, 50_000, generator=_gen(13))
    exact = (s**2 + m**2 - 1) / 2 - math.log(s)
    assert abs(est - exact) < 4 * se + 1e-6


def test_noise_floor_is_small_and_reproducible() -> None:
    gm = _mixture()
    a = noise_floor(gm.sample, 500, "sw2", repeats=2, generator=_gen(14))
    b = noise_floor(gm.sample, 500, "sw2", repeats=2, generator=_gen(14))
    assert a == b
    assert 0 < a["mean"] < 0.3
