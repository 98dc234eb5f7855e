"""Langevin correctors and the PC sampler against closed forms (Song et al. 2021, Algs. 4-5).

* The step-size rules through the sampler, on known scores and noise: 'snr_dim'
  (2 r snr^2 d / max(||s||^2, d / sigma_t^2)), 'batch_mean', 'per_sample' and 'ald'
  (2 r (snr sigma_t)^2), r = (alpha_{t_i} / alpha_{t_{i+1}})^2, then x <- x + e s + sqrt(2 e) z.
* Invariance: on a Gaussian target N(mu, v) the chain x <- x + e s(x) + sqrt(2 e) z is linear,
  x' = (1 - e / v) x + e mu / v + sqrt(2 e) z, so after k steps from N(m, w) its law is exactly
  N(mu + q^k (m - mu), q^{2k} w + 2 e (1 - q^{2k}) / (1 - q^2)), q = 1 - e / v. Started at the
  target it leaves it invariant to first order: the variance moves by O(e^2) only.
* PC on VP and sub-VP (not only VE): samples follow the data distribution.
"""

from __future__ import annotations

import pytest
import torch

from scoresde import VESDE, GaussianMixture
from scoresde.samplers import make_grid, sample

from .reference import affine_law
from .test_samplers_common import make_sdes, mixture, prior, sliced_w2

SDES = make_sdes()


def _one_corrector_step(sde, corrector, snr, score, x, z, t_prev=0.5, t=0.45):
    grid = torch.tensor([t_prev, t], dtype=torch.float64)
    return sample("pc", sde, score, x, grid, predictor="none", corrector=corrector, snr=snr,
                  noise_sampler=lambda y, a, b: z)[0]  # fmt: skip


@pytest.mark.parametrize("sde_name", ["vp", "subvp", "ve"])
@pytest.mark.parametrize("corrector", ["langevin_ula", "langevin_batch", "langevin_per_sample",
                                       "ald"])  # fmt: skip
def test_langevin_step_size_rule_on_a_known_score(sde_name: str, corrector: str) -> None:
    """One unadjusted corrector step through ``sample('pc', ...)`` with a known score and noise
    is x + e s + sqrt(2 e) z, with e from the rule written out here (Song et al. 2021, Alg. 5;
    Song & Ermon 2019, Alg. 1) and r = (alpha_{t_i} / alpha_{t_{i+1}})^2."""
    sde, snr = SDES[sde_name], 0.23
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 3, generator=g, dtype=torch.float64)
    z = torch.randn(5, 3, generator=g, dtype=torch.float64)
    w = torch.tensor([0.5, 1.0, 2.0, 3.0, 40.0], dtype=torch.float64)[:, None]
    score = lambda y, t: -w * (y - 1.0)  # noqa: E731 - a known, per-sample-scaled score
    s = score(x, None)
    a_prev, a_t = (sde.marginal(torch.tensor(v, dtype=torch.float64))[0] for v in (0.5, 0.45))
    r, sigma = (a_prev / a_t) ** 2, sde.marginal(torch.tensor(0.45, dtype=torch.float64))[1]
    zn, sn = z.norm(dim=1, keepdim=True), s.norm(dim=1, keepdim=True)
    e = {
        "langevin_ula": 2 * r * snr**2 * 3 / torch.clamp(sn**2, min=3 / sigma**2),  # d = 3
        "langevin_batch": 2 * r * (snr * zn.mean() / sn.mean()) ** 2 * torch.ones_like(sn),
        "langevin_per_sample": 2 * r * (snr * zn / sn) ** 2,
        "ald": 2 * r * (snr * sigma) ** 2 * torch.ones_like(sn),
    }[corrector]
    out = _one_corrector_step(sde, corrector, snr, score, x, z)
    torch.testing.assert_close(out, x + e * s + (2 * e).sqrt() * z, rtol=1e-12, atol=1e-12)


def _chain_law(e: float, k: int, mu: float, v: float, m: float, w: float) -> tuple[float, float]:
    q = 1 - e / v
    return mu + q**k * (m - mu), q ** (2 * k) * w + 2 * e * (1 - q ** (2 * k)) / (1 - q**2)


@pytest.mark.parametrize("sde_name", ["vp", "subvp", "ve"])
def test_langevin_chain_law_and_first_order_invariance(sde_name: str) -> None:
    """k ALD steps at time t from exact p_t draws: the exact law equals the closed form of the
    discretised chain, and the target is invariant up to O(e^2)."""
    sde, t_prev, t, k, mu0, v0 = SDES[sde_name], 0.5, 0.45, 6, 0.7, 0.3
    alpha, sigma = (float(u) for u in sde.marginal(torch.tensor(t, dtype=torch.float64)))
    a_prev = float(sde.marginal(torch.tensor(t_prev, dtype=torch.float64))[0])
    mu, v = alpha * mu0, alpha**2 * v0 + sigma**2  # p_t = N(mu, v)
    gm = GaussianMixture([1.0], [[mu0]], [[v0]], sde=sde)
    drift = []
    for snr in (0.2, 0.1):
        e = 2 * (a_prev / alpha) ** 2 * (snr * sigma) ** 2

        def run(x_T, noise, snr=snr):
            grid = torch.tensor([t_prev, t], dtype=torch.float64)
            return sample("pc", sde, gm, x_T, grid, predictor="none", corrector="ald", snr=snr,
                          n_steps=k, noise_sampler=noise)[0]  # fmt: skip

        for start in ((mu, v), (mu + 1.0, 2 * v)):  # from p_t, and from elsewhere
            got = affine_law(run, k, *start)
            want = _chain_law(e, k, mu, v, *start)
            assert got == pytest.approx(want, rel=1e-10, abs=1e-12), (got, want)
        mean, var = affine_law(run, k, mu, v)
        assert abs(mean - mu) < 1e-12
        drift.append(abs(var - v) / v)
    # O(e^2) with e ~ snr^2: halving snr divides the drift by ~16
    assert 0 < drift[0] < 0.05 and 12 < drift[0] / drift[1] < 17, drift


def test_langevin_chain_variance_moves_as_e_squared() -> None:
    """One step from the target moves its variance by exactly e^2 / v: halving snr divides it by 16."""
    sde, t = SDES["ve"], 0.45
    sigma = float(sde.marginal(torch.tensor(t, dtype=torch.float64))[1])
    gm = GaussianMixture([1.0], [[0.0]], [[0.5]], sde=sde)
    v = 0.5 + sigma**2
    drift = []
    for snr in (0.4, 0.2):

        def run(x_T, noise, snr=snr):
            grid = torch.tensor([0.5, t], dtype=torch.float64)
            return sample("pc", sde, gm, x_T, grid, predictor="none", corrector="ald", snr=snr,
                          noise_sampler=noise)[0]  # fmt: skip

        drift.append(affine_law(run, 1, 0.0, v)[1] / v - 1)
    assert drift[0] > 0 and 15 < drift[0] / drift[1] < 17, drift


@pytest.mark.parametrize("sde_name", ["vp", "subvp"])
@pytest.mark.parametrize(
    ("corrector", "snr", "dim", "nfe"),
    [("langevin", None, 2, 300), ("langevin_per_sample", 0.05, 16, 200), ("ald", 0.1, 2, 200)],
)
def test_pc_on_vp_and_subvp_matches_the_data_distribution(
    sde_name: str, corrector: str, snr: float | None, dim: int, nfe: int
) -> None:
    # The per-sample snr rule uses ||z|| / ||s||, which concentrates only in higher dimension;
    # the default (Metropolis-adjusted) corrector costs one extra NFE per call.
    sde, n = SDES[sde_name], 2000
    gm = mixture(sde, dim=dim)
    x, info = sample("pc", sde, gm, prior(sde, n, dim=dim, seed=3), make_grid(sde, 100),
                     generator=torch.Generator().manual_seed(4), corrector=corrector,
                     snr=snr)  # fmt: skip
    assert info.nfe == nfe
    ref = gm.sample(n, torch.Generator().manual_seed(7))
    se = ref.std(0) / n**0.5
    assert bool(((x.mean(0) - gm.mean).abs() < 4 * se).all()), (x.mean(0), gm.mean)
    torch.testing.assert_close(torch.cov(x.T), gm.covariance, rtol=0, atol=0.15)
    floor = sliced_w2(gm.sample(n, torch.Generator().manual_seed(8)), ref)
    assert sliced_w2(x, ref) < 1.6 * floor, (sliced_w2(x, ref), floor)


@pytest.mark.parametrize("sde_name", ["vp", "subvp", "ve"])
def test_pc_ald_law_converges_to_the_exact_marginal(sde_name: str) -> None:
    """PC (reverse diffusion + ALD) on a Gaussian target: exact law, error falls with N."""
    sde, t_end = SDES[sde_name], 0.05
    alpha, sigma = (float(u) for u in sde.marginal(torch.tensor(t_end, dtype=torch.float64)))
    a_T, s_T = (float(u) for u in sde.marginal(torch.tensor(sde.T, dtype=torch.float64)))
    gm = GaussianMixture([1.0], [[0.7]], [[0.3]], sde=sde)
    errors = []
    for n in (50, 100, 200):
        grid = torch.linspace(sde.T, t_end, n + 1, dtype=torch.float64)

        def run(x_T, noise, grid=grid):
            return sample("pc", sde, gm, x_T, grid, corrector="ald", snr=0.05,
                          noise_sampler=noise)[0]  # fmt: skip

        mean, var = affine_law(run, 2 * n, 0.7 * a_T, 0.3 * a_T**2 + s_T**2)
        errors.append(abs(mean - 0.7 * alpha) + abs(var - (0.3 * alpha**2 + sigma**2)))
    assert errors[-1] < 0.03 and errors[0] > errors[1] > errors[2], errors
    assert isinstance(sde, VESDE) or errors[0] / errors[2] > 3, errors
