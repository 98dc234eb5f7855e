"""Shared by the study-notes experiments: the notes' 2-D data set and a tiny training loop."""

from __future__ import annotations

import torch

from scoresde.analytic import GaussianMixture
from scoresde.data.toy import four_gaussians_mixture
from scoresde.losses import DSMLoss
from scoresde.nets import ResidualMLP
from scoresde.parameterization import ScoreModel
from scoresde.sde import LinearSDE

#: Standard deviation of the notes' 4gaussians set per coordinate: sqrt(2^2 + 0.5^2).
SIGMA_DATA = (4.0 + 0.25) ** 0.5


def notes_data() -> GaussianMixture:
    """The study notes' 2-D demo set (``4gaussians``) with its exact marginals."""
    return four_gaussians_mixture()


def train_tiny(
    sde: LinearSDE,
    data: GaussianMixture,
    *,
    predicts: str = "eps",
    weighting: str = "sigma2",
    steps: int = 300,
    batch: int = 256,
    lr: float = 2e-3,
    seed: int = 0,
) -> tuple[ScoreModel, list[float]]:
    """Train a small residual MLP with DSM (Adam, fixed seed); return the model and the losses.

    Every model built with the same ``seed`` starts from the same weights and sees the same
    data and noise, so two runs differ only in ``predicts`` / ``weighting``.
    """
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = ResidualMLP(2, hidden=64, depth=2, generator=g)
    model = ScoreModel(net, sde, predicts=predicts, sigma_data=SIGMA_DATA)
    loss, opt = DSMLoss(sde, weighting=weighting), torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        value = loss(model, data.sample(batch, g).float(), generator=g)
        opt.zero_grad()
        value.backward()
        opt.step()
        losses.append(float(value.detach()))
    return model.requires_grad_(False), losses
