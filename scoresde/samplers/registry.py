"""The sampler registry, the ``sample`` entry point, and grids for a target NFE.

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
from .defaults import TABLE, recommended, score_kind_of, table_entry
from .grids import make_grid
from .register import SAMPLERS
from .signature import Callback, SampleInfo
from .spec import SamplerSpec

__all__ = [
    "MODULES",
    "SAMPLERS",
    "SamplerSpec",
    "expected_nfe",
    "get_sampler",
    "grid_for_nfe",
    "min_nfe",
    "plan_for_nfe",
    "sample",
]

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


def get_sampler(name: str) -> SamplerSpec:
    """The :class:`SamplerSpec` called ``name``; ValueError listing the valid names otherwise."""
    if not isinstance(name, str) or name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; expected one of {names_list(SAMPLERS)}")
    return SAMPLERS[name]


def expected_nfe(name: str, n_steps: int, **options: Any) -> int | None:
    """Exact NFE of sampler ``name`` on an ``n_steps`` grid (None for adaptive solvers)."""
    spec = get_sampler(name)
    if spec.adaptive:
        return None
    return spec.run_nfe(n_steps, options)


def plan_for_nfe(
    sde: LinearSDE,
    name: str,
    nfe: int,
    kind: str | None = None,
    *,
    t_end: float | None = None,
    exact: bool = True,
    **options: Any,
) -> tuple[Tensor, dict[str, Any]]:
    """The grid, and the options, on which sampler ``name`` spends ``nfe`` evaluations.

    The defaults (docs/howto/sample.md, "The end of sampling" and "Defaults"): the grid ends at
    ``sde.eps`` and a final Tweedie step follows (``denoise=True``, 1 NFE); the grid kind and
    the sampler's few-step switches come from :data:`~scoresde.samplers.defaults.TABLE` for
    this SDE kind and NFE band (else the ``SamplerSpec``'s). A sampler with a budget plan
    (singlestep DPM-Solver) gets the per-step ``orders`` that spend the budget.

    Args:
        sde: The linear SDE.
        name: A registered sampler.
        nfe: Target number of score evaluations (the final ``denoise`` step counts 1).
        kind: Grid kind (default: the table's).
        t_end: The grid's last time (default: ``sde.eps``).
        exact: If True, raise when ``nfe`` is not reachable; else use the largest NFE <= ``nfe``.
        **options: Sampler options; those that change the cost (``n_steps``, ``method``,
            ``lower_order_final``, ``denoise``) are read here. ``denoise="spare"`` denoises
            only with an evaluation that whole steps leave unspent.

    Returns:
        ``(grid, options)``: a float64 grid of shape ``(n_steps + 1,)`` from T to ``t_end`` and
        the options to pass to the sampler.
    """
    spec = get_sampler(name)
    if spec.adaptive:
        raise ValueError(f"{name}: an adaptive solver picks its own NFE; pass a grid and rtol/atol")
    if isinstance(nfe, bool) or not isinstance(nfe, int) or nfe < 1:
        raise ValueError(f"grid_for_nfe: expected an integer nfe >= 1, received {nfe!r}")
    chosen = table_entry(name, sde, nfe) or {"grid": spec.default_grid, **spec.default_options}
    chosen = dict(chosen)
    grid_kind = kind or chosen.pop("grid")
    chosen.pop("grid", None)
    opts = {"denoise": True, **chosen, **options}
    spare = opts["denoise"] == "spare"  # denoise only with an evaluation whole steps leave
    opts["denoise"] = bool(opts["denoise"]) and not spare
    extra = 1 if opts["denoise"] else 0
    if spec.plan is not None and nfe > extra:
        opts["orders"] = spec.plan(nfe - extra, opts)
        n_steps = len(opts["orders"])
    else:
        n_steps = 0  # the most whole steps within the budget (costs grow with the steps)
        while spec.run_nfe(n_steps + 1, opts) <= nfe:
            n_steps += 1
        opts["denoise"] = opts["denoise"] or (spare and spec.run_nfe(n_steps, opts) < nfe)
        if n_steps < 1 or (exact and spec.run_nfe(n_steps, opts) != nfe):
            ok = sorted({spec.run_nfe(k, opts) for k in (max(n_steps, 1), n_steps + 1)})
            raise ValueError(
                f"{name}: NFE {nfe} is not reachable with these options; expected one of "
                f"{', '.join(map(str, ok))}, ... (or pass exact=False)"
            )
    return make_grid(sde, n_steps, grid_kind, t_end=t_end), opts


def min_nfe(name: str, **options: Any) -> int:
    """The smallest NFE ``sample(name, ..., nfe)`` runs at with these options (one step)."""
    spec = get_sampler(name)
    opts = {"denoise": True, **spec.default_options, **options}
    opts["denoise"] = opts["denoise"] is True
    return spec.run_nfe(1, opts)


def grid_for_nfe(
    sde: LinearSDE,
    name: str,
    nfe: int,
    kind: str | None = None,
    *,
    t_end: float | None = None,
    exact: bool = True,
    **options: Any,
) -> Tensor:
    """The grid of :func:`plan_for_nfe` (same arguments), without the options.

    For a sampler with a budget plan (``dpm_solver_fast``) the run spends exactly ``nfe`` only
    with the plan's ``orders``: use :func:`plan_for_nfe` or :func:`sample` there.
    """
    return plan_for_nfe(sde, name, nfe, kind, t_end=t_end, exact=exact, **options)[0]


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
    that was best for this SDE kind and NFE band on the training problems of the family
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
        "grid": grid_kind or _kind_of(name, sde, grid_or_nfe),
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


def _kind_of(name: str, sde: LinearSDE, nfe: int) -> str:
    """The grid kind :func:`plan_for_nfe` uses by default."""
    chosen = table_entry(name, sde, nfe)
    return str(chosen["grid"]) if chosen else get_sampler(name).default_grid
