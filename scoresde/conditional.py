"""Exact ground truth for conditional sampling and guidance: a mixture whose components have labels.

If p_0(x) = sum_k w_k N(mu_k, Sigma_k) and component k carries the class label c_k, then
p(y) = sum_{k: c_k = y} w_k and p_0(x | y) is the mixture of the components of class y with
weights w_k / p(y). Both diffuse in closed form under any linear SDE (:mod:`scoresde.analytic`),
so for every t:

- the conditional score s(x, t | y) = grad_x log p_t(x | y),
- the exact noisy classifier log p_t(y | x) = log p(y) + log p_t(x | y) - log p_t(x),
- the classifier-free guided field (1 + w) s(x, t | y) - w s(x, t) (Ho & Salimans 2022),

and at t = 0 the tilted target q(x) ∝ p(x | y)^(1+w) p(x)^(-w), whose normalising constant is
computed here by quadrature in one or two dimensions. The guided field at t = 0 is grad log q,
but at t > 0 it is not the score of q's forward marginal q_t (guidance does not commute with
diffusion), so a guided sampler converges to the guided ODE's own limit, not to q:
:meth:`LabeledMixture.tilted` lets a study measure both distances.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from ._utils import mean_se
from .analytic import GaussianMixture
from .samplers.guidance import bind_label, classifier_free_guidance

__all__ = ["LabeledMixture", "TiltedTarget"]


class LabeledMixture:
    """A :class:`GaussianMixture` whose components carry class labels.

    Args:
        mixture: The unconditional mixture p_0 (bound to an SDE for the time-dependent methods).
        labels: One integer label per component, shape ``(K,)``.

    A ``LabeledMixture`` is a conditional score function ``lm(x, t, y)``.
    """

    def __init__(self, mixture: GaussianMixture, labels: Sequence[int] | Tensor) -> None:
        if not isinstance(mixture, GaussianMixture):
            raise TypeError(
                f"LabeledMixture: expected a GaussianMixture, received {type(mixture).__name__}"
            )
        lab = torch.as_tensor(labels)
        if lab.shape != (mixture.K,) or lab.is_floating_point():
            raise ValueError(
                f"LabeledMixture: expected {mixture.K} integer labels (one per component), "
                f"received {tuple(lab.shape)} of {lab.dtype}"
            )
        self.mixture, self.labels = mixture, lab.long()
        self.classes = sorted(int(c) for c in self.labels.unique())
        self.sde = mixture.sde
        self._given = {c: self._subset(c) for c in self.classes}

    def _subset(self, y: int) -> GaussianMixture:
        m, keep = self.mixture, self.labels == y
        w = m.weights[keep]
        return GaussianMixture(
            w / w.sum(), m.means[keep], m.covariances[keep], m.sde, m.event_shape
        )

    def _check_label(self, y: int) -> int:
        if isinstance(y, bool) or not isinstance(y, int) or y not in self._given:
            raise ValueError(f"LabeledMixture: unknown label {y!r}; expected one of {self.classes}")
        return y

    def given(self, y: int) -> GaussianMixture:
        """p_0(x | y) as a mixture (bound to the same SDE): exact scores, densities, samples."""
        return self._given[self._check_label(y)]

    def class_prob(self, y: int) -> float:
        """p(y), the total weight of the components labelled ``y``."""
        return float(self.mixture.weights[self.labels == self._check_label(y)].sum())

    def score(self, x: Tensor, t: float | Tensor, y: Any) -> Tensor:
        """s(x, t | y): ``y`` an int or a tensor of labels of shape ``(batch,)``."""
        if isinstance(y, Tensor) and y.ndim == 1:
            if y.shape[0] != x.shape[0]:
                raise ValueError(f"LabeledMixture: {y.shape[0]} labels for a batch of {x.shape[0]}")
            out = torch.empty_like(x)
            for c in y.unique().tolist():
                sel = y == c
                tt = t[sel] if isinstance(t, Tensor) and t.ndim == 1 else t
                out[sel] = self.given(int(c)).score(x[sel], tt)
            return out
        return self.given(int(y)).score(x, t)

    def __call__(self, x: Tensor, t: float | Tensor, y: Any) -> Tensor:
        """The conditional score, so that the labelled mixture is a ``score_fn(x, t, y)``."""
        return self.score(x, t, y)

    def log_prob_y(self, y: int) -> Any:
        """The exact noisy classifier ``(x, t) -> log p_t(y | x)``, shape ``(batch,)``."""
        cond, log_py = self.given(y), math.log(self.class_prob(y))

        def log_prob(x: Tensor, t: float | Tensor) -> Tensor:
            return log_py + cond.marginal_log_prob(x, t) - self.mixture.marginal_log_prob(x, t)

        return log_prob

    def guided_score(self, y: int, w: float, interval: tuple[float, float] | None = None) -> Any:
        """The classifier-free guided field (1 + w) s(x, t | y) - w s(x, t), exact."""
        return classifier_free_guidance(
            bind_label(self, self._check_label(y)), self.mixture, w, interval=interval
        )

    def tilted(self, y: int, w: float, *, points: int | None = None) -> TiltedTarget:
        """The tilted target q ∝ p(x | y)^(1+w) p(x)^(-w) at t = 0 (d = 1 or 2)."""
        return TiltedTarget(self, self._check_label(y), w, points=points)


class TiltedTarget:
    """q(x) = p(x | y)^(1+w) p(x)^(-w) / Z, normalised by quadrature (1-D or 2-D data).

    For w > -1 the target is integrable: p(x) >= p(y) p(x | y) bounds q by p(y)^(-w) p(x | y)
    for w >= 0, and Hölder bounds it for -1 < w < 0.

    Args:
        labeled: The labelled mixture.
        y: The class.
        w: Guidance weight, > -1.
        points: Quadrature points per axis (default 4001 in 1-D, 401 in 2-D) on the box of every
            component's mean ± 10 standard deviations.
    """

    def __init__(
        self, labeled: LabeledMixture, y: int, w: float, *, points: int | None = None
    ) -> None:
        m = labeled.mixture
        if m.dim > 2:
            raise ValueError(f"TiltedTarget: quadrature needs d <= 2, received d = {m.dim}")
        if not (isinstance(w, int | float) and math.isfinite(w) and w > -1):
            raise ValueError(f"TiltedTarget: expected a finite w > -1, received {w!r}")
        self.cond, self.mixture, self.w, self.dim = labeled.given(y), m, float(w), m.dim
        n = points or (4001 if m.dim == 1 else 401)
        sd = m.eigvals.max(dim=-1).values.sqrt()  # the widest direction of each component
        lo = (m.means - 10 * sd[:, None]).min(0).values
        hi = (m.means + 10 * sd[:, None]).max(0).values
        axes = [torch.linspace(float(a), float(b), n, dtype=torch.float64) for a, b in zip(lo, hi)]
        #: The quadrature lattice, shape ``(n**d, d)``, and q's mass on each of its points.
        self.grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, m.dim)
        cell = math.prod(float(a[1] - a[0]) for a in axes)
        log_u = self._log_unnormalized(self.grid)
        self.log_normalizer = float(torch.logsumexp(log_u, 0) + math.log(cell))
        log_q = log_u - self.log_normalizer
        self.mass = (log_q + math.log(cell)).exp()
        #: Differential entropy of q (nats) and the variance of log q under q, same quadrature.
        self.entropy = float(-(self.mass * log_q).sum())
        self.log_prob_var = float((self.mass * (log_q + self.entropy) ** 2).sum())

    def _log_unnormalized(self, x: Tensor) -> Tensor:
        flat = x.reshape(x.shape[0], -1).to(torch.float64)
        return (1 + self.w) * self.cond.log_prob(flat) - self.w * self.mixture.log_prob(flat)

    def log_prob(self, x: Tensor) -> Tensor:
        """log q(x), shape ``(batch,)`` (float64)."""
        return self._log_unnormalized(x) - self.log_normalizer

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` draws of q on the quadrature lattice (float64, shape ``(n, d)``).

        Each lattice point is drawn with its quadrature mass, so E[-log q(x)] is exactly the
        quadrature's :attr:`entropy` and the CE gap of these draws is zero in expectation; the
        rectangle rule on a smooth, fast-decaying density is exact to far below sampling noise,
        so for smooth statistics the draws are exact samples of q (no importance weights).
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"TiltedTarget.sample: expected n >= 1, received {n!r}")
        return self.grid[torch.multinomial(self.mass, n, replacement=True, generator=generator)]

    def floor_sd(self, n: int) -> float:
        """The sd of the CE gap of ``n`` exact draws of q: sqrt(Var_q[log q] / n)."""
        return math.sqrt(self.log_prob_var / n)

    def cross_entropy_gap(self, samples: Tensor) -> float:
        """Mean -log q(samples) minus the entropy of q (nats).

        Zero in expectation for exact samples of q (sd :meth:`floor_sd`); positive for samples
        that are off target or too spread, negative for over-concentrated ones (a sign, not a
        distance).
        """
        return self.cross_entropy_gap_se(samples)[0]

    def cross_entropy_gap_se(self, samples: Tensor) -> tuple[float, float]:
        """The CE gap of :meth:`cross_entropy_gap` and its Monte Carlo standard error."""
        if not isinstance(samples, Tensor) or samples.ndim != 2 or samples.shape[1] != self.dim:
            shape = tuple(samples.shape) if isinstance(samples, Tensor) else type(samples).__name__
            raise ValueError(
                f"TiltedTarget: expected samples of shape (n, {self.dim}), received {shape}"
            )
        nll = -self.log_prob(samples.detach().cpu())
        if not bool(torch.isfinite(nll).all()):
            raise ValueError("TiltedTarget: log q of the samples is not finite")
        mean, se = mean_se(nll)
        return float(mean) - self.entropy, float(se)
