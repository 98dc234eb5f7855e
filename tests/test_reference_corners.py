"""Sampler corners, each against a closed form or a computation written in the test.

* DDIM(0 < eta < 1): its exact law on a Gaussian target converges to p_eps; DDIM(eta = 1) is
  SMLD on VE and DDPM on VP, step for step with the same noise (Song, Meng & Ermon 2021, Eq. 16).
* The Tweedie ``denoise`` value is E[x_0 | x_t] of the mixture (closed form in ``analytic``).
* ``pf_adaptive`` reaches scipy's DOP853 solution with a nonlinear (mixture) score.
* The discrete-DDPM adapter + ``sample_ddpm`` reproduce Ho et al. (2020), Algorithm 2, written
  out here, with the same noise.
* Inpainting fills the unknown coordinate from the mixture's closed-form conditional.
* float32 runs agree with float64 runs; convergence orders hold under the cosine schedule.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scoresde import VPSDE, GaussianMixture
from scoresde.parameterization import from_discrete_eps_model
from scoresde.samplers import SAMPLERS, InpaintHook, make_grid, sample

from .reference import affine_law, pf_ode_scipy
from .test_samplers_common import MEANS, VARS, WEIGHTS, make_sdes, mixture, prior

SDES = make_sdes()


def _gaussian_law(name, sde, n, t_end=0.05, **opts):
    gm = GaussianMixture([1.0], [[0.7]], [[0.3]], sde=sde)
    a_T, s_T = (float(v) for v in sde.marginal(torch.tensor(sde.T, dtype=torch.float64)))
    grid = torch.linspace(sde.T, t_end, n + 1, dtype=torch.float64)

    def run(x_T, noise):
        return sample(name, sde, gm, x_T, grid, noise_sampler=noise, **opts)[0]

    mean, var = affine_law(run, n, 0.7 * a_T, 0.3 * a_T**2 + s_T**2)
    alpha, sigma = (float(v) for v in sde.marginal(torch.tensor(t_end, dtype=torch.float64)))
    return abs(mean - 0.7 * alpha) + abs(var - (0.3 * alpha**2 + sigma**2))


@pytest.mark.parametrize("sde_name", ["vp", "subvp", "ve"])
@pytest.mark.parametrize("eta", [0.3, 0.7])
def test_ddim_with_intermediate_eta_converges_to_the_marginal(sde_name: str, eta: float) -> None:
    errors = [_gaussian_law("ddim", SDES[sde_name], n, eta=eta) for n in (50, 100, 200)]
    assert errors[-1] < 0.02 and all(1.6 < a / b < 2.4 for a, b in zip(errors, errors[1:])), errors


@pytest.mark.parametrize(("sde_name", "other"), [("ve", "smld"), ("vp", "ddpm")])
def test_ddim_eta_one_is_ancestral_sampling_step_for_step(sde_name: str, other: str) -> None:
    sde = SDES[sde_name]
    gm, x_T, grid = mixture(sde), prior(sde, 32, seed=2), make_grid(sde, 25)
    z = torch.randn(25, 32, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)

    def run(name, **kw):
        it = iter(z)
        return sample(name, sde, gm, x_T, grid, return_trajectory=True,
                      noise_sampler=lambda x, t, tn: next(it), **kw)[1].trajectory  # fmt: skip

    torch.testing.assert_close(run("ddim", eta=1.0), run(other), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", ["euler_maruyama", "ddim", "dpm_solver_2"])
def test_denoise_returns_the_posterior_mean_of_the_mixture(name: str) -> None:
    sde = SDES["vp"]
    gm, x_T, grid = mixture(sde), prior(sde, 50, seed=4), make_grid(sde, 20)
    t_end = grid[-1]
    x, info = sample(name, sde, gm, x_T, grid, generator=torch.Generator().manual_seed(5))
    x0, info0 = sample(name, sde, gm, x_T, grid, generator=torch.Generator().manual_seed(5),
                       denoise=True)  # fmt: skip
    assert info0.nfe == info.nfe + 1
    torch.testing.assert_close(x0, gm.denoise(x, t_end.expand(50)), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("sde_name", ["vp", "subvp", "ve"])
def test_pf_adaptive_matches_scipy_with_a_nonlinear_score(sde_name: str) -> None:
    sde = SDES[sde_name]
    x_T = prior(sde, 100, seed=6)
    ref = pf_ode_scipy(sde, mixture(sde), x_T, sde.T, sde.eps)
    grid = torch.tensor([sde.T, sde.eps], dtype=torch.float64)
    errors = {}
    for tol in (1e-5, 1e-8):
        x, _ = sample("pf_adaptive", sde, mixture(sde), x_T, grid, rtol=tol, atol=tol)
        errors[tol] = float((x - ref).abs().max())
    assert errors[1e-8] < 1e-5 and errors[1e-8] < errors[1e-5], errors


def test_discrete_ddpm_adapter_and_sample_ddpm_are_ho_algorithm_2() -> None:
    N = 50
    betas = torch.linspace(1e-3, 0.2, N, dtype=torch.float64)

    def eps_model(x, n):  # any nonlinear eps-model over integer steps
        assert n.dtype == torch.long
        return torch.tanh(x) * ((n[:, None] + 1) / N) + 0.1 * torch.sin(3 * x)

    sde, score = from_discrete_eps_model(eps_model, betas)
    x_T = torch.randn(16, 2, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    z = torch.randn(N - 1, 16, 2, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    # Ho et al. (2020), Alg. 2 (0-indexed steps n = N-1..0), posterior variance beta_tilde
    ab = torch.cumprod(1 - betas, 0)
    x = x_T.clone()
    for n in range(N - 1, -1, -1):
        e = eps_model(x, torch.full((16,), n, dtype=torch.long))
        x = (x - betas[n] / (1 - ab[n]).sqrt() * e) / (1 - betas[n]).sqrt()
        if n > 0:
            x = x + ((1 - ab[n - 1]) / (1 - ab[n]) * betas[n]).sqrt() * z[N - 1 - n]
    grid = (torch.arange(N, 0, -1, dtype=torch.float64)) / N  # t_n = (n + 1) / N
    it = iter(z)
    ours, info = sample("ddpm", sde, score, x_T, grid, denoise=True,
                        noise_sampler=lambda y, t, tn: next(it))  # fmt: skip
    assert info.nfe == N
    torch.testing.assert_close(ours, x, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("known", [-1.0, 1.5])
def test_inpainting_fills_from_the_closed_form_conditional(known: float) -> None:
    """With x_0 known, the mixture's conditional of x_1 is sum_k r_k N(mu_k1, v_k1) with
    r_k proportional to w_k N(known; mu_k0, v_k0). Replacement-based inpainting (Song et al.
    2021, App. I.2) is approximate: its mean and variance must land within 0.1 / 40%."""
    sde, n = SDES["vp"], 4000
    gm = mixture(sde)
    w, mu, v = (torch.tensor(a, dtype=torch.float64) for a in (WEIGHTS, MEANS, VARS))
    r = torch.softmax(torch.log(w) - 0.5 * (known - mu[:, 0]) ** 2 / v[:, 0]
                      - 0.5 * torch.log(v[:, 0]), 0)  # fmt: skip
    mean = float((r * mu[:, 1]).sum())
    var = float((r * (v[:, 1] + mu[:, 1] ** 2)).sum()) - mean**2
    x_known = torch.tensor([[known, 0.0]], dtype=torch.float64).expand(n, 2)
    mask = torch.tensor([True, False]).expand(n, 2)
    grid = make_grid(sde, 200)
    x, info = sample("euler_maruyama", sde, gm, prior(sde, n), grid,
                     generator=torch.Generator().manual_seed(1), return_trajectory=True,
                     hook=InpaintHook(sde, x_known, mask))  # fmt: skip
    # along the path the known coordinate is a draw from p_0t(x_t | known) = N(alpha_t known,
    # sigma_t^2) (the forward kernel, Song et al. 2021 Eq. 29)
    for i in (50, 100, 150, 200):
        alpha, sigma = (float(u) for u in sde.marginal(grid[i]))
        path = info.trajectory[i, :, 0]
        assert abs(float(path.mean()) - alpha * known) < 4 * sigma / n**0.5, (i, path.mean())
        assert abs(float(path.var()) / sigma**2 - 1) < 4 * (2 / n) ** 0.5, (i, path.var())
    assert abs(float(x[:, 1].mean()) - mean) < 0.1, (float(x[:, 1].mean()), mean)
    assert abs(float(x[:, 1].var()) / var - 1) < 0.4, (float(x[:, 1].var()), var)


@pytest.mark.parametrize("name", ["euler_maruyama", "ddpm", "ddim", "pf_rk4", "dpm_solver_3",
                                  "dpm_solver_pp_2m", "pc"])  # fmt: skip
def test_float32_runs_agree_with_float64(name: str) -> None:
    sde = SDES["vp"]
    x_T = prior(sde, 200, seed=9)
    grid = make_grid(sde, 40, "log_snr" if name.startswith("dpm") else "uniform")
    z = torch.randn(120, 200, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    # pc: the unadjusted corrector (an accept/reject decision may flip with the dtype)
    opts = {"corrector": "langevin_ula"} if name == "pc" else {}

    def run(dtype):
        it = iter(z)
        x, _ = sample(name, sde, mixture(sde), x_T.to(dtype), grid, **opts,
                      noise_sampler=lambda x, t, tn: next(it).to(dtype))  # fmt: skip
        return x.double()

    x64 = run(torch.float64)
    diff = float((run(torch.float32) - x64).abs().max())
    assert diff < 1e-4 * max(1.0, float(x64.abs().max())), diff


COSINE_CASES = [n for n, spec in sorted(SAMPLERS.items()) if not spec.stochastic and spec.order]
STEPS = {1: (64, 128, 256), 2: (32, 64, 128), 3: (24, 48, 96), 4: (24, 48, 96)}


@pytest.mark.parametrize("name", COSINE_CASES)
def test_ode_orders_under_the_cosine_schedule(name: str) -> None:
    sde = VPSDE(schedule="cosine", eps=1e-3)
    gm, x_T = mixture(sde), prior(sde, 100, seed=11)
    ref = _cosine_reference(x_T)
    spec = SAMPLERS[name]
    steps, kind = STEPS[int(spec.order)], "uniform" if spec.order_variable == "t" else "log_snr"
    errors = [float((sample(name, sde, gm, x_T, make_grid(sde, n, kind))[0] - ref).abs().mean())
              for n in steps]  # fmt: skip
    slope = float(-np.polyfit(np.log(steps), np.log(errors), 1)[0])
    assert abs(slope - spec.order) < 0.3 and max(errors) < 0.05, (errors, slope)


_COSINE_REF: dict[str, torch.Tensor] = {}


def _cosine_reference(x_T: torch.Tensor) -> torch.Tensor:
    if "ref" not in _COSINE_REF:
        sde = VPSDE(schedule="cosine", eps=1e-3)
        _COSINE_REF["ref"] = pf_ode_scipy(sde, mixture(sde), x_T, sde.T, sde.eps)
    return _COSINE_REF["ref"]
