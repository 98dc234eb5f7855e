"""Peer samplers (k-diffusion, diffusers) driven by the exact score of a Gaussian mixture.

Both peers are optional (``pip install -e ".[bench]"``); a missing one yields no runners. Each
peer gets its own recommended settings and sees the exact mixture through its own model
interface, at exactly the noise level it asks for:

* k-diffusion works in x~ = x_t / alpha_t with noise level sigma = sigma_t / alpha_t and a
  denoiser D(x~, sigma) = E[x_0 | x_t]; it runs on Karras et al. (2022) sigmas (rho = 7)
  between the SDE's sigma(eps) and sigma(T), with a final step to sigma = 0. Its package
  ``__init__`` imports image and logging stacks, so only ``sampling.py`` is loaded, under a bare
  package whose ``utils`` provides the one helper it uses.
* diffusers schedulers get their defaults on the DDPM chain that matches VP(0.1, 20)
  (1000 steps, linear betas 1e-4..0.02), except ``clip_sample=False`` (DDIM's and DDPM's
  default clips x_0 to the image range [-1, 1]), and an eps-model eps(x_tau, tau); a
  fractional tau is mapped to a noise level by interpolating log sigma over the training steps
  (as its Euler-type schedulers do), then to the continuous time with the same log-SNR
  (clamped to T: the chain's last step is 0.07 nats of log-SNR noisier than VP's t = 1).

Every runner takes standard normal draws z (the same for every sampler) and an NFE budget and
returns ``(x0, nfe)``, spending at most the budget.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import types
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

Runner = Callable[[Tensor, int, int], tuple[Tensor, int]]

K_DIFFUSION = {  # name -> (function, model calls per step, stochastic)
    "euler": ("sample_euler", 1, False),
    "heun": ("sample_heun", 2, False),
    "dpm_2": ("sample_dpm_2", 2, False),
    "lms": ("sample_lms", 1, False),
    "dpmpp_2m": ("sample_dpmpp_2m", 1, False),
    "euler_ancestral": ("sample_euler_ancestral", 1, True),
    "dpmpp_2m_sde": ("sample_dpmpp_2m_sde", 1, True),
    "dpmpp_3m_sde": ("sample_dpmpp_3m_sde", 1, True),
}
DIFFUSERS = {  # scheduler class -> stochastic with its defaults
    "DDIMScheduler": False,
    "DPMSolverMultistepScheduler": False,
    "DPMSolverSinglestepScheduler": False,
    "UniPCMultistepScheduler": False,
    "DEISMultistepScheduler": False,
    "EulerDiscreteScheduler": False,
    "HeunDiscreteScheduler": False,
    "LMSDiscreteScheduler": False,
    "KDPM2DiscreteScheduler": False,
    "EulerAncestralDiscreteScheduler": True,
    "DDPMScheduler": True,
}


def load_k_sampling() -> types.ModuleType | None:
    """k_diffusion/sampling.py under a bare package, or None when k-diffusion is missing."""
    spec = importlib.util.find_spec("k_diffusion")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "sampling.py"
    pkg = types.ModuleType("_kdiff")
    pkg.__path__ = []  # a package with no files: nothing of k-diffusion's __init__ runs
    utils = types.ModuleType("_kdiff.utils")
    utils.append_dims = lambda x, n: x[(...,) + (None,) * (n - x.ndim)]
    sys.modules.update({"_kdiff": pkg, "_kdiff.utils": utils})
    pkg.utils = utils
    mod_spec = importlib.util.spec_from_file_location("_kdiff.sampling", path)
    module = importlib.util.module_from_spec(mod_spec)
    try:
        mod_spec.loader.exec_module(module)
    except ImportError:
        return None
    return module


def k_diffusion_runners(sde, gm) -> dict[str, tuple[Runner, bool]]:
    """``{"k:<name>": (runner, stochastic)}`` for the k-diffusion samplers (empty if missing)."""
    ks = load_k_sampling()
    if ks is None:
        return {}
    ends = torch.tensor([sde.eps, sde.T], dtype=torch.float64)
    s_min, s_max = (float(v) for v in torch.exp(-0.5 * sde.log_snr(ends)))

    def runner(fn_name: str, per: int) -> Runner:
        def run(z: Tensor, nfe: int, seed: int) -> tuple[Tensor, int]:
            calls = [0]

            def denoiser(x: Tensor, sigma: Tensor) -> Tensor:
                calls[0] += 1
                t = sde.t_from_log_snr(-2 * torch.log(sigma.to(torch.float64))).clamp(0, sde.T)
                alpha = sde.marginal(t)[0].to(x.dtype)
                return gm.denoise(alpha[:, None] * x, t.to(x.dtype))

            n = nfe if per == 1 else (nfe + 1) // 2  # Heun-type: 2 n - 1 calls (Euler last)
            sigmas = ks.get_sigmas_karras(n, s_min, s_max, rho=7.0).to(z.dtype)
            torch.manual_seed(seed)  # ancestral noise / Brownian-tree seed
            x = getattr(ks, fn_name)(denoiser, z * s_max, sigmas, disable=True)
            return x, calls[0]

        return run

    return {f"k:{k}": (runner(fn, per), sto) for k, (fn, per, sto) in K_DIFFUSION.items()}


def diffusers_runners(sde, gm) -> dict[str, tuple[Runner, bool]]:
    """``{"d:<Scheduler>": (runner, stochastic)}`` for diffusers schedulers (empty if missing)."""
    try:
        import diffusers
    except ImportError:
        return {}
    diffusers.utils.logging.set_verbosity_error()
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    abar = torch.cumprod(1 - betas, 0)
    log_sigmas = 0.5 * torch.log((1 - abar) / abar)
    steps = torch.arange(1000, dtype=torch.float64)

    def time_of(tau: Tensor) -> Tensor:  # log sigma interpolated over the training steps
        tau = torch.as_tensor(tau, dtype=torch.float64).clamp(0, 999)
        lo = tau.floor().long().clamp(max=998)
        w = tau - steps[lo]
        log_sigma = (1 - w) * log_sigmas[lo] + w * log_sigmas[lo + 1]
        return sde.t_from_log_snr(-2 * log_sigma)

    def runner(cls_name: str) -> Runner:
        cls = getattr(diffusers, cls_name)
        config = {"num_train_timesteps": 1000, "beta_start": 1e-4, "beta_end": 0.02,
                  "beta_schedule": "linear"}  # fmt: skip
        if "clip_sample" in inspect.signature(cls.__init__).parameters:
            config["clip_sample"] = False  # the default clips x0 to the image range [-1, 1]

        def run(z: Tensor, nfe: int, seed: int) -> tuple[Tensor, int]:
            sched = cls(**config)
            n = nfe
            while n > 1:  # the most steps whose model calls fit the budget
                sched.set_timesteps(n)
                if len(sched.timesteps) <= nfe:
                    break
                n -= 1
            sched.set_timesteps(n)
            kw = {}
            if "generator" in inspect.signature(sched.step).parameters:
                kw["generator"] = torch.Generator().manual_seed(seed)
            x, calls = z * sched.init_noise_sigma, 0
            for tau in sched.timesteps:
                x_in = sched.scale_model_input(x, tau)
                t = time_of(tau).clamp(0, sde.T).to(z.dtype).expand(z.shape[0])
                eps = gm.eps(x_in, t)
                calls += 1
                x = sched.step(eps, tau, x, **kw).prev_sample
            return x, calls

        return run

    return {f"d:{c.removesuffix('Scheduler')}": (runner(c), sto) for c, sto in DIFFUSERS.items()
            if hasattr(diffusers, c)}  # fmt: skip


def peer_runners(sde, gm) -> dict[str, tuple[Runner, bool]]:
    """All available peers; an import failure of one peer skips it, never fails the run."""
    out: dict[str, tuple[Runner, bool]] = {}
    for build in (k_diffusion_runners, diffusers_runners):
        try:
            out.update(build(sde, gm))
        except Exception as err:  # noqa: BLE001 - a broken optional peer is skipped
            print(f"skipping {build.__name__}: {type(err).__name__}: {err}", file=sys.stderr)
    return out
