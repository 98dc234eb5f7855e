"""Tiny models in others' formats, written to disk offline, for the pretrained-loader tests."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from torch import Tensor, nn

from scoresde.nets import UNet

SHAPE = (1, 4, 4)  # (C, H, W): 16 dimensions


def randomize(net: nn.Module, seed: int = 0, scale: float = 0.2) -> nn.Module:
    """Overwrite every parameter with N(0, scale^2) draws (scoresde's UNet starts at zero)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * scale)
    return net


def tiny_unet(seed: int = 0, size: int = 4, time_scale: float | None = None,
              scale: float = 0.2) -> UNet:  # fmt: skip
    """A scoresde UNet with random weights on (1, size, size) images."""
    net = UNet(in_channels=1, base_channels=8, channel_mult=(1,), num_res_blocks=1,
               attn_resolutions=(), image_size=size, time_scale=time_scale)  # fmt: skip
    return randomize(net, seed, scale).eval()


def write_kdiffusion(folder: Path, net: nn.Module, *, sigma_data: float = 0.5,
                     sigma_min: float = 0.002, sigma_max: float = 80.0,
                     c_noise: str | None = None, ema_seed: int | None = None) -> Path:  # fmt: skip
    """A k-diffusion checkpoint folder: config.json + a .pth with model/model_ema state dicts."""
    folder.mkdir(parents=True, exist_ok=True)
    model_cfg = {"type": "scoresde", "input_channels": SHAPE[0], "input_size": list(SHAPE[1:]),
                 "sigma_data": sigma_data, "sigma_min": sigma_min, "sigma_max": sigma_max}  # fmt: skip
    if hasattr(net, "config"):
        model_cfg["net"] = net.config()
    if c_noise is not None:
        model_cfg["c_noise"] = c_noise
    (folder / "config.json").write_text(json.dumps({"model": model_cfg}))
    raw = {k: v.clone() for k, v in net.state_dict().items()}
    ema = raw if ema_seed is None else {k: v + 0.01 * (ema_seed + 1) for k, v in raw.items()}
    torch.save({"model": raw, "model_ema": ema, "step": 7}, folder / "model_00000007.pth")
    return folder


def score_sde_config(sde: str, net: nn.Module | None, *, continuous: bool = True,
                     centered: bool = True, num_scales: int = 1000) -> dict:  # fmt: skip
    """score_sde's config sections as ml_collections' to_json() writes them."""
    model = {"name": "scoresde" if net is not None and hasattr(net, "config") else "ncsnpp",
             "beta_min": 0.1, "beta_max": 20.0, "sigma_min": 0.01, "sigma_max": 50.0,
             "num_scales": num_scales}  # fmt: skip
    if net is not None and hasattr(net, "config"):
        model["net"] = net.config()
    return {"training": {"sde": sde, "continuous": continuous}, "model": model,
            "data": {"centered": centered, "image_size": SHAPE[1], "num_channels": SHAPE[0]}}  # fmt: skip


def write_score_sde(folder: Path, net: nn.Module, config: dict, ema_shift: float = 0.0) -> Path:
    """score_sde's checkpoint.pth ('module.' keys, EMA shadow_params) + config.json."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    state = {"module." + k: v.clone() for k, v in net.state_dict().items()}
    shadow = [p.detach().clone() + ema_shift for p in net.parameters() if p.requires_grad]
    ema = {"decay": 0.999, "num_updates": 5, "shadow_params": shadow}
    torch.save({"model": state, "ema": ema, "step": 5, "optimizer": {}}, folder / "checkpoint.pth")
    return folder


# --- exact networks for Gaussian data N(mu, diag(var)) ------------------------------------------


class GaussianData:
    """N(mu, diag var) on SHAPE, with its exact perturbed score and log-density."""

    def __init__(self, seed: int = 3) -> None:
        g = torch.Generator().manual_seed(seed)
        self.mu = 0.5 * torch.randn(SHAPE, generator=g, dtype=torch.float64)
        self.var = 0.05 + 0.3 * torch.rand(SHAPE, generator=g, dtype=torch.float64)

    def sample(self, n: int, seed: int = 5) -> Tensor:
        g = torch.Generator().manual_seed(seed)
        return self.mu + self.var.sqrt() * torch.randn(
            (n, *SHAPE), generator=g, dtype=torch.float64
        )

    def log_prob(self, x: Tensor, alpha: float, sigma: float) -> Tensor:
        """log N(x; alpha mu, alpha^2 var + sigma^2), summed over the event."""
        v = alpha**2 * self.var + sigma**2
        lp = -0.5 * ((x - alpha * self.mu) ** 2 / v + torch.log(2 * math.pi * v))
        return lp.flatten(1).sum(1)

    def eps(self, x: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
        """The exact eps = -sigma * score of the perturbed data (alpha, sigma of shape (batch,))."""
        a, s = alpha.view(-1, 1, 1, 1), sigma.view(-1, 1, 1, 1)
        return s * (x - a * self.mu) / (a**2 * self.var + s**2)

    def denoiser(self, x: Tensor, sigma: Tensor) -> Tensor:
        """E[x0 | x0 + sigma n = x] = mu + var / (var + sigma^2) (x - mu)."""
        s = sigma.view(-1, 1, 1, 1)
        return self.mu + self.var / (self.var + s**2) * (x - self.mu)
