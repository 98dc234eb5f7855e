"""Exact conversions between eps, x0, v and score; ScoreModel; the discrete DDPM adapter."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from scoresde.analytic import GaussianMixture
from scoresde.parameterization import (
    PREDICTS,
    ScoreModel,
    convert,
    from_denoiser,
    from_discrete_eps_model,
)
from scoresde.sde import VESDE, VPSDE, DDPMSchedule, SubVPSDE

GEN = torch.Generator().manual_seed(0)


@pytest.mark.parametrize("src,dst", list(itertools.permutations(PREDICTS, 2)))
@pytest.mark.parametrize("sde", [VPSDE(), SubVPSDE(), VESDE()], ids=["vp", "subvp", "ve"])
def test_round_trips_exact(src: str, dst: str, sde) -> None:
    x0 = torch.randn(6, 3, generator=GEN, dtype=torch.float64)
    eps = torch.randn(6, 3, generator=GEN, dtype=torch.float64)
    t = torch.linspace(0.05, 0.95, 6, dtype=torch.float64)
    alpha, sigma = sde.marginal(t)
    x = alpha[:, None] * x0 + sigma[:, None] * eps
    truth = {
        "eps": eps,
        "x0": x0,
        "score": -eps / sigma[:, None],
        "v": alpha[:, None] * eps - sigma[:, None] * x0,
    }
    out = convert(truth[src], x, alpha, sigma, src, dst)
    scale = float(truth[dst].abs().max())
    torch.testing.assert_close(out, truth[dst], rtol=0, atol=1e-12 * max(scale, 1.0))
    back = convert(out, x, alpha, sigma, dst, src)
    torch.testing.assert_close(
        back, truth[src], rtol=0, atol=1e-12 * max(float(truth[src].abs().max()), 1.0)
    )


class _ExactNet(nn.Module):
    """A 'network' that outputs the exact quantity of kind ``kind`` for a mixture (t input)."""

    def __init__(self, gm: GaussianMixture, kind: str) -> None:
        super().__init__()
        self.gm, self.kind = gm, kind

    def forward(self, x, c):
        alpha, sigma = self.gm.sde.marginal(c)
        return convert(self.gm.eps(x, c), x, alpha, sigma, "eps", self.kind)


@pytest.mark.parametrize("predicts", PREDICTS)
def test_score_model_exposes_exact_functions(predicts: str) -> None:
    sde = VPSDE()
    gm = GaussianMixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 1.0]], [[0.2, 0.3], [0.4, 0.1]], sde=sde)
    model = ScoreModel(_ExactNet(gm, predicts), sde, predicts=predicts)
    x = torch.randn(8, 2, dtype=torch.float64)
    t = torch.linspace(0.1, 0.9, 8, dtype=torch.float64)
    torch.testing.assert_close(model.score_fn(x, t), gm.score(x, t))
    torch.testing.assert_close(model.eps_fn(x, t), gm.eps(x, t))
    torch.testing.assert_close(model.denoise(x, t), gm.denoise(x, t))
    torch.testing.assert_close(model(x, 0.5), gm.score(x, 0.5))  # scalar t is broadcast


def test_time_inputs_are_explicit() -> None:
    sde = VPSDE()
    seen = {}

    def net(x, c):
        seen["c"] = c
        return torch.zeros_like(x)

    t = torch.tensor([0.2, 0.6], dtype=torch.float64)
    x = torch.zeros(2, 3, dtype=torch.float64)
    ScoreModel(net, sde, time_input="t").eps_fn(x, t)
    torch.testing.assert_close(seen["c"], t)
    ScoreModel(net, sde, time_input="log_snr").eps_fn(x, t)
    torch.testing.assert_close(seen["c"], sde.log_snr(t))
    ScoreModel(net, sde, time_input="sigma").eps_fn(x, t)
    alpha, sigma = sde.marginal(t)
    torch.testing.assert_close(seen["c"], sigma / alpha)
    ScoreModel(net, sde, time_input=lambda s, tt: 1000 * tt).eps_fn(x, t)
    torch.testing.assert_close(seen["c"], 1000 * t)


def test_discrete_adapter_reproduces_alpha_bar() -> None:
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    table = DDPMSchedule.from_betas(betas)
    calls = {}

    def eps_model(x, n):
        calls["n"] = n
        return torch.ones_like(x)

    sde, score_fn = from_discrete_eps_model(eps_model, betas)
    steps = torch.tensor([0, 1, 10, 500, 999])
    t = (steps.double() + 1) / 1000
    alpha, sigma = sde.marginal(t)
    torch.testing.assert_close(alpha**2, table.alpha_bars[steps], rtol=1e-12, atol=1e-15)
    x = torch.zeros(5, 2, dtype=torch.float64)
    s = score_fn(x, t)
    assert calls["n"].dtype == torch.long
    assert calls["n"].tolist() == steps.tolist()
    torch.testing.assert_close(s, -1 / sigma[:, None].expand(5, 2))
    # between knots log alpha^2 is linear in t
    mid = torch.tensor([0.0105], dtype=torch.float64)
    la = torch.log(sde.marginal(mid)[0] ** 2)
    lo, hi = torch.log(table.alpha_bars[9]), torch.log(table.alpha_bars[10])
    torch.testing.assert_close(la, (lo + hi).reshape(1) / 2)
    # log-SNR inverse works on the piecewise schedule
    lam = sde.log_snr(t)
    torch.testing.assert_close(sde.t_from_log_snr(lam), t, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("sde", [VPSDE(), SubVPSDE(), VESDE()], ids=["vp", "subvp", "ve"])
def test_denoiser_adapter_is_exact(sde) -> None:
    """An exact EDM denoiser D(x, sigma) of the data gives the exact score under any SDE."""
    data = GaussianMixture([0.3, 0.7], [[-1.0, 2.0], [1.0, 0.0]], [[0.2, 0.5], [0.3, 0.1]])
    ve_like = VESDE(sigma_max=1000.0)

    def denoiser(x, sigma):
        # E[x0 | x0 + sigma n = x] is the VE-mixture denoiser at the time where sigma_t = sigma.
        t = ve_like.t_from_log_snr(-2 * torch.log(sigma))
        return data.with_sde(ve_like).denoise(x, t)

    score_fn = from_denoiser(denoiser, sde)
    x = torch.randn(6, 2, dtype=torch.float64)
    t = torch.linspace(0.05, 0.9, 6, dtype=torch.float64)
    torch.testing.assert_close(score_fn(x, t), data.with_sde(sde).score(x, t), rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("sde", [VPSDE(), SubVPSDE(), VESDE()], ids=["vp", "subvp", "ve"])
def test_edm_preconditioning_is_exact(sde) -> None:
    """predicts='edm': a network that outputs the exact F* gives the exact score, and
    ``target`` is that F* (Karras et al. 2022, Eq. 7 transported to any linear SDE)."""
    gm = GaussianMixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 1.0]], [[0.2, 0.3], [0.4, 0.1]], sde=sde)
    holder: dict[str, ScoreModel] = {}

    def net(x_in, c):  # x_in = c_in x / alpha_t: recover x, output F* from the exact x0
        model = holder["m"]
        c_skip, c_out, c_in, alpha = model.edm_coefficients(c)
        x = x_in * (alpha / c_in)[:, None]
        return (gm.denoise(x, c) - c_skip[:, None] * x / alpha[:, None]) / c_out[:, None]

    model = ScoreModel(net, sde, predicts="edm", sigma_data=1.3)
    holder["m"] = model
    x = torch.randn(8, 2, dtype=torch.float64)
    t = torch.linspace(0.05, 0.95, 8, dtype=torch.float64)
    torch.testing.assert_close(model.score_fn(x, t), gm.score(x, t))
    # the regression target reproduces x0 through the same formula
    x0 = torch.randn(8, 2, dtype=torch.float64)
    noise = torch.randn(8, 2, dtype=torch.float64)
    f_star = model.target(x0, noise, t)
    c_skip, c_out, _, alpha = model.edm_coefficients(t)
    _, sigma = sde.marginal(t)
    x_tilde = x0 + (sigma / alpha)[:, None] * noise
    torch.testing.assert_close(c_skip[:, None] * x_tilde + c_out[:, None] * f_star, x0)


def test_edm_score_tends_to_gaussian_in_the_tails() -> None:
    """Where sigma_t / alpha_t >> sigma_data the score is -x / sigma_t^2 whatever F outputs."""
    sde = VPSDE()
    model = ScoreModel(lambda x, c: torch.full_like(x, 3.0), sde, predicts="edm")
    x = torch.full((1, 2), 40.0, dtype=torch.float64)
    _, sigma = sde.marginal(torch.tensor([1.0], dtype=torch.float64))
    s = model.score_fn(x, 1.0)
    torch.testing.assert_close(s, -x / sigma**2, rtol=0.02, atol=0)


@pytest.mark.parametrize("sde", [VPSDE(), VESDE()], ids=["vp", "ve"])
def test_edm_target_and_input_have_unit_variance_for_data_of_std_sigma_data(sde) -> None:
    """Karras et al. (2022, App. B.6) choose c_in, c_skip, c_out so that the network's input and
    its regression target F* both have unit variance when x0 ~ N(0, sigma_data^2): an
    independent check of the coefficients (not the model's own formula). Both are linear in
    (x0, noise), so the variances are exact: sigma_data^2 a^2 + b^2."""
    sigma_data = 0.7
    seen: list[torch.Tensor] = []

    def net(x_in, c):
        seen.append(x_in)
        return torch.zeros_like(x_in)

    model = ScoreModel(net, sde, predicts="edm", sigma_data=sigma_data)
    t = torch.linspace(0.05, 0.95, 7, dtype=torch.float64)
    alpha, sigma = sde.marginal(t)
    one, zero = torch.ones(7, 1, dtype=torch.float64), torch.zeros(7, 1, dtype=torch.float64)
    var_target = sigma_data**2 * model.target(one, zero, t) ** 2 + model.target(zero, one, t) ** 2
    torch.testing.assert_close(var_target, one, rtol=1e-12, atol=1e-12)
    model.score_fn(alpha[:, None] * one, t)  # x_t for x0 = 1, noise = 0
    model.score_fn(sigma[:, None] * one, t)  # x_t for x0 = 0, noise = 1
    var_input = sigma_data**2 * seen[0] ** 2 + seen[1] ** 2
    torch.testing.assert_close(var_input, one, rtol=1e-12, atol=1e-12)
