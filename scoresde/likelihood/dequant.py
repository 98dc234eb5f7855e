"""Variational dequantization (Ho et al. 2019, Flow++, Sec. 3.1) with the importance-weighted bound.

Integer data k in {0, ..., levels - 1}^D is modelled by the continuous density p of the model on
y = lo + (hi - lo)(k + u) / levels, u in [0, 1)^D. For any density q(u | k) on the unit cell,

    log P(k) >= E_{u_1..u_K ~ q} log (1/K) sum_j p(y_j) |dy/du| / q(u_j | k)      (Burda et al. 2016)

with |dy/du| = ((hi - lo) / levels)^D. K = 1 is the variational bound (Flow++ Eq. 12); it grows
with K towards log P(k), and it is tight for every K when q(u | k) = p(y(u)) |dy/du| / P(k).
Uniform q (log q = 0) and K = 1 is :func:`~scoresde.likelihood.dequantized_bits_per_dim`.

:class:`LogitNormalDequantizer` is a small conditional q: u = sigmoid(mu(k) + e^{s(k)} eps),
eps ~ N(0, I), with (mu, s) from an MLP of the whole (scaled) k, so
log q(u | k) = log N(eps) - s - log sigmoid(z) - log sigmoid(-z), z = logit(u). It is trained
jointly with (or after) the model by maximising the K = 1 bound (:func:`fit_dequantizer`).

**Truncation** (Song, Durkan, Murray & Ermon 2021, Sec. 5 and App.; Kim et al. 2022): the PF-ODE
gives log p_{t_e} of the *noised* data x = alpha y + sigma z (alpha, sigma at t_e), and a
decoder p(y | x) = N(y; x / alpha, (sigma / alpha)^2 I) with the forward kernel
q(x | y) = N(alpha y, sigma^2 I) as proposal bounds the data density:

    log p(y) >= E_{z_1..z_K} log (1/K) sum_j p_{t_e}(x_j) p(y | x_j) / q(x_j | y)
             = E log (1/K) sum_j p_{t_e}(alpha y + sigma z_j) + D log alpha,

because p(y | x) / q(x | y) = alpha^D for this decoder (the Gaussian factors cancel exactly).
:func:`truncated_log_prob` evaluates it; K > 1 is its importance-weighted version. A larger
t_e makes p_{t_e} smoother (cheaper to solve, easier to learn) at the price of the decoder's gap.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.nn.functional import logsigmoid

from .bpd import _check_levels

__all__ = ["LogitNormalDequantizer", "fit_dequantizer", "iw_bits_per_dim", "truncated_log_prob"]

_LOG_2PI = math.log(2 * math.pi)


class LogitNormalDequantizer(nn.Module):
    """q(u | k) = logit-normal with mean and log-scale from an MLP of k (Flow++'s role, small).

    Args:
        dim: D, the number of entries of one k.
        levels: Number of integer levels.
        hidden: Width of the MLP.
    """

    def __init__(self, dim: int, levels: int, hidden: int = 64) -> None:
        super().__init__()
        for name, v, lo in (("dim", dim, 1), ("levels", levels, 2), ("hidden", hidden, 1)):
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ValueError(f"LogitNormalDequantizer: expected {name} >= {lo}, received {v!r}")
        self.dim, self.levels = dim, levels
        first, last = nn.Linear(dim, hidden), nn.Linear(hidden, 2 * dim)
        nn.init.zeros_(last.weight)  # start at the logit-normal centred in each cell
        nn.init.zeros_(last.bias)
        self.net = nn.Sequential(first, nn.SiLU(), last)
        self._first = first

    def _params(self, k: Tensor) -> tuple[Tensor, Tensor]:
        n = k.shape[0]
        if k[0].numel() != self.dim:
            raise ValueError(
                f"LogitNormalDequantizer: expected k with {self.dim} entries per sample, received "
                f"shape {tuple(k.shape)}"
            )
        h = self.net((k.reshape(n, -1).to(self._first.weight) + 0.5) / self.levels - 0.5)
        mu, s = h.chunk(2, dim=1)
        return mu.reshape(k.shape), s.reshape(k.shape)

    def sample(self, k: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """One draw u ~ q(. | k) shaped like ``k`` and log q(u | k) of shape ``(batch,)``."""
        mu, s = self._params(k)
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype).to(mu.device)
        z = mu + torch.exp(s) * eps
        log_q = -0.5 * (eps**2 + _LOG_2PI) - s - logsigmoid(z) - logsigmoid(-z)
        return torch.sigmoid(z), log_q.reshape(k.shape[0], -1).sum(dim=1)

    def log_prob(self, u: Tensor, k: Tensor) -> Tensor:
        """log q(u | k) for u in (0, 1), shape ``(batch,)``."""
        mu, s = self._params(k)
        z = torch.logit(u.to(mu))
        eps = (z - mu) * torch.exp(-s)
        log_q = -0.5 * (eps**2 + _LOG_2PI) - s - logsigmoid(z) - logsigmoid(-z)
        return log_q.reshape(k.shape[0], -1).sum(dim=1)


def iw_bits_per_dim(
    log_prob_fn: Callable[[Tensor], Tensor],
    k: Tensor,
    dequantizer: LogitNormalDequantizer | None = None,
    *,
    n_importance: int = 1,
    levels: int = 256,
    model_range: tuple[float, float] = (-1.0, 1.0),
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
) -> Tensor:
    """The importance-weighted bound on -log P(k) in bits per dim, per sample (shape ``(batch,)``).

    Args:
        log_prob_fn: ``y -> log p(y)`` of shape ``(batch,)`` in nats (differentiable if the
            bound is to train the dequantizer or the model).
        k: Integer levels in [0, levels - 1], shape ``(batch, *dims)``.
        dequantizer: q(u | k); None is uniform dequantization (log q = 0).
        n_importance: K, the number of importance samples (K = 1: the variational bound).
        levels: Number of levels.
        model_range: The interval [lo, hi] the model sees.
        generator: Generator of the dequantization noise.
        dtype: Floating dtype of the dequantized data.
    """
    _check_levels(k, levels, model_range)
    if isinstance(n_importance, bool) or not isinstance(n_importance, int) or n_importance < 1:
        raise ValueError(f"iw_bits_per_dim: expected n_importance >= 1, received {n_importance!r}")
    lo, hi = (float(v) for v in model_range)
    d = k[0].numel()
    log_det = d * (math.log(hi - lo) - math.log(levels))
    terms = []
    for _ in range(n_importance):
        if dequantizer is None:
            u = torch.rand(k.shape, generator=generator, dtype=dtype).to(k.device)
            log_q = torch.zeros(k.shape[0], dtype=dtype, device=k.device)
        else:
            u, log_q = dequantizer.sample(k, generator)
        y = lo + (hi - lo) * (k.to(u.dtype) + u) / levels
        terms.append(log_prob_fn(y.to(dtype)).to(dtype) + log_det - log_q.to(dtype))
    log_w = torch.stack(terms)  # (K, batch)
    bound = torch.logsumexp(log_w, dim=0) - math.log(n_importance)
    return -bound / (d * math.log(2))


def fit_dequantizer(
    log_prob_fn: Callable[[Tensor], Tensor],
    k: Tensor,
    dequantizer: LogitNormalDequantizer,
    *,
    steps: int,
    batch_size: int = 128,
    lr: float = 1e-3,
    levels: int = 256,
    model_range: tuple[float, float] = (-1.0, 1.0),
    generator: torch.Generator | None = None,
) -> list[float]:
    """Fit q(u | k) by maximising the K = 1 bound E_q[log p(y) - log q(u | k)] (Flow++ Eq. 12).

    The model is whatever ``log_prob_fn`` evaluates; only the dequantizer's parameters move
    (Adam). ``log_prob_fn`` may itself be a stochastic lower bound on log p (e.g. an ELBO):
    the objective is then a bound on a bound, still maximised by q proportional to the model
    inside each cell when the inner bound is tight.

    Args:
        log_prob_fn: Differentiable ``y -> log p(y)`` (or a lower bound) of shape ``(batch,)``.
        k: Training levels, shape ``(n, *dims)``.
        dequantizer: The q to fit (in place).
        steps: Optimizer steps.
        batch_size: Levels per step, drawn with replacement.
        lr: Adam learning rate.
        levels: Number of levels.
        model_range: The interval [lo, hi] the model sees.
        generator: Generator of the batches and the dequantization noise.

    Returns:
        The bound in bits per dim at each step (a training curve).

    Raises:
        TypeError: If ``dequantizer`` is not a :class:`LogitNormalDequantizer`.
        ValueError: For ``steps`` or ``batch_size`` < 1 or ``lr`` <= 0.
    """
    if not isinstance(dequantizer, LogitNormalDequantizer):
        raise TypeError(
            "fit_dequantizer: expected a LogitNormalDequantizer, received "
            f"{type(dequantizer).__name__}"
        )
    for name, v in (("steps", steps), ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"fit_dequantizer: expected {name} >= 1, received {v!r}")
    if not lr > 0:
        raise ValueError(f"fit_dequantizer: expected lr > 0, received {lr!r}")
    _check_levels(k, levels, model_range)
    opt = torch.optim.Adam(dequantizer.parameters(), lr=lr)
    dtype = next(dequantizer.parameters()).dtype
    curve = []
    for _ in range(steps):
        idx = torch.randint(0, k.shape[0], (batch_size,), generator=generator)
        opt.zero_grad()
        bpd = iw_bits_per_dim(
            log_prob_fn,
            k[idx],
            dequantizer,
            levels=levels,
            model_range=model_range,
            generator=generator,
            dtype=dtype,
        ).mean()
        bpd.backward()
        opt.step()
        curve.append(float(bpd.detach()))
    return curve


def truncated_log_prob(
    log_prob_te: Callable[[Tensor], Tensor],
    alpha: float,
    sigma: float,
    y: Tensor,
    *,
    n_importance: int = 1,
    generator: torch.Generator | None = None,
) -> Tensor:
    """The truncation bound on log p(y) from log p_{t_e} (module docstring), shape ``(batch,)``.

    Args:
        log_prob_te: ``x -> log p_{t_e}(x)`` of shape ``(batch,)`` (e.g. the PF-ODE likelihood
            started at ``t_eps = t_e``).
        alpha: alpha_{t_e} of the forward marginal, in (0, 1].
        sigma: sigma_{t_e}, > 0.
        y: Continuous data, shape ``(batch, *dims)``.
        n_importance: K, noise draws per sample (K = 1: the plain variational bound).
        generator: Generator of the noise z.

    Raises:
        ValueError: For alpha outside (0, 1], sigma <= 0 or n_importance < 1.
    """
    if not 0 < float(alpha) <= 1:
        raise ValueError(f"truncated_log_prob: expected 0 < alpha <= 1, received {alpha!r}")
    if not float(sigma) > 0:
        raise ValueError(f"truncated_log_prob: expected sigma > 0, received {sigma!r}")
    if isinstance(n_importance, bool) or not isinstance(n_importance, int) or n_importance < 1:
        raise ValueError(
            f"truncated_log_prob: expected n_importance >= 1, received {n_importance!r}"
        )
    d = y[0].numel()
    terms = []
    for _ in range(n_importance):
        z = torch.randn(y.shape, generator=generator, dtype=y.dtype).to(y.device)
        terms.append(log_prob_te(float(alpha) * y + float(sigma) * z).to(y.dtype))
    log_w = torch.stack(terms)
    return torch.logsumexp(log_w, dim=0) - math.log(n_importance) + d * math.log(float(alpha))
