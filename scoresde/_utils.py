"""Small shared helpers: broadcasting, time handling, input validation, mean ± standard error.

:func:`check_same_sde` with :func:`sde_of` is the one check that a score function carrying an SDE
is used with that SDE (DESIGN.md, contract 11); :func:`names_list` formats the valid names of
every unknown-name error; :func:`mean_se` is the one mean ± standard error over draws.

Every module that needs to broadcast a per-sample quantity of shape ``(batch,)`` against a
state of shape ``(batch, *dims)`` uses :func:`append_dims`, so one code path serves 2-D points
and 4-D image batches alike (DESIGN.md, contract 9).
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

__all__ = [
    "append_dims",
    "as_time",
    "check_batch_time",
    "check_finite",
    "check_positive",
    "check_same_sde",
    "check_time_range",
    "mean_se",
    "names_list",
    "sde_of",
]


def append_dims(v: Tensor, ndim: int) -> Tensor:
    """Append trailing singleton dimensions so that ``v`` broadcasts against an ``ndim`` tensor.

    Args:
        v: A scalar tensor or a tensor of shape ``(batch,)`` (any leading shape works).
        ndim: The number of dimensions of the tensor ``v`` must broadcast against.

    Returns:
        ``v`` viewed with shape ``v.shape + (1,) * (ndim - v.ndim)``.

    Raises:
        ValueError: if ``v`` already has more than ``ndim`` dimensions.
    """
    extra = ndim - v.ndim
    if extra < 0:
        raise ValueError(
            f"append_dims: input has {v.ndim} dims (shape {tuple(v.shape)}) but the target has "
            f"only {ndim}; expected at most {ndim} dims"
        )
    return v.reshape(*v.shape, *([1] * extra))


def as_time(
    t: float | Tensor,
    *,
    like: Tensor | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Turn a Python number or tensor into a floating time tensor.

    The dtype and device follow ``like`` (the state ``x``) when given, so that float64 states
    get float64 schedule coefficients; otherwise ``dtype``/``device``; otherwise a Python number
    becomes a tensor of the default dtype and a tensor keeps its own floating dtype.

    Args:
        t: A scalar or a tensor of shape ``()`` or ``(batch,)``.
        like: Optional state tensor whose dtype and device the result takes.
        dtype: Optional dtype when ``like`` is not given.
        device: Optional device when ``like`` is not given.

    Returns:
        A floating-point tensor with the same shape as ``t``.

    Raises:
        TypeError: if ``t`` is neither a real number nor a tensor.
    """
    if like is not None:
        dtype, device = like.dtype, like.device
    if isinstance(t, Tensor):
        if dtype is None:
            dtype = t.dtype if t.is_floating_point() else torch.get_default_dtype()
        return t.to(dtype=dtype, device=device if device is not None else t.device)
    if isinstance(t, bool) or not isinstance(t, (int, float)):
        raise TypeError(f"time t: expected a float or a torch.Tensor, received {type(t).__name__}")
    return torch.tensor(float(t), dtype=dtype or torch.get_default_dtype(), device=device)


def _is_transformed(t: Tensor) -> bool:
    """Whether ``t`` is a torch.func (vmap/grad) wrapper, whose values cannot be read."""
    probe = getattr(torch._C._functorch, "is_functorch_wrapped_tensor", None)
    return bool(probe(t)) if probe is not None else False


def _cheap_to_check(t: Tensor) -> bool:
    # Range checks need a host sync; do them on the CPU only, where they cost nanoseconds,
    # and skip them on accelerators (entry points validate grids once up front there) and
    # inside torch.func transforms (vmap over t cannot read values).
    return t.device.type == "cpu" and not _is_transformed(t)


def check_time_range(t: Tensor, lo: float, hi: float, *, name: str = "t") -> None:
    """Raise ``ValueError`` if any entry of ``t`` is non-finite or outside ``[lo, hi]``.

    Args:
        t: Times to check (any shape).
        lo: Smallest allowed time.
        hi: Largest allowed time.
        name: Name used in the error message.
    """
    if not _cheap_to_check(t) or t.numel() == 0:
        return
    t = t.detach()
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name}: expected finite times in [{lo:g}, {hi:g}], received NaN/Inf")
    t_min, t_max = float(t.min()), float(t.max())
    # Allow a relative slack of a few float32 ulps so that grids built in float32 pass.
    slack = 4 * torch.finfo(t.dtype).eps * max(abs(hi), 1.0)
    if t_min < lo - slack or t_max > hi + slack:
        raise ValueError(
            f"{name}: expected times in [{lo:g}, {hi:g}], received values in "
            f"[{t_min:.6g}, {t_max:.6g}]"
        )


def check_finite(x: Tensor, *, name: str = "x") -> None:
    """Raise ``ValueError`` naming ``name`` if ``x`` holds NaN or Inf values."""
    if not bool(torch.isfinite(x).all()):
        n_bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"{name}: expected finite values, received {n_bad} NaN/Inf entries")


def check_positive(value: float, *, name: str) -> float:
    """Return ``value`` as a float if it is finite and > 0, else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}: expected a positive number, received {type(value).__name__}")
    v = float(value)
    if not (v > 0 and v < float("inf")):
        raise ValueError(f"{name}: expected a finite number > 0, received {value!r}")
    return v


def check_batch_time(t: Tensor, batch: int, *, name: str = "t") -> None:
    """Check that ``t`` is a scalar or has shape ``(batch,)``."""
    if t.ndim == 0:
        return
    if t.ndim != 1 or t.shape[0] not in (1, batch):
        raise ValueError(
            f"{name}: expected a scalar or a tensor of shape ({batch},), received shape "
            f"{tuple(t.shape)}"
        )


def names_list(names: Iterable[str]) -> str:
    """Format valid names for an error message."""
    return ", ".join(repr(n) for n in sorted(names))


def sde_of(fn: object) -> Any | None:
    """The SDE a score function carries, or ``None``.

    ``ScoreModel(net, sde)``, ``GaussianMixture(..., sde=sde)`` and their bound methods (e.g.
    ``model.score_fn``) carry one in their ``sde`` attribute; plain functions carry none.
    """
    for obj in (fn, getattr(fn, "__self__", None)):
        sde = getattr(obj, "sde", None)
        if sde is not None and callable(getattr(sde, "marginal", None)):
            return sde
    return None


def check_same_sde(sde: Any, carried: Any | None, *, what: str) -> None:
    """Raise ``ValueError`` if ``carried`` (an SDE a score function carries) differs from ``sde``.

    DESIGN.md, contract 11: a score function trained for one SDE and used with another gives a
    silently wrong answer, so the mismatch is an error. Two SDEs agree when they are the same
    object or of the same type with the same ``config()``.

    Args:
        sde: The SDE passed to the sampler, likelihood or trainer.
        carried: The SDE the score function (or loss) carries; ``None`` skips the check.
        what: What carries it, for the message (e.g. ``"score_fn"``).
    """
    if carried is None or carried is sde:
        return
    same = type(carried) is type(sde)
    if same:
        try:
            same = carried.config() == sde.config()
        except (AttributeError, TypeError, ValueError):
            same = False
    if not same:
        raise ValueError(
            f"{what} carries the SDE {carried!r} but is used with {sde!r}; expected the same SDE "
            "(pass the one it was built for)"
        )


def mean_se(draws: Tensor, dim: int = 0) -> tuple[Tensor, Tensor]:
    """Mean and standard error of independent draws along ``dim``.

    The standard error is the sample standard deviation (ddof = 1) over sqrt(n); NaN for n = 1.

    Args:
        draws: Draws stacked along ``dim`` (e.g. ``(n_draws, batch)`` or ``(n,)``).
        dim: The axis of the draws.

    Returns:
        ``(mean, se)``, each of the shape of ``draws`` without ``dim``.
    """
    n = draws.shape[dim]
    mean = draws.mean(dim)
    if n < 2:
        return mean, torch.full_like(mean, math.nan)
    return mean, draws.std(dim, correction=1) / math.sqrt(n)


class _LineProgress(tqdm):
    """tqdm for a log file: a whole line every ``every`` seconds (and at the end), no CR."""

    def __init__(self, *args: Any, every: float = 30.0, **kwargs: Any) -> None:
        self._every, self._last, self._closing = every, -math.inf, False
        super().__init__(*args, **kwargs)

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        now = time.monotonic()
        if not self._closing and now - self._last < self._every:
            return True
        self._last = now
        self.fp.write(f"{self}\n")
        self.fp.flush()
        return True

    def close(self) -> None:
        if not getattr(self, "disable", True) and not self._closing:
            self._closing = True
            self.display()
        self.disable = True  # tqdm's own close would redraw with "\r"
        super().close()


def progress_bar(*, every: float | None = None, **kwargs: Any) -> Any:
    """A tqdm progress bar on a terminal; sparse whole lines when stderr is redirected.

    Args:
        every: Seconds between lines when stderr is not a terminal (log files, CI); default
            ``$SCORESDE_PROGRESS_EVERY``, else 30.
        **kwargs: Passed to ``tqdm`` (``total``, ``desc``, ``disable``, ``initial``, ...).
    """
    if sys.stderr.isatty():
        return tqdm(**kwargs)
    if every is None:
        every = float(os.environ.get("SCORESDE_PROGRESS_EVERY", "30"))
    return _LineProgress(every=every, **{"ascii": True, **kwargs})
