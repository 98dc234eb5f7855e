"""The sampler registry and the ``sample`` entry point (grids for a target NFE: :mod:`.budget`).

``SAMPLERS`` maps a name to a :class:`SamplerSpec`: the function and its metadata (stochastic or
not, the declared order and in which variable it holds, the SDEs it supports, score evaluations
per step) and its measured few-step defaults (grid kind, end time, final denoising step; DESIGN
contract 12, :mod:`~scoresde.samplers.defaults`). Each sampler module registers its samplers
(:func:`~scoresde.samplers.register.register`); this module loads them in the declared order
(:data:`MODULES`), so that ``SAMPLERS`` is complete and ordered once it is imported. The
convergence tests check every declared order.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import torch
from torch import Tensor

from .._utils import names_list, progress_bar
from ..checks import warn_unstable_parameterization
from ..sde import LinearSDE, ScoreFn, check_prior
from . import (
    ddim,
    deis,
    dpm_solver,
    dpm_solver_pp,
    edm,
    langevin,
    ode,
    reverse_sde,
    torchsde_backend,
    unipc,
)
from .budget import plan_for_nfe, table_grid_kind
from .defaults import TABLE, recommended, score_kind_of
from .register import SAMPLERS, get_sampler
from .signature import Callback, SampleInfo
from .spec import SamplerSpec

__all__ = ["MODULES", "SAMPLERS", "SamplerSpec", "sample"]

#: The sampler modules in declared order: ``SAMPLERS`` lists their samplers module by module,
#: each module's in the order it registers them. A new sampler module adds itself here.
MODULES: tuple[ModuleType, ...] = (
    reverse_sde,
    langevin,
    torchsde_backend,
    ode,
    ddim,
    dpm_solver,
    dpm_solver_pp,
    unipc,
    deis,
    edm,
)


def _declare_order() -> None:
    """Put ``SAMPLERS`` in the order of :data:`MODULES`; check it and the defaults table."""
    rank = {m.__name__: k for k, m in enumerate(MODULES)}
    stray = {n: s.fn.__module__ for n, s in SAMPLERS.items() if s.fn.__module__ not in rank}
    if stray:
        raise RuntimeError(f"samplers registered outside registry.MODULES: {stray}")
    unknown = set(TABLE) - set(SAMPLERS)
    if unknown:
        raise RuntimeError(
            f"defaults.TABLE names unregistered samplers {names_list(unknown)}; expected "
            f"names among {names_list(SAMPLERS)}"
        )
    ordered = sorted(SAMPLERS.items(), key=lambda kv: rank[kv[1].fn.__module__])
    SAMPLERS.clear()
    SAMPLERS.update(ordered)


_declare_order()


def sample(
    name: str,
    sde: LinearSDE,
    score_fn: ScoreFn,
    x_T: Tensor,
    grid_or_nfe: Tensor | int,
    *,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    grid_kind: str | None = None,
    t_end: float | None = None,
    exact: bool = False,
    score_kind: str | None = None,
    progress: bool = False,
    **options: Any,
) -> tuple[Tensor, SampleInfo]:
    """Run the registered sampler ``name``, or with ``name="auto"`` the recommended one.

    Given an NFE budget, the sampler runs at its defaults (:func:`plan_for_nfe`: the grid ends
    at ``sde.eps`` followed by a Tweedie denoising step; grid kind and few-step switches from
    :data:`~scoresde.samplers.defaults.TABLE`), each overridable here, and spends at most the
    budget (``exact=True`` raises where it cannot spend it exactly). ``"auto"`` picks the sampler
    that was best for this SDE kind and NFE band on the held-out problems of the family
    (:data:`~scoresde.samplers.defaults.RECOMMENDED`; for a learned score the best stochastic
    one, :data:`~scoresde.samplers.defaults.RECOMMENDED_LEARNED`) and names it in
    ``info.sampler``. Given a
    grid, nothing is implied: the grid is used as is and ``denoise`` is off unless passed.

    Args:
        name: A key of :data:`SAMPLERS`, or ``"auto"`` (needs an NFE).
        sde: A linear SDE the sampler supports.
        score_fn: ``score_fn(x, t) -> grad_x log p_t(x)`` shaped like ``x``.
        x_T: Initial state of shape ``(batch, *dims)``, e.g. ``sde.prior_sample``.
        grid_or_nfe: A decreasing time grid, or a target NFE (see :func:`plan_for_nfe`).
        generator: Generator of every random draw.
        callback: ``callback(i, t_next, x)`` after each step.
        grid_kind: Grid kind when an NFE is given (default: the table's).
        t_end: Last grid time when an NFE is given (default: ``sde.eps``).
        exact: Given an NFE, raise unless it is spent exactly (default: at most ``nfe``).
        score_kind: For ``"auto"``: 'exact' or 'learned' (default: 'learned' for a
            ``torch.nn.Module``, else the callable's ``score_kind`` attribute, else 'exact';
            :func:`~scoresde.samplers.defaults.score_kind_of`).
        progress: Show a progress bar over the grid's steps (on stderr; whole lines every 30 s
            when stderr is not a terminal).
        **options: Sampler-specific options and the common options of every sampler
            (``seeds``, ``noise_sampler``, ``hook``, ``denoise``, ``return_trajectory``;
            see :class:`~scoresde.samplers.Sampler`).

    Returns:
        ``(x, info)``: samples shaped like ``x_T`` and a :class:`SampleInfo` with the exact NFE,
        the sampler that ran and, given an NFE, the settings it ran with (``info.settings``).
    """
    auto = name == "auto"
    if auto:
        if isinstance(grid_or_nfe, Tensor):
            raise ValueError("sample('auto', ...): expected an integer NFE, received a grid")
        if isinstance(grid_or_nfe, bool) or not isinstance(grid_or_nfe, int) or grid_or_nfe < 1:
            raise ValueError(
                f"sample('auto', ...): expected an integer nfe >= 1, received {grid_or_nfe!r}"
            )
        score_kind = score_kind_of(score_fn) if score_kind is None else score_kind
        name = recommended(sde, grid_or_nfe, score_kind)
    elif score_kind is not None:
        raise ValueError(f"sample: score_kind is for name='auto', received name={name!r}")
    spec = get_sampler(name)
    warn_unstable_parameterization(score_fn, name, not spec.stochastic and not options.get("eta"))
    if isinstance(sde, LinearSDE):  # the data are unknown here: standardised data assumed
        check_prior(sde, context="sampling")
    if isinstance(grid_or_nfe, Tensor):
        with _progress(progress, name, grid_or_nfe, callback) as cb:
            return spec.fn(
                sde, score_fn, x_T, grid_or_nfe, generator=generator, callback=cb, **options
            )
    grid, opts = plan_for_nfe(
        sde, name, grid_or_nfe, grid_kind, t_end=t_end, exact=exact, **options
    )
    with _progress(progress, name, grid, callback) as cb:
        x, info = spec.fn(sde, score_fn, x_T, grid, generator=generator, callback=cb, **opts)
    shown = {k: v for k, v in opts.items() if k not in ("orders", "seeds", "noise_sampler", "hook")}
    info.settings = {
        "grid": grid_kind or table_grid_kind(name, sde, grid_or_nfe),
        "t_end": float(grid[-1]),
        **shown,
    }
    info.settings["auto"] = auto
    if auto:
        info.settings["score_kind"] = score_kind
    return x, info


@contextlib.contextmanager
def _progress(
    on: bool, name: str, grid: Tensor, callback: Callback | None
) -> Iterator[Callback | None]:
    """The callback to pass on: ``callback``, and a progress bar's update when ``on``."""
    if not on:
        yield callback
        return
    bar = progress_bar(total=max(int(grid.numel()) - 1, 0), desc=name, unit="step")

    def cb(i: int, t_next: Tensor, x: Tensor) -> None:
        bar.update(1)
        if callback is not None:
            callback(i, t_next, x)

    try:
        yield cb
    finally:
        bar.close()
