"""Does the network predict what its config says? A check on data, for loaded models.

A wrong ``prediction_type`` (diffusers) or output convention still gives a score function that
samples *something* and a likelihood that looks plausible. On data x0 the network's output can
be read as each kind (eps, x0, v, score) in turn: the kind it was trained for denoises best.
:func:`prediction_errors` measures the denoising error E|x0_hat - x0|^2 of each reading at a
few noise levels; :func:`check_predicts` warns when another reading is clearly better than the
configured one.

Why a trained model passes: read as its own kind, the exact network gives E[x0 | x_t], the
estimator of least squared error, so every other reading (another function of x_t) does worse;
a trained network adds its own error, and the factor 4 leaves it room. An untrained network
fails (its eps reading is amplified by sigma_t / alpha_t). The factor was set by this argument
and checked on the exact Gaussian models of the tests, not tuned on them.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

from ..conversions import PREDICTS, convert
from ..score_model import ScoreModel

__all__ = ["PredictionTypeWarning", "check_predicts", "prediction_errors"]


class PredictionTypeWarning(UserWarning):
    """The network's output fits another prediction type much better than the configured one."""


@torch.no_grad()
def prediction_errors(
    model: ScoreModel,
    x0: Tensor,
    times: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7),
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    """Mean denoising error of the raw network output read as each of 'eps', 'x0', 'v', 'score'.

    Args:
        model: A :class:`ScoreModel` whose ``predicts`` is one of PREDICTS.
        x0: Data in model units, shape ``(batch, *dims)``.
        times: Times t at which x_t = alpha_t x0 + sigma_t eps is drawn.
        generator: Generator of the noise.

    Returns:
        ``{kind: mean over times and points of |x0_hat - x0|^2 / D}``.
    """
    if model.predicts not in PREDICTS:
        raise ValueError(
            f"prediction_errors: expected a model predicting one of {PREDICTS}, received "
            f"{model.predicts!r}"
        )
    errors = dict.fromkeys(PREDICTS, 0.0)
    for t in times:
        tt = torch.full((x0.shape[0],), float(t), dtype=x0.dtype, device=x0.device)
        alpha, sigma = model.sde.marginal(tt)
        noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype).to(x0.device)
        shape = (-1,) + (1,) * (x0.ndim - 1)
        xt = alpha.view(shape) * x0 + sigma.view(shape) * noise
        out = model.net_output(xt, tt)
        for kind in PREDICTS:
            x0_hat = convert(out, xt, alpha, sigma, kind, "x0")
            errors[kind] += float(((x0_hat - x0) ** 2).mean()) / len(times)
    return errors


def check_predicts(
    model: ScoreModel, x0: Tensor, ratio: float = 0.25, generator: torch.Generator | None = None
) -> dict[str, float]:
    """Warn (:class:`PredictionTypeWarning`) if another reading denoises ``ratio`` times better.

    Returns:
        The errors of :func:`prediction_errors`.
    """
    errors = prediction_errors(model, x0, generator=generator)
    best = min(errors, key=lambda k: errors[k])
    own = errors[model.predicts]
    if best != model.predicts and errors[best] < ratio * own:
        warnings.warn(
            f"the network's output denoises the data as {best!r} (error {errors[best]:.3g}) far "
            f"better than as its configured {model.predicts!r} (error {own:.3g}); check the "
            "model's prediction type / output convention (an untrained network also fails this)",
            PredictionTypeWarning,
            stacklevel=2,
        )
    return errors
