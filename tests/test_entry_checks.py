"""The prior check and the eps warning are wired into training, sampling and likelihood."""

from __future__ import annotations

import warnings

import pytest
import torch

from scoresde import checks
from scoresde.analytic import GaussianMixture
from scoresde.checks import UnstableParameterizationWarning
from scoresde.data import get_dataset
from scoresde.likelihood import log_likelihood
from scoresde.losses import get_loss
from scoresde.nets import ResidualMLP
from scoresde.parameterization import ScoreModel
from scoresde.samplers import sample
from scoresde.sde import VPSDE, prior
from scoresde.sde.prior import PriorMismatchWarning
from scoresde.training import train

SHORT = {"beta_min": 0.01, "beta_max": 2.0}  # the notes' T = 100 chain: alpha_bar_T = 0.37


@pytest.fixture(autouse=True)
def _fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prior, "_WARNED", set())
    monkeypatch.setattr(checks, "_WARNED", set())


def _gm(sde: VPSDE) -> GaussianMixture:
    return GaussianMixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.0]], [[0.1, 0.1]] * 2, sde=sde)


def test_sampling_warns_for_a_short_schedule_only() -> None:
    sde = VPSDE(**SHORT)
    x_T = sde.prior_sample((8, 2), generator=torch.Generator().manual_seed(0))
    with pytest.warns(PriorMismatchWarning, match=r"\(sampling\).*0.228 nats/dim"):
        sample("ddpm", sde, _gm(sde), x_T, 10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sample("ddpm", VPSDE(), _gm(VPSDE()), x_T, 10)


def test_likelihood_warns_with_the_data_statistics() -> None:
    sde = VPSDE(**SHORT)
    x = _gm(sde).sample(16, torch.Generator().manual_seed(0)).float()
    with pytest.warns(PriorMismatchWarning, match=r"\(likelihood\)"):
        log_likelihood(sde, _gm(sde), x, rtol=1e-3, atol=1e-3)


def test_training_warns(tmp_path) -> None:
    sde = VPSDE(**SHORT)
    model = ScoreModel(ResidualMLP(2, hidden=16, depth=1), sde, predicts="eps")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    with pytest.warns(PriorMismatchWarning, match=r"\(training\)"):
        train(model, get_loss("dsm", sde), get_dataset("4gaussians"), opt, steps=1,
              batch_size=8, out_dir=tmp_path, progress=False, device="cpu")  # fmt: skip


def test_sample_warns_once_for_eps_under_a_deterministic_sampler() -> None:
    sde = VPSDE()
    model = ScoreModel(lambda x, c: 0 * x, sde, predicts="eps")
    x_T = sde.prior_sample((4, 2), generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sample("ddpm", sde, model, x_T, 5, generator=torch.Generator().manual_seed(0))
        sample("ddim", sde, model, x_T, 5, eta=1.0, generator=torch.Generator().manual_seed(0))
    with pytest.warns(UnstableParameterizationWarning, match="'dpm_solver_1' is deterministic"):
        sample("dpm_solver_1", sde, model.score_fn, x_T, 5)
