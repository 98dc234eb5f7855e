"""A registered sampler's metadata: :class:`SamplerSpec` (orders, SDEs, costs, few-step defaults).

A sampler module registers each sampler once, with its spec
(:func:`~scoresde.samplers.register.register`); the registry
(:data:`~scoresde.samplers.SAMPLERS`) maps names to these; the convergence tests check the
declared orders, :func:`~scoresde.samplers.expected_nfe` and
:func:`~scoresde.samplers.plan_for_nfe` read the costs, and :func:`~scoresde.samplers.sample`
given an NFE applies the measured defaults. ``REVERSE_SDE`` and ``EXPONENTIAL`` are the
metadata that families of samplers share.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..sde import LinearSDE
from .signature import Sampler

__all__ = ["EXPONENTIAL", "REVERSE_SDE", "SamplerSpec"]

#: Reverse-SDE discretizations: strong order 1 (additive noise) and weak order 1 in t.
REVERSE_SDE: dict[str, Any] = {"stochastic": True, "order": 1.0, "weak_order": 1.0}
#: Exponential integrators: deterministic, their order holds in the log-SNR step.
EXPONENTIAL: dict[str, Any] = {"stochastic": False, "order_variable": "log_snr"}


@dataclass(frozen=True)
class SamplerSpec:
    """Metadata of a registered sampler.

    Attributes:
        name: The registry name (written once, where the sampler registers).
        fn: The sampler, with the signature of :class:`~scoresde.samplers.Sampler`.
        stochastic: Whether it draws noise (with its default options).
        order: Declared order: strong order for SDE samplers, global order for ODE samplers;
            None where no order is claimed (Langevin correctors, adaptive solvers).
        weak_order: Declared weak order of stochastic samplers (None otherwise).
        order_variable: The step in which the order holds: 't' or 'log_snr'.
        sdes: The SDE classes it supports.
        nfe_per_step: Score evaluations per grid step (an int, or a function of the options).
        default_grid: The grid kind :func:`sample` uses when given an NFE.
        default_t_end: The grid's last time when given an NFE (None: ``sde.eps``; an SDE
            whose eps is later ends at its eps).
        default_denoise: Whether :func:`sample` given an NFE ends with the Tweedie step:
            True, False or ``"spare"`` (only when whole steps leave an evaluation unspent).
        default_options: Sampler options :func:`sample` adds when given an NFE (e.g.
            ``lower_order_final``); on an explicit grid the function's own defaults hold, so
            the declared orders are those of the plain method.
        adaptive: Whether the solver chooses its own steps (then no NFE can be targeted).
        step_nfes: ``step_nfes(n_steps, options)``: per-step NFEs where they differ by step
            (singlestep DPM-Solver with ``lower_order_final``); None: ``nfe_per_step`` each.
        plan: ``plan(nfe, options)``: per-step orders that spend a budget exactly, passed to
            the sampler as ``orders`` (DPM-Solver-fast); None: a grid of whole steps.
        unsupported_hint: Appended to the error for an SDE not in ``sdes``: what to use instead.
    """

    name: str
    fn: Sampler
    stochastic: bool
    order: float | None
    weak_order: float | None = None
    order_variable: str = "t"
    sdes: tuple[type, ...] = (LinearSDE,)
    nfe_per_step: int | Callable[[dict[str, Any]], int] = 1
    default_grid: str = "uniform"
    default_t_end: float | None = None
    default_denoise: bool | str = False
    default_options: dict[str, Any] = field(default_factory=dict)
    adaptive: bool = False
    step_nfes: Callable[[int, dict[str, Any]], list[int]] | None = None
    plan: Callable[[int, dict[str, Any]], list[int]] | None = None
    description: str = field(default="", compare=False)
    unsupported_hint: str = field(default="", compare=False)

    def supports(self, sde: LinearSDE) -> bool:
        """Whether ``sde`` is one of the supported SDE classes."""
        return isinstance(sde, self.sdes)

    def steps_nfe(self, options: dict[str, Any]) -> int:
        """Score evaluations per step for these options (the most, where steps differ)."""
        n = self.nfe_per_step
        return n(options) if callable(n) else n

    def run_nfe(self, n_steps: int, options: dict[str, Any]) -> int:
        """Exact NFE of a run on an ``n_steps`` grid with ``options`` (denoise included)."""
        extra = 1 if options.get("denoise") else 0
        if options.get("orders") is not None:
            return sum(options["orders"]) + extra
        if self.step_nfes is not None:
            return sum(self.step_nfes(n_steps, options)) + extra
        return n_steps * self.steps_nfe(options) + extra
