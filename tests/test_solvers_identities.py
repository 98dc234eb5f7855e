"""Identities, exact NFE, stochastic marginals and input validation of the modern fast solvers.

* UniP-1 without the corrector, DPM-Solver++(1M) and DEIS/iPNDM with one node are DDIM(eta = 0).
* EDM with S_churn = 0 is Heun's method in sigma = sigma_t / alpha_t on the scaled state
  (explicit reference below), with Euler at the last step.
* iPNDM's weights on a rho-uniform grid are PNDM's Adams–Bashforth weights.
* DPM-Solver++(2M) SDE and churned EDM reproduce the exact mixture's mean and covariance on fine
  grids (Monte Carlo, 5 standard errors), and draw per-sample noise from ``seeds``.
"""

from __future__ import annotations

import pytest
import torch

from scoresde import VESDE
from scoresde.samplers import (
    SAMPLERS,
    expected_nfe,
    make_grid,
    sample,
    sample_ddim,
    sample_dpm_solver_pp,
    sample_dpm_solver_pp_2m_sde,
    sample_edm,
    sample_unipc,
)
from scoresde.samplers.deis import eps_ab_weights, sample_deis, sample_ipndm
from scoresde.samplers.multistep import order_plan, phi

from .test_samplers_common import make_sdes, mixture, prior

SDES = make_sdes()
NEW = ["dpm_solver_pp_3m", "dpm_solver_pp_2m_sde", "unipc", "deis", "ipndm", "edm"]


@pytest.mark.parametrize("sde_name", sorted(SDES))
@pytest.mark.parametrize("kind", ["log_snr", "karras", "uniform"])
def test_first_order_members_equal_ddim(sde_name: str, kind: str) -> None:
    sde = SDES[sde_name]
    gm, x_T, grid = mixture(sde), prior(sde, 64), make_grid(sde, 11, kind)
    x_ddim, _ = sample_ddim(sde, gm, x_T, grid)
    for fn, kw in ((sample_unipc, {"order": 1, "corrector": False}),
                   (sample_dpm_solver_pp, {"order": 1}), (sample_deis, {"order": 1}),
                   (sample_ipndm, {"order": 1})):  # fmt: skip
        torch.testing.assert_close(fn(sde, gm, x_T, grid, **kw)[0], x_ddim, rtol=0, atol=1e-10)


def _heun_in_sigma(sde, gm, x_T: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Reference: Heun on d x~/d sigma = (x~ - D(x~; sigma)) / sigma, x~ = x / alpha."""
    alpha, sig_t = sde.marginal(grid)
    sig = sig_t / alpha
    y = x_T / alpha[0]

    def field(y: torch.Tensor, k: int) -> torch.Tensor:
        t = grid[k].expand(y.shape[0])
        return (y - gm.denoise(alpha[k] * y, t)) / sig[k]  # D = E[x0 | x_t]

    n = grid.numel() - 1
    for i in range(n):
        d = field(y, i)
        y_next = y + (sig[i + 1] - sig[i]) * d
        if i < n - 1:
            y_next = y + (sig[i + 1] - sig[i]) * 0.5 * (d + field(y_next, i + 1))
        y = y_next
    return alpha[-1] * y


@pytest.mark.parametrize("sde_name", sorted(SDES))
@pytest.mark.parametrize("kind", ["karras", "log_snr"])
def test_edm_without_churn_is_heun_in_sigma(sde_name: str, kind: str) -> None:
    sde = SDES[sde_name]
    gm, x_T, grid = mixture(sde), prior(sde, 64), make_grid(sde, 9, kind)
    x, info = sample_edm(sde, gm, x_T, grid, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(x, _heun_in_sigma(sde, gm, x_T, grid), rtol=0, atol=1e-10)
    assert info.nfe == 2 * 9 - 1


def test_ipndm_weights_are_pndm_on_a_rho_uniform_grid() -> None:
    sde = SDES["vp"]
    rho_T, rho_e = torch.exp(
        -0.5 * sde.log_snr(torch.tensor([sde.T, sde.eps], dtype=torch.float64))
    )
    rho = torch.linspace(float(rho_T), float(rho_e), 7, dtype=torch.float64)
    grid = sde.t_from_log_snr(-2 * torch.log(rho))
    w = eps_ab_weights(sde, grid, [1, 2, 3, 4, 4, 4], "rho")
    pndm = [[24.0], [36.0, -12.0], [46.0, -32.0, 10.0], [55.0, -59.0, 37.0, -9.0]]
    for wi, want in zip(w, pndm + pndm[-1:] * 2):
        torch.testing.assert_close(
            wi * 24 / (rho[1] - rho[0]), torch.tensor(want, dtype=torch.float64)
        )


def test_phi_functions_are_accurate_near_zero_and_far() -> None:
    z = torch.tensor([-3.0, -0.999, -1e-6, 0.0, 1e-8, 0.5, 2.0], dtype=torch.float64)
    u = torch.linspace(0, 1, 20001, dtype=torch.float64)
    for k in (1, 2, 3, 4):
        integrand = torch.exp((1 - u[None]) * z[:, None]) * u[None] ** (k - 1)
        fact = torch.exp(torch.lgamma(torch.tensor(float(k))))
        want = torch.trapezoid(integrand, u, dim=1) / fact
        torch.testing.assert_close(phi(k, z), want, rtol=1e-7, atol=1e-12)


def test_order_plan_warm_up_and_lower_order_final() -> None:
    assert order_plan(6, 3, False) == [1, 2, 3, 3, 3, 3]
    assert order_plan(6, 3, True) == [1, 2, 3, 3, 2, 1]
    assert order_plan(20, 3, True) == [1, 2] + [3] * 18  # only short grids are lowered


@pytest.mark.parametrize("name", NEW)
def test_nfe_is_counted_exactly_and_targetable(name: str) -> None:
    sde = SDES["vp"]
    x, info = sample(name, sde, mixture(sde), prior(sde, 8), 9)  # with the final Tweedie step
    # EDM spends 2N - 1 + 1 (even): 8 of 9; the others exactly 9
    assert info.nfe == (8 if name == "edm" else 9) == expected_nfe(name, info.n_steps, denoise=True)


def _moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x.mean(0), torch.cov(x.T)


@pytest.mark.parametrize("sde_name", sorted(SDES))
@pytest.mark.parametrize(("fn", "kw"), [(sample_dpm_solver_pp_2m_sde, {}),
                                        (sample_edm, {"S_churn": 30.0})])  # fmt: skip
def test_stochastic_solvers_match_the_exact_mean_and_covariance(sde_name, fn, kw) -> None:
    sde = SDES[sde_name]
    gm, n = mixture(sde), 6000
    x_T = gm.marginal_mixture(sde.T).sample(n, torch.Generator().manual_seed(1))
    x, _ = fn(sde, gm, x_T, make_grid(sde, 150, "log_snr"),
              generator=torch.Generator().manual_seed(2), **kw)  # fmt: skip
    exact = gm.marginal_mixture(sde.eps)
    m, c = _moments(x)
    ref = exact.sample(200_000, torch.Generator().manual_seed(3))
    m_ref, c_ref = _moments(ref)
    se_m = torch.sqrt(torch.diagonal(c_ref) / n)
    assert bool(((m - m_ref).abs() < 5 * se_m).all()), (m, m_ref)
    se_c = torch.sqrt((torch.diagonal(c_ref)[:, None] * torch.diagonal(c_ref)[None] + c_ref**2) / n)
    assert bool(((c - c_ref).abs() < 5 * se_c).all()), (c, c_ref)


@pytest.mark.parametrize("name", ["dpm_solver_pp_2m_sde", "edm"])
def test_per_sample_seeds_make_samples_batch_independent(name: str) -> None:
    sde, kw = SDES["vp"], ({"S_churn": 10.0} if name == "edm" else {})
    gm, x_T, grid = mixture(sde), prior(sde, 6), make_grid(sde, 8, "log_snr")
    full, _ = sample(name, sde, gm, x_T, grid, seeds=list(range(6)), **kw)
    part, _ = sample(name, sde, gm, x_T[2:4], grid, seeds=[2, 3], **kw)
    torch.testing.assert_close(full[2:4], part, rtol=0, atol=1e-12)
    other, _ = sample(name, sde, gm, x_T, grid, seeds=list(range(10, 16)), **kw)
    assert not torch.allclose(full, other)


def test_edm_churn_stays_inside_the_sde() -> None:
    """sigma_hat is capped at sigma(T): the score is never queried above T."""
    sde, seen = VESDE(sigma_max=10.0, eps=1e-3), []
    gm = mixture(sde)

    def score(x, t):
        seen.append(float(t.max()))
        return gm.score(x, t)

    sample_edm(sde, score, prior(sde, 4), make_grid(sde, 6, "karras"), S_churn=80.0,
               generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert max(seen) <= sde.T + 1e-12


@pytest.mark.parametrize(
    ("call", "err", "msg"),
    [
        (
            lambda s, g, x, t: sample_unipc(s, g, x, t, order=4),
            ValueError,
            "expected order in 1, 2, 3",
        ),
        (
            lambda s, g, x, t: sample_unipc(s, g, x, t, variant="bh3"),
            ValueError,
            "expected variant",
        ),
        (
            lambda s, g, x, t: sample_unipc(s, g, x, t, corrector=1),
            TypeError,
            "corrector to be a bool",
        ),
        (
            lambda s, g, x, t: sample_dpm_solver_pp(s, g, x, t, order=2.0),
            ValueError,
            "received 2.0",
        ),
        (lambda s, g, x, t: sample_deis(s, g, x, t, order=5), ValueError, "1, 2, 3, 4"),
        (lambda s, g, x, t: sample_ipndm(s, g, x, t, lower_order_final="yes"), TypeError, "bool"),
        (lambda s, g, x, t: sample_edm(s, g, x, t, S_churn=-1.0), ValueError, "S_churn >= 0"),
        (lambda s, g, x, t: sample_edm(s, g, x, t, S_tmin=2.0, S_tmax=1.0), ValueError, "S_tmin"),
        (lambda s, g, x, t: sample_edm(s, g, x, t, S_noise="1"), TypeError, "S_noise to be a real"),
        (lambda s, g, x, t: sample_dpm_solver_pp_2m_sde(s, g, x, t, bogus=1), TypeError, "bogus"),
    ],
)
def test_invalid_options_raise_with_expected_and_received(call, err, msg) -> None:
    sde = SDES["vp"]
    with pytest.raises(err, match=msg):
        call(sde, mixture(sde), prior(sde, 4), make_grid(sde, 5, "log_snr"))


def test_registry_declares_the_new_solvers() -> None:
    for name in NEW:
        assert name in SAMPLERS
    assert (
        SAMPLERS["dpm_solver_pp_2m_sde"].stochastic and SAMPLERS["dpm_solver_pp_2m_sde"].weak_order
    )
    assert expected_nfe("edm", 7) == 13


@pytest.mark.parametrize("name", NEW)
def test_float32_runs_agree_with_float64(name: str) -> None:
    """Coefficients are computed in float64 and cast: a float32 run matches to float32 accuracy."""
    sde = SDES["vp"]
    gm, x64 = mixture(sde), prior(sde, 16)
    grid = make_grid(sde, 12, "quadratic")
    runs = [sample(name, sde, gm, x, grid, seeds=list(range(16)))[0] for x in (x64, x64.float())]
    assert runs[1].dtype == torch.float32
    torch.testing.assert_close(runs[1].double(), runs[0], rtol=0, atol=2e-3)
