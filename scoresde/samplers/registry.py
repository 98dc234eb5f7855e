"""The sampler registry, the ``sample`` entry point, and grids for a target NFE.

``SAMPLERS`` maps a name to a :class:`SamplerSpec`: the function and its metadata (stochastic or
not, the declared order and in which variable it holds, the SDEs it supports, score evaluations
per step, the natural grid). The convergence tests check every declared order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from torch import Tensor

from .._utils import names_list
from ..sde import VESDE, VPSDE, LinearSDE
from ._core import SampleInfo
from .ddim import sample_ddim
from .dpm_solver import sample_dpm_solver, sample_dpm_solver_pp_2m
from .grids import make_grid
from .langevin import sample_annealed_langevin, sample_pc
from .ode import sample_pf_adaptive, sample_pf_euler, sample_pf_heun, sample_pf_rk4
from .sde_backend import TORCHSDE_METHODS, sample_torchsde
from .sde_samplers import sample_ddpm, sample_euler_maruyama, sample_reverse_diffusion, sample_smld

__all__ = ["SAMPLERS", "SamplerSpec", "expected_nfe", "get_sampler", "grid_for_nfe", "sample"]


@dataclass(frozen=True)
class SamplerSpec:
    """Metadata of a registered sampler.

    Attributes:
        fn: ``fn(sde, score_fn, x_T, grid, *, generator, callback, **options) -> (x, info)``.
        stochastic: Whether it draws noise (with its default options).
        order: Declared order: strong order for SDE samplers, global order for ODE samplers;
            None where no order is claimed (Langevin correctors, adaptive solvers).
        weak_order: Declared weak order of stochastic samplers (None otherwise).
        order_variable: The step in which the order holds: 't' or 'log_snr'.
        sdes: The SDE classes it supports.
        nfe_per_step: Score evaluations per grid step (an int, or a function of the options).
        default_grid: The grid kind :func:`sample` uses when given an NFE.
        adaptive: Whether the solver chooses its own steps (then no NFE can be targeted).
    """

    fn: Callable[..., tuple[Tensor, SampleInfo]]
    stochastic: bool
    order: float | None
    weak_order: float | None = None
    order_variable: str = "t"
    sdes: tuple[type, ...] = (LinearSDE,)
    nfe_per_step: int | Callable[[dict[str, Any]], int] = 1
    default_grid: str = "uniform"
    adaptive: bool = False
    description: str = field(default="", compare=False)

    def supports(self, sde: LinearSDE) -> bool:
        """Whether ``sde`` is one of the supported SDE classes."""
        return isinstance(sde, self.sdes)

    def steps_nfe(self, options: dict[str, Any]) -> int:
        """Score evaluations per step for these options."""
        n = self.nfe_per_step
        return n(options) if callable(n) else n


def _pc_nfe(o: dict[str, Any]) -> int:
    return (0 if o.get("predictor", "reverse_diffusion") == "none" else 1) + o.get("n_steps", 1)


_SDE = {"stochastic": True, "order": 1.0, "weak_order": 1.0}  # strong order 1: additive noise
_EXP = {"stochastic": False, "order_variable": "log_snr", "default_grid": "log_snr"}

#: Every registered sampler by name.
SAMPLERS: dict[str, SamplerSpec] = {
    "euler_maruyama": SamplerSpec(sample_euler_maruyama, **_SDE),
    "reverse_diffusion": SamplerSpec(sample_reverse_diffusion, **_SDE),
    "ddpm": SamplerSpec(sample_ddpm, **_SDE, sdes=(VPSDE,)),
    "smld": SamplerSpec(sample_smld, **_SDE, sdes=(VESDE,)),
    "pc": SamplerSpec(sample_pc, stochastic=True, order=None, nfe_per_step=_pc_nfe),
    "annealed_langevin": SamplerSpec(
        sample_annealed_langevin,
        stochastic=True,
        order=None,
        sdes=(VESDE,),
        nfe_per_step=lambda o: o.get("n_steps", 1),
    ),  # fmt: skip
    "torchsde": SamplerSpec(
        sample_torchsde, **_SDE, nfe_per_step=lambda o: TORCHSDE_METHODS[o.get("method", "euler")]
    ),
    "pf_euler": SamplerSpec(sample_pf_euler, stochastic=False, order=1.0),
    "pf_heun": SamplerSpec(sample_pf_heun, stochastic=False, order=2.0, nfe_per_step=2),
    "pf_rk4": SamplerSpec(sample_pf_rk4, stochastic=False, order=4.0, nfe_per_step=4),
    "pf_adaptive": SamplerSpec(sample_pf_adaptive, stochastic=False, order=None, adaptive=True),
    "ddim": SamplerSpec(sample_ddim, order=1.0, **_EXP),
    "dpm_solver_1": SamplerSpec(partial(sample_dpm_solver, order=1), order=1.0, **_EXP),
    "dpm_solver_2": SamplerSpec(
        partial(sample_dpm_solver, order=2), order=2.0, nfe_per_step=2, **_EXP
    ),
    "dpm_solver_3": SamplerSpec(
        partial(sample_dpm_solver, order=3), order=3.0, nfe_per_step=3, **_EXP
    ),
    "dpm_solver_pp_2m": SamplerSpec(sample_dpm_solver_pp_2m, order=2.0, **_EXP),
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
    return n_steps * spec.steps_nfe(options) + (1 if options.get("denoise") else 0)


def grid_for_nfe(
    sde: LinearSDE, name: str, nfe: int, kind: str | None = None, *, exact: bool = True,
    **options: Any,
) -> Tensor:  # fmt: skip
    """The grid on which sampler ``name`` (with ``options``) spends exactly ``nfe`` evaluations.

    Args:
        sde: The linear SDE.
        name: A registered sampler.
        nfe: Target number of score evaluations (a final ``denoise`` step counts 1).
        kind: Grid kind (default: the sampler's ``default_grid``).
        exact: If True, raise when ``nfe`` is not reachable; else use the largest NFE <= ``nfe``.
        **options: The sampler options that change the cost (``n_steps``, ``method``, ...).

    Returns:
        A float64 grid of shape ``(n_steps + 1,)`` from T to eps.
    """
    spec = get_sampler(name)
    if spec.adaptive:
        raise ValueError(f"{name}: an adaptive solver picks its own NFE; pass a grid and rtol/atol")
    if isinstance(nfe, bool) or not isinstance(nfe, int) or nfe < 1:
        raise ValueError(f"grid_for_nfe: expected an integer nfe >= 1, received {nfe!r}")
    per, extra = spec.steps_nfe(options), 1 if options.get("denoise") else 0
    n_steps, rest = divmod(nfe - extra, per) if per > 0 else (0, 1)
    if n_steps < 1 or (rest and exact):
        ok = [k * per + extra for k in (max(n_steps, 1), max(n_steps, 1) + 1)]
        raise ValueError(
            f"{name}: NFE {nfe} is not reachable ({per} per step + {extra}); expected one of "
            f"{ok[0]}, {ok[1]}, ... (or pass exact=False)"
        )
    return make_grid(sde, n_steps, kind or spec.default_grid)


def sample(
    name: str, sde: LinearSDE, score_fn: Any, x_T: Tensor, grid_or_nfe: Tensor | int, *,
    generator: Any = None, callback: Any = None, grid_kind: str | None = None, **options: Any,
) -> tuple[Tensor, SampleInfo]:  # fmt: skip
    """Run the registered sampler ``name``.

    Args:
        name: A key of :data:`SAMPLERS`.
        sde: A linear SDE the sampler supports.
        score_fn: ``score_fn(x, t) -> grad_x log p_t(x)`` shaped like ``x``.
        x_T: Initial state of shape ``(batch, *dims)``, e.g. ``sde.prior_sample``.
        grid_or_nfe: A decreasing time grid, or a target NFE (then see :func:`grid_for_nfe`).
        generator: Generator of every random draw.
        callback: ``callback(i, t_next, x)`` after each step.
        grid_kind: Grid kind when an NFE is given (default: the sampler's).
        **options: Sampler-specific and common options.

    Returns:
        ``(x, info)``: samples shaped like ``x_T`` and a :class:`SampleInfo` with the exact NFE.
    """
    spec = get_sampler(name)
    if isinstance(sde, LinearSDE) and not spec.supports(sde):
        raise ValueError(
            f"sampler {name!r} does not support {type(sde).__name__}; it supports "
            f"{names_list(c.__name__ for c in spec.sdes)}"
        )
    grid = grid_or_nfe
    if not isinstance(grid_or_nfe, Tensor):
        grid = grid_for_nfe(sde, name, grid_or_nfe, grid_kind, **options)
    return spec.fn(sde, score_fn, x_T, grid, generator=generator, callback=callback, **options)
