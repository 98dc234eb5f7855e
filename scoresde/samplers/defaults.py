"""The samplers' measured few-step defaults, by registry name (DESIGN contract 12).

What :func:`~scoresde.samplers.sample` applies when given an NFE instead of a grid: the grid
kind, the grid's last time, whether to end with the Tweedie denoising step, and extra options
(e.g. ``lower_order_final``). :func:`~scoresde.samplers.register.register` merges a sampler's
row into its :class:`~scoresde.samplers.SamplerSpec`; a row whose name no sampler registers is
an error when the registry loads. Chosen by ``benchmarks/few_step_defaults.py`` at NFE 10; see
docs/howto/sample.md, "Defaults and the study that chose them" (samplers without a budget sweep
keep their old ones). A sampler without a row has the spec's defaults (uniform grid, ``sde.eps``,
no denoising).
"""

from __future__ import annotations

from typing import Any

__all__ = ["FEW_STEP", "few"]


def few(
    kind: str, t_end: float | None = None, denoise: bool | str = False, **options: Any
) -> dict[str, Any]:
    """One row: grid kind, end time, final denoising step and extra options.

    Args:
        kind: A grid kind of :data:`~scoresde.samplers.GRIDS`.
        t_end: The grid's last time (None: the SDE's ``eps``).
        denoise: True, False or ``"spare"`` (denoise only with an evaluation whole steps leave).
        **options: Sampler options added when given an NFE.

    Returns:
        The :class:`~scoresde.samplers.SamplerSpec` fields ``default_*``.
    """
    out = {"default_grid": kind, "default_t_end": t_end, "default_denoise": denoise}
    return out | ({"default_options": options} if options else {})


_LOF = {"lower_order_final": True}

#: Few-step defaults by sampler name.
FEW_STEP: dict[str, dict[str, Any]] = {
    "euler_maruyama": few("quadratic", 1e-4, False),
    "ddpm": few("uniform", 1e-2, True),
    "smld": few("uniform", 1e-2, False),
    "annealed_langevin": few("karras", 1e-2, False),
    "pf_heun": few("log_snr", 1e-3, False),
    "pf_rk4": few("log_snr", 1e-3, "spare"),
    "ddim": few("uniform", 1e-3, False),
    "dpm_solver_1": few("uniform", 1e-3, False),  # DDIM, step for step
    "dpm_solver_2": few("quadratic", 1e-2, True, **_LOF),
    # dpm_solver_3 / _fast: the study's best (quadratic grid) lets a trained eps-model run away
    # (tests/test_eps_safety.py); the next best, on the log-SNR grid, does not.
    "dpm_solver_3": few("log_snr", 1e-2, False, **_LOF),
    "dpm_solver_fast": few("log_snr", 1e-2, False),
    "dpm_solver_pp_2m": few("log_snr", 1e-2, False, **_LOF),
    # The modern fast solvers (issue #9), docs/howto/fast-solvers.md: the best grid at 10 NFE in
    # benchmarks/fast_solvers.py without a blow-up at 5 or 20.
    "dpm_solver_pp_3m": few("quadratic"),
    "dpm_solver_pp_2m_sde": few("quadratic"),
    "unipc": few("quadratic"),
    "deis": few("quadratic"),
    "ipndm": few("quadratic"),
    "edm": few("uniform"),
}
