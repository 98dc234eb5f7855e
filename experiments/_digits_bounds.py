"""Bits/dim of the digits model beyond uniform dequantization: a learned q(u | k), truncation.

* :func:`fit_model_dequantizer` fits :class:`~scoresde.likelihood.dequant.LogitNormalDequantizer`
  after the score model (which stays frozen) by maximising E_q[ELBO(y(u)) - log q(u | k)] on
  the training images (:func:`scoresde.likelihood.dequant.fit_dequantizer`, the ELBO of
  :func:`_digits_recipe.elbo_terms` standing in for log p: Song, Durkan, Murray & Ermon 2021 do
  the same with their likelihood-weighted bound).
* :func:`pf_ode_bits` evaluates the PF-ODE likelihood under q (or uniform) with one
  dequantization draw per pass, keeping every draw, so both the variational bound (mean over
  draws) and the importance-weighted bound (Burda et al. 2016, log-mean-exp over draws) come
  from the same solves (:func:`iw_from_draws`).
* :func:`truncated_bits` starts the PF-ODE at t_e and adds the Gaussian decoder
  (:func:`scoresde.likelihood.dequant.truncated_log_prob`).

Hutchinson's estimate of log p is unbiased, but its exponential is not: the log-mean-exp over
draws of a noisy log p is biased upwards (optimistic) by about half the probe variance per
image when that is small, so the importance-weighted rows are reported with that caveat and the
variational (mean) rows are the bounds.
"""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from _digits_recipe import LEVELS, elbo_terms
from torch import Tensor

from scoresde.likelihood import log_likelihood
from scoresde.likelihood.dequant import (
    LogitNormalDequantizer,
    fit_dequantizer,
    iw_bits_per_dim,
    truncated_log_prob,
)
from scoresde.parameterization import ScoreModel

D = 64
_LOG_CELL = D * math.log(2.0 / LEVELS)


class Cache:
    """Evaluation pieces (one PF-ODE draw, a fitted q) saved under ``folder`` by name, so an
    interrupted or extended evaluation (more draws) recomputes nothing; ``None``: no cache."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)

    def get(self, key: str, compute: Callable[[], Any]) -> Any:
        """The value stored under ``key``, or ``compute()`` stored there first."""
        path = None if self.folder is None else self.folder / f"{key}.pt"
        if path is not None and path.is_file():
            return torch.load(path, weights_only=False)
        value = compute()
        if path is not None:
            torch.save(value, path)
        return value


def _gen(seed: int, key: str) -> torch.Generator:
    """A generator of its own for each cached piece (so pieces do not depend on each other)."""
    return torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(key.encode()))


def fit_model_dequantizer(
    model: ScoreModel, train_k: Tensor, steps: int, seed: int, lr: float, hidden: int = 128
) -> tuple[LogitNormalDequantizer, list[float]]:
    """q(u | k) fitted to the frozen model's ELBO on the training levels; returns (q, curve).

    The times of a batch are stratified in log-SNR (one per slice, in random order): the
    one-draw ELBO has heavy tails at high SNR, where eps_hat reacts to y on the scale 1/sigma.
    """
    generator = _gen(seed, "dequantizer_fit")
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    sde = model.sde
    lam = sde.log_snr(torch.tensor([sde.eps, sde.T], dtype=torch.float64))
    torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=generator)))
    deq = LogitNormalDequantizer(D, LEVELS, hidden=hidden)

    def elbo_log_prob(y: Tensor) -> Tensor:
        n = y.shape[0]
        u = (torch.randperm(n, generator=generator) + torch.rand(n, generator=generator)) / n
        t = sde.t_from_log_snr(lam[0] - u.double() * (lam[0] - lam[1]))
        t = t.clamp(sde.eps, sde.T).float()
        noise = torch.randn(y.shape, generator=generator)
        return -elbo_terms(model, y.float(), t, noise)

    curve = fit_dequantizer(
        elbo_log_prob,
        train_k.long(),
        deq,
        steps=steps,
        batch_size=128,
        lr=lr,
        levels=LEVELS,
        generator=generator,
    )
    for p in model.parameters():
        p.requires_grad_(True)
    return deq, curve


@torch.no_grad()
def elbo_bits_with_q(
    model: ScoreModel, k: Tensor, deq: LogitNormalDequantizer | None, n_strata: int, seed: int
) -> Tensor:
    """The ELBO bound on bits/dim per image with dequantization q (uniform if None): one
    (u ~ q, eps) per stratum of log-SNR (:func:`_digits_recipe.stratified_t`)."""
    from _digits_recipe import stratified_t

    g = _gen(seed, "elbo_with_q")
    acc = torch.zeros(k.shape[0], dtype=torch.float64)
    for j in range(n_strata):
        if deq is None:
            u, log_q = torch.rand(k.shape, generator=g), torch.zeros(k.shape[0])
        else:
            u, log_q = deq.sample(k.long(), g)
        y = -1.0 + 2.0 * (k.float() + u) / LEVELS
        t = stratified_t(model, k.shape[0], j, n_strata, g)
        nll = elbo_terms(model, y, t, torch.randn(k.shape, generator=g))
        acc += (nll + log_q).double()
    return (acc / n_strata - _LOG_CELL) / (D * math.log(2.0))


def _ode_log_prob(model: ScoreModel, tol: float, generator: torch.Generator, nfe: list[int],
                  t_eps: float | None = None) -> Any:  # fmt: skip
    def log_prob(y: Tensor) -> Tensor:
        res = log_likelihood(
            model.sde,
            model,
            y.float(),
            generator=generator,
            dtype=torch.float32,
            divergence="hutchinson",
            n_probes=1,
            rtol=tol,
            atol=tol,
            t_eps=t_eps,
        )
        nfe.append(res.nfe)
        return res.log_prob

    return log_prob


@torch.no_grad()
def pf_ode_bits(
    model: ScoreModel,
    k: Tensor,
    deq: LogitNormalDequantizer | None,
    n_draws: int,
    tol: float,
    cache: Cache,
    name: str,
    seed: int,
) -> tuple[Tensor, int]:
    """Per-draw, per-image K = 1 bounds in bits/dim, shape ``(n_draws, n)``, and the NFE."""

    def one(key: str) -> tuple[Tensor, int]:
        nfe: list[int] = []
        g = _gen(seed, key)
        log_prob = _ode_log_prob(model, tol, g, nfe)
        bits = iw_bits_per_dim(log_prob, k.long(), deq, levels=LEVELS, generator=g,
                               dtype=torch.float32).double()  # fmt: skip
        return bits, sum(nfe)

    draws = [
        cache.get(f"{name}_draw{i}", lambda i=i: one(f"{name}_draw{i}")) for i in range(n_draws)
    ]
    return torch.stack([b for b, _ in draws]), sum(n for _, n in draws)


def iw_from_draws(per_draw: Tensor) -> Tensor:
    """The importance-weighted bound per image from K single-draw bounds (bits/dim), ``(n,)``."""
    log_w = -per_draw * D * math.log(2.0)
    K = per_draw.shape[0]
    return -(torch.logsumexp(log_w, dim=0) - math.log(K)) / (D * math.log(2.0))


@torch.no_grad()
def truncated_bits(
    model: ScoreModel, k: Tensor, t_e: float, n_importance: int, seed: int, tol: float
) -> tuple[Tensor, int]:
    """Bits/dim per image of the truncated model (PF-ODE from t_e + Gaussian decoder), uniform
    dequantization, ``n_importance`` noise draws per image; and the NFE."""
    nfe: list[int] = []
    generator = _gen(seed, f"truncation_{t_e:g}_K{n_importance}")
    log_prob_te = _ode_log_prob(model, tol, generator, nfe, t_eps=t_e)
    alpha, sigma = (float(v) for v in model.sde.marginal(torch.tensor(t_e, dtype=torch.float64)))
    kk = k.double()
    y = -1.0 + 2.0 * (kk + torch.rand(kk.shape, generator=generator, dtype=torch.float64)) / LEVELS
    log_p = truncated_log_prob(
        log_prob_te, alpha, sigma, y, n_importance=n_importance, generator=generator
    )
    return -(log_p + _LOG_CELL) / (D * math.log(2.0)), sum(nfe)


def beyond_uniform(
    model: ScoreModel,
    train_k: Tensor,
    test_k: Tensor,
    uniform_draws: Tensor,
    fast: bool,
    cache: Cache,
    seed: int,
    method: str,
    n_trunc: int,
) -> dict[str, Any]:
    """The rows of the table beyond uniform dequantization, for the same model and images.

    ``uniform_draws`` are the uniform rows' per-draw bounds ``(K, n)``; each new row also gets
    its paired difference to them on the same images (standard error over images).
    """
    from _digits_eval import summary

    n_draws, tol = uniform_draws.shape[0], (1e-2 if fast else 1e-4)
    fit_steps, lr = (5 if fast else 400), 5e-4

    def fit() -> tuple[LogitNormalDequantizer, list[float], float]:
        c0 = time.process_time()
        deq, curve = fit_model_dequantizer(model, train_k, fit_steps, seed, lr)
        return deq, curve, time.process_time() - c0

    deq, curve, fit_cpu = cache.get(f"dequantizer_{fit_steps}_lr{lr:g}_v2", fit)
    n_s = 2 if fast else 16
    elbo_q = {
        f"{part}_{q_name}": summary(elbo_bits_with_q(model, kk, q, n_s, seed))
        for part, kk in (("train", train_k), ("eval", test_k))
        for q_name, q in (("uniform", None), ("learned", deq))
    }
    deq_key = f"vardeq_{fit_steps}_lr{lr:g}"
    per_draw, nfe = pf_ode_bits(model, test_k, deq, n_draws, tol, cache, deq_key, seed)
    uniform = uniform_draws.mean(0)
    out: dict[str, Any] = {
        "model_vardeq": {
            **summary(per_draw.mean(0)),
            "per_draw_means": per_draw.mean(1).tolist(),
            "n_draws": n_draws,
            "nfe": nfe,
            "minus_uniform": summary(per_draw.mean(0) - uniform),
            "fit": {
                "steps": len(curve),
                "lr": lr,
                "cpu_minutes": round(fit_cpu / 60, 2),
                "curve_every_10": curve[::10],
                "elbo_bpd_first_50": sum(curve[:50]) / len(curve[:50]),
                "elbo_bpd_last_50": sum(curve[-50:]) / len(curve[-50:]),
            },  # fmt: skip
            "elbo_bound": elbo_q,
            "method": method.format("learned logit-normal") + ", averaged (variational bound)",
        },
        "model_vardeq_iw": {
            **summary(iw_from_draws(per_draw)),
            "minus_uniform_iw": summary(iw_from_draws(per_draw) - iw_from_draws(uniform_draws)),
            "method": method.format("learned logit-normal") + ", importance-weighted",
        },
    }
    rows = {}
    for t_e in (1e-3,) if fast else (1e-3, 1e-2):
        bits, nfe = cache.get(
            f"truncation_{t_e:g}_n{n_trunc}",
            lambda t_e=t_e: truncated_bits(model, test_k[:n_trunc], t_e, 1, seed, tol),
        )
        rows[f"{t_e:g}"] = {
            **summary(bits),
            "minus_uniform": summary(bits - uniform[:n_trunc]),
            "nfe": nfe,
        }
    out["truncation"] = {
        "n_images": n_trunc,
        "uniform_same_images": summary(uniform[:n_trunc]),
        "method": "PF-ODE from t_e (Hutchinson, one draw) + Gaussian decoder N(x/alpha, "
        "(sigma/alpha)^2), uniform dequantization, K = 1",
        "rows": rows,
    }
    return out
