"""Coordinates in which the probability-flow ODE is integrated, and the solver's error norms.

For a linear SDE, x_t = alpha_t x_0 + sigma_t eps (Song et al. 2021, Eq. 29), the PF-ODE
(Song et al. 2021, Eq. 13) dx/dt = a(t) x - 1/2 g(t)^2 s(x, t) can be integrated in three
coordinates (``time_variable``):

* ``"t"``: the state x over time t, as written in the paper.
* ``"sigma"``: the scaled state x~ = x / alpha_t over the noise level sigma~ = sigma_t / alpha_t
  (Karras et al. 2022, Eq. 4 with s(t) = alpha_t; Lu et al. 2022, DPM-Solver, Eq. 3.4). Since
  g^2 = alpha_t^2 d(sigma~^2)/dt and a = d log alpha_t / dt,

      dx~/dsigma~ = -sigma_t s(alpha x~, t) = eps_hat(x, t) = -sigma~ grad_x~ log p~(x~),

  the noise prediction: trajectories are nearly straight lines, which an adaptive solver
  crosses in few large steps. Its divergence in x~ is -sigma_t alpha_t tr(ds/dx).
* ``"log_snr"``: the same x~ over lambda = log(alpha_t^2 / sigma_t^2) = -2 log sigma~
  (decreasing): dx~/dlambda = sigma_t^2 / (2 alpha_t) s, divergence sigma_t^2 / 2 tr(ds/dx).

In every case the state is y = x / c_in (c_in = alpha_t for x~, 1 for x), the drift is
c_lin y + c_s s(c_in y, t) and its divergence c_lin D + c_s c_in tr(ds/dx). Because
log p_t(x) = log p~(x / alpha_t) - D log alpha_t, the linear parts of all three add up to the same
closed form, D (log alpha_T - log alpha_eps): only the c_s c_in tr(ds/dx) part is integrated.

Error norms (``error_norm``) for a batch of independent ODEs, applied to the scaled error
err / (atol + rtol max(|y0|, |y1|)) of the state y and the log-density ell:

* ``"sample_rms"`` (default): the RMS over samples of each sample's error, itself the larger of
  the RMS over the entries of y and |ell|. Per step, the batch's mean squared local error is
  within the tolerance, which is what the mean error over a data set needs; single samples may
  exceed it.
* ``"sample_max"``: the worst sample's error: every sample meets the tolerance as if solved
  alone (conservative: the batch's outliers set the step).
* ``"batch_rms"``: torchdiffeq's default, max(RMS of all y entries, RMS of all ell entries).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from .._utils import names_list
from ..sde import LinearSDE
from ..sde.pf_ode import ADAPTIVE_METHODS, TORCHDIFFEQ_METHODS
from ..sde.reverse import drift_coefs

__all__ = [
    "ERROR_NORMS",
    "SOLVERS",
    "TIME_VARIABLES",
    "PFCoordinates",
    "batch_rms_norm",
    "pf_coordinates",
    "sample_max_norm",
    "sample_rms_norm",
    "solver_options",
]

#: torchdiffeq's method names (:data:`~scoresde.sde.pf_ode.TORCHDIFFEQ_METHODS`).
SOLVERS: tuple[str, ...] = tuple(TORCHDIFFEQ_METHODS)
#: Integration variables of the PF-ODE (see the module docstring).
TIME_VARIABLES: tuple[str, ...] = ("sigma", "log_snr", "t")


def _per_sample(state: Tensor | tuple[Tensor, ...]) -> Tensor:
    """Each sample's scaled error: max(RMS over the entries of y, |ell| over probes)."""
    parts = (state,) if isinstance(state, Tensor) else state
    y = parts[0]
    err = y.reshape(y.shape[0], -1).pow(2).mean(1).sqrt()
    for p in parts[1:]:  # ell: (batch,) or (n_probes, batch)
        err = torch.maximum(err, p.abs().reshape(-1, y.shape[0]).amax(0))
    return err


def sample_max_norm(state: Tensor | tuple[Tensor, ...]) -> Tensor:
    """Error norm ``"sample_max"``: the worst sample's error (see the module docstring).

    Args:
        state: The scaled error, a tensor ``(batch, *dims)`` or a tuple ``(y, ell)`` with
            ``ell`` of shape ``(batch,)`` or ``(n_probes, batch)``.

    Returns:
        A scalar tensor.
    """
    return _per_sample(state).max()


def sample_rms_norm(state: Tensor | tuple[Tensor, ...]) -> Tensor:
    """Error norm ``"sample_rms"``: the RMS over samples of each sample's error."""
    return _per_sample(state).pow(2).mean().sqrt()


def batch_rms_norm(state: Tensor | tuple[Tensor, ...]) -> Tensor:
    """Error norm ``"batch_rms"``: torchdiffeq's default, the largest RMS over the tensors."""
    parts = (state,) if isinstance(state, Tensor) else state
    return torch.stack([p.pow(2).mean().sqrt() for p in parts]).max()


#: Error norms by name (see the module docstring).
ERROR_NORMS: dict[str, Callable[[Tensor | tuple[Tensor, ...]], Tensor]] = {
    "sample_rms": sample_rms_norm,
    "sample_max": sample_max_norm,
    "batch_rms": batch_rms_norm,
}


def solver_options(
    options: dict[str, Any] | None, error_norm: str, solver: str, end: Tensor, name: str
) -> dict[str, Any]:
    """torchdiffeq options: the error norm, and adaptive steps that land on the end point.

    torchdiffeq's adaptive solvers otherwise step past the end and interpolate back, through a
    step whose drift is frozen beyond T (the SDE is not defined there): a kink that costs both
    accuracy and rejected steps.
    """
    if error_norm not in ERROR_NORMS:
        raise ValueError(
            f"{name}: unknown error_norm {error_norm!r}; expected one of {names_list(ERROR_NORMS)}"
        )
    out = dict(options or {})
    out.setdefault("norm", ERROR_NORMS[error_norm])
    if solver in ADAPTIVE_METHODS:  # the adaptive ones accept step_t
        out.setdefault("step_t", end.reshape(1))
    return out


class PFCoordinates:
    """The PF-ODE of a linear SDE in one of :data:`TIME_VARIABLES`, between t0 and t1.

    Args:
        sde: A linear SDE.
        t0: Start time (the data end for encoding, t_eps).
        t1: End time.
        variable: One of :data:`TIME_VARIABLES`.
        dtype: Floating dtype of the span and coefficients.
        device: Device of the span and coefficients.
        name: The caller's name, for error messages.

    Raises:
        ValueError: for an unknown ``variable``.
    """

    def __init__(
        self,
        sde: LinearSDE,
        t0: float,
        t1: float,
        variable: str,
        dtype: torch.dtype,
        device: torch.device,
        *,
        name: str = "PFCoordinates",
    ) -> None:
        if variable not in TIME_VARIABLES:
            raise ValueError(
                f"{name}: unknown time_variable {variable!r}; expected one of "
                f"{names_list(TIME_VARIABLES)}"
            )
        self.sde, self.variable = sde, variable
        self.t_lo, self.t_hi = min(t0, t1), max(t0, t1)
        ends = torch.tensor([t0, t1], dtype=torch.float64)
        self.log_alpha = torch.log(sde.marginal(ends)[0])  # log alpha_{t0}, log alpha_{t1}
        if variable == "t":
            span = ends
        else:
            span = sde.noise_level(ends) if variable == "sigma" else sde.log_snr(ends)
        self.span = span.to(dtype=dtype, device=device)
        self.r_lo, self.r_hi = float(self.span.min()), float(self.span.max())

    def c_in(self, end: int) -> float:
        """The input scale c_in = x / y at ``span[end]`` (alpha_t for x~, 1 for x)."""
        return 1.0 if self.variable == "t" else math.exp(float(self.log_alpha[end]))

    def linear_log_det(self, D: int) -> float:
        """The closed-form linear part of the log-density change, D (log alpha_t1 - alpha_t0)."""
        return D * float(self.log_alpha[1] - self.log_alpha[0])

    def coefficients(self, r: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(t, c_in, c_lin, c_s)`` at the integration variable ``r`` (a scalar tensor).

        The drift is c_lin y + c_s s(c_in y, t) and the integrated divergence c_s c_in tr(ds/dx).
        """
        sde = self.sde
        r = r.clamp(self.r_lo, self.r_hi)  # torchdiffeq's first-step probe may overshoot
        if self.variable == "t":
            t = r
            one = torch.ones_like(r)
            c_x, c_s = drift_coefs(sde.drift_coef(t), sde.g2(t), probability_flow=True)  # Eq. 13
            return t, one, c_x.to(r.dtype), c_s.to(r.dtype)
        lam = -2 * torch.log(r) if self.variable == "sigma" else r
        t = sde.t_from_log_snr(lam.to(torch.float64)).clamp(self.t_lo, self.t_hi)
        alpha, sigma = sde.marginal(t)
        c_s = -sigma if self.variable == "sigma" else sigma**2 / (2 * alpha)
        zero = torch.zeros_like(r)
        return t.to(r.dtype), alpha.to(r.dtype), zero, c_s.to(r.dtype)


def pf_coordinates(
    sde: LinearSDE, t_eps: float | None, x: Tensor, time_variable: str, name: str, decode: bool
) -> PFCoordinates:
    """The PF-ODE coordinates from t_eps to T (or T to t_eps when ``decode``)."""
    t0 = sde.eps if t_eps is None else t_eps
    if isinstance(t0, bool) or not isinstance(t0, (int, float)) or not 0 < t0 < sde.T:
        raise ValueError(f"{name}: expected 0 < t_eps < T={sde.T:g}, received t_eps={t_eps!r}")
    ends = (sde.T, float(t0)) if decode else (float(t0), sde.T)
    return PFCoordinates(sde, *ends, time_variable, x.dtype, x.device, name=name)
