"""The sampler registry, the ``sample`` entry point, and grids for a target NFE.

``SAMPLERS`` maps a name to a :class:`SamplerSpec`: the function and its metadata (stochastic or
not, the declared order and in which variable it holds, the SDEs it supports, score evaluations
per step) and its measured few-step defaults (grid kind, end time, final denoising step; DESIGN
contract 12, chosen by ``benchmarks/few_step_defaults.py``). The convergence tests check every
declared order.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
from torch import Tensor

from .._utils import names_list
from ..checks import warn_unstable_parameterization
from ..sde import VESDE, VPSDE, LinearSDE, ScoreFn, check_prior
from .ddim import sample_ddim
from .defaults import recommended, table_entry
from .deis import sample_deis, sample_ipndm
from .dpm_solver import (
    budget_orders,
    fast_orders,
    sample_dpm_solver,
    sample_dpm_solver_fast,
    sample_dpm_solver_pp_2m,
    step_orders,
)
from .dpm_solver_pp import sample_dpm_solver_pp, sample_dpm_solver_pp_2m_sde
from .edm import sample_edm
from .grids import make_grid
from .langevin import CORRECTORS, sample_annealed_langevin, sample_pc
from .ode import sample_pf_adaptive, sample_pf_euler, sample_pf_heun, sample_pf_rk4
from .reverse_sde import sample_ddpm, sample_euler_maruyama, sample_reverse_diffusion, sample_smld
from .signature import Callback, SampleInfo
from .spec import SamplerSpec
from .torchsde_backend import TORCHSDE_METHODS, sample_torchsde
from .unipc import sample_unipc

__all__ = [
    "SAMPLERS",
    "SamplerSpec",
    "expected_nfe",
    "get_sampler",
    "grid_for_nfe",
    "min_nfe",
    "plan_for_nfe",
    "sample",
]


def _pc_nfe(o: dict[str, Any]) -> int:
    corrector = CORRECTORS.get(o.get("corrector", "langevin"), CORRECTORS["none"])
    predictor = 0 if o.get("predictor", "reverse_diffusion") == "none" else 1
    return predictor + corrector.nfe(o.get("n_steps", 1))


def _singlestep(order: int, **defaults: Any) -> SamplerSpec:
    """Singlestep DPM-Solver-``order``: per-grid (``step_orders``) and per-budget plans.

    On a grid, the last step is first order with ``lower_order_final``; given an NFE budget,
    :func:`~scoresde.samplers.budget_orders` spends it exactly.
    """

    def step_nfes(n_steps: int, o: dict[str, Any]) -> list[int]:
        return step_orders(order, n_steps, o.get("lower_order_final", False))

    def plan(nfe: int, o: dict[str, Any]) -> list[int]:
        return budget_orders(order, nfe, o.get("lower_order_final", False))

    fn = partial(sample_dpm_solver, order=order)
    return SamplerSpec(
        fn,
        order=float(order),
        nfe_per_step=order,
        step_nfes=step_nfes,
        plan=plan,
        **_EXP,
        **defaults,
    )


def _few(kind: str, t_end: float | None, denoise: bool | str, **options: Any) -> dict[str, Any]:
    """Few-step defaults, as measured by ``benchmarks/few_step_defaults.py`` at NFE 10."""
    out = {"default_grid": kind, "default_t_end": t_end, "default_denoise": denoise}
    return out | ({"default_options": options} if options else {})


_SDE = {"stochastic": True, "order": 1.0, "weak_order": 1.0}  # strong order 1: additive noise
_EXP = {"stochastic": False, "order_variable": "log_snr"}
_FAST = {**_EXP, "default_grid": "quadratic"}
_LOF = {"lower_order_final": True}

# Few-step defaults: docs/howto/sample.md, "Defaults and the study that chose them" (samplers
# without a budget sweep keep their old ones).
#: Every registered sampler by name, with its measured few-step defaults.
SAMPLERS: dict[str, SamplerSpec] = {
    "euler_maruyama": SamplerSpec(sample_euler_maruyama, **_SDE, **_few("quadratic", 1e-4, False)),
    "reverse_diffusion": SamplerSpec(sample_reverse_diffusion, **_SDE),
    "ddpm": SamplerSpec(sample_ddpm, **_SDE, sdes=(VPSDE,), **_few("uniform", 1e-2, True)),
    "smld": SamplerSpec(sample_smld, **_SDE, sdes=(VESDE,), **_few("uniform", 1e-2, False)),
    "pc": SamplerSpec(sample_pc, stochastic=True, order=None, nfe_per_step=_pc_nfe),
    "annealed_langevin": SamplerSpec(
        sample_annealed_langevin,
        stochastic=True,
        order=None,
        sdes=(VESDE,),
        nfe_per_step=lambda o: o.get("n_steps", 1),
        **_few("karras", 1e-2, False),
    ),
    "torchsde": SamplerSpec(
        sample_torchsde, **_SDE, nfe_per_step=lambda o: TORCHSDE_METHODS[o.get("method", "euler")]
    ),
    "pf_euler": SamplerSpec(sample_pf_euler, stochastic=False, order=1.0),
    "pf_heun": SamplerSpec(
        sample_pf_heun, stochastic=False, order=2.0, nfe_per_step=2, **_few("log_snr", 1e-3, False)
    ),
    "pf_rk4": SamplerSpec(
        sample_pf_rk4, stochastic=False, order=4.0, nfe_per_step=4, **_few("log_snr", 1e-3, "spare")
    ),
    "pf_adaptive": SamplerSpec(sample_pf_adaptive, stochastic=False, order=None, adaptive=True),
    "ddim": SamplerSpec(sample_ddim, order=1.0, **_EXP, **_few("uniform", 1e-3, False)),
    "dpm_solver_1": _singlestep(1, **_few("uniform", 1e-3, False)),  # DDIM, step for step
    "dpm_solver_2": _singlestep(2, **_few("quadratic", 1e-2, True, **_LOF)),
    # dpm_solver_3 / _fast: the study's best (quadratic grid) lets a trained eps-model run away
    # (tests/test_eps_safety.py); the next best, on the log-SNR grid, does not.
    "dpm_solver_3": _singlestep(3, **_few("log_snr", 1e-2, False, **_LOF)),
    "dpm_solver_fast": SamplerSpec(
        sample_dpm_solver_fast,
        order=3.0,
        nfe_per_step=3,
        step_nfes=lambda n, o: fast_orders(3 * n - 1),
        plan=lambda nfe, o: fast_orders(nfe),
        **_EXP,
        **_few("log_snr", 1e-2, False),
    ),
    "dpm_solver_pp_2m": SamplerSpec(
        sample_dpm_solver_pp_2m, order=2.0, **_EXP, **_few("log_snr", 1e-2, False, **_LOF)
    ),
    # The modern fast solvers (issue #9), docs/howto/fast-solvers.md. Default grids: the best at
    # 10 NFE in benchmarks/fast_solvers.py without a blow-up at 5 or 20. DEIS and iPNDM reach
    # their interior orders (3 and 4 in log-SNR) only past the shared order test's step counts,
    # and an order-1 warm-up step bounds plain multistep methods by 2 where x0_theta still varies
    # at t = T: their orders are asserted against DOP853 in tests/test_solvers_orders.py.
    "dpm_solver_pp_3m": SamplerSpec(sample_dpm_solver_pp, order=3.0, **_FAST),
    "dpm_solver_pp_2m_sde": SamplerSpec(
        sample_dpm_solver_pp_2m_sde,
        stochastic=True,
        order=None,
        weak_order=2.0,
        order_variable="log_snr",
        default_grid="quadratic",
        description=(
            "weak order 2 (exact moments on Gaussian data, tests/test_solvers_weak.py); "
            "strong order ~1 in t on a shared Brownian path (measured 1.0-1.4, not asserted)"
        ),
    ),
    "unipc": SamplerSpec(sample_unipc, order=3.0, **_FAST),
    "deis": SamplerSpec(sample_deis, order=None, description="interior order 3 (order=3)", **_FAST),
    "ipndm": SamplerSpec(sample_ipndm, order=None, description="interior order 4", **_FAST),
    "edm": SamplerSpec(  # Heun except at the last step: 2N - 1 evaluations
        sample_edm,
        order=2.0,
        nfe_per_step=2,
        step_nfes=lambda n, o: [2] * (n - 1) + [1],
        **{**_EXP, "default_grid": "uniform"},
    ),
}


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
    **options: Any,
) -> tuple[Tensor, SampleInfo]:
    """Run the registered sampler ``name``, or with ``name="auto"`` the recommended one.

    Given an NFE budget, the sampler runs at its defaults (:func:`plan_for_nfe`: the grid ends
    at ``sde.eps`` followed by a Tweedie denoising step; grid kind and few-step switches from
    :data:`~scoresde.samplers.defaults.TABLE`), each overridable here, and spends at most the
    budget (``exact=True`` raises where it cannot spend it exactly). ``"auto"`` picks the sampler
    that was best for this SDE kind and NFE band on the training problems of the family
    (:data:`~scoresde.samplers.defaults.RECOMMENDED`) and names it in ``info.sampler``. Given a
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
        name = recommended(sde, grid_or_nfe)
    spec = get_sampler(name)
    warn_unstable_parameterization(score_fn, name, not spec.stochastic and not options.get("eta"))
    if isinstance(sde, LinearSDE):  # the data are unknown here: standardised data assumed
        check_prior(sde, context="sampling")
    if isinstance(grid_or_nfe, Tensor):
        return spec.fn(
            sde, score_fn, x_T, grid_or_nfe, generator=generator, callback=callback, **options
        )
    grid, opts = plan_for_nfe(
        sde, name, grid_or_nfe, grid_kind, t_end=t_end, exact=exact, **options
    )
    x, info = spec.fn(sde, score_fn, x_T, grid, generator=generator, callback=callback, **opts)
    shown = {k: v for k, v in opts.items() if k not in ("orders", "seeds", "noise_sampler", "hook")}
    info.settings = {
        "grid": grid_kind or _kind_of(name, sde, grid_or_nfe),
        "t_end": float(grid[-1]),
        **shown,
    }
    info.settings["auto"] = auto
    return x, info


def _kind_of(name: str, sde: LinearSDE, nfe: int) -> str:
    """The grid kind :func:`plan_for_nfe` uses by default."""
    chosen = table_entry(name, sde, nfe)
    return str(chosen["grid"]) if chosen else get_sampler(name).default_grid
