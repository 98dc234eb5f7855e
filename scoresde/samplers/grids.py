"""Time grids t_0 = T > t_1 > ... > t_N = eps for the samplers.

* ``uniform``:   t_i = T - i (T - eps) / N (Song et al. 2021's samplers).
* ``quadratic``: t_i = eps + (T - eps) (1 - i / N)^2, denser near the data (Song et al. 2021a,
  DDIM, Appendix D.2).
* ``log_snr``:   uniform in lambda = log(alpha_t^2 / sigma_t^2) (Lu et al. 2022, DPM-Solver).
* ``karras``:    uniform in sigma^(1/rho) with sigma = sigma_t / alpha_t the EDM noise level
  (Karras et al. 2022, Eq. 5, rho = 7).

Grids are float64 CPU tensors whose endpoints are exactly T and t_end (default: ``sde.eps``;
a later end time, e.g. 1e-3 with a final denoising step, is often better at few steps); times
come from the SDE's ``t_from_log_snr``, so the same grid kinds serve VP, sub-VP and VE.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .._utils import names_list
from ..sde import LinearSDE

__all__ = ["GRIDS", "karras_grid", "log_snr_grid", "make_grid", "quadratic_grid", "uniform_grid"]


def _check_steps(n_steps: int) -> int:
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 1:
        raise ValueError(f"grid: expected an integer number of steps >= 1, received {n_steps!r}")
    return n_steps


def _end(sde: LinearSDE, t_end: float | None) -> float:
    """The grid's last time: ``sde.eps`` by default, else a float in [eps, T)."""
    if t_end is None:
        return sde.eps
    if isinstance(t_end, bool) or not isinstance(t_end, (int, float)):
        raise TypeError(f"grid: expected t_end as a float, received {type(t_end).__name__}")
    if not sde.eps <= t_end < sde.T:
        raise ValueError(
            f"grid: expected t_end in [eps, T) = [{sde.eps:g}, {sde.T:g}), received {t_end!r}"
        )
    return float(t_end)


def _pin(t: Tensor, sde: LinearSDE, t_end: float) -> Tensor:
    """Set the endpoints exactly to T and t_end (inverses are accurate to ~1e-15 only)."""
    t = t.to(torch.float64).clone()
    t[0], t[-1] = sde.T, t_end
    if not bool((t[1:] < t[:-1]).all()):
        raise ValueError("grid: too many steps for float64 resolution (times not distinct)")
    return t


def uniform_grid(sde: LinearSDE, n_steps: int, t_end: float | None = None) -> Tensor:
    """N + 1 times uniform in t from T to t_end (default ``sde.eps``)."""
    end = _end(sde, t_end)
    t = torch.linspace(sde.T, end, _check_steps(n_steps) + 1, dtype=torch.float64)
    return _pin(t, sde, end)


def quadratic_grid(sde: LinearSDE, n_steps: int, t_end: float | None = None) -> Tensor:
    """t_i = t_end + (T - t_end) (1 - i / N)^2 (t_end defaults to ``sde.eps``)."""
    end = _end(sde, t_end)
    u = torch.linspace(1.0, 0.0, _check_steps(n_steps) + 1, dtype=torch.float64)
    return _pin(end + (sde.T - end) * u**2, sde, end)


def log_snr_grid(sde: LinearSDE, n_steps: int, t_end: float | None = None) -> Tensor:
    """N + 1 times uniform in log-SNR lambda(t), from lambda(T) up to lambda(t_end)."""
    end = _end(sde, t_end)
    lam_T, lam_end = sde.log_snr(torch.tensor([sde.T, end], dtype=torch.float64))
    lam = torch.linspace(
        float(lam_T), float(lam_end), _check_steps(n_steps) + 1, dtype=torch.float64
    )
    return _pin(sde.t_from_log_snr(lam), sde, end)


def karras_grid(
    sde: LinearSDE, n_steps: int, t_end: float | None = None, rho: float = 7.0
) -> Tensor:
    """EDM's rho-grid in the noise level sigma = sigma_t / alpha_t = exp(-lambda / 2)."""
    if not rho > 0:
        raise ValueError(f"karras_grid: expected rho > 0, received {rho!r}")
    end = _end(sde, t_end)
    s_max, s_min = sde.noise_level(torch.tensor([sde.T, end], dtype=torch.float64))
    u = torch.linspace(0.0, 1.0, _check_steps(n_steps) + 1, dtype=torch.float64)
    sig = (s_max ** (1 / rho) + u * (s_min ** (1 / rho) - s_max ** (1 / rho))) ** rho
    return _pin(sde.t_from_log_snr(-2 * torch.log(sig)), sde, end)


#: Registry of grid kinds: ``fn(sde, n_steps, t_end=None) -> grid``.
GRIDS: dict[str, Callable[..., Tensor]] = {
    "uniform": uniform_grid,
    "quadratic": quadratic_grid,
    "log_snr": log_snr_grid,
    "karras": karras_grid,
}


def make_grid(
    sde: LinearSDE, n_steps: int, kind: str = "uniform", *, t_end: float | None = None
) -> Tensor:
    """A grid of ``kind`` ('uniform', 'quadratic', 'log_snr', 'karras') with ``n_steps`` steps.

    Args:
        sde: The linear SDE whose [eps, T] the grid spans.
        n_steps: Number of intervals N (the grid has N + 1 times).
        kind: A key of :data:`GRIDS`.
        t_end: The last time, in [eps, T) (default: ``sde.eps``).

    Returns:
        A float64 tensor of shape ``(n_steps + 1,)``, strictly decreasing from T to ``t_end``.
    """
    if kind not in GRIDS:
        raise ValueError(f"unknown grid kind {kind!r}; expected one of {names_list(GRIDS)}")
    if not isinstance(sde, LinearSDE):
        raise TypeError(f"make_grid: expected a LinearSDE, received {type(sde).__name__}")
    return GRIDS[kind](sde, n_steps, t_end=t_end)
