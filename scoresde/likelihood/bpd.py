"""Bits per dimension of discrete data under a continuous model, with uniform dequantization.

Data with ``levels`` integer values k in {0, ..., levels - 1} per entry is dequantized as
u = (k + U) / levels with U ~ Uniform[0, 1)^D (Theis et al. 2016; Song et al. 2021, App. D.2),
and mapped to the model's range [lo, hi] by y = lo + (hi - lo) u. By Jensen's inequality

    log P(k) >= E_U[log p_model(y)] + D log(hi - lo) - D log(levels),

where D log(hi - lo) is the Jacobian of u -> y and -D log(levels) the volume of one cell (the
"log-levels" term). Bits per dim is -log P(k) / (D log 2); the average over ``n_draws`` draws
of U tightens the Monte Carlo error, not the bound. Uniform data under a uniform model gives
exactly log2(levels).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor

from .._utils import check_finite, mean_se
from ..sde import LinearSDE
from .budget import GridChoice, choose_n_steps
from .ode import log_likelihood

__all__ = ["BitsPerDim", "bits_per_dim", "dequantized_bits_per_dim"]


@dataclass(frozen=True)
class BitsPerDim:
    """The output of :func:`bits_per_dim` / :func:`dequantized_bits_per_dim`.

    Attributes:
        bpd: Bits per dim per sample, averaged over dequantization draws, shape ``(batch,)``.
        stderr: Standard error over draws (NaN for one draw), shape ``(batch,)``.
        per_draw: Bits per dim of each draw, shape ``(n_draws, batch)``.
        nfe: Total drift evaluations spent (0 for a closed-form density).
        probe_stderr: Hutchinson on a fixed grid with refreshed probes only: the probe part of
            each sample's error in bits/dim (its standard error over the probes, combined over
            the draws), shape ``(batch,)``; else None.
        n_steps: The fixed grid's number of steps (chosen when ``solver_error`` was given).
        solver_error: The measured solver error of the mean bits/dim (Richardson, on the
            pilot samples; :class:`~scoresde.likelihood.budget.SolverError`), or None.
        solver_error_se: Its standard error over the pilot samples, or None.
    """

    bpd: Tensor
    stderr: Tensor
    per_draw: Tensor
    nfe: int = 0
    probe_stderr: Tensor | None = None
    n_steps: int | None = None
    solver_error: float | None = None
    solver_error_se: float | None = None

    @property
    def mean(self) -> float:
        """The dataset average of ``bpd``."""
        return float(self.bpd.mean())


def _check_levels(k: Tensor, levels: int, model_range: tuple[float, float]) -> None:
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 2:
        raise ValueError(f"bits_per_dim: expected an integer levels >= 2, received {levels!r}")
    lo, hi = model_range
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        raise ValueError(
            f"bits_per_dim: expected model_range (lo, hi) with lo < hi, got {model_range}"
        )
    if not isinstance(k, Tensor) or k.ndim < 2 or k.shape[0] == 0:
        raise ValueError("bits_per_dim: expected integer levels of shape (batch, *dims)")
    check_finite(k.double(), name="bits_per_dim data")
    kd = k.double()
    if bool((kd != kd.round()).any()) or bool((kd < 0).any()) or bool((kd > levels - 1).any()):
        raise ValueError(
            f"bits_per_dim: expected integer levels in [0, {levels - 1}], received values in "
            f"[{float(kd.min()):g}, {float(kd.max()):g}] (non-integers: "
            f"{int((kd != kd.round()).sum())})"
        )


def dequantized_bits_per_dim(
    log_prob_fn: Callable[[Tensor], tuple[Tensor, int] | Tensor],
    k: Tensor,
    *,
    levels: int = 256,
    model_range: tuple[float, float] = (-1.0, 1.0),
    n_draws: int = 1,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
) -> BitsPerDim:
    """Bits per dim of integer data ``k`` under any continuous density on the model's range.

    Args:
        log_prob_fn: ``y -> log p(y)`` of shape ``(batch,)`` in nats (or ``(log_p, nfe)``).
        k: Integer levels in [0, levels - 1], shape ``(batch, *dims)`` (any dtype).
        levels: Number of levels (256 for 8-bit images, 17 for scikit-learn digits).
        model_range: The interval [lo, hi] the model sees (``(-1, 1)``, ``(0, 1)``, ...).
        n_draws: Number of dequantization draws averaged.
        generator: Generator for the uniform noise.
        dtype: Floating dtype of the dequantized data.

    Returns:
        A :class:`BitsPerDim`.

    Raises:
        ValueError: for data outside the levels, levels < 2, a bad range or n_draws < 1.
    """
    _check_levels(k, levels, model_range)
    if isinstance(n_draws, bool) or not isinstance(n_draws, int) or n_draws < 1:
        raise ValueError(f"bits_per_dim: expected an integer n_draws >= 1, received {n_draws!r}")
    lo, hi = (float(v) for v in model_range)
    D = k[0].numel()
    # Jacobian of u -> y and the cell volume: D log(hi - lo) - D log(levels).
    log_det = D * (math.log(hi - lo) - math.log(levels))
    draws, nfe = [], 0
    for _ in range(n_draws):
        noise = torch.rand(
            k.shape,
            generator=generator,
            dtype=dtype,
            device=generator.device if generator else None,
        )
        y = lo + (hi - lo) * (k.to(dtype) + noise.to(k.device)) / levels
        out = log_prob_fn(y)
        log_p, n = out if isinstance(out, tuple) else (out, 0)
        nfe += n
        draws.append(-(log_p.to(dtype) + log_det) / (D * math.log(2)))
    per_draw = torch.stack(draws)
    return BitsPerDim(*mean_se(per_draw), per_draw, nfe)


def bits_per_dim(
    sde: LinearSDE,
    score_fn: Callable[[Tensor, Tensor], Tensor],
    k: Tensor,
    *,
    levels: int = 256,
    model_range: tuple[float, float] = (-1.0, 1.0),
    n_draws: int = 1,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
    solver_error: float | None = None,
    pilot: int = 16,
    **likelihood_kwargs: Any,
) -> BitsPerDim:
    """Bits per dim of integer data through the PF-ODE likelihood (Song et al. 2021, Table 2).

    Args:
        sde: A linear SDE.
        score_fn: ``score_fn(x, t)`` on the model's range.
        k: Integer levels in [0, levels - 1], shape ``(batch, *dims)``.
        levels: Number of levels per entry.
        model_range: The interval the model's data lives in.
        n_draws: Number of dequantization draws averaged.
        generator: Generator for the dequantization noise and any Hutchinson probes.
        dtype: Floating dtype of the computation.
        solver_error: Target of the solver error of the mean bits/dim (e.g. 0.002): the fixed
            log-SNR grid (:mod:`~scoresde.likelihood.grid`) is chosen by
            :func:`~scoresde.likelihood.choose_n_steps` on the first ``pilot`` samples (one
            dequantization draw of their own, probes fixed), and the estimate is reported.
            ``None`` (default): the solver settings in ``likelihood_kwargs`` are used as given.
        pilot: Samples of the grid choice (>= 2).
        **likelihood_kwargs: Passed to :func:`~scoresde.likelihood.log_likelihood`
            (``solver``, ``rtol``, ``atol``, ``divergence``, ``n_steps``, ``prior_log_prob``, ...).

    Returns:
        A :class:`BitsPerDim`.

    Raises:
        ValueError: as :func:`dequantized_bits_per_dim`, or for ``solver_error`` together with
            ``n_steps``, ``solver_error <= 0`` or ``pilot < 2``.
    """
    D = k[0].numel()
    choice = None
    if solver_error is not None:
        choice = _choose_grid(
            sde,
            score_fn,
            k,
            solver_error,
            pilot,
            levels,
            model_range,
            generator,
            dtype,
            likelihood_kwargs,
        )
        likelihood_kwargs = {**likelihood_kwargs, "n_steps": choice.n_steps}
    probe_var: list[Tensor] = []

    def log_prob_fn(y: Tensor) -> tuple[Tensor, int]:
        res = log_likelihood(
            sde, score_fn, y, generator=generator, dtype=dtype, **likelihood_kwargs
        )
        if res.stderr is not None:
            probe_var.append(res.stderr.double() ** 2)
        return res.log_prob, res.nfe

    out = dequantized_bits_per_dim(
        log_prob_fn,
        k,
        levels=levels,
        model_range=model_range,
        n_draws=n_draws,
        generator=generator,
        dtype=dtype,
    )
    probe_se = None
    if probe_var and likelihood_kwargs.get("n_steps") is not None:
        n_draws = len(probe_var)  # the mean over draws: Var = sum_d Var_d / n_draws^2
        probe_se = torch.stack(probe_var).sum(0).sqrt() / (n_draws * D * math.log(2))
    scale = 1.0 / (D * math.log(2))
    return replace(
        out,
        probe_stderr=probe_se,
        n_steps=likelihood_kwargs.get("n_steps"),
        solver_error=None if choice is None else choice.check.error * scale,
        solver_error_se=None if choice is None else choice.check.se * scale,
    )


def _choose_grid(
    sde: LinearSDE,
    score_fn: Callable[[Tensor, Tensor], Tensor],
    k: Tensor,
    target_bpd: float,
    pilot: int,
    levels: int,
    model_range: tuple[float, float],
    generator: torch.Generator | None,
    dtype: torch.dtype,
    kwargs: dict[str, Any],
) -> GridChoice:
    """:func:`choose_n_steps` on the first ``pilot`` samples, with the target in bits/dim."""
    if "n_steps" in kwargs:
        raise ValueError("bits_per_dim: expected solver_error or n_steps, received both")
    if not (isinstance(target_bpd, (int, float)) and 0 < target_bpd < math.inf):
        raise ValueError(f"bits_per_dim: expected solver_error > 0, received {target_bpd!r}")
    if isinstance(pilot, bool) or not isinstance(pilot, int) or pilot < 2:
        raise ValueError(f"bits_per_dim: expected an integer pilot >= 2, received {pilot!r}")
    _check_levels(k, levels, model_range)
    kp = k[:pilot]
    lo, hi = (float(v) for v in model_range)
    noise = torch.rand(
        kp.shape, generator=generator, dtype=dtype, device=generator.device if generator else None
    )
    y = lo + (hi - lo) * (kp.to(dtype) + noise.to(kp.device)) / levels
    kw = {key: v for key, v in kwargs.items() if key not in ("seeds", "refresh_probes")}
    if kw.get("divergence", "exact") != "exact":
        kw["seeds"] = list(range(kp.shape[0]))
    D = k[0].numel()
    return choose_n_steps(sde, score_fn, y, target=target_bpd * D * math.log(2), dtype=dtype, **kw)
