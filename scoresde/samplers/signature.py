"""What every sampler shares from the outside: its signature, its options and its result.

:class:`Sampler` is the ``Protocol`` of the functions ``sample_*`` (and of
``SamplerSpec.fn``); its docstring documents the arguments and the common options every sampler
accepts; :class:`SampleInfo` is what a sampler reports beside its samples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import Tensor

from ..sde import LinearSDE, ScoreFn

__all__ = ["COMMON_OPTIONS", "Callback", "Hook", "SampleInfo", "Sampler"]

#: ``callback(i, t_next, x)`` after step i (x is the state at time t_next).
Callback = Callable[[int, Tensor, Tensor], None]
#: ``hook(x, t, i, randn_like) -> x`` after step i; ``randn_like(x)`` draws the sampler's noise.
Hook = Callable[[Tensor, Tensor, int, Callable[[Tensor], Tensor]], Tensor]

#: The keyword options every sampler accepts (documented in :class:`Sampler`).
COMMON_OPTIONS = ("seeds", "noise_sampler", "hook", "denoise", "return_trajectory")


@dataclass
class SampleInfo:
    """What a sampler reports beside its samples.

    Attributes:
        sampler: The registry name of the sampler.
        nfe: Exact number of score evaluations (counted, including a final denoising step).
        grid: The time grid used, shape ``(n_steps + 1,)``, decreasing from t_0 to t_N.
        trajectory: States after every step, shape ``(n_steps + 1, batch, *dims)``, if requested.
        stats: Sampler-specific extras (e.g. accepted steps of an adaptive solver).
        settings: Given an NFE, the settings :func:`~scoresde.samplers.sample` chose (grid
            kind, end time, ``denoise``, options, and ``auto``: whether the sampler was picked
            by ``sample("auto", ...)``); empty on an explicit grid.
    """

    sampler: str
    nfe: int
    grid: Tensor
    trajectory: Tensor | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def n_steps(self) -> int:
        """Number of grid intervals."""
        return int(self.grid.numel()) - 1


class Sampler(Protocol):
    """The signature every sampler shares (the functions ``sample_*`` and ``SAMPLERS[name].fn``).

    ``sampler(sde, score_fn, x_T, grid, *, generator=None, callback=None, **options)`` integrates
    from ``grid[0]`` down to ``grid[-1]``; :func:`~scoresde.samplers.sample` calls it by name.
    """

    __name__: str

    def __call__(
        self,
        sde: LinearSDE,
        score_fn: ScoreFn,
        x_T: Tensor,
        grid: Tensor,
        *,
        generator: torch.Generator | None = None,
        callback: Callback | None = None,
        **options: Any,
    ) -> tuple[Tensor, SampleInfo]:
        """Run the sampler from ``grid[0]`` down to ``grid[-1]``.

        Args:
            sde: A linear SDE the sampler supports (VP, sub-VP or VE; see ``SamplerSpec.sdes``).
            score_fn: ``score_fn(x, t) -> grad_x log p_t(x)`` shaped like ``x``, ``t`` of shape
                ``(batch,)``.
            x_T: Initial state of shape ``(batch, *dims)`` at time ``grid[0]``.
            grid: Strictly decreasing times in [eps, T], shape ``(N + 1,)`` (see ``make_grid``).
            generator: Generator of every random draw (stochastic samplers, hooks).
            callback: ``callback(i, t_next, x)`` after step i, with x the state at ``t_next``.
            **options: Sampler-specific options (each sampler documents its own) and the common
                options of every sampler:

                * ``seeds``: one integer seed per sample; sample i then draws its noise from its
                  own generator, so its result does not depend on the batch it is in (exclusive
                  with ``generator``).
                * ``noise_sampler``: ``noise_sampler(x, t, t_next) -> z``, standard normal noise
                  shaped like ``x`` for the step from t to t_next (e.g. increments of a shared
                  Brownian path, :class:`~scoresde.samplers.BrownianNoise`).
                * ``hook``: ``hook(x, t, i, randn_like) -> x`` applied after step i (and once to
                  x_T with i = -1), e.g. :class:`~scoresde.samplers.InpaintHook`.
                * ``denoise``: finish with one Tweedie step x0 = (x + sigma_t^2 s(x, t)) / alpha_t
                  at the last grid time (Song et al. 2021, Appendix G; costs 1 NFE).
                * ``return_trajectory``: keep the state after every step in
                  ``SampleInfo.trajectory``.

        Returns:
            ``(x, info)``: samples shaped like ``x_T`` at ``grid[-1]`` and a :class:`SampleInfo`
            whose ``nfe`` is the exact number of score evaluations.
        """
        ...
