"""Plain Langevin / SGLD at a fixed time, against exact mixtures and the exact ULA bias."""

from __future__ import annotations

import math

import pytest
import torch

from scoresde.analytic import GaussianMixture
from scoresde.metrics import sliced_wasserstein
from scoresde.samplers import sample_langevin_fixed_t, sgld_step_sizes
from scoresde.sde import VPSDE

F64 = torch.float64
T_FIXED = 0.3


def _mixture() -> GaussianMixture:
    means = [[2.0, 2.0], [-2.0, -2.0], [2.0, -2.0], [-2.0, 2.0]]
    return GaussianMixture([0.1, 0.2, 0.3, 0.4], means, [[0.25, 0.25]] * 4, sde=VPSDE())


def test_small_step_samples_the_mixture_marginal_within_the_noise_floor() -> None:
    gm, g = _mixture(), torch.Generator().manual_seed(0)
    p_t, n = gm.marginal_mixture(T_FIXED), 3000
    x0 = torch.randn(n, 2, generator=g, dtype=F64)  # prior draws, not p_t: it must converge
    x, info = sample_langevin_fixed_t(gm, x0, T_FIXED, 0.03, 400, generator=g)
    assert info.nfe == 400
    ref_a, ref_b = p_t.sample(n, g), p_t.sample(n, g)
    floor = sliced_wasserstein(ref_a, ref_b, 64, generator=g)
    assert sliced_wasserstein(x, ref_a, 64, generator=g) < 1.6 * floor
    # the mode weights are the mixture's (Langevin must cross between the modes)
    quadrant = (x[:, 0] > 0).long() * 2 + (x[:, 1] > 0).long()
    ref_q = (ref_b[:, 0] > 0).long() * 2 + (ref_b[:, 1] > 0).long()
    frac, ref_frac = (torch.bincount(q, minlength=4).double() / n for q in (quadrant, ref_q))
    assert float((frac - ref_frac).abs().max()) < 0.04


@pytest.mark.parametrize("delta", [0.3, 0.6])
def test_large_step_has_the_exact_order_step_bias(delta: float) -> None:
    """ULA on N(0, s^2): stationary variance s^2 / (1 - delta / (4 s^2)) = s^2 + delta / 4 + ..."""
    var = torch.tensor([0.8, 2.0], dtype=F64)  # p_t of this Gaussian at T_FIXED, per axis
    gm = GaussianMixture([1.0], [[0.0, 0.0]], [var.tolist()], sde=VPSDE())
    alpha, sigma = (float(v) for v in VPSDE().marginal(torch.tensor(T_FIXED, dtype=F64)))
    s2 = alpha**2 * var + sigma**2
    g, n = torch.Generator().manual_seed(1), 20_000
    x0 = torch.randn(n, 2, generator=g, dtype=F64) * s2.sqrt()  # start in the stationary regime
    x, _ = sample_langevin_fixed_t(gm, x0, T_FIXED, delta, 150, generator=g)
    emp, se = x.var(0), x.var(0) * math.sqrt(2 / (n - 1))
    ula = s2 / (1 - delta / (4 * s2))
    assert bool(((emp - ula).abs() < 4 * se).all()), (emp, ula)
    assert bool(((emp - s2) > 4 * se).all()), (emp, s2)  # the bias is real, not noise


def test_sgld_decreasing_steps_remove_the_bias() -> None:
    gm = GaussianMixture([1.0], [[0.0]], [[1.0]], sde=VPSDE())
    g, n = torch.Generator().manual_seed(2), 10_000
    steps = sgld_step_sizes(300, a=0.6, b=1.0, gamma=0.9)
    assert float(steps[0]) == pytest.approx(0.6) and bool((steps.diff() < 0).all())
    x0 = torch.randn(n, 1, generator=g, dtype=F64)
    x, info = sample_langevin_fixed_t(gm, x0, 0.5, steps, generator=g)
    assert info.nfe == 300
    biased, _ = sample_langevin_fixed_t(gm, x0, 0.5, 0.6, 300, generator=g)
    se = math.sqrt(2 / (n - 1))
    assert abs(float(x.var()) - 1.0) < 4 * se  # p_t = N(0, 1) at every t for N(0, 1) data (VP)
    assert float(biased.var()) - 1.0 > 4 * se


def test_sgld_step_sizes_are_welling_and_tehs_schedule() -> None:
    """delta_k = a (b + k)^(-gamma) (Welling & Teh 2011, Sec. 2), written out."""
    steps = sgld_step_sizes(6, a=0.3, b=2.5, gamma=0.75)
    want = torch.tensor([0.3 * (2.5 + k) ** -0.75 for k in range(6)], dtype=F64)
    torch.testing.assert_close(steps, want, rtol=1e-14, atol=0)


def test_validation_messages() -> None:
    gm, x = _mixture(), torch.zeros(3, 2)
    with pytest.raises(TypeError, match="expected step_size to be a float or a 1-D tensor"):
        sample_langevin_fixed_t(gm, x, 0.3, "0.1", 5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="expected finite step sizes > 0, received min -0.1"):
        sample_langevin_fixed_t(gm, x, 0.3, -0.1, 5)
    with pytest.raises(ValueError, match="expected an integer n_steps >= 1, received None"):
        sample_langevin_fixed_t(gm, x, 0.3, 0.1)
    with pytest.raises(ValueError, match="expected one finite time t"):
        sample_langevin_fixed_t(gm, x, torch.tensor([0.3, 0.4]), 0.1, 5)
    with pytest.raises(ValueError, match="expected a > 0, b > 0 and 0.5 < gamma <= 1"):
        sgld_step_sizes(10, a=0.1, gamma=0.3)
