"""Variational bounds: the continuous-time ELBO of the reverse SDE and the DDPM L_vlb.

**Continuous ELBO** (Song, Durkan, Murray & Ermon 2021, "Maximum Likelihood Training of
Score-Based Diffusion Models", Theorem 2, the L^SM form; Theorem 1 is the KL bound):

    log p^SDE(x) >= E[log pi(x_T)] - 1/2 int_eps^T E[ g^2 (2 div s + |s|^2) - 2 div f ] dt,

expectations over x_t ~ p_0t(. | x) (Eq. 29 of Song et al. 2021), estimated by Monte Carlo with
t ~ U(eps, T) (the integrand is bounded as t -> 0 for smooth data, unlike the denoising form).
div f = a(t) D exactly; div s is exact or Hutchinson. The gap is KL(q(path | x) || p(path | x)):
with the exact score and pi = p_T it is zero (the bound is tight), and on average over the data
E_p[ELBO] = E_p[log p] - KL(p_T || pi) - J_SM with J_SM = 1/2 int g^2 E|s - grad log p_t|^2 dt.
The integral starts at t_eps, so the bound holds up to the O(t_eps) piece left out.

**DDPM L_vlb** (Ho et al. 2020, Eq. 5, with the discretized Gaussian decoder of Sec. 3.3):
L = L_T + sum_{i>=1} L_{i} + L_0 in the 0-indexed steps of :class:`~scoresde.sde.DDPMSchedule`,
reported in bits per dim.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from .._utils import append_dims, check_finite, check_same_sde, mean_se, names_list, sde_of
from ..checks import far_from_data
from ..sde import DDPMSchedule, LinearSDE
from .bpd import _check_levels
from .divergence import draw_probes, score_and_divergence, score_and_probe_products

__all__ = ["ELBOResult", "VLBResult", "ddpm_vlb", "elbo"]

#: ``var_fn(x_i, i) -> Sigma_i``: a reverse variance broadcastable to ``x_i`` (per element).
VarFn = Callable[[Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class ELBOResult:
    """The output of :func:`elbo`: a Monte Carlo lower bound on log p(x) in nats.

    Attributes:
        elbo: The bound per sample, shape ``(batch,)``.
        stderr: Its Monte Carlo standard error, shape ``(batch,)`` (NaN for one draw).
        per_draw: The single-draw estimates, shape ``(n_samples, batch)``.
    """

    elbo: Tensor
    stderr: Tensor
    per_draw: Tensor


@dataclass(frozen=True)
class VLBResult:
    """The output of :func:`ddpm_vlb`: the DDPM bound L_vlb in bits per dim, and its terms.

    Attributes:
        bpd: L_vlb per sample in bits per dim, shape ``(batch,)``.
        per_term: Each term in bits per dim, shape ``(N + 1, batch)``: L_T first, then
            L_{N-1}, ..., L_0 (they sum to ``bpd``).
        nfe: Evaluations of ``eps_fn`` per sample (N).
    """

    bpd: Tensor
    per_term: Tensor
    nfe: int

    @property
    def mean(self) -> float:
        """The dataset average of ``bpd``."""
        return float(self.bpd.mean())


def elbo(
    sde: LinearSDE,
    score_fn: Callable[[Tensor, Tensor], Tensor],
    x: Tensor,
    *,
    n_samples: int = 16,
    divergence: Literal["exact", "hutchinson"] | str = "exact",
    generator: torch.Generator | None = None,
    t_eps: float | None = None,
    prior_log_prob: Callable[[Tensor], Tensor] | None = None,
) -> ELBOResult:
    """The continuous-time ELBO on log p(x) (Song, Durkan, Murray & Ermon 2021, Theorem 2).

    Args:
        sde: A linear SDE.
        score_fn: ``score_fn(x, t)``.
        x: Data of shape ``(batch, *dims)``.
        n_samples: Monte Carlo draws of (t, x_t, x_T) per sample.
        divergence: ``"exact"`` or ``"hutchinson"`` (one Rademacher probe per draw).
        generator: Generator for every draw.
        t_eps: Lower end of the time integral (default ``sde.eps``).
        prior_log_prob: ``z -> (batch,)`` replacing ``sde.prior_log_prob``.

    Returns:
        An :class:`ELBOResult`.
    """
    if not isinstance(sde, LinearSDE):
        raise TypeError(f"elbo: expected a LinearSDE, received {type(sde).__name__}")
    check_same_sde(sde, sde_of(score_fn), what="elbo: score_fn")
    if not isinstance(x, Tensor) or not x.is_floating_point() or x.ndim < 2:
        raise ValueError("elbo: expected a floating tensor x of shape (batch, *dims)")
    check_finite(x, name="elbo input")
    far_from_data(x, "elbo")
    if divergence not in ("exact", "hutchinson"):
        raise ValueError(
            f"elbo: unknown divergence {divergence!r}; expected one of "
            f"{names_list(['exact', 'hutchinson'])}"
        )
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"elbo: expected an integer n_samples >= 1, received {n_samples!r}")
    lo = sde.eps if t_eps is None else float(t_eps)
    if not 0 < lo < sde.T:
        raise ValueError(f"elbo: expected 0 < t_eps < T={sde.T:g}, received {t_eps!r}")
    prior = sde.prior_log_prob if prior_log_prob is None else prior_log_prob
    B, D = x.shape[0], x[0].numel()
    kw: dict[str, Any] = {"generator": generator, "dtype": x.dtype, "device": x.device}
    alpha_T, sigma_T = sde.marginal(torch.tensor(sde.T, dtype=x.dtype))
    draws = []
    with torch.no_grad():
        for _ in range(n_samples):
            t = lo + (sde.T - lo) * torch.rand(B, **kw)
            alpha, sigma = (append_dims(v, x.ndim) for v in sde.marginal(t))
            x_t = alpha * x + sigma * torch.randn(x.shape, **kw)
            x_T = alpha_T * x + sigma_T * torch.randn(x.shape, **kw)
            if divergence == "exact":
                s, div_s = score_and_divergence(score_fn, x_t, t)
            else:
                probe = draw_probes("rademacher", (1, *x.shape), **kw)
                s, est = score_and_probe_products(score_fn, x_t, t, probe)
                div_s = est[0]
            g2, a = sde.g2(t), sde.drift_coef(t)
            integrand = g2 * (2 * div_s + s.flatten(1).pow(2).sum(1)) - 2 * a * D
            draws.append(prior(x_T) - 0.5 * (sde.T - lo) * integrand)
    value, se = mean_se(torch.stack(draws))
    return ELBOResult(value, se, torch.stack(draws))


def _discretized_gaussian_log_prob(
    y: Tensor, mean: Tensor, std: Tensor, half_width: float, lo: float, hi: float
) -> Tensor:
    """log of the mass of N(mean, std^2) on each bin [y - w, y + w], edge bins open (Ho Eq. 13)."""
    normal = torch.distributions.Normal(mean, std)
    upper = torch.where(y >= hi - 1e-6, torch.ones_like(y), normal.cdf(y + half_width))
    lower = torch.where(y <= lo + 1e-6, torch.zeros_like(y), normal.cdf(y - half_width))
    return torch.log((upper - lower).clamp_min(1e-300)).flatten(1).sum(1)


def ddpm_vlb(
    schedule: DDPMSchedule,
    eps_fn: Callable[[Tensor, Tensor], Tensor],
    k: Tensor,
    *,
    levels: int = 256,
    model_range: tuple[float, float] = (-1.0, 1.0),
    variance: Literal["beta", "beta_tilde"] | str | Tensor | VarFn = "beta",
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
) -> VLBResult:
    """The DDPM variational bound L_vlb (Ho et al. 2020, Eq. 5) in bits per dim.

    One draw of x_i ~ q(x_i | x_0) per step and sample (all N steps are summed, so it costs N
    evaluations of ``eps_fn``). Data are the bin centres y = lo + (hi - lo) k / (levels - 1);
    the decoder p(x_0 | x_1) is the discretized Gaussian of Ho et al. Eq. 13 (bins of width
    (hi - lo) / (levels - 1), edge bins extended to infinity).

    Args:
        schedule: The N-step chain.
        eps_fn: ``eps_fn(x_i, i)`` with integer steps ``i`` of shape ``(batch,)`` in 0..N-1.
        k: Integer levels in [0, levels - 1], shape ``(batch, *dims)``.
        levels: Number of levels (256 for 8-bit images).
        model_range: The interval [lo, hi] of the model's data.
        variance: Reverse variances sigma_i^2: ``"beta"`` (beta_i), ``"beta_tilde"``
            (beta_tilde_i, with beta_tilde_1 for the decoder as in improved-diffusion), a tensor
            of shape ``(N,)`` (one per step, e.g. Analytic-DPM's
            :func:`~scoresde.samplers.analytic_dpm.analytic_dpm_chain_variances`), or a callable
            ``var_fn(x_i, i)`` returning variances broadcastable to ``x_i`` (e.g. improved
            DDPM's learned exp(v log beta_i + (1 - v) log beta_tilde_i)), called right after
            ``eps_fn`` with the same arguments.
        generator: Generator for the draws.
        dtype: Floating dtype.

    Returns:
        A :class:`VLBResult` (total and per-term bits per dim).
    """
    _check_levels(k, levels, model_range)
    custom = isinstance(variance, Tensor) or callable(variance)
    if not custom and variance not in ("beta", "beta_tilde"):
        raise ValueError(
            f"ddpm_vlb: unknown variance {variance!r}; expected one of "
            f"{names_list(['beta', 'beta_tilde'])}, a tensor of shape (N,) or var_fn(x_i, i)"
        )
    lo, hi = (float(v) for v in model_range)
    y = lo + (hi - lo) * k.to(dtype) / (levels - 1)
    B, D, N = y.shape[0], y[0].numel(), schedule.N
    sc = {
        f: getattr(schedule, f).to(dtype=dtype, device=y.device)
        for f in schedule.__dataclass_fields__
    }
    var = _step_variances(variance, sc, N)
    kw: dict[str, Any] = {"generator": generator, "dtype": dtype, "device": y.device}
    ab_T = sc["alpha_bars"][-1]  # L_T = KL(q(x_{N-1} | y) || N(0, I))
    terms = [0.5 * (ab_T * y**2 + (1 - ab_T) - 1 - torch.log1p(-ab_T)).flatten(1).sum(1)]
    with torch.no_grad():
        for i in range(N - 1, -1, -1):
            ab = sc["alpha_bars"][i]
            x_i = ab.sqrt() * y + (1 - ab).sqrt() * torch.randn(y.shape, **kw)
            step = torch.full((B,), i, dtype=torch.long, device=y.device)
            eps = eps_fn(x_i, step).to(dtype)
            var_i = var[i] if var is not None else _called_variance(variance, x_i, step, dtype)
            mean = (x_i - sc["betas"][i] / (1 - ab).sqrt() * eps) / sc["alphas"][i].sqrt()
            if i == 0:  # L_0 = -log p(y | x_0): the discretized Gaussian decoder
                half = (hi - lo) / (2 * (levels - 1))
                terms.append(-_discretized_gaussian_log_prob(y, mean, var_i.sqrt(), half, lo, hi))
                continue
            mu_post = sc["posterior_coef_x0"][i] * y + sc["posterior_coef_xt"][i] * x_i
            bt = sc["beta_tildes"][i]  # KL(N(mu_post, bt) || N(mean, var_i)), Ho Eq. 5
            kl = 0.5 * (torch.log(var_i / bt) + (bt + (mu_post - mean) ** 2) / var_i - 1)
            terms.append(kl.flatten(1).sum(1))
    per_term = torch.stack(terms) / (D * math.log(2))
    return VLBResult(per_term.sum(0), per_term, nfe=N)


def _step_variances(variance: object, sc: dict[str, Tensor], N: int) -> Tensor | None:
    """The per-step variances of :func:`ddpm_vlb`, shape ``(N,)``; None for a ``var_fn``."""
    if callable(variance):
        return None
    if isinstance(variance, Tensor):
        v = variance.detach().to(sc["betas"])
        if v.shape != (N,) or not bool(torch.isfinite(v).all() and (v > 0).all()):
            raise ValueError(
                f"ddpm_vlb: expected variance of shape ({N},) with finite positive values, "
                f"received shape {tuple(v.shape)}"
            )
        return v
    var = sc["betas"] if variance == "beta" else sc["beta_tildes"].clone()
    if variance == "beta_tilde":
        var[0] = sc["beta_tildes"][1] if N > 1 else sc["betas"][0]
    return var


def _called_variance(var_fn: Any, x_i: Tensor, step: Tensor, dtype: torch.dtype) -> Tensor:
    out = var_fn(x_i, step)
    if not isinstance(out, Tensor) or not bool((out > 0).all() and torch.isfinite(out).all()):
        raise ValueError(
            f"ddpm_vlb: expected var_fn to return finite positive variances, received {out!r}"
        )
    return out.to(dtype)
