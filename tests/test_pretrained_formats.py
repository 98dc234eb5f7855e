"""k-diffusion/EDM and score_sde checkpoints: the loaded score equals the hand conversion.

Each test writes a tiny model in the format (offline), loads it, and checks the score against
the format's own formulas written out by hand here (not through scoresde's conversions), and
that an exact network of Gaussian data gives the closed-form log-density through the PF-ODE.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import Tensor, nn

from scoresde.likelihood import log_likelihood
from scoresde.parameterization.pretrained import (
    dequantization_range,
    load_kdiffusion,
    load_pretrained,
    load_score_sde,
)

from .pretrained_helpers import (
    SHAPE,
    GaussianData,
    score_sde_config,
    tiny_unet,
    write_kdiffusion,
    write_score_sde,
)

TIMES = [0.05, 0.3, 0.7, 0.98]


def _x(n: int = 3, seed: int = 1) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn((n, *SHAPE), generator=g, dtype=torch.float64)


# --- k-diffusion / EDM ----------------------------------------------------------------------------


@pytest.mark.parametrize("c_noise", ["sigma", "log_sigma_4"])
def test_kdiffusion_score_is_the_preconditioned_denoiser(tmp_path, c_noise):
    net = tiny_unet(seed=2)
    write_kdiffusion(tmp_path, net, sigma_data=0.5, c_noise=c_noise, ema_seed=0)
    loaded = load_kdiffusion(tmp_path)
    loaded.model.double()
    ref = tiny_unet(seed=2).double()
    ref.load_state_dict({k: v + 0.01 for k, v in net.state_dict().items()})  # the EMA weights
    x, sd = _x(), 0.5
    for t in TIMES:
        sigma = float(loaded.model.sde.marginal(torch.tensor(t, dtype=torch.float64))[1])
        s = torch.full((3,), sigma, dtype=torch.float64)
        c_skip, c_out = sd**2 / (sigma**2 + sd**2), sigma * sd / math.sqrt(sigma**2 + sd**2)
        c_in = 1 / math.sqrt(sigma**2 + sd**2)
        with torch.no_grad():
            F = ref(c_in * x, s if c_noise == "sigma" else torch.log(s) / 4)
            D = c_skip * x + c_out * F  # Karras et al. (2022), Eq. 7
            want = (D - x) / sigma**2
            got = loaded.model(x, torch.full((3,), t, dtype=torch.float64))
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9 * float(want.abs().max()))
    assert loaded.shape == SHAPE and loaded.metadata["levels_at"] == "endpoints"


def test_kdiffusion_noise_range_is_the_models():
    """The SDE's eps sits at sigma_t = sigma_min; the prior's sigma is sigma_max (to 1e-6)."""
    from scoresde.parameterization.pretrained import ve_sde_over

    sde = ve_sde_over(0.002, 80.0)
    assert float(sde.marginal(torch.tensor(sde.eps, dtype=torch.float64))[1]) == pytest.approx(
        0.002, rel=1e-9
    )
    assert float(sde.marginal(torch.tensor(sde.T, dtype=torch.float64))[1]) == pytest.approx(
        80.0, rel=1e-6
    )


class ExactF(nn.Module):
    """The inner network whose preconditioned denoiser is the exact one of Gaussian data."""

    def __init__(self, data: GaussianData, sigma_data: float) -> None:
        super().__init__()
        self.data, self.sd = data, sigma_data
        self.unit = nn.Parameter(torch.ones(()))  # something for the checkpoint to hold

    def forward(self, y: Tensor, sigma: Tensor) -> Tensor:
        s = sigma.view(-1, 1, 1, 1).to(y.dtype)
        denom = s**2 + self.sd**2
        x = y * torch.sqrt(denom)  # y = c_in x
        c_skip, c_out = self.sd**2 / denom, s * self.sd / torch.sqrt(denom)
        return self.unit * (self.data.denoiser(x, sigma) - c_skip * x) / c_out


def test_kdiffusion_exact_denoiser_gives_the_gaussian_log_density(tmp_path):
    data = GaussianData()
    net = ExactF(data, 0.5).double()
    write_kdiffusion(tmp_path, net, sigma_data=0.5, sigma_min=0.01, sigma_max=20.0)
    loaded = load_kdiffusion(tmp_path, net=ExactF(data, 0.5).double())
    sde = loaded.model.sde
    x = data.sample(4)
    res = log_likelihood(sde, loaded.model.double(), x, rtol=1e-7, atol=1e-7,
                         prior_log_prob=lambda z: data.log_prob(z, 1.0, float(sde.marginal(torch.tensor(1.0))[1])))  # fmt: skip
    want = data.log_prob(x, 1.0, 0.01)  # log p at the model's sigma_min
    torch.testing.assert_close(res.log_prob, want, atol=2e-4, rtol=0)


# --- score_sde --------------------------------------------------------------------------------


def _B(t: float) -> float:
    return 0.1 * t + 0.5 * (20.0 - 0.1) * t**2  # int_0^t beta, linear beta(t) (Song et al. Eq. 33)


@pytest.mark.parametrize("sde_name", ["vpsde", "subvpsde", "vesde"])
def test_score_sde_continuous_labels_and_output(tmp_path, sde_name):
    net = tiny_unet(seed=4)
    write_score_sde(tmp_path, net, score_sde_config(sde_name, net), ema_shift=0.02)
    loaded = load_score_sde(tmp_path)
    loaded.model.double()
    ema = tiny_unet(seed=4).double()
    ema.load_state_dict({k: v + 0.02 for k, v in net.state_dict().items()})
    x = _x()
    for t in TIMES:
        tt = torch.full((3,), t, dtype=torch.float64)
        with torch.no_grad():
            got = loaded.model(x, tt)
            if sde_name == "vesde":
                sigma = math.sqrt((0.01 * 5000.0**t) ** 2 - 0.01**2)  # sigma(t)^2 - sigma(0)^2
                want = ema(
                    x, torch.full((3,), sigma, dtype=torch.float64)
                )  # label sigma_t; output is the score
            else:
                std = math.sqrt(-math.expm1(-_B(t))) if sde_name == "vpsde" else -math.expm1(-_B(t))
                want = -ema(x, 999 * tt) / std  # score_sde get_score_fn: label 999 t
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9 * float(want.abs().max()))


def test_score_sde_discrete_vp_is_the_ddpm_chain(tmp_path):
    net = tiny_unet(seed=6)
    N = 50
    write_score_sde(tmp_path, net, score_sde_config("vpsde", net, continuous=False, num_scales=N))
    loaded = load_score_sde(tmp_path)
    loaded.model.double()
    net.double()
    betas = torch.linspace(0.1 / N, 20.0 / N, N, dtype=torch.float64)
    abar = torch.cumprod(1 - betas, 0)
    x = _x()
    for n in [0, 7, 30, 49]:
        t = torch.full((3,), (n + 1) / N, dtype=torch.float64)  # the knot of step n
        with torch.no_grad():
            want = -net(x, torch.full((3,), n)) / math.sqrt(1 - float(abar[n]))
            got = loaded.model(x, t)
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9 * float(want.abs().max()))


class ExactVPEps(nn.Module):
    """score_sde-style VP network: eps of Gaussian data at label 999 t."""

    def __init__(self, data: GaussianData, sub: bool = False) -> None:
        super().__init__()
        self.data, self.sub = data, sub
        self.unit = nn.Parameter(torch.ones(()))

    def forward(self, x: Tensor, label: Tensor) -> Tensor:
        t = label.to(torch.float64) / 999
        B = 0.1 * t + 0.5 * 19.9 * t**2
        alpha = torch.exp(-B / 2)
        sigma = -torch.expm1(-B) if self.sub else torch.sqrt(-torch.expm1(-B))
        return self.unit * self.data.eps(x, alpha, sigma)


@pytest.mark.parametrize("sde_name", ["vpsde", "subvpsde"])
def test_score_sde_exact_eps_gives_the_gaussian_log_density(tmp_path, sde_name):
    data = GaussianData()
    net = ExactVPEps(data, sub=sde_name == "subvpsde").double()
    write_score_sde(tmp_path, net, score_sde_config(sde_name, None))
    loaded = load_score_sde(tmp_path, net=ExactVPEps(data, sub=sde_name == "subvpsde").double())
    sde = loaded.model.sde
    x = data.sample(4)
    aT, sT = (float(v) for v in sde.marginal(torch.tensor(sde.T)))
    res = log_likelihood(sde, loaded.model.double(), x, rtol=1e-7, atol=1e-7,
                         prior_log_prob=lambda z: data.log_prob(z, aT, sT))  # fmt: skip
    B = _B(1e-5)
    a, s = (
        math.exp(-B / 2),
        (-math.expm1(-B) if sde_name == "subvpsde" else math.sqrt(-math.expm1(-B))),
    )
    torch.testing.assert_close(res.log_prob, data.log_prob(x, a, s), atol=2e-4, rtol=0)


def test_score_sde_wrong_output_convention_fails_loudly(tmp_path):
    """A VP eps-network declared as VE (output read as the score): the density is far off."""
    data = GaussianData()
    write_score_sde(tmp_path, ExactVPEps(data).double(), score_sde_config("vpsde", None))
    right = load_score_sde(tmp_path, net=ExactVPEps(data).double()).model.double()
    cfg = score_sde_config("vesde", None)
    write_score_sde(tmp_path / "ve", ExactVPEps(data).double(), cfg)
    wrong = load_score_sde(tmp_path / "ve", net=ExactVPEps(data).double()).model.double()
    x = data.sample(3)
    t = torch.full((3,), 0.5)
    exact = -data.eps(x, *right.sde.marginal(t)) / right.sde.marginal(t)[1].view(-1, 1, 1, 1)
    torch.testing.assert_close(right(x, t), exact, rtol=1e-6, atol=1e-6)
    with torch.no_grad():
        assert float((wrong(x, t) - exact).abs().max()) > 0.5


# --- files, formats, conventions ----------------------------------------------------------------


def test_loading_never_runs_code(tmp_path):
    """A pickle that would build an object is refused before anything in it runs."""

    class Boom:
        def __reduce__(self):
            return (print, ("ran",))

    net = tiny_unet()
    write_score_sde(tmp_path, net, score_sde_config("vpsde", net))
    torch.save({"model": Boom()}, tmp_path / "checkpoint.pth")
    with pytest.raises(ValueError, match="refusing to load"):
        load_score_sde(tmp_path)


def test_foreign_network_names_the_python_route(tmp_path):
    write_score_sde(tmp_path, tiny_unet(), score_sde_config("vpsde", None))
    with pytest.raises(ValueError, match="pass it as net="):
        load_score_sde(tmp_path)


@pytest.mark.parametrize(
    "spec, err",
    [
        ("nope:/tmp", ValueError),
        ("diffusers", ValueError),
        ("kdiffusion:/no/such/dir", FileNotFoundError),
    ],
)
def test_load_pretrained_spec_errors(spec, err):
    with pytest.raises(err, match="expected"):
        load_pretrained(spec)


def test_mismatched_weights_are_named(tmp_path):
    write_kdiffusion(tmp_path, tiny_unet())
    cfg = (
        (tmp_path / "config.json").read_text().replace('"base_channels": 8', '"base_channels": 16')
    )
    (tmp_path / "config.json").write_text(cfg)
    with pytest.raises(ValueError, match="mismatching"):
        load_kdiffusion(tmp_path)


def test_dequantization_ranges():
    """Cells centred at the training levels (endpoints) vs score_sde's cells vs scoresde's."""
    assert dequantization_range({}, 256) == (-1.0, 1.0)
    lo, hi = dequantization_range({"data_range": [-1, 1], "levels_at": "endpoints"}, 256)
    k = torch.arange(256, dtype=torch.float64)
    centres = lo + (hi - lo) * (k + 0.5) / 256  # the centre of level k's cell
    torch.testing.assert_close(centres, k / 127.5 - 1)  # diffusers' x / 127.5 - 1
    assert dequantization_range({"data_range": [0, 1], "levels_at": "cells"}, 256) == (0.0, 1.0)


def test_kdiffusion_config_inside_the_checkpoint(tmp_path):
    """k-diffusion's training checkpoints carry their config: no config.json needed."""
    net = tiny_unet(seed=8)
    write_kdiffusion(tmp_path, net)
    cfg = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match="config"):
        load_kdiffusion(tmp_path)
    state = torch.load(tmp_path / "model_00000007.pth", weights_only=True)
    torch.save({**state, "config": cfg}, tmp_path / "model_00000007.pth")
    a = load_kdiffusion(tmp_path / "model_00000007.pth").model
    x, t = _x().float(), torch.full((3,), 0.4)
    with torch.no_grad():
        torch.testing.assert_close(a(x, t), load_kdiffusion(tmp_path).model(x, t))
    assert a.sigma_data == cfg["model"]["sigma_data"]


def test_wrong_prediction_type_is_caught_on_data(tmp_path):
    """An exact eps-network read as 'v' or 'x0' warns, naming 'eps'; read as 'eps' it is quiet."""
    import warnings

    from scoresde.parameterization import ScoreModel
    from scoresde.parameterization.pretrained import PredictionTypeWarning, check_predicts
    from scoresde.parameterization.pretrained.score_sde import Labels999

    data = GaussianData()
    write_score_sde(tmp_path, ExactVPEps(data).double(), score_sde_config("vpsde", None))
    right = load_score_sde(tmp_path, net=ExactVPEps(data).double()).model.double()
    x0 = data.sample(64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        errors = check_predicts(right, x0, generator=torch.Generator().manual_seed(0))
    assert min(errors, key=errors.get) == "eps"
    for kind in ("v", "x0"):
        wrong = ScoreModel(right.net, right.sde, predicts=kind, time_input=Labels999())
        with pytest.warns(PredictionTypeWarning, match="'eps'"):
            check_predicts(wrong, x0, generator=torch.Generator().manual_seed(0))
