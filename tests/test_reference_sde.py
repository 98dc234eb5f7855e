"""Stochastic samplers and the reverse SDE against references that share no code with them.

* torchsde's Euler and the built-in Euler–Maruyama take identical steps on one Brownian path
  (float64, step by step), and torchsde's samples follow the exact mixture marginal p_t.
* Weak order, asserted: on a Gaussian target the score is linear, so every SDE sampler's output is
  affine in (x_T, z_1, ..., z_N) and its exact law is read off probe runs (no Monte Carlo);
  |E[x^2] - E_exact[x^2]| must fall as N^(-weak_order).
* ``sde.reverse(score)`` (its drift and its ``discretize`` chain, Eq. 46) and
  ``sde.probability_flow(score)`` transport p_T to the exact p_t (Song et al. 2021, Eqs. 6 and
  13), integrated here by hand and by scipy.
* ``VPSDE.discretize`` is the DDPM chain: its alpha_bar tends to the continuous alpha_t^2.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchsde

from scoresde import VESDE, VPSDE, GaussianMixture, SubVPSDE
from scoresde.samplers import SAMPLERS, make_grid, sample

from .reference import RecordingPath, affine_law, ode_scipy, schedule_coefs
from .test_samplers_common import make_sdes, mixture, prior

SDES = make_sdes()
M, V = 0.7, 0.3  # the 1-D Gaussian target N(M, V)


def _bm(sde, x: torch.Tensor, seed: int):
    return torchsde.BrownianInterval(t0=-sde.T, t1=-sde.eps, size=tuple(x.shape),
                                     dtype=x.dtype, entropy=seed)  # fmt: skip


@pytest.mark.parametrize("sde_name", sorted(SDES))
def test_torchsde_euler_equals_builtin_euler_maruyama_step_by_step(sde_name: str) -> None:
    """Same increments of one Brownian path: the two agree to float64 round-off at every step
    (up to torchsde's step being the grid step times 1 + 1e-9)."""
    sde = SDES[sde_name]
    gm, x_T = mixture(sde), prior(sde, 64, seed=1)
    grid, path = make_grid(sde, 40), RecordingPath(_bm(sde, x_T, 3))
    theirs = sample("torchsde", sde, gm, x_T, grid, bm=path, return_trajectory=True)[1].trajectory
    assert len(path.increments) == 40  # one increment per grid step, in order
    ours = sample("euler_maruyama", sde, gm, x_T, grid, return_trajectory=True,
                  noise_sampler=path.noise)[1].trajectory  # fmt: skip
    assert ours.shape == theirs.shape == (41, 64, 2)
    scale = float(ours.abs().max())
    torch.testing.assert_close(theirs, ours, rtol=0, atol=1e-8 * scale)


@pytest.mark.parametrize("sde_name", ["vp", "ve"])
def test_torchsde_samples_follow_the_exact_marginal(sde_name: str) -> None:
    sde = SDES[sde_name]
    t_mid, n = 0.3, 4000
    p_T, p_mid = mixture(sde).marginal_mixture(sde.T), mixture(sde).marginal_mixture(t_mid)
    x_T = p_T.sample(n, torch.Generator().manual_seed(0))
    grid = torch.linspace(sde.T, t_mid, 101, dtype=torch.float64)
    x, _ = sample(
        "torchsde", sde, mixture(sde), x_T, grid, generator=torch.Generator().manual_seed(1)
    )
    se = p_mid.covariance.diagonal().sqrt() / n**0.5
    assert bool(((x.mean(0) - p_mid.mean).abs() < 4 * se).all()), (x.mean(0), p_mid.mean)
    # var of a sample variance is about 2 var^2 / n (+ kurtosis); 4 SE + the O(h) EM bias
    rel = (x.var(0) / p_mid.covariance.diagonal() - 1).abs()
    assert bool((rel < 4 * (3 / n) ** 0.5 + 0.02).all()), rel
    # the mixture's log-density: cross-entropy equals the exact entropy within Monte Carlo error
    ref = p_mid.sample(n, torch.Generator().manual_seed(2))
    ce, h = -p_mid.log_prob(x), -p_mid.log_prob(ref)
    assert abs(float(ce.mean() - h.mean())) < 4 * float((ce.var() / n + h.var() / n).sqrt())


def gaussian(sde) -> GaussianMixture:
    return GaussianMixture([1.0], [[M]], [[V]], sde=sde)


def exact_moments(sde, t: float) -> tuple[float, float]:
    alpha, sigma = (float(v) for v in sde.marginal(torch.tensor(t, dtype=torch.float64)))
    return alpha * M, alpha**2 * V + sigma**2


def sampler_law(name: str, sde, n: int, t_end: float, **opts) -> tuple[float, float]:
    """Exact (mean, var) of sampler ``name`` on n uniform steps from exact p_T draws to t_end."""
    grid = torch.linspace(sde.T, t_end, n + 1, dtype=torch.float64)
    m_T, v_T = exact_moments(sde, sde.T)

    def run(x_T: torch.Tensor, noise) -> torch.Tensor:
        return sample(name, sde, gaussian(sde), x_T, grid, noise_sampler=noise, **opts)[0]

    return affine_law(run, 2 * n, m_T, v_T)


WEAK = [(n, s) for n, spec in sorted(SAMPLERS.items()) if spec.weak_order and n != "torchsde"
        for s in ("vp", "subvp", "ve") if spec.supports(SDES[s])]  # fmt: skip


@pytest.mark.parametrize(("name", "sde_name"), WEAK)
def test_weak_order_on_a_gaussian_target(name: str, sde_name: str) -> None:
    sde, t_end, steps = SDES[sde_name], 0.05, (32, 64, 128, 256)
    m, v = exact_moments(sde, t_end)
    errors = []
    for n in steps:
        mean, var = sampler_law(name, sde, n, t_end)
        errors.append(abs(mean**2 + var - (m**2 + v)))
    slope = float(-np.polyfit(np.log(steps), np.log(errors), 1)[0])
    declared = SAMPLERS[name].weak_order
    if sde_name == "ve" and name == "euler_maruyama":  # f = 0, linear score: EM is 2nd order here
        assert slope > declared - 0.3, (errors, slope)
    else:
        assert abs(slope - declared) < 0.3, (errors, slope)
    assert errors[-1] < 0.02, errors


@pytest.mark.parametrize("sde_name", ["vp", "subvp", "ve"])
def test_reverse_sde_object_transports_p_T_to_p_t(sde_name: str) -> None:
    """Euler–Maruyama written here on ``sde.reverse(score)`` lands on the exact p_t (O(h))."""
    sde = SDES[sde_name]
    rev, t_end = sde.reverse(gaussian(sde)), 0.1
    m, v = exact_moments(sde, t_end)
    errors = []
    for n in (100, 200):
        grid = torch.linspace(sde.T, t_end, n + 1, dtype=torch.float64)

        def run(x, noise, grid=grid):
            for t, t_next in zip(grid[:-1], grid[1:], strict=True):
                dt = float(t_next - t)
                tt = t.expand(x.shape[0])
                x = (
                    x
                    + rev.drift(x, tt) * dt
                    + rev.diffusion(t) * (-dt) ** 0.5 * noise(x, t, t_next)
                )
            return x

        mean, var = affine_law(run, n, *exact_moments(sde, sde.T))
        errors.append(abs(mean - m) + abs(var - v))
    assert errors[1] < 0.02 * v and errors[0] / errors[1] > 1.6, errors  # order >= 1 in h


@pytest.mark.parametrize("sde_name", ["vp", "subvp", "ve"])
def test_reverse_chain_of_the_reverse_object_lands_on_p_t(sde_name: str) -> None:
    """x <- x + rev_f + G z with (rev_f, G) = ``sde.reverse(score).discretize`` (Eq. 46) runs
    the forward chain (DDPM, SMLD or EM) backwards: its exact law tends to p_t at O(h)."""
    sde = SDES[sde_name]
    rev, t_end = sde.reverse(gaussian(sde)), 0.1
    m, v = exact_moments(sde, t_end)
    errors = []
    for n in (100, 200):
        grid = torch.linspace(sde.T, t_end, n + 1, dtype=torch.float64)

        def run(x, noise, grid=grid):
            for t, t_next in zip(grid[:-1], grid[1:], strict=True):
                rev_f, G = rev.discretize(x, t.expand(x.shape[0]), float(t - t_next))
                x = x + rev_f + G[:, None] * noise(x, t, t_next)
            return x

        mean, var = affine_law(run, n, *exact_moments(sde, sde.T))
        errors.append(abs(mean - m) + abs(var - v))
    assert errors[1] < 0.04 * v and errors[0] / errors[1] > 1.6, errors


@pytest.mark.parametrize("sde_name", ["vp", "subvp", "ve"])
def test_probability_flow_object_is_the_exact_transport_map(sde_name: str) -> None:
    """For a Gaussian target the PF-ODE map is x_t = m_t + sqrt(v_t / v_T) (x_T - m_T)."""
    sde = SDES[sde_name]
    pf, t_end = sde.probability_flow(gaussian(sde)), 0.1
    x_T = (
        torch.linspace(-3, 3, 7, dtype=torch.float64)[:, None] * exact_moments(sde, sde.T)[1] ** 0.5
    )
    x = ode_scipy(pf.drift, x_T, sde.T, t_end)
    (m_T, v_T), (m, v) = exact_moments(sde, sde.T), exact_moments(sde, t_end)
    torch.testing.assert_close(x, m + (v / v_T) ** 0.5 * (x_T - m_T), rtol=1e-8, atol=1e-8)


def test_ddpm_chain_alpha_bar_tends_to_the_continuous_alpha_squared() -> None:
    """prod (1 - beta_i) of ``VPSDE.discretize`` (read off f and G) -> alpha_T^2: the error of
    its log is O(1/N) (left Riemann sum of beta plus sum beta_i^2 / 2)."""
    sde = VPSDE()
    x = torch.ones(1, 1, dtype=torch.float64)
    target = float(sde.marginal(torch.tensor(1.0, dtype=torch.float64))[0] ** 2)
    errors = []
    for n in (200, 400, 800):
        mean, var = 1.0, 0.0
        for i in range(n):  # forward chain x <- x + f + G z from t_i = i / n
            f, G = sde.discretize(x, torch.tensor([i / n], dtype=torch.float64), 1.0 / n)
            keep = 1 + float(f)  # sqrt(1 - beta_i)
            mean, var = keep * mean, keep**2 * var + float(G) ** 2
            assert abs(keep**2 + float(G) ** 2 - 1) < 1e-12  # variance preserving
        errors.append(abs(np.log(mean**2 / target)))
        assert abs(var - (1 - mean**2)) < 1e-12
    assert errors[2] < 0.3 and all(1.8 < a / b < 2.2 for a, b in zip(errors, errors[1:])), errors


@pytest.mark.parametrize("sde", [SubVPSDE(), VESDE(sigma_max=10.0)], ids=["subvp", "ve"])
def test_schedule_coefs_reference_agrees_with_the_sde(sde) -> None:
    """The tests' autograd reference for a(t), g^2(t) is itself right (closed-form check)."""
    t = torch.linspace(0.05, 0.95, 9, dtype=torch.float64)
    a, g2 = schedule_coefs(sde, t)
    if isinstance(sde, VESDE):
        sig = 0.01 * (10.0 / 0.01) ** t  # sigma(t) = sigma_min (sigma_max / sigma_min)^t
        torch.testing.assert_close(g2, 2 * sig**2 * np.log(10.0 / 0.01))
        assert float(a.abs().max()) == 0.0
    else:
        beta = 0.1 + t * 19.9
        B = 0.1 * t + 0.5 * 19.9 * t**2
        torch.testing.assert_close(a, -0.5 * beta)
        torch.testing.assert_close(g2, beta * (1 - torch.exp(-2 * B)))
