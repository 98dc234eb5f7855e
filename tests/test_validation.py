"""Bad input to the spine raises ValueError/TypeError saying what was expected and received."""

from __future__ import annotations

import pytest
import torch

from scoresde.analytic import GaussianMixture
from scoresde.parameterization import ScoreModel, convert
from scoresde.sde import VESDE, VPSDE, DDPMSchedule, LinearBeta, SubVPSDE, get_sde


@pytest.mark.parametrize(
    "build,exc,match",
    [
        (lambda: VPSDE(beta_min=20.0, beta_max=0.1), ValueError, "beta_min < beta_max"),
        (lambda: VPSDE(beta_min=-1.0), ValueError, "beta_min: expected a finite number > 0"),
        (lambda: VPSDE(schedule="quadratic"), ValueError, "unknown beta schedule 'quadratic'"),
        (lambda: VPSDE(schedule="cosine", T=1.0), ValueError, "T=1.0 exceeds"),
        (lambda: SubVPSDE(eps=0.0), ValueError, r"expected 0 < eps < T=1.0, received eps=0.0"),
        (lambda: VPSDE(T=-1.0), ValueError, "expected a finite T > 0"),
        (lambda: VESDE(sigma_min=0.0), ValueError, "sigma_min: expected a finite number > 0"),
        (lambda: VESDE(sigma_min=5.0, sigma_max=1.0), ValueError, "sigma_min < sigma_max"),
        (
            lambda: VESDE(schedule=LinearBeta()),
            TypeError,
            "expected schedule to be a SigmaSchedule",
        ),
        (
            lambda: get_sde("vpp"),
            ValueError,
            r"unknown SDE 'vpp'; expected one of 'subvp', 've', 'vp'",
        ),
        (
            lambda: VPSDE(beta_max=float("nan")),
            ValueError,
            "beta_max: expected a finite number > 0",
        ),
        (lambda: DDPMSchedule.from_betas([0.1, 1.2]), ValueError, r"every beta in \(0, 1\)"),
        (lambda: DDPMSchedule.from_sde(VESDE(), 10), TypeError, "expected a VPSDE"),
    ],
)
def test_bad_constructor_arguments(build, exc, match) -> None:
    with pytest.raises(exc, match=match):
        build()


def test_time_outside_range() -> None:
    sde = VPSDE()
    with pytest.raises(
        ValueError, match=r"expected times in \[0, 1\], received values in \[0.5, 1.5\]"
    ):
        sde.marginal(torch.tensor([0.5, 1.5]))
    with pytest.raises(ValueError, match="received NaN/Inf"):
        sde.marginal(torch.tensor([float("nan")]))
    with pytest.raises(TypeError, match="expected a float or a torch.Tensor, received str"):
        sde.marginal("0.5")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"expected a scalar or a tensor of shape \(3,\)"):
        sde.drift(torch.zeros(3, 2), torch.zeros(2))
    with pytest.raises(ValueError, match="expected finite log-SNR"):
        sde.t_from_log_snr(torch.tensor([float("inf")]))
    with pytest.raises(ValueError, match="expected dt > 0"):
        sde.discretize(torch.zeros(2, 2), 0.5, 0.0)
    with pytest.raises(ValueError, match=r"expected noise shaped like x0 \(2, 2\)"):
        sde.perturb(torch.zeros(2, 2), 0.5, torch.zeros(2, 3))


def test_mixture_validation() -> None:
    with pytest.raises(ValueError, match="positive weights summing to 1"):
        GaussianMixture([0.5, 0.6], [[0.0], [1.0]], [[1.0], [1.0]])
    with pytest.raises(ValueError, match=r"expected covariances of shape \(2, 1, 1\) or \(2, 1\)"):
        GaussianMixture([0.5, 0.5], [[0.0], [1.0]], [1.0, 1.0])
    with pytest.raises(ValueError, match="positive-definite"):
        GaussianMixture([1.0], [[0.0, 0.0]], [[[1.0, 2.0], [2.0, 1.0]]])
    with pytest.raises(ValueError, match="symmetric"):
        GaussianMixture([1.0], [[0.0, 0.0]], [[[1.0, 0.5], [0.0, 1.0]]])
    with pytest.raises(ValueError, match="GaussianMixture means: expected finite values"):
        GaussianMixture([1.0], [[float("nan")]], [[1.0]])
    gm = GaussianMixture([1.0], [[0.0, 0.0]], [[1.0, 1.0]])
    with pytest.raises(ValueError, match="needs an SDE"):
        gm.score(torch.zeros(1, 2), 0.5)
    with pytest.raises(ValueError, match=r"expected x of shape \(batch, 2\), received \(4, 3\)"):
        gm.log_prob(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="expected an integer n >= 1"):
        gm.sample(0)


def test_parameterization_validation() -> None:
    with pytest.raises(
        ValueError,
        match=r"unknown predicts 'noise'; expected one of 'edm', 'eps', 'score', 'v', 'x0'",
    ):
        ScoreModel(lambda x, c: x, VPSDE(), predicts="noise")
    with pytest.raises(ValueError, match="unknown time_input 'steps'"):
        ScoreModel(lambda x, c: x, VPSDE(), time_input="steps")
    with pytest.raises(TypeError, match="expected a LinearSDE"):
        ScoreModel(lambda x, c: x, object())  # type: ignore[arg-type]
    with pytest.raises(
        ValueError, match=r"net output must be shaped like x \(2, 3\), received \(2, 1\)"
    ):
        ScoreModel(lambda x, c: x[:, :1], VPSDE()).score_fn(torch.zeros(2, 3), 0.5)
    with pytest.raises(ValueError, match="unknown target 'y'"):
        convert(torch.zeros(2), torch.zeros(2), 1.0, 1.0, "eps", "y")


def test_adapter_and_preconditioning_validation() -> None:
    from scoresde.parameterization import from_denoiser, from_discrete_eps_model

    with pytest.raises(TypeError, match="from_denoiser: expected a callable D"):
        from_denoiser("D", VPSDE())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="from_denoiser: expected a LinearSDE, received object"):
        from_denoiser(lambda x, s: x, object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"expected every beta in \(0, 1\)"):
        from_discrete_eps_model(lambda x, n: x, [0.1, 1.5])
    with pytest.raises(ValueError, match="expected sigma_data > 0, received -1.0"):
        ScoreModel(lambda x, c: x, VPSDE(), predicts="edm", sigma_data=-1.0)
