"""What :func:`~scoresde.likelihood.log_likelihood` and :func:`~scoresde.likelihood.decode`
share: the result type, input validation, and the PF-ODE coordinates between t_eps and T.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from .._utils import check_finite, names_list
from ..sde import LinearSDE
from .coordinates import SOLVER_CLASSES, PFCoordinates

__all__ = ["SOLVERS", "LikelihoodResult", "check_inputs", "pf_coordinates"]

#: torchdiffeq's solver names (its ``SOLVERS`` registry).
SOLVERS: tuple[str, ...] = tuple(SOLVER_CLASSES)


@dataclass(frozen=True)
class LikelihoodResult:
    """The output of :func:`log_likelihood`.

    Attributes:
        log_prob: log p_{t_eps}(x) in nats, shape ``(batch,)`` (the mean over probes for
            Hutchinson).
        z: The latent x(T), shape ``(batch, *dims)``.
        prior_log_prob: log p_T(z) under the prior used, shape ``(batch,)``.
        nfe: Number of drift evaluations (forward passes of ``score_fn``).
        n_vjp: Number of vector-Jacobian products spent on the divergence.
        stderr: Hutchinson only: standard error of ``log_prob`` across probes (sample std with
            ddof = 1 over sqrt(n_probes)), shape ``(batch,)``; NaN for a single probe; None for
            exact divergence.
        per_probe: Hutchinson only: the estimate of each probe, shape ``(n_probes, batch)``.
    """

    log_prob: Tensor
    z: Tensor
    prior_log_prob: Tensor
    nfe: int
    n_vjp: int
    stderr: Tensor | None = None
    per_probe: Tensor | None = None

    def bits_per_dim(self) -> Tensor:
        """-log_prob / (D log 2), shape ``(batch,)`` (no dequantization; see ``bits_per_dim``)."""
        return -self.log_prob / (self.z[0].numel() * math.log(2))


def check_inputs(
    sde: Any, score_fn: Any, x: Any, solver: str, rtol: float, atol: float, name: str
) -> None:
    """Validate the arguments shared by log_likelihood and decode (``name`` prefixes errors)."""
    if not isinstance(sde, LinearSDE):
        raise TypeError(f"{name}: expected a LinearSDE (VP, sub-VP, VE), received {type(sde)}")
    if not callable(score_fn):
        raise TypeError(f"{name}: expected a callable score_fn(x, t), received {score_fn!r}")
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, received {type(x).__name__}")
    if x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(
            f"{name}: expected a tensor of shape (batch, *dims), received {tuple(x.shape)}"
        )
    check_finite(x, name=f"{name} input")
    if solver not in SOLVERS:
        raise ValueError(
            f"{name}: unknown solver {solver!r}; expected one of {names_list(SOLVERS)}"
        )
    for tol_name, tol in (("rtol", rtol), ("atol", atol)):
        if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 < tol < math.inf:
            raise ValueError(f"{name}: expected {tol_name} > 0, received {tol!r}")


def pf_coordinates(
    sde: LinearSDE, t_eps: float | None, x: Tensor, time_variable: str, name: str, decode: bool
) -> PFCoordinates:
    """The PF-ODE coordinates from t_eps to T (or T to t_eps when ``decode``)."""
    t0 = sde.eps if t_eps is None else t_eps
    if isinstance(t0, bool) or not isinstance(t0, (int, float)) or not 0 < t0 < sde.T:
        raise ValueError(f"{name}: expected 0 < t_eps < T={sde.T:g}, received t_eps={t_eps!r}")
    ends = (sde.T, float(t0)) if decode else (float(t0), sde.T)
    return PFCoordinates(sde, *ends, time_variable, x.dtype, x.device, name=name)
