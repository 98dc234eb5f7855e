"""diffusers folders: betas, prediction types, class labels and the exact-eps likelihood.

Needs diffusers (``pip install 'scoresde[diffusers]'``); skipped with that reason otherwise.
Every reference value comes from diffusers' own schedulers and UNet calls, never from scoresde.
"""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch
from torch import Tensor, nn

diffusers = pytest.importorskip(
    "diffusers", reason="diffusers is not installed (pip install 'scoresde[diffusers]')"
)
from diffusers import ConfigMixin, DDIMScheduler, DDPMScheduler, ModelMixin, UNet2DModel  # noqa: E402
from diffusers.configuration_utils import register_to_config  # noqa: E402

from scoresde.likelihood import log_likelihood  # noqa: E402
from scoresde.parameterization.pretrained import (  # noqa: E402
    inference_times,
    load_diffusers,
    load_pretrained,
    scheduler_betas,
)

from .pretrained_helpers import SHAPE, GaussianData, randomize  # noqa: E402

SCHEDULES = ["linear", "scaled_linear", "squaredcos_cap_v2", "sigmoid"]


def tiny_unet2d(out_channels: int = 1, num_class_embeds: int | None = None) -> UNet2DModel:
    unet = UNet2DModel(sample_size=SHAPE[1], in_channels=SHAPE[0], out_channels=out_channels,
                       block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=4,
                       down_block_types=("DownBlock2D", "DownBlock2D"),
                       up_block_types=("UpBlock2D", "UpBlock2D"),
                       num_class_embeds=num_class_embeds)  # fmt: skip
    return randomize(unet, seed=1, scale=0.1).eval()


def save(folder, unet, pipeline: bool = False, **sched) -> DDPMScheduler:
    scheduler = DDPMScheduler(**sched)
    if pipeline:  # the layout of DiffusionPipeline.save_pretrained
        unet.save_pretrained(folder / "unet")
        scheduler.save_pretrained(folder / "scheduler")
        (folder / "model_index.json").write_text(json.dumps({"_class_name": "DDPMPipeline"}))
    else:
        unet.save_pretrained(folder)
        scheduler.save_pretrained(folder)
    return scheduler


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_betas_and_knots_match_diffusers(schedule):
    cfg = {"num_train_timesteps": 200, "beta_schedule": schedule, "beta_start": 0.00085,
           "beta_end": 0.012}  # fmt: skip
    ref = DDPMScheduler(**cfg)
    torch.testing.assert_close(scheduler_betas(cfg), ref.betas, rtol=0, atol=0)
    from scoresde.parameterization.pretrained import discrete_vp_sde

    sde = discrete_vp_sde(scheduler_betas(cfg))
    t = (torch.arange(200, dtype=torch.float64) + 1) / 200  # the knots t_n = (n + 1) / N
    alpha = sde.marginal(t)[0]
    torch.testing.assert_close(alpha**2, ref.alphas_cumprod.double(), rtol=2e-6, atol=0)


def _abar(scheduler) -> Tensor:
    """diffusers' alpha_bar from its own betas, in float64 (its float32 cumprod loses 1 - abar_0)."""
    return torch.cumprod(1 - scheduler.betas.double(), 0)


def _hand_score(kind: str, out: Tensor, x: Tensor, abar: float) -> Tensor:
    """diffusers' definitions: eps; v = sqrt(abar) eps - sqrt(1 - abar) x0; sample = x0."""
    a, s = math.sqrt(abar), math.sqrt(1 - abar)
    if kind == "epsilon":
        eps = out
    elif kind == "v_prediction":
        eps = s * x + a * out  # x = a x0 + s eps and v = a eps - s x0, with a^2 + s^2 = 1
    else:
        eps = (x - a * out) / s
    return -eps / s


@pytest.mark.parametrize("kind", ["epsilon", "v_prediction", "sample"])
@pytest.mark.parametrize("schedule", ["linear", "squaredcos_cap_v2"])
def test_score_is_the_conversion_of_the_unet_output(tmp_path, kind, schedule):
    unet = tiny_unet2d()
    ref = save(tmp_path, unet, num_train_timesteps=100, beta_schedule=schedule,
               prediction_type=kind)  # fmt: skip
    loaded = load_diffusers(tmp_path)
    model = loaded.model.double()
    unet.double()
    x = torch.randn((3, *SHAPE), generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    for n in [0, 20, 64, 99]:
        t = torch.full((3,), (n + 1) / 100, dtype=torch.float64)
        with torch.no_grad():
            out = unet(x, torch.full((3,), n)).sample
            want = _hand_score(kind, out, x, float(_abar(ref)[n]))
            got = model(x, t)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * float(want.abs().max()))
    assert loaded.shape == SHAPE and loaded.metadata["prediction_type"] == kind


def test_pipeline_layout_learned_variance_and_class_labels(tmp_path):
    unet = tiny_unet2d(out_channels=2, num_class_embeds=3)
    save(tmp_path, unet, pipeline=True, num_train_timesteps=50, variance_type="learned_range")
    with pytest.raises(ValueError, match="class-conditional"):
        load_diffusers(tmp_path)
    model = load_diffusers(tmp_path, class_label=2).model.double()
    unet.double()
    x = torch.randn((2, *SHAPE), generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    with torch.no_grad():
        out = unet(x, torch.full((2,), 9), class_labels=torch.full((2,), 2)).sample[:, :1]
        want = _hand_score(
            "epsilon", out, x, float(_abar(DDPMScheduler(num_train_timesteps=50))[9])
        )
        torch.testing.assert_close(model(x, torch.full((2,), 0.2, dtype=torch.float64)), want,
                                   rtol=1e-5, atol=1e-5 * float(want.abs().max()))  # fmt: skip
        other = load_diffusers(tmp_path, class_label=0).model.double()
        assert (
            float((other(x, torch.full((2,), 0.2, dtype=torch.float64)) - want).abs().max()) > 1e-3
        )


class GaussianEpsUNet(ModelMixin, ConfigMixin):
    """Any ModelMixin with UNet2DModel's call: the exact eps of N(mu, diag var) data."""

    @register_to_config
    def __init__(self, mu: list, var: list, alphas_cumprod: list, in_channels: int = 1,
                 sample_size: int = 4) -> None:  # fmt: skip
        super().__init__()
        self.unit = nn.Parameter(torch.ones(()))
        self.log_abar = torch.tensor(alphas_cumprod, dtype=torch.float64).log()
        self.data = GaussianData()
        self.data.mu = torch.tensor(mu, dtype=torch.float64)
        self.data.var = torch.tensor(var, dtype=torch.float64)

    def forward(self, sample: Tensor, timestep: Tensor, class_labels=None):
        n = timestep.to(torch.float64)  # fractional steps: log abar linear between knots
        i = n.floor().clamp(max=self.log_abar.numel() - 2).long()
        f = n - i
        log_abar = (1 - f) * self.log_abar[i] + f * self.log_abar[i + 1]
        alpha, sigma = torch.exp(0.5 * log_abar), torch.sqrt(-torch.expm1(log_abar))
        return SimpleNamespace(sample=self.unit * self.data.eps(sample.double(), alpha, sigma))


@pytest.mark.parametrize("kind, ok", [("epsilon", True), ("v_prediction", False)])
def test_exact_eps_model_gives_the_gaussian_log_density(tmp_path, kind, ok):
    """The right prediction_type recovers log N exactly; a wrong one is off by nats."""
    data = GaussianData()
    ref = DDPMScheduler(num_train_timesteps=50, beta_schedule="linear", beta_end=0.2)
    unet = GaussianEpsUNet(data.mu.tolist(), data.var.tolist(), _abar(ref).tolist())
    unet.save_pretrained(tmp_path)
    DDPMScheduler(num_train_timesteps=50, beta_schedule="linear", beta_end=0.2,
                  prediction_type=kind).save_pretrained(tmp_path)  # fmt: skip
    loaded = load_diffusers(tmp_path, model_cls=GaussianEpsUNet)
    sde = loaded.model.sde
    x = data.sample(4)
    abar = _abar(ref)
    aT, sT = math.sqrt(float(abar[-1])), math.sqrt(1 - float(abar[-1]))
    # beta(t) jumps at every knot; in log-SNR time the exact field is smooth (248 NFE at rtol
    # 1e-7 instead of 11870 in t, measured once)
    res = log_likelihood(sde, loaded.model.double(), x, rtol=1e-7, atol=1e-7,
                         prior_log_prob=lambda z: data.log_prob(z, aT, sT),
                         time_variable="log_snr")  # fmt: skip
    want = data.log_prob(x, math.sqrt(float(abar[0])), math.sqrt(1 - float(abar[0])))  # at t_0
    err = float((res.log_prob - want).abs().max())
    assert (err < 1e-4) if ok else (err > 1.0), err


@pytest.mark.parametrize("spacing", ["linspace", "leading", "trailing"])
def test_inference_times_are_diffusers_timesteps(spacing):
    cfg = {"num_train_timesteps": 1000, "timestep_spacing": spacing, "steps_offset": 1}
    for n in (10, 37):
        ref = DDIMScheduler(**cfg)
        ref.set_timesteps(n)
        want = (ref.timesteps.double() + 1) / 1000
        torch.testing.assert_close(inference_times(cfg, n), want, rtol=0, atol=0)


def test_bad_configs_are_refused(tmp_path):
    save(tmp_path, tiny_unet2d(), prediction_type="epsilon")
    cfg = json.loads((tmp_path / "scheduler_config.json").read_text())
    for key, value, match in [("prediction_type", "flow", "prediction_type"),
                              ("beta_schedule", "quadratic", "beta_schedule"),
                              ("rescale_betas_zero_snr", True, "zero_snr"),
                              ("_class_name", "FlowMatchEulerDiscreteScheduler", "DDPM chain")]:  # fmt: skip
        (tmp_path / "scheduler_config.json").write_text(json.dumps({**cfg, key: value}))
        with pytest.raises(ValueError, match=match):
            load_diffusers(tmp_path)
    (tmp_path / "scheduler_config.json").unlink()
    with pytest.raises(FileNotFoundError, match="scheduler config"):
        load_pretrained(f"diffusers:{tmp_path}")
