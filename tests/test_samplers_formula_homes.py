"""One home per formula: the samplers agree with ``scoresde.sde.reverse`` (DESIGN contract 10).

The reverse drift f - g^2 s and the PF drift f - 1/2 g^2 s in coefficient form (what the
fixed-step samplers precompute) equal the pointwise form, one step of each sampler equals the
formula applied by hand, and torchdiffeq's adaptive methods are read from its public API.
"""

from __future__ import annotations

import pathlib

import pytest
import torch

from scoresde.samplers import sample
from scoresde.samplers.adapters import torchdiffeq_methods
from scoresde.sde.reverse import drift_coefs, probability_flow_drift, reverse_drift

from .test_samplers_common import make_sdes, mixture, prior

SDES = make_sdes()


@pytest.mark.parametrize("sde_name", sorted(SDES))
@pytest.mark.parametrize("pf", [False, True])
def test_coefficient_form_equals_pointwise_form(sde_name: str, pf: bool) -> None:
    sde = SDES[sde_name]
    x, t = prior(sde, 6), torch.linspace(0.05, 0.95, 6, dtype=torch.float64)
    s = mixture(sde).score(x, t)
    c_x, c_s = drift_coefs(sde.drift_coef(t), sde.g2(t), probability_flow=pf)
    by_coefs = c_x[:, None] * x + c_s[:, None] * s
    pointwise = reverse_drift(sde.drift(x, t), sde.g2(t), s, probability_flow=pf)
    torch.testing.assert_close(by_coefs, pointwise, rtol=1e-14, atol=1e-14)
    if pf:
        torch.testing.assert_close(probability_flow_drift(sde.drift(x, t), sde.g2(t), s), pointwise)
    obj = sde.probability_flow(mixture(sde).score) if pf else sde.reverse(mixture(sde).score)
    torch.testing.assert_close(obj.drift(x, t), pointwise, rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("sde_name", sorted(SDES))
def test_one_step_of_each_sampler_is_its_formula(sde_name: str) -> None:
    sde, x = SDES[sde_name], prior(SDES[sde_name], 4)
    score = mixture(sde).score
    grid = torch.tensor([0.7, 0.68], dtype=torch.float64)
    t, dt = grid[:1].expand(4), float(grid[1] - grid[0])
    zero = {"noise_sampler": lambda y, a, b: torch.zeros_like(y)}
    f, g2, s = sde.drift(x, t), sde.g2(t), score(x, t)
    em, _ = sample("euler_maruyama", sde, score, x, grid, **zero)
    torch.testing.assert_close(em, x + reverse_drift(f, g2, s) * dt, rtol=1e-13, atol=1e-13)
    pf, _ = sample("pf_euler", sde, score, x, grid)
    torch.testing.assert_close(pf, x + probability_flow_drift(f, g2, s) * dt, rtol=1e-13, atol=0)
    rd, _ = sample("reverse_diffusion", sde, score, x, grid, **zero)
    rev_f, _ = sde.reverse(score).discretize(x, t, -dt)
    torch.testing.assert_close(rd, x + rev_f, rtol=1e-13, atol=1e-13)


def test_adaptive_torchdiffeq_methods_come_from_its_public_api() -> None:
    methods, adaptive = torchdiffeq_methods()
    assert {"dopri5", "bosh3", "adaptive_heun"} <= set(adaptive) <= set(methods)
    assert {"euler", "rk4"} <= set(methods) - set(adaptive)
    root = pathlib.Path(__file__).resolve().parents[1] / "scoresde"
    for folder in ("samplers", "sde"):
        for path in (root / folder).glob("*.py"):
            assert "torchdiffeq._impl" not in path.read_text(), path


def test_torchdiffeq_table_matches_the_installed_torchdiffeq() -> None:
    """The plain table of methods agrees with what torchdiffeq's public ``odeint`` accepts."""
    import re
    import warnings

    import torchdiffeq

    from scoresde.sde.pf_ode import TORCHDIFFEQ_METHODS

    y0, ts = torch.zeros(1, dtype=torch.float64), torch.tensor([0.0, 1e-3], dtype=torch.float64)
    with pytest.raises(ValueError) as err:
        torchdiffeq.odeint(lambda t, y: y, y0, ts, method="?")
    listed = re.findall(r'"([^"]+)"', str(err.value).partition("one of")[2])
    assert sorted(listed) == sorted(TORCHDIFFEQ_METHODS)
    for m, adaptive in TORCHDIFFEQ_METHODS.items():
        if m == "scipy_solver":
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            opts = {"step_t": ts[1:] / 2}
            torchdiffeq.odeint(lambda t, y: torch.zeros_like(y), y0, ts, method=m, options=opts)
        assert adaptive == (not any("step_t" in str(w.message) for w in caught)), m


@pytest.mark.parametrize("sde_name", sorted(SDES))
def test_noise_level_is_sigma_over_alpha_and_inverts(sde_name: str) -> None:
    sde = SDES[sde_name]
    t = torch.linspace(sde.eps, sde.T, 9, dtype=torch.float64)
    alpha, sigma = sde.marginal(t)
    level = sde.noise_level(t)
    torch.testing.assert_close(level, sigma / alpha, rtol=1e-12, atol=0)
    torch.testing.assert_close(sde.t_from_noise_level(level), t, rtol=1e-9, atol=1e-12)
