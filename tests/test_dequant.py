"""Variational dequantization and the importance-weighted bound, against exact cell masses."""

from __future__ import annotations

import math

import pytest
import torch

from scoresde.analytic import GaussianMixture
from scoresde.likelihood.dequant import (
    LogitNormalDequantizer,
    fit_dequantizer,
    iw_bits_per_dim,
    truncated_log_prob,
)

F64 = torch.float64
LEVELS = 8
# narrow components off the cell centres: the density is far from uniform inside a cell
MIX = GaussianMixture([0.5, 0.5], [[-0.5], [0.3]], [[0.01], [0.02]])


def _exact_bits(k: torch.Tensor) -> torch.Tensor:
    """-log2 P(k) with P(k) the mixture mass of the cell [lo, hi) of level k on (-1, 1)."""
    a = -1 + 2 * k.to(F64) / LEVELS
    b = a + 2 / LEVELS
    mass = torch.zeros_like(a)
    for w, m, v in zip(MIX.weights, MIX.means[:, 0], MIX.covariances[:, 0]):
        sd = math.sqrt(2 * float(v))
        mass = mass + w * 0.5 * (torch.erf((b - m) / sd) - torch.erf((a - m) / sd))
    return -torch.log2(mass)[:, 0]


def _data(n: int, seed: int) -> torch.Tensor:
    y = MIX.sample(n, generator=torch.Generator().manual_seed(seed)).clamp(-0.999, 0.999)
    return torch.floor((y + 1) / 2 * LEVELS).long()


def test_dequantizer_density_integrates_to_one() -> None:
    deq = LogitNormalDequantizer(1, LEVELS).double()
    with torch.no_grad():
        for p in deq.net[-1].parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=torch.Generator().manual_seed(0)))
    u = torch.linspace(1e-6, 1 - 1e-6, 200001, dtype=F64)[:, None]
    for level in (0, 5):
        q = torch.exp(deq.log_prob(u, torch.full((u.shape[0], 1), level)))
        assert abs(float(torch.trapezoid(q, u[:, 0])) - 1) < 1e-3


def test_importance_weighting_tightens_towards_the_exact_mass() -> None:
    """-log2 P(k) <= bound_K, and bound_K decreases with K (uniform q, many draws averaged)."""
    k = _data(4000, 0)
    exact = _exact_bits(k).mean()
    g = torch.Generator().manual_seed(1)
    b1 = iw_bits_per_dim(MIX.log_prob, k, n_importance=1, levels=LEVELS, generator=g)
    b32 = iw_bits_per_dim(MIX.log_prob, k, n_importance=32, levels=LEVELS, generator=g)
    se1 = float(b1.std() / len(b1) ** 0.5)
    assert float(b1.mean()) > float(b32.mean()) + 5 * se1  # K = 32 is much tighter
    assert float(b32.mean()) >= float(exact) - 1e-3  # still a bound
    assert float(b32.mean()) - float(exact) < 0.1 * (float(b1.mean()) - float(exact))


def test_trained_dequantizer_closes_most_of_the_uniform_gap() -> None:
    """Maximising the K = 1 bound over q(u | k) closes most of the gap that uniform
    dequantization leaves to the exact -log2 P(k) (measured: 2.273 vs 2.557, exact 2.209)."""
    k = _data(2000, 2)
    exact = float(_exact_bits(k).mean())
    torch.manual_seed(0)
    deq = LogitNormalDequantizer(1, LEVELS, hidden=32).double()
    opt = torch.optim.Adam(deq.parameters(), lr=5e-2)
    g = torch.Generator().manual_seed(3)
    for _ in range(300):
        opt.zero_grad()
        iw_bits_per_dim(MIX.log_prob, k[:512], deq, levels=LEVELS, generator=g).mean().backward()
        opt.step()
    with torch.no_grad():
        uniform = float(iw_bits_per_dim(MIX.log_prob, k, levels=LEVELS, generator=g).mean())
        learned = float(iw_bits_per_dim(MIX.log_prob, k, deq, levels=LEVELS, generator=g).mean())
    assert exact - 0.02 <= learned < exact + 0.35 * (uniform - exact), (exact, learned, uniform)


def test_validation_messages() -> None:
    with pytest.raises(ValueError, match="expected n_importance >= 1, received 0"):
        iw_bits_per_dim(MIX.log_prob, _data(4, 0), n_importance=0, levels=LEVELS)
    with pytest.raises(ValueError, match="expected levels >= 2, received 1"):
        LogitNormalDequantizer(1, 1)
    with pytest.raises(ValueError, match="expected k with 3 entries per sample"):
        LogitNormalDequantizer(3, LEVELS).sample(torch.zeros(2, 1))


def test_fit_dequantizer_closes_most_of_the_uniform_gap() -> None:
    """The library's fitting loop does what the hand-written loop above does."""
    k = _data(2000, 4)
    exact = float(_exact_bits(k).mean())
    torch.manual_seed(0)
    deq = LogitNormalDequantizer(1, LEVELS, hidden=32).double()
    g = torch.Generator().manual_seed(5)
    curve = fit_dequantizer(
        MIX.log_prob, k, deq, steps=300, batch_size=512, lr=5e-2, levels=LEVELS, generator=g
    )
    assert len(curve) == 300
    with torch.no_grad():
        uniform = float(iw_bits_per_dim(MIX.log_prob, k, levels=LEVELS, generator=g).mean())
        learned = float(iw_bits_per_dim(MIX.log_prob, k, deq, levels=LEVELS, generator=g).mean())
    assert exact - 0.02 <= learned < exact + 0.35 * (uniform - exact), (exact, learned, uniform)


def _gauss_log_prob(x: torch.Tensor, var: float) -> torch.Tensor:
    return (-0.5 * (math.log(2 * math.pi * var) + x**2 / var)).reshape(x.shape[0], -1).sum(1)


def test_truncation_bound_matches_its_closed_form_and_tightens_with_k() -> None:
    """Data N(0, s^2 I) in D = 3: p_te = N(0, v I) exactly, v = alpha^2 s^2 + sigma^2, and the
    K = 1 bound has the closed form E log p_te(alpha y + sigma z) + D log alpha
    = -D/2 log(2 pi v) - (alpha^2 |y|^2 + D sigma^2) / (2 v) + D log alpha. Its K -> infinity
    limit is the log-density of the decoder's model, int p_te(x) N(y; x / alpha, sigma^2 /
    alpha^2) dx = N(y; 0, (s^2 + 2 sigma^2 / alpha^2) I): below log p_0(y) (the decoder adds
    noise once more), and K = 256 importance samples close most of the gap to it."""
    s2, alpha, sigma, D = 0.04, 0.99, 0.05, 3
    v = alpha**2 * s2 + sigma**2
    y = torch.tensor([[0.1, -0.2, 0.05], [0.3, 0.0, -0.1]], dtype=F64)
    g = torch.Generator().manual_seed(0)
    p_te = lambda x: _gauss_log_prob(x, v)  # noqa: E731
    reps = y.repeat(20000, 1)
    k1 = truncated_log_prob(p_te, alpha, sigma, reps, generator=g).reshape(20000, 2)
    closed = (
        -D / 2 * math.log(2 * math.pi * v)
        - (alpha**2 * (y**2).sum(1) + D * sigma**2) / (2 * v)
        + D * math.log(alpha)
    )
    se = k1.std(0) / math.sqrt(20000)
    assert torch.all((k1.mean(0) - closed).abs() < 5 * se), (k1.mean(0), closed)
    limit = _gauss_log_prob(y, s2 + 2 * sigma**2 / alpha**2)
    assert torch.all(closed < limit) and torch.all(limit < _gauss_log_prob(y, s2))
    k256 = truncated_log_prob(p_te, alpha, sigma, y.repeat(200, 1), n_importance=256, generator=g)
    gap256 = limit - k256.reshape(200, 2).mean(0)
    assert torch.all(gap256 > -1e-3) and torch.all(gap256 < 0.1 * (limit - closed)), gap256


def test_new_entry_points_validate() -> None:
    deq = LogitNormalDequantizer(1, LEVELS)
    with pytest.raises(TypeError, match="expected a LogitNormalDequantizer, received dict"):
        fit_dequantizer(MIX.log_prob, _data(4, 0), {}, steps=1, levels=LEVELS)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="expected steps >= 1, received 0"):
        fit_dequantizer(MIX.log_prob, _data(4, 0), deq, steps=0, levels=LEVELS)
    with pytest.raises(ValueError, match="expected lr > 0, received 0.0"):
        fit_dequantizer(MIX.log_prob, _data(4, 0), deq, steps=1, lr=0.0, levels=LEVELS)
    y = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="expected 0 < alpha <= 1, received 1.5"):
        truncated_log_prob(MIX.log_prob, 1.5, 0.1, y)
    with pytest.raises(ValueError, match="expected sigma > 0, received 0.0"):
        truncated_log_prob(MIX.log_prob, 0.9, 0.0, y)
    with pytest.raises(ValueError, match="expected n_importance >= 1, received 0"):
        truncated_log_prob(MIX.log_prob, 0.9, 0.1, y, n_importance=0)
