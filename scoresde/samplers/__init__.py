"""Samplers for score-based diffusion models: one calling convention, one registry.

Every sampler is a pure function with the signature of :class:`Sampler`,

    sample_<name>(sde, score_fn, x_T, grid, *, generator=None, callback=None, **options)
        -> (x, SampleInfo)

where ``grid`` is a strictly decreasing time grid in [eps, T] (see :func:`make_grid`) and
``SampleInfo.nfe`` is the exact number of score evaluations. :func:`sample` runs any entry of
:data:`SAMPLERS` by name with the same arguments after the name,
``sample(name, sde, score_fn, x_T, grid_or_nfe, ...)``; given an NFE it uses the sampler's
measured few-step defaults. The options every sampler accepts (``seeds``, ``noise_sampler``,
``hook``, ``denoise``, ``return_trajectory``) are documented in :class:`Sampler`. Song et al.
(2021) throughout; each module cites the paper and algorithm it transcribes.

Each sampler is written once, as a body that receives the validated run, and registered once
with its spec by ``@register(name, ...)`` (:mod:`~scoresde.samplers.register`); the name is
written nowhere else.

Modules: ``signature`` (the shared signature and result), ``spec`` (a sampler's metadata),
``run`` (the sampling run: validation, counting, loop), ``register`` (the decorator and
``SAMPLERS``), ``defaults`` (the measured few-step defaults), ``registry`` (lookup, ``sample``,
grids for an NFE), ``reverse_sde`` (Euler–Maruyama,
reverse diffusion, DDPM, SMLD), ``ode`` (probability-flow ODE), ``ddim``, ``dpm_solver``,
``langevin`` (PC), ``fixed_langevin``, ``torchsde_backend``, ``grids``; the modern
fast solvers ``unipc``, ``dpm_solver_pp`` (DPM-Solver++(3M), (2M) SDE), ``deis`` (DEIS, iPNDM),
``edm`` (Karras et al. Alg. 2) on the coefficients of ``multistep``; ``grid_opt``
(:func:`optimize_grid`: a grid fitted to a teacher solution) and ``grid_file`` (grids saved as
JSON, :func:`load_grid`).
"""

from __future__ import annotations

from .budget import expected_nfe, grid_for_nfe, min_nfe, plan_for_nfe
from .ddim import (
    INTERPOLATIONS,
    ddim_interpolate,
    ddim_invert,
    sample_ddim,
    slerp,
    sqrt_interpolate,
)
from .deis import sample_deis, sample_ipndm
from .dpm_solver import (
    budget_orders,
    fast_orders,
    multistep_order,
    sample_dpm_solver,
    sample_dpm_solver_fast,
    sample_dpm_solver_pp_2m,
)
from .dpm_solver_pp import sample_dpm_solver_pp, sample_dpm_solver_pp_2m_sde
from .edm import sample_edm
from .fixed_langevin import sample_langevin_fixed_t, sgld_step_sizes
from .grid_file import OptimizedGrid, load_grid
from .grid_opt import optimize_grid
from .grids import GRIDS, karras_grid, log_snr_grid, make_grid, quadratic_grid, uniform_grid
from .hooks import InpaintHook
from .langevin import CORRECTORS, sample_annealed_langevin, sample_pc
from .noise import noise_from_seeds
from .ode import sample_pf_adaptive, sample_pf_euler, sample_pf_heun, sample_pf_rk4
from .register import get_sampler
from .registry import SAMPLERS, SamplerSpec, sample
from .reverse_sde import (
    PREDICTORS,
    sample_ddpm,
    sample_euler_maruyama,
    sample_reverse_diffusion,
    sample_smld,
)
from .signature import COMMON_OPTIONS, SampleInfo, Sampler
from .torchsde_backend import TORCHSDE_METHODS, BrownianNoise, sample_torchsde
from .unipc import sample_unipc

__all__ = [
    "COMMON_OPTIONS",
    "CORRECTORS",
    "GRIDS",
    "INTERPOLATIONS",
    "PREDICTORS",
    "SAMPLERS",
    "TORCHSDE_METHODS",
    "BrownianNoise",
    "InpaintHook",
    "OptimizedGrid",
    "SampleInfo",
    "Sampler",
    "SamplerSpec",
    "budget_orders",
    "ddim_interpolate",
    "ddim_invert",
    "expected_nfe",
    "fast_orders",
    "get_sampler",
    "grid_for_nfe",
    "karras_grid",
    "load_grid",
    "log_snr_grid",
    "make_grid",
    "min_nfe",
    "multistep_order",
    "noise_from_seeds",
    "optimize_grid",
    "plan_for_nfe",
    "quadratic_grid",
    "sample",
    "sample_annealed_langevin",
    "sample_ddim",
    "sample_ddpm",
    "sample_deis",
    "sample_dpm_solver",
    "sample_dpm_solver_fast",
    "sample_dpm_solver_pp",
    "sample_dpm_solver_pp_2m",
    "sample_dpm_solver_pp_2m_sde",
    "sample_edm",
    "sample_euler_maruyama",
    "sample_ipndm",
    "sample_langevin_fixed_t",
    "sample_pc",
    "sample_pf_adaptive",
    "sample_pf_euler",
    "sample_pf_heun",
    "sample_pf_rk4",
    "sample_reverse_diffusion",
    "sample_smld",
    "sample_torchsde",
    "sample_unipc",
    "sgld_step_sizes",
    "slerp",
    "sqrt_interpolate",
    "uniform_grid",
]
