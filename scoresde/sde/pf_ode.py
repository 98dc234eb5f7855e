"""The coordinates that samplers and likelihoods share, written once, below both.

For a linear SDE the marginal is x_t = alpha_t x0 + sigma_t eps (Song et al. 2021, Eq. 29) and
the probability-flow ODE (Eq. 13) is solved in t, in the noise level sigma~ = sigma_t / alpha_t
(EDM's sigma, Karras et al. 2022, Eq. 4; :meth:`~scoresde.sde.LinearSDE.noise_level` and its
inverse) or in the log-SNR lambda = log(alpha_t^2 / sigma_t^2) = -2 log sigma~. Here:

* :func:`perturb`: x_t = alpha_t x0 + sigma_t eps, the forward draw of every loss and of
  ``sde.perturb``;
* :func:`marginal_from_log_snr`: (alpha, sigma) of a VP process from its log-SNR,
  alpha^2 = sigmoid(lambda), sigma^2 = sigmoid(-lambda) (VDM, Kingma et al. 2021, Eqs. 3-4);
* :func:`tweedie_x0`: Tweedie's denoiser x0_hat = E[x0 | x_t] = (x_t + sigma_t^2 s(x_t, t)) /
  alpha_t (Efron 2011; the data prediction of DPM-Solver++ and the final denoising step);
* :data:`TORCHDIFFEQ_METHODS`: torchdiffeq's ODE methods, and which choose their own steps.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._utils import append_dims

__all__ = [
    "ADAPTIVE_METHODS",
    "TORCHDIFFEQ_METHODS",
    "marginal_from_log_snr",
    "perturb",
    "tweedie_x0",
]

#: torchdiffeq's ``odeint`` methods (v0.2.x, its documented list) -> whether the method is
#: adaptive: it picks its own steps under ``rtol``/``atol`` and accepts the ``step_t`` option.
#: ``tests/test_samplers_formula_homes.py`` checks the table against the installed torchdiffeq.
TORCHDIFFEQ_METHODS: dict[str, bool] = {
    "dopri8": True,
    "dopri5": True,
    "bosh3": True,
    "fehlberg2": True,
    "adaptive_heun": True,
    "euler": False,
    "midpoint": False,
    "heun2": False,
    "heun3": False,
    "rk4": False,
    "explicit_adams": False,
    "implicit_adams": False,
    "fixed_adams": False,
    "scipy_solver": False,  # a wrapper around scipy's solvers, not one of torchdiffeq's own
}
#: The adaptive methods of :data:`TORCHDIFFEQ_METHODS`.
ADAPTIVE_METHODS: tuple[str, ...] = tuple(m for m, a in TORCHDIFFEQ_METHODS.items() if a)


def perturb(x0: Tensor, alpha: Tensor, sigma: Tensor, noise: Tensor) -> Tensor:
    """x_t = alpha_t x0 + sigma_t noise, with ``alpha`` and ``sigma`` of shape ``(batch,)``.

    Args:
        x0: Data of shape ``(batch, *dims)``.
        alpha: alpha_t per sample (or a scalar tensor).
        sigma: sigma_t per sample (or a scalar tensor).
        noise: Standard normal noise shaped like ``x0``.

    Returns:
        The perturbed data, shaped like ``x0``.
    """
    return append_dims(alpha, x0.ndim) * x0 + append_dims(sigma, x0.ndim) * noise


def marginal_from_log_snr(lam: Tensor) -> tuple[Tensor, Tensor]:
    """(alpha, sigma) of a variance-preserving process with log-SNR ``lam``, shaped like it.

    alpha^2 = sigmoid(lambda) and sigma^2 = sigmoid(-lambda), so alpha^2 + sigma^2 = 1 and
    log(alpha^2 / sigma^2) = lambda (Kingma et al. 2021, Eqs. 3-4, with gamma = -lambda).
    """
    return torch.sqrt(torch.sigmoid(lam)), torch.sqrt(torch.sigmoid(-lam))


def tweedie_x0(x: Tensor, score: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
    """Tweedie's denoiser x0_hat = (x + sigma^2 s) / alpha from the score ``s`` at ``x``.

    ``alpha`` and ``sigma`` broadcast against ``x`` (scalars, or already expanded).
    """
    return (x + sigma**2 * score) / alpha
