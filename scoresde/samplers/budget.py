"""Grids for a target NFE: the sampler's measured defaults and the budget they spend.

Given a sampler and a number of score evaluations, :func:`plan_for_nfe` returns the grid and the
options on which the sampler spends at most (or exactly) that budget: the grid ends at
``sde.eps`` and a final Tweedie step follows; grid kind and few-step switches come from the
measured table (:mod:`~scoresde.samplers.defaults`). :func:`~scoresde.samplers.sample` calls it
whenever it is given an NFE instead of a grid.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from ..sde import LinearSDE
from .defaults import table_entry
from .grids import make_grid
from .register import get_sampler

__all__ = ["expected_nfe", "grid_for_nfe", "min_nfe", "plan_for_nfe", "table_grid_kind"]


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


def table_grid_kind(name: str, sde: LinearSDE, nfe: int) -> str:
    """The grid kind :func:`plan_for_nfe` uses by default for ``name``, ``sde`` and ``nfe``."""
    chosen = table_entry(name, sde, nfe)
    return str(chosen["grid"]) if chosen else get_sampler(name).default_grid
