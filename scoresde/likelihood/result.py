"""The result type of :func:`~scoresde.likelihood.log_likelihood`."""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import Tensor

__all__ = ["LikelihoodResult"]


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
        dof: Degrees of freedom of ``stderr`` per sample, shape ``(batch,)`` (None for exact
            divergence): n_probes - 1 for probes fixed along the path; for probes drawn anew at
            every evaluation of a fixed grid, Satterthwaite's effective number of the stage-wise
            variance estimates (use Student's t quantiles for intervals).
    """

    log_prob: Tensor
    z: Tensor
    prior_log_prob: Tensor
    nfe: int
    n_vjp: int
    stderr: Tensor | None = None
    per_probe: Tensor | None = None
    dof: Tensor | None = None

    def continuous_bits_per_dim(self) -> Tensor:
        """-log_prob / (D log 2) of the continuous density, shape ``(batch,)``.

        No dequantization: for discrete data use :func:`~scoresde.likelihood.bits_per_dim`.
        """
        return -self.log_prob / (self.z[0].numel() * math.log(2))
