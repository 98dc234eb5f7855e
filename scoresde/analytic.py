"""Exact ground truth: a Gaussian mixture and its marginals under any linear SDE.

If p_0 = sum_k w_k N(mu_k, Sigma_k) and x_t = alpha_t x_0 + sigma_t eps (Song et al. 2021, Eq. 29),
then p_t is again a mixture,

    p_t(x) = sum_k w_k N(x; alpha_t mu_k, C_k(t)),   C_k(t) = alpha_t^2 Sigma_k + sigma_t^2 I,

so the score, the denoiser E[x_0 | x_t] and log p_t(x) are closed-form:

    grad log p_t(x) = -sum_k r_k(x) C_k^{-1} (x - alpha_t mu_k),
    E[x_0 | x_t = x] = sum_k r_k(x) (mu_k + alpha_t Sigma_k C_k^{-1} (x - alpha_t mu_k)),

with responsibilities r_k(x) proportional to w_k N(x; alpha_t mu_k, C_k). Each Sigma_k is
eigendecomposed once (Sigma_k = U_k diag(s_k) U_k^T), so C_k^{-1} is diagonal in the same basis
at every t and a query costs O(K d^2) per point (O(K d) for diagonal covariances). Queries are
chunked over the batch so that 1e5 points in a few hundred dimensions fit in memory.

A :class:`GaussianMixture` bound to an SDE is a drop-in score function: ``gm(x, t)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from ._utils import as_time, check_batch_time, check_finite
from .sde import LinearSDE

__all__ = ["GaussianMixture"]

_LOG_2PI = math.log(2 * math.pi)
#: Elements of the largest (chunk, K, d) temporary a query builds.
_CHUNK_ELEMENTS = 1 << 24


class GaussianMixture:
    """A K-component Gaussian mixture in R^d with exact marginals under linear SDEs.

    Args:
        weights: Mixture weights, shape ``(K,)``, positive, summing to 1.
        means: Component means, shape ``(K, d)``.
        covariances: Full covariances ``(K, d, d)`` (symmetric positive definite) or diagonal
            variances ``(K, d)`` (positive).
        sde: Optional linear SDE for the time-dependent methods (``score``, ``denoise``,
            ``eps``, ``marginal_log_prob``, ``__call__``); see :meth:`with_sde`.
        event_shape: Optional shape of one sample (e.g. ``(1, 8, 8)``), with prod = d; queries
            and samples then use ``(batch, *event_shape)``.

    Parameters are stored in float64; each query runs in the dtype and on the device of ``x``.
    """

    def __init__(
        self,
        weights: Tensor | Sequence[float],
        means: Tensor | Sequence[Sequence[float]],
        covariances: Tensor | Sequence,
        sde: LinearSDE | None = None,
        event_shape: Sequence[int] | None = None,
    ) -> None:
        w = torch.as_tensor(weights, dtype=torch.float64).detach().cpu()
        mu = torch.as_tensor(means, dtype=torch.float64).detach().cpu()
        cov = torch.as_tensor(covariances, dtype=torch.float64).detach().cpu()
        if w.ndim != 1 or mu.ndim != 2 or mu.shape[0] != w.shape[0] or 0 in mu.shape:
            raise ValueError(
                "GaussianMixture: expected weights (K,) and means (K, d) with K >= 1 and d >= 1, "
                f"received shapes {tuple(w.shape)} and {tuple(mu.shape)}"
            )
        K, d = mu.shape
        for name, v in (("weights", w), ("means", mu), ("covariances", cov)):
            check_finite(v, name=f"GaussianMixture {name}")
        if bool((w <= 0).any()) or abs(float(w.sum()) - 1) > 1e-6:
            raise ValueError(
                f"GaussianMixture: expected positive weights summing to 1, received sum "
                f"{float(w.sum()):.6g} and min {float(w.min()):.3g}"
            )
        if cov.shape == (K, d):
            if bool((cov <= 0).any()):
                raise ValueError("GaussianMixture: diagonal variances must all be > 0")
            self.diagonal = True
            self.eigvals, self.eigvecs = cov.clone(), None
        elif cov.shape == (K, d, d):
            if not torch.allclose(cov, cov.transpose(-1, -2), atol=1e-10, rtol=1e-8):
                raise ValueError("GaussianMixture: full covariances must be symmetric")
            evals, evecs = torch.linalg.eigh(cov)
            if bool((evals <= 0).any()):
                raise ValueError(
                    f"GaussianMixture: expected positive-definite covariances, received an "
                    f"eigenvalue {float(evals.min()):.3g}"
                )
            self.diagonal = False
            self.eigvals, self.eigvecs = evals, evecs
        else:
            raise ValueError(
                f"GaussianMixture: expected covariances of shape ({K}, {d}, {d}) or ({K}, {d}), "
                f"received {tuple(cov.shape)}"
            )
        self.weights, self.means, self.covariances = w, mu, cov
        self.K, self.dim = K, d
        self.event_shape = tuple(int(s) for s in event_shape) if event_shape else (d,)
        if math.prod(self.event_shape) != d:
            raise ValueError(
                f"GaussianMixture: event_shape {self.event_shape} has {math.prod(self.event_shape)} "
                f"entries but the mixture has dimension {d}"
            )
        if sde is not None and not isinstance(sde, LinearSDE):
            raise TypeError(f"GaussianMixture: expected a LinearSDE, received {type(sde).__name__}")
        self.sde = sde
        self._cache: dict[tuple[torch.dtype, torch.device], tuple[Tensor, ...]] = {}

    # -- construction helpers ----------------------------------------------------------------
    def with_sde(self, sde: LinearSDE) -> GaussianMixture:
        """The same mixture bound to another SDE (parameters shared)."""
        new = object.__new__(GaussianMixture)
        new.__dict__.update(self.__dict__)
        if not isinstance(sde, LinearSDE):
            raise TypeError(f"with_sde: expected a LinearSDE, received {type(sde).__name__}")
        new.sde = sde
        return new

    def marginal_mixture(self, t: float) -> GaussianMixture:
        """p_t itself as a GaussianMixture (for a scalar time t)."""
        alpha, sigma = (
            float(v) for v in self._sde().marginal(torch.tensor(float(t), dtype=torch.float64))
        )
        if self.diagonal:
            cov = alpha**2 * self.covariances + sigma**2
        else:
            cov = alpha**2 * self.covariances + sigma**2 * torch.eye(self.dim, dtype=torch.float64)
        return GaussianMixture(self.weights, alpha * self.means, cov, self.sde, self.event_shape)

    # -- moments and sampling -----------------------------------------------------------------
    @property
    def mean(self) -> Tensor:
        """The mixture mean, shape ``(d,)``."""
        return self.weights @ self.means

    @property
    def covariance(self) -> Tensor:
        """The mixture covariance, shape ``(d, d)``."""
        full = torch.diag_embed(self.covariances) if self.diagonal else self.covariances
        m = self.mean
        dev = self.means - m
        return torch.einsum("k,kij->ij", self.weights, full) + torch.einsum(
            "k,ki,kj->ij", self.weights, dev, dev
        )

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        *,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """Draw ``n`` samples from p_0, shape ``(n, *event_shape)``."""
        return self.sample_with_components(n, generator, dtype=dtype, device=device)[0]

    def sample_with_components(
        self,
        n: int,
        generator: torch.Generator | None = None,
        *,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Draw ``n`` samples and the index k of the component each came from, shape ``(n,)``.

        The samples are those of :meth:`sample` with the same generator.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"sample: expected an integer n >= 1, received {n!r}")
        gen_device = generator.device if generator is not None else torch.device("cpu")
        k = torch.multinomial(self.weights.to(gen_device), n, replacement=True, generator=generator)
        z = torch.randn(n, self.dim, generator=generator, device=gen_device, dtype=torch.float64)
        k = k.cpu()
        z = z.cpu() * torch.sqrt(self.eigvals[k])
        if not self.diagonal:
            assert self.eigvecs is not None
            z = torch.einsum("nij,nj->ni", self.eigvecs[k], z)
        x = self.means[k] + z
        return x.to(dtype=dtype, device=device).reshape(n, *self.event_shape), k

    # -- densities and scores ---------------------------------------------------------------------
    def log_prob(self, x: Tensor) -> Tensor:
        """log p_0(x), shape ``(batch,)``."""
        one, zero = torch.ones((), dtype=x.dtype), torch.zeros((), dtype=x.dtype)
        return self._query(x, one, zero, "logp")

    def marginal_log_prob(self, x: Tensor, t: float | Tensor) -> Tensor:
        """log p_t(x) under the bound SDE, shape ``(batch,)``; t in [0, T]."""
        return self._query(x, *self._alpha_sigma(x, t), "logp")

    def score(self, x: Tensor, t: float | Tensor) -> Tensor:
        """grad_x log p_t(x), shaped like ``x``."""
        return self._query(x, *self._alpha_sigma(x, t), "score")

    def denoise(self, x: Tensor, t: float | Tensor) -> Tensor:
        """E[x_0 | x_t = x], shaped like ``x``."""
        return self._query(x, *self._alpha_sigma(x, t), "x0")

    def eps(self, x: Tensor, t: float | Tensor) -> Tensor:
        """E[eps | x_t = x] = -sigma_t grad log p_t(x), shaped like ``x``."""
        return self._query(x, *self._alpha_sigma(x, t), "eps")

    def __call__(self, x: Tensor, t: float | Tensor) -> Tensor:
        """The score, so that the mixture is a ``score_fn``."""
        return self.score(x, t)

    # -- internals ------------------------------------------------------------------------------
    def _sde(self) -> LinearSDE:
        if self.sde is None:
            raise ValueError(
                "GaussianMixture: this method needs an SDE; pass sde= to the constructor or use "
                "with_sde(sde)"
            )
        return self.sde

    def _alpha_sigma(self, x: Tensor, t: float | Tensor) -> tuple[Tensor, Tensor]:
        tt = as_time(t, like=x)
        check_batch_time(tt, x.shape[0] if x.ndim else 1)
        return self._sde().marginal(tt)

    def _params(self, x: Tensor) -> tuple[Tensor, ...]:
        key = (x.dtype, x.device)
        if key not in self._cache:
            dtype, device = x.dtype, x.device
            log_w = torch.log(self.weights).to(dtype=dtype, device=device)
            mu = self.means.to(dtype=dtype, device=device)
            s = self.eigvals.to(dtype=dtype, device=device)
            if self.diagonal:
                self._cache[key] = (log_w, mu, s)
            else:
                assert self.eigvecs is not None
                U = self.eigvecs.to(dtype=dtype, device=device)
                mu_rot = torch.einsum("kd,kde->ke", mu, U)  # U_k^T mu_k
                self._cache[key] = (log_w, mu, s, U, mu_rot)
        return self._cache[key]

    def _query(self, x: Tensor, alpha: Tensor, sigma: Tensor, what: str) -> Tensor:
        if not isinstance(x, Tensor) or not x.is_floating_point():
            raise TypeError("GaussianMixture: expected a floating-point tensor x")
        if x.ndim < 1 or tuple(x.shape[1:]) not in (self.event_shape, (self.dim,)):
            raise ValueError(
                f"GaussianMixture: expected x of shape (batch, {', '.join(map(str, self.event_shape))}), "
                f"received {tuple(x.shape)}"
            )
        n = x.shape[0]
        flat = x.reshape(n, self.dim)
        alpha = alpha.to(x.dtype).expand(n) if alpha.ndim == 0 else alpha.to(x.dtype)
        sigma = sigma.to(x.dtype).expand(n) if sigma.ndim == 0 else sigma.to(x.dtype)
        chunk = max(1, _CHUNK_ELEMENTS // (self.K * self.dim))
        outs = [
            self._query_flat(flat[i : i + chunk], alpha[i : i + chunk], sigma[i : i + chunk], what)
            for i in range(0, n, chunk)
        ]
        out = torch.cat(outs) if len(outs) > 1 else outs[0]
        return out if what == "logp" else out.reshape(x.shape)

    def _query_flat(self, x: Tensor, alpha: Tensor, sigma: Tensor, what: str) -> Tensor:
        params = self._params(x)
        log_w, mu, s = params[0], params[1], params[2]
        a, sg = alpha[:, None, None], sigma[:, None, None]  # (n, 1, 1)
        lam = a**2 * s[None] + sg**2  # (n, K, d): eigenvalues of C_k(t)
        if self.diagonal:
            y = x[:, None, :] - a * mu[None]  # (n, K, d)
        else:
            U, mu_rot = params[3], params[4]
            y = torch.einsum("nd,kde->nke", x, U) - a * mu_rot[None]  # U_k^T (x - alpha mu_k)
        y_over = y / lam
        log_n = -0.5 * ((y * y_over).sum(-1) + torch.log(lam).sum(-1) + self.dim * _LOG_2PI)
        joint = log_w[None] + log_n  # (n, K)
        if what == "logp":
            return torch.logsumexp(joint, dim=1)
        r = torch.softmax(joint, dim=1)[:, :, None]  # (n, K, 1)
        if what == "score":
            v = -(r * y_over)
        elif what == "eps":
            v = r * (sg * y_over)
        else:  # x0: mu_k + alpha U diag(s / lam) U^T (x - alpha mu_k), in the rotated basis
            v = r * (a * s[None] * y_over)
        if self.diagonal:
            out = v.sum(1)
        else:
            out = torch.einsum("nke,kde->nd", v, params[3])
        if what == "x0":
            out = out + (r * mu[None]).sum(1)
        return out
