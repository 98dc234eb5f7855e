"""Latent interpolation: slerp and the notes' sqrt(1 - w) z1 + sqrt(w) z2 stay on the prior."""

from __future__ import annotations

import math

import pytest
import torch

from scoresde.analytic import GaussianMixture
from scoresde.metrics import sliced_wasserstein
from scoresde.samplers import (
    INTERPOLATIONS,
    ddim_interpolate,
    make_grid,
    sample_ddim,
    slerp,
    sqrt_interpolate,
)
from scoresde.sde import VPSDE

F64 = torch.float64


def _linear(z0: torch.Tensor, z1: torch.Tensor, w: float) -> torch.Tensor:
    return (1 - w) * z0 + w * z1  # the negative control: off the prior's shell


def _chi2_interval(d: int, q: float = 4.0) -> tuple[float, float]:
    return d - q * math.sqrt(2 * d), d + q * math.sqrt(2 * d)


@pytest.mark.parametrize("name", sorted(INTERPOLATIONS))
def test_interpolants_keep_the_prior_norm_statistics(name: str) -> None:
    """Independent N(0, I_64) pairs: |z_w|^2 has mean d and stays in chi^2_d's bulk at every w."""
    d, n = 64, 4000
    g = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(n, d, generator=g, dtype=F64), torch.randn(n, d, generator=g, dtype=F64)
    lo, hi = _chi2_interval(d)
    for w in (0.25, 0.5, 0.8):
        sq = (INTERPOLATIONS[name](z0, z1, w) ** 2).sum(1)
        assert abs(float(sq.mean()) - d) < 4 * math.sqrt(2 * d / n), (name, w)
        assert float(((sq > lo) & (sq < hi)).double().mean()) > 0.99, (name, w)
    sq_lin = (_linear(z0, z1, 0.5) ** 2).sum(1)  # the test can fail: E|z|^2 = d / 2 here
    assert abs(float(sq_lin.mean()) - d) > 100 * math.sqrt(2 * d / n)


def test_sqrt_interpolation_is_exactly_the_prior() -> None:
    """Var(sqrt(1 - w) z0 + sqrt(w) z1) = 1 exactly; the endpoints are z0 and z1."""
    g = torch.Generator().manual_seed(1)
    z0, z1 = torch.randn(3, 5, generator=g, dtype=F64), torch.randn(3, 5, generator=g, dtype=F64)
    torch.testing.assert_close(sqrt_interpolate(z0, z1, 0.0), z0)
    torch.testing.assert_close(sqrt_interpolate(z0, z1, 1.0), z1)
    torch.testing.assert_close(sqrt_interpolate(z0, z1, 0.3), 0.7**0.5 * z0 + 0.3**0.5 * z1)
    with pytest.raises(ValueError, match=r"expected a weight in \[0, 1\], received 1.5"):
        sqrt_interpolate(z0, z1, 1.5)
    with pytest.raises(ValueError, match=r"expected equal shapes, received \(3, 5\) and \(3, 4\)"):
        sqrt_interpolate(z0, z1[:, :4], 0.5)


def test_slerp_is_bounded_for_nearly_opposite_pairs_of_unequal_norm() -> None:
    """Shoemake's raw-vector formula divides (|z0| - |z1|) u by cos(theta / 2) -> 0 here."""
    z0 = torch.tensor([[1.0, 0.0]], dtype=F64)
    z1 = torch.tensor([[-3.0, 1e-7]], dtype=F64)
    out = slerp(z0, z1, 0.5)
    assert float(out.norm()) == pytest.approx(math.sqrt(0.5 * 1 + 0.5 * 9), rel=1e-9)
    # equal norms: Shoemake's formula exactly
    a, b = torch.tensor([[2.0, 0.0]], dtype=F64), torch.tensor([[0.0, 2.0]], dtype=F64)
    s, c = math.sin(0.3 * math.pi / 2), math.cos(0.3 * math.pi / 2)
    torch.testing.assert_close(slerp(a, b, 0.3), torch.tensor([[2 * c, 2 * s]], dtype=F64))


@pytest.mark.parametrize("name", sorted(INTERPOLATIONS))
def test_interpolants_decode_to_in_distribution_samples(name: str) -> None:
    """DDIM-decoded midpoints of prior pairs (exact score, 16-D mixture) are as close to the data
    as decoded prior draws are; linear midpoints are not."""
    sde, d, n = VPSDE(), 16, 2000
    g = torch.Generator().manual_seed(0)
    means = 2.8 / math.sqrt(d) * torch.randn(4, d, generator=g, dtype=F64)
    gm = GaussianMixture([0.25] * 4, means, torch.full((4, d), 0.25), sde=sde)
    grid = make_grid(sde, 40, "log_snr")
    za = sde.prior_sample((n, d), generator=g, dtype=F64)
    zb = sde.prior_sample((n, d), generator=g, dtype=F64)
    data = gm.sample(n, g)
    decoded_prior, _ = sample_ddim(sde, gm, za, grid)
    reference = sliced_wasserstein(decoded_prior, data, 64, generator=g)
    mid, _ = sample_ddim(sde, gm, INTERPOLATIONS[name](za, zb, 0.5), grid)
    assert sliced_wasserstein(mid, data, 64, generator=g) < 1.5 * reference
    lin, _ = sample_ddim(sde, gm, _linear(za, zb, 0.5), grid)
    assert sliced_wasserstein(lin, data, 64, generator=g) > 2.5 * reference


def test_ddim_interpolate_method() -> None:
    sde = VPSDE()
    gm = GaussianMixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.0]], [[0.1, 0.1]] * 2, sde=sde)
    x = gm.sample(4, torch.Generator().manual_seed(0))
    grid = make_grid(sde, 30, "log_snr")
    w = torch.tensor([0.0, 0.5, 1.0])
    out = ddim_interpolate(sde, gm, x[:2], x[2:], w, grid, method="sqrt")
    assert out.shape == (3, 2, 2)
    ref = ddim_interpolate(sde, gm, x[:2], x[2:], w, grid, method="slerp")
    torch.testing.assert_close(out[[0, 2]], ref[[0, 2]])  # same endpoints, other midpoint
    assert float((out[1] - ref[1]).abs().max()) > 1e-6
    with pytest.raises(ValueError, match="unknown method 'lerp'; expected one of 'slerp', 'sqrt'"):
        ddim_interpolate(sde, gm, x[:2], x[2:], w, grid, method="lerp")
