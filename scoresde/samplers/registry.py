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

from types import ModuleType
from typing import Any

import torch
from torch import Tensor

from .._utils import names_list
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
from .defaults import FEW_STEP
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
    unknown = set(FEW_STEP) - set(SAMPLERS)
    if unknown:
        raise RuntimeError(
            f"defaults.FEW_STEP names unregistered samplers {names_list(unknown)}; expected "
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
    """The grid, and the options, on which sampler ``name`` spends exactly ``nfe`` evaluations.

    The options are ``options`` plus the sampler's measured defaults where not given
    (``denoise``, ``default_options``) and, for a sampler with a budget plan (singlestep
    DPM-Solver), the per-step ``orders`` that spend the budget.

    Args:
        sde: The linear SDE.
        name: A registered sampler.
        nfe: Target number of score evaluations (a final ``denoise`` step counts 1).
        kind: Grid kind (default: the sampler's ``default_grid``).
        t_end: The grid's last time (default: the sampler's ``default_t_end``, else ``sde.eps``).
        exact: If True, raise when ``nfe`` is not reachable; else use the largest NFE <= ``nfe``.
        **options: Sampler options; those that change the cost (``n_steps``, ``method``,
            ``lower_order_final``, ``denoise``) are read here.

    Returns:
        ``(grid, options)``: a float64 grid of shape ``(n_steps + 1,)`` from T to ``t_end`` and
        the options to pass to the sampler.
    """
    spec = get_sampler(name)
    if spec.adaptive:
        raise ValueError(f"{name}: an adaptive solver picks its own NFE; pass a grid and rtol/atol")
    if isinstance(nfe, bool) or not isinstance(nfe, int) or nfe < 1:
        raise ValueError(f"grid_for_nfe: expected an integer nfe >= 1, received {nfe!r}")
    opts = {"denoise": spec.default_denoise, **spec.default_options, **options}
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
    end = t_end
    if end is None and spec.default_t_end is not None:  # measured for eps = 1e-5; never < eps
        end = max(spec.default_t_end, sde.eps)
    return make_grid(sde, n_steps, kind or spec.default_grid, t_end=end), opts


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
    **options: Any,
) -> tuple[Tensor, SampleInfo]:
    """Run the registered sampler ``name``.

    Given an NFE budget, the sampler runs at its measured defaults (``SamplerSpec``: grid kind,
    end time, final denoising step and the per-step orders of a budget plan; see the docs'
    "Defaults and the study that chose them"), each overridable here. Given a grid, nothing is
    implied: the grid is used as is and ``denoise`` is off unless passed.

    Args:
        name: A key of :data:`SAMPLERS`.
        sde: A linear SDE the sampler supports.
        score_fn: ``score_fn(x, t) -> grad_x log p_t(x)`` shaped like ``x``.
        x_T: Initial state of shape ``(batch, *dims)``, e.g. ``sde.prior_sample``.
        grid_or_nfe: A decreasing time grid, or a target NFE (see :func:`plan_for_nfe`).
        generator: Generator of every random draw.
        callback: ``callback(i, t_next, x)`` after each step.
        grid_kind: Grid kind when an NFE is given (default: the sampler's).
        t_end: Last grid time when an NFE is given (default: the sampler's, else ``sde.eps``).
        **options: Sampler-specific options and the common options of every sampler
            (``seeds``, ``noise_sampler``, ``hook``, ``denoise``, ``return_trajectory``;
            see :class:`~scoresde.samplers.Sampler`).

    Returns:
        ``(x, info)``: samples shaped like ``x_T`` and a :class:`SampleInfo` with the exact NFE.
    """
    spec = get_sampler(name)
    warn_unstable_parameterization(score_fn, name, not spec.stochastic and not options.get("eta"))
    if isinstance(sde, LinearSDE):  # the data are unknown here: standardised data assumed
        check_prior(sde, context="sampling")
    if isinstance(grid_or_nfe, Tensor):
        grid = grid_or_nfe
    else:
        grid, options = plan_for_nfe(sde, name, grid_or_nfe, grid_kind, t_end=t_end, **options)
    return spec.fn(sde, score_fn, x_T, grid, generator=generator, callback=callback, **options)
