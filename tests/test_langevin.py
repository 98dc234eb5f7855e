"""The Langevin correctors: step-rule formulas, batch invariance, Metropolis exactness, PC on
VP / sub-VP / VE.

Ground truth is exact: Gaussian-mixture marginals p_t and their scores (scoresde.analytic).
"""

from __future__ import annotations

import math

import pytest
import torch

from scoresde import VESDE, VPSDE, GaussianMixture
from scoresde.metrics import cross_entropy_gap
from scoresde.samplers import CORRECTORS, expected_nfe, make_grid, noise_from_seeds, sample
from scoresde.samplers.langevin import STEP_RULES, langevin_step_size
from scoresde.sde import SubVPSDE


def ring(k: int = 6, radius: float = 2.0, var: float = 0.1) -> GaussianMixture:
    """k equal isotropic Gaussians on a circle (a small '8gaussians')."""
    ang = torch.arange(k, dtype=torch.float64) * 2 * math.pi / k
    means = radius * torch.stack([torch.cos(ang), torch.sin(ang)], 1)
    return GaussianMixture(torch.full((k,), 1 / k), means, torch.full((k, 2), var))


def test_snr_dim_rule_on_a_gaussian_score() -> None:
    # p = N(0, v I) in d = 3: s(x) = -x / v, so e = 2 r snr^2 d / max(|x|^2 / v^2, d / sigma^2).
    v, sigma, r, snr, d = 0.5, 0.4, 0.9, 0.3, 3
    x = torch.tensor([[0.0, 0.0, 0.0], [0.1, 0.0, 0.0], [2.0, -1.0, 3.0]], dtype=torch.float64)
    e = langevin_step_size("snr_dim", -x / v, None, sigma, r, snr)
    s2 = (x**2).sum(1) / v**2
    want = 2 * r * snr**2 * d / torch.clamp(s2, min=d / sigma**2)
    torch.testing.assert_close(e, want)
    # At the mode (s = 0) the step is the annealed-Langevin step 2 r (snr sigma)^2, not infinite.
    assert float(e[0]) == pytest.approx(2 * r * (snr * sigma) ** 2)
    ald = langevin_step_size("ald", -x / v, None, sigma, r, snr)
    torch.testing.assert_close(ald, torch.full((3,), 2 * r * (snr * sigma) ** 2, dtype=x.dtype))


def test_reference_rules_follow_their_formulas() -> None:
    g = torch.Generator().manual_seed(0)
    s, z = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
    per = langevin_step_size("per_sample", s, z, 1.0, 0.8, 0.16)
    torch.testing.assert_close(per, 2 * 0.8 * (0.16 * z.norm(dim=1) / s.norm(dim=1)) ** 2)
    batch = langevin_step_size("batch_mean", s, z, 1.0, 0.8, 0.16)
    want = 2 * 0.8 * (0.16 * z.norm(dim=1).mean() / s.norm(dim=1).mean()) ** 2
    torch.testing.assert_close(batch, want.expand(5))
    assert set(STEP_RULES) == {"snr_dim", "batch_mean", "per_sample", "ald"}
    with pytest.raises(ValueError, match="unknown Langevin step rule 'nope'; expected one of"):
        langevin_step_size("nope", s, z, 1.0, 1.0, 0.1)
    with pytest.raises(ValueError, match="needs the noise z"):
        langevin_step_size("per_sample", s, None, 1.0, 1.0, 0.1)


@pytest.mark.parametrize("corrector", ["langevin", "langevin_ula", "ald"])
def test_default_correctors_are_batch_invariant(corrector: str) -> None:
    sde = VPSDE()
    gm, grid = ring().with_sde(sde), make_grid(sde, 30)
    seeds = list(range(10, 18))
    x_T = noise_from_seeds(seeds, (2,), dtype=torch.float64)
    full, _ = sample("pc", sde, gm, x_T, grid, seeds=seeds, corrector=corrector, n_steps=2)
    part, _ = sample("pc", sde, gm, x_T[2:5], grid, seeds=seeds[2:5], corrector=corrector,
                     n_steps=2)  # fmt: skip
    torch.testing.assert_close(part, full[2:5], rtol=1e-12, atol=1e-12)


def test_batch_mean_rule_depends_on_the_batch() -> None:
    # The reference rule averages norms over the batch: the same seeds give other samples.
    sde = VPSDE()
    gm, grid = ring().with_sde(sde), make_grid(sde, 30)
    seeds = list(range(10, 18))
    x_T = noise_from_seeds(seeds, (2,), dtype=torch.float64)
    kw = {"corrector": "langevin_batch", "n_steps": 2}
    full, _ = sample("pc", sde, gm, x_T, grid, seeds=seeds, **kw)
    part, _ = sample("pc", sde, gm, x_T[2:5], grid, seeds=seeds[2:5], **kw)
    assert float((part - full[2:5]).abs().max()) > 1e-6


def test_metropolis_adjustment_keeps_p_t_where_unadjusted_langevin_drifts() -> None:
    # Start from exact samples of p_t and run 30 corrector steps at t (no predictor): MALA
    # keeps p_t (CE gap ~ 0, paired with the start), ULA with the state-dependent step does not.
    sde, t = VPSDE(), 0.2
    gm = ring().with_sde(sde)
    p_t = gm.marginal_mixture(t)
    x0 = p_t.sample(3000, torch.Generator().manual_seed(0))
    grid = torch.tensor([t + 1e-4, t], dtype=torch.float64)
    gaps = {}
    for corrector in ("langevin", "langevin_ula"):
        x, info = sample("pc", sde, gm, x0, grid, generator=torch.Generator().manual_seed(1),
                         predictor="none", corrector=corrector, snr=1.0, n_steps=30)  # fmt: skip
        assert info.nfe == 30 + (corrector == "langevin")
        moved = float((x - x0).norm(dim=1).mean())
        assert moved > 0.1, f"{corrector} barely moved ({moved:.3g})"
        gaps[corrector] = float(p_t.log_prob(x0).mean() - p_t.log_prob(x).mean())
    assert abs(gaps["langevin"]) < 0.05, gaps
    assert gaps["langevin_ula"] > 0.2, gaps


@pytest.mark.parametrize("sde", [VPSDE(), SubVPSDE(), VESDE()], ids=["vp", "subvp", "ve"])
def test_pc_default_converges_on_a_mixture(sde) -> None:
    gm = ring().with_sde(sde)
    n = 2000
    x_T = sde.prior_sample((n, 2), torch.Generator().manual_seed(0)).double()
    gaps = []
    for nfe in (61, 241):  # 3 NFE per step and the final Tweedie step
        x, info = sample("pc", sde, gm, x_T, nfe, generator=torch.Generator().manual_seed(1))
        assert info.nfe == nfe == expected_nfe("pc", nfe // 3, denoise=True)
        ce = cross_entropy_gap(x, gm, n_reference=20_000, generator=torch.Generator())
        gaps.append((ce.gap, ce.gap_se))
    (coarse, _), (fine, se) = gaps
    assert abs(fine) < 0.03 + 3 * se, gaps
    assert abs(fine) < abs(coarse), gaps


def test_corrector_validation_names_expected_and_received() -> None:
    sde = VPSDE()
    gm, grid, x = ring().with_sde(sde), make_grid(sde, 3), torch.zeros(4, 2)
    with pytest.raises(ValueError, match="unknown corrector 'mala'; expected one of .*'langevin'"):
        sample("pc", sde, gm, x, grid, corrector="mala")
    with pytest.raises(ValueError, match="expected a finite snr > 0, received -1"):
        sample("pc", sde, gm, x, grid, snr=-1)
    with pytest.raises(ValueError, match="expected an integer n_steps >= 0, received 1.5"):
        sample("pc", sde, gm, x, grid, n_steps=1.5)
    assert CORRECTORS["langevin"].metropolis and CORRECTORS["langevin"].nfe(2) == 3
