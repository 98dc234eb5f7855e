"""DDPM and DDIM as proven discretizations: exact identities and first-order agreements.

* DDIM(eta = 0) == DPM-Solver-1 on the same grid (Lu et al. 2022, Sec. 4.1), VP/sub-VP/VE.
* DDIM(eta = 0) == PF-ODE Euler in the noise coordinates (sigma_t / alpha_t, x / alpha_t), and
  Heun / RK4 in those coordinates converge to the t-form's limit at their orders.
* DDIM(eta = 1) == DDPM ancestral with beta_tilde, given the same noise (Song et al. 2021a).
* DDPM ancestral, reverse diffusion and SMLD agree with reverse-SDE Euler–Maruyama to first
  order: one step with shared noise differs by O(h^2).
* DDIM inversion followed by DDIM sampling returns the data (first order in the step).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scoresde.samplers import (
    ddim_interpolate,
    ddim_invert,
    make_grid,
    sample_ddim,
    sample_ddpm,
    sample_dpm_solver,
    sample_euler_maruyama,
    sample_pf_euler,
    sample_pf_heun,
    sample_pf_rk4,
    sample_reverse_diffusion,
    sample_smld,
    slerp,
)

from .test_samplers_common import make_sdes, mixture, prior

SDES = make_sdes()


@pytest.mark.parametrize("sde_name", sorted(SDES))
@pytest.mark.parametrize("kind", ["uniform", "log_snr", "karras"])
def test_ddim_eta0_equals_dpm_solver_1(sde_name: str, kind: str) -> None:
    sde = SDES[sde_name]
    gm, x_T, grid = mixture(sde), prior(sde, 200), make_grid(sde, 13, kind)
    x_ddim, _ = sample_ddim(sde, gm, x_T, grid, eta=0.0)
    x_dpm, _ = sample_dpm_solver(sde, gm, x_T, grid, order=1)
    torch.testing.assert_close(x_ddim, x_dpm, rtol=0, atol=1e-10)


@pytest.mark.parametrize("sde_name", sorted(SDES))
@pytest.mark.parametrize("kind", ["uniform", "log_snr", "karras"])
def test_ddim_is_euler_in_the_noise_coordinates(sde_name: str, kind: str) -> None:
    sde = SDES[sde_name]
    gm, x_T, grid = mixture(sde), prior(sde, 200), make_grid(sde, 13, kind)
    x_ddim, _ = sample_ddim(sde, gm, x_T, grid, eta=0.0, denoise=False)
    x_euler, _ = sample_pf_euler(sde, gm, x_T, grid, coords="noise", denoise=False)
    torch.testing.assert_close(x_euler, x_ddim, rtol=0, atol=1e-10)
    x_t, _ = sample_pf_euler(sde, gm, x_T, grid, denoise=False)  # the t-form is another method
    assert float((x_t - x_ddim).abs().max()) > 1e-3


@pytest.mark.parametrize("sde_name", sorted(SDES))
@pytest.mark.parametrize(("sampler", "order"), [(sample_pf_heun, 2), (sample_pf_rk4, 4)])
def test_noise_coordinates_converge_at_the_solvers_order(sampler, order: int, sde_name) -> None:
    sde = SDES[sde_name]
    gm, x_T = mixture(sde), prior(sde, 200)
    ref, _ = sample_pf_rk4(sde, gm, x_T, make_grid(sde, 800, "log_snr"), denoise=False)
    errs = [
        float((sampler(sde, gm, x_T, make_grid(sde, n, "log_snr"), coords="noise",
                       denoise=False)[0] - ref).abs().mean())
        for n in (20, 40)
    ]  # fmt: skip
    assert errs[1] < errs[0] * 2.0 ** (-order + 0.6), errs


def test_unknown_coords_is_refused() -> None:
    sde = SDES["vp"]
    with pytest.raises(ValueError, match="coords 'x'.*expected one of"):
        sample_pf_heun(sde, mixture(sde), prior(sde, 4), make_grid(sde, 3), coords="x")


@pytest.mark.parametrize("kind", ["uniform", "quadratic", "log_snr"])
def test_ddim_eta1_equals_ddpm_with_beta_tilde(kind: str) -> None:
    sde = SDES["vp"]
    gm, x_T, grid = mixture(sde), prior(sde, 200), make_grid(sde, 25, kind)
    x_ddim, _ = sample_ddim(sde, gm, x_T, grid, eta=1.0, generator=torch.Generator().manual_seed(7))
    x_ddpm, _ = sample_ddpm(sde, gm, x_T, grid, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(x_ddim, x_ddpm, rtol=0, atol=1e-10)


def _one_step_gap(sampler, sde_name: str, t: float, h: float, **kw) -> float:
    """max |sampler - EM| after one step from t to t - h with the same noise."""
    sde = SDES[sde_name]
    gm = mixture(sde)
    x = prior(sde, 100) * float(sde.marginal(t)[1]) + 0.3
    grid = torch.tensor([t, t - h], dtype=torch.float64)
    out = [f(sde, gm, x, grid, generator=torch.Generator().manual_seed(1), **k)[0]
           for f, k in ((sampler, kw), (sample_euler_maruyama, {}))]  # fmt: skip
    return float((out[0] - out[1]).abs().max())


@pytest.mark.parametrize(
    ("sampler", "sde_name", "kw"),
    [
        (sample_ddpm, "vp", {}),
        (sample_ddpm, "vp", {"variance": "beta"}),
        (sample_reverse_diffusion, "vp", {}),
        (sample_reverse_diffusion, "ve", {}),
        (sample_smld, "ve", {}),
    ],
)
def test_ancestral_steps_agree_with_euler_maruyama_to_first_order(sampler, sde_name, kw) -> None:
    hs = [4e-3, 2e-3, 1e-3, 5e-4]
    gaps = [_one_step_gap(sampler, sde_name, 0.5, h, **kw) for h in hs]
    slope = np.polyfit(np.log(hs), np.log(gaps), 1)[0]
    # A local error O(h^2) (z enters with the same sqrt(h) scale) is agreement to first order.
    assert slope > 1.4, (gaps, slope)


@pytest.mark.parametrize("sde_name", sorted(SDES))
def test_ddim_inversion_round_trip(sde_name: str) -> None:
    sde = SDES[sde_name]
    gm = mixture(sde)
    x0 = gm.sample(100, torch.Generator().manual_seed(0))
    errs = []
    for n in (100, 400):
        grid = make_grid(sde, n, "log_snr")
        z, info = ddim_invert(sde, gm, x0, grid)
        assert info.nfe == n and z.shape == x0.shape
        x_rec, _ = sample_ddim(sde, gm, z, grid)
        errs.append(float((x_rec - x0).abs().mean()))
    # first order: 4x the steps, 1/4 the error
    assert errs[1] < 2e-2 and errs[1] < errs[0] / 3, errs


def test_slerp_endpoints_norm_and_interpolation() -> None:
    g = torch.Generator().manual_seed(0)
    z0, z1 = (
        torch.randn(5, 3, generator=g, dtype=torch.float64),
        torch.randn(5, 3, generator=g, dtype=torch.float64),
    )
    torch.testing.assert_close(slerp(z0, z1, 0.0), z0)
    torch.testing.assert_close(slerp(z0, z1, 1.0), z1)
    u0, u1 = z0 / z0.norm(dim=1, keepdim=True), z1 / z1.norm(dim=1, keepdim=True)
    torch.testing.assert_close(slerp(u0, u1, 0.3).norm(dim=1), torch.ones(5, dtype=torch.float64))
    torch.testing.assert_close(slerp(z0, z0, 0.5), z0)
    sde = SDES["vp"]
    out = ddim_interpolate(sde, mixture(sde), z0[:, :2], z1[:, :2], torch.tensor([0.0, 0.5, 1.0]),
                           make_grid(sde, 20, "log_snr"))  # fmt: skip
    assert out.shape == (3, 5, 2) and bool(torch.isfinite(out).all())
