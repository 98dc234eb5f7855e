"""Correctors and the predictor–corrector (PC) sampler (Song et al. 2021, Sec. 4.2, Algs. 2-5).

A corrector runs ``n_steps`` of Langevin MCMC targeting p_t at a fixed time t:

    x' = x + e s_theta(x, t) + sqrt(2 e) z,    z ~ N(0, I).

The step size e is the whole story; :func:`langevin_step_size` is its one home. With
r = (alpha_{t_i} / alpha_{t_{i+1}})^2 (= 1 - beta_i for VP, 1 for VE) and d = dim(x):

* ``snr_dim`` (correctors ``langevin`` and ``langevin_ula``): the snr rule of Alg. 4 with the
  *expected* noise norm E||z||^2 = d in place of the drawn ||z||, per sample, and the score
  norm floored at sqrt(d) / sigma_t, its value for pure noise N(0, sigma_t^2 I):
  e = 2 r snr^2 d / max(||s||^2, d / sigma_t^2) <= 2 r (snr sigma_t)^2. Batch-invariant, and
  it cannot explode where ||s|| ~ 0 (at the modes), which is what broke the 2-D case.
* ``batch_mean`` (corrector ``langevin_batch``): the reference code's rule,
  e = 2 r (snr mean_b||z_b|| / mean_b||s_b||)^2 with norms averaged over the batch (reproduces
  Song et al.; a sample then depends on its batch).
* ``per_sample`` (corrector ``langevin_per_sample``): e = 2 r (snr ||z|| / ||s||)^2, Alg. 4
  read literally; unstable in low dimension, kept for studies.
* ``ald``, annealed Langevin dynamics (Song & Ermon 2019, Alg. 1): e = 2 r (snr sigma_t)^2.

A step size that depends on x makes unadjusted Langevin target the wrong density, so the
default corrector ``langevin`` is Metropolis-adjusted (MALA, Roberts & Tweedie 1996): x' is
accepted with probability min(1, p(x') q(x | x') / (p(x) q(x' | x))), where q is the Gaussian
proposal with the step e of its starting point and the density ratio comes from the score by
the trapezoidal rule, log p(x') - log p(x) ~ (s(x) + s(x')) . (x' - x) / 2 (exact for Gaussian
p_t, error O(||x' - x||^3)). It costs one extra score evaluation per corrector call.

The PC sampler takes a predictor step from t_i to t_{i+1}, then corrects at t_{i+1} (Alg. 2);
``sample_annealed_langevin`` is PC with no predictor and the ALD corrector, for VE.

Annealed Langevin's default step follows the grid (:func:`annealed_snr`). With no predictor,
the chain at level t_{i+1} starts from p_{t_i}; in a direction where the noise dominates, one
unadjusted step of relative size c = e / sigma^2 leaves it behind p_{t_{i+1}} by about
(1 - q_i) / c in relative variance, q_i = sigma_{t_{i+1}}^2 / sigma_{t_i}^2, and ULA's own bias
adds about c / 2. A fixed snr (fixed c) thus stops improving as the grid is refined (the bias
stays) and lags on a coarse grid; c_i = sqrt(1 - q_i) / n_steps balances the two, both then
O(N^(-1/2)) on N levels, so the sampler converges as its NFE grows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .._utils import append_dims, names_list
from ..sde import VESDE
from .register import register
from .reverse_sde import get_predictor
from .run import SampleInfo, SamplerRun

__all__ = [
    "CORRECTORS",
    "STEP_RULES",
    "annealed_snr",
    "Corrector",
    "langevin_step_size",
    "sample_annealed_langevin",
    "sample_pc",
]

Step = Callable[[Tensor, int], Tensor]

#: Step-size rules of the Langevin correctors (see the module docstring).
STEP_RULES = ("snr_dim", "batch_mean", "per_sample", "ald")


def _sq_norms(v: Tensor) -> Tensor:
    return v.reshape(v.shape[0], -1).square().sum(dim=1)


def langevin_step_size(
    rule: str,
    s: Tensor,
    z: Tensor | None,
    sigma_t: Tensor | float,
    ratio: Tensor | float,
    snr: float,
) -> Tensor:
    """The Langevin step size e of a corrector rule, per sample.

    Args:
        rule: One of :data:`STEP_RULES`.
        s: Scores s_theta(x, t), shape ``(batch, *dims)``.
        z: The noise of this step, shaped like ``s`` (read by 'batch_mean' and 'per_sample').
        sigma_t: Marginal noise level sigma_t at the corrected time.
        ratio: r = (alpha_{t_i} / alpha_{t_{i+1}})^2.
        snr: Target signal-to-noise ratio.

    Returns:
        e, shape ``(batch,)``.
    """
    sigma_t = torch.as_tensor(sigma_t, dtype=s.dtype, device=s.device)
    if rule == "ald":
        return (2 * ratio * (snr * sigma_t) ** 2).expand(s.shape[0])
    s2 = _sq_norms(s)
    if rule == "snr_dim":  # E||z||^2 = d; ||s||^2 floored at d / sigma_t^2 (pure noise)
        d = s[0].numel()
        return 2 * ratio * snr**2 * d / torch.maximum(s2, d / sigma_t**2)
    if z is None:
        raise ValueError(f"langevin_step_size: rule {rule!r} needs the noise z")
    if rule == "per_sample":
        return 2 * ratio * snr**2 * _sq_norms(z) / s2.clamp_min(1e-300)
    if rule == "batch_mean":  # score_sde_pytorch's LangevinCorrector
        z_mean, s_mean = _sq_norms(z).sqrt().mean(), s2.sqrt().mean().clamp_min(1e-300)
        return (2 * ratio * (snr * z_mean / s_mean) ** 2).expand(s.shape[0])
    raise ValueError(f"unknown Langevin step rule {rule!r}; expected one of {STEP_RULES}")


def _log_q(x_to: Tensor, x: Tensor, s: Tensor, e: Tensor) -> Tensor:
    """log N(x_to; x + e s, 2 e I) up to the constant -d/2 log(4 pi)."""
    e_ = append_dims(e, x.ndim)
    return -_sq_norms(x_to - x - e_ * s) / (4 * e) - 0.5 * s[0].numel() * torch.log(e)


def _langevin(
    run: SamplerRun, snr: float | Tensor, n_steps: int, rule: str, metropolis: bool
) -> Step:
    c = run.coefs()
    ratio = (c.alpha[:-1] / c.alpha[1:]) ** 2  # r_i in (0, 1]

    def step(x: Tensor, i: int) -> Tensor:
        if not n_steps:
            return x
        t, sig = run.t[i + 1], c.sigma[i + 1]
        snr_i = float(snr[i]) if isinstance(snr, Tensor) else snr
        s = run.score(x, t)  # 1. score at the corrected time t_{i+1}
        for k in range(n_steps):
            z = run.noise(x, t, t)  # 2. fresh noise
            e = langevin_step_size(rule, s, z, sig, ratio[i], snr_i)  # 3. step size per sample
            x_new = x + append_dims(e, x.ndim) * s + append_dims(torch.sqrt(2 * e), x.ndim) * z
            if not metropolis:  # 4. unadjusted Langevin update
                x, s = x_new, (run.score(x_new, t) if k < n_steps - 1 else s)
                continue
            s_new = run.score(x_new, t)  # 4'. Metropolis-adjusted: accept with prob. min(1, a)
            e_new = langevin_step_size(rule, s_new, None, sig, ratio[i], snr_i)
            log_p = 0.5 * ((s + s_new) * (x_new - x)).reshape(x.shape[0], -1).sum(1)
            log_a = log_p + _log_q(x, x_new, s_new, e_new) - _log_q(x_new, x, s, e)
            u = run.noise(x, t, t).reshape(x.shape[0], -1)[:, 0]  # log U(0,1) = log Phi(u)
            keep = append_dims(torch.special.log_ndtr(u) < log_a, x.ndim)
            x, s = torch.where(keep, x_new, x), torch.where(keep, s_new, s)
        return x

    return step


@dataclass(frozen=True)
class Corrector:
    """A registered corrector: its step rule, whether it is Metropolis-adjusted, its snr.

    Attributes:
        rule: A key of :data:`STEP_RULES`.
        metropolis: Accept/reject each Langevin proposal (MALA); one extra NFE per call.
        snr: The default signal-to-noise ratio.
    """

    rule: str | None
    metropolis: bool = False
    snr: float = 0.16

    def build(self, run: SamplerRun, snr: float | Tensor, n_steps: int) -> Step:
        """``step(x, i)``: ``n_steps`` Langevin steps at t_{i+1}."""
        if self.rule is None or n_steps == 0:
            return lambda x, i: x
        return _langevin(run, snr, n_steps, self.rule, self.metropolis)

    def nfe(self, n_steps: int) -> int:
        """Score evaluations of one corrector call."""
        return 0 if self.rule is None else n_steps + (1 if self.metropolis and n_steps else 0)


#: Correctors of the PC sampler by name.
CORRECTORS: dict[str, Corrector] = {
    "langevin": Corrector("snr_dim", metropolis=True, snr=0.3),
    "langevin_ula": Corrector("snr_dim", snr=0.16),
    "langevin_batch": Corrector("batch_mean", snr=0.16),
    "langevin_per_sample": Corrector("per_sample", snr=0.16),
    "ald": Corrector("ald", snr=0.16),
    "none": Corrector(None),
}


def check_corrector_args(corrector: str, snr: float | None, n_steps: int) -> float:
    """Validate the corrector name, ``snr`` > 0 (or None) and ``n_steps`` >= 0; return the snr."""
    if not isinstance(corrector, str) or corrector not in CORRECTORS:
        raise ValueError(
            f"unknown corrector {corrector!r}; expected one of {names_list(CORRECTORS)}"
        )
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 0:
        raise ValueError(f"pc: expected an integer n_steps >= 0, received {n_steps!r}")
    if snr is None:
        return CORRECTORS[corrector].snr
    if isinstance(snr, bool) or not isinstance(snr, (int, float)) or not 0 < snr < float("inf"):
        raise ValueError(f"pc: expected a finite snr > 0, received {snr!r}")
    return float(snr)


def _pc_nfe(o: dict[str, Any]) -> int:
    """Score evaluations per grid step of the PC sampler with options ``o``."""
    corrector = CORRECTORS.get(o.get("corrector", "langevin"), CORRECTORS["none"])
    predictor = 0 if o.get("predictor", "reverse_diffusion") == "none" else 1
    return predictor + corrector.nfe(o.get("n_steps", 1))


@register("pc", stochastic=True, order=None, nfe_per_step=_pc_nfe)
def sample_pc(
    run: SamplerRun,
    *,
    predictor: str = "reverse_diffusion",
    corrector: str = "langevin",
    snr: float | None = None,
    n_steps: int = 1,
) -> tuple[Tensor, SampleInfo]:
    """Predictor–corrector sampling (Song et al. 2021, Alg. 1): any predictor, any corrector.

    Arguments, the common ``**options`` and the result are those of every sampler
    (:class:`~scoresde.samplers.Sampler`), any linear SDE; ``callback`` runs after each
    predictor + corrector step.

    Args:
        run: The validated run (built by :func:`~scoresde.samplers.register.register`).
        predictor: 'reverse_diffusion' (default), 'euler_maruyama', 'ancestral' or 'none'.
        corrector: A key of :data:`CORRECTORS`: 'langevin' (default; Metropolis-adjusted,
            batch-invariant), 'langevin_ula', 'langevin_batch' (Song et al.'s reference rule),
            'langevin_per_sample', 'ald' or 'none'.
        snr: Signal-to-noise ratio of the corrector (default: the corrector's own, 0.3 for
            'langevin', 0.16 for the others as in Song et al. for VE on CIFAR-10).
        n_steps: Corrector steps per grid time.

    Returns:
        ``(x, info)``; ``info.nfe`` = N (1 + n_steps + 1 if Metropolis-adjusted), minus N
        without a predictor.
    """
    predict = get_predictor(predictor)
    snr = check_corrector_args(corrector, snr, n_steps)
    p_step, c_step = predict(run), CORRECTORS[corrector].build(run, snr, n_steps)
    return run.loop(run.x_T, lambda x, i: c_step(p_step(x, i), i))


def annealed_snr(run: SamplerRun, n_steps: int) -> Tensor:
    """Per-level snr of annealed Langevin: 2 snr_i^2 = sqrt(1 - q_i) / n_steps (module doc)."""
    c = run.coefs()
    q = (c.sigma[1:] / c.sigma[:-1]) ** 2
    return torch.sqrt(torch.sqrt(torch.clamp(1 - q, min=0.0)) / (2 * max(n_steps, 1)))


@register(
    "annealed_langevin",
    stochastic=True,
    order=None,
    sdes=(VESDE,),
    nfe_per_step=lambda o: o.get("n_steps", 1),
    unsupported_hint=(
        "annealed Langevin (Song & Ermon 2019) anneals sigma of a VE SDE; on VP/sub-VP p_t also "
        "shrinks by alpha_t between noise levels, which Langevin steps alone follow only "
        "slowly. Use predictor-corrector with the same corrector: sample('pc', sde, score_fn, "
        "x_T, grid, predictor='reverse_diffusion', corrector='ald') (or corrector='langevin')"
    ),
)
def sample_annealed_langevin(
    run: SamplerRun, *, snr: float | None = None, n_steps: int = 1
) -> tuple[Tensor, SampleInfo]:
    """Annealed Langevin dynamics on a VE SDE (Song & Ermon 2019, Alg. 1).

    ``n_steps`` Langevin steps at each noise level sigma_{t_1} > ... > sigma_{t_N}, step size
    2 (snr sigma_t)^2; arguments as :func:`sample_pc`, except ``snr``: a fixed value (Song &
    Ermon's rule; 0.16 in Song et al. 2021 for VE), or None (default) for the grid's own
    :func:`annealed_snr`, which converges as the grid is refined (module docstring).

    A VP or sub-VP SDE is refused with what to use instead (its spec's ``unsupported_hint``):
    Langevin alone only moves noise between the levels of a VE SDE, whose p_t differ by added
    noise; on VP/sub-VP p_t also shrinks by alpha_t, which only a predictor step follows.
    """
    if snr is not None:
        snr = check_corrector_args("ald", snr, n_steps)
    else:
        check_corrector_args("ald", None, n_steps)
    level_snr = annealed_snr(run, n_steps) if snr is None else snr
    return run.loop(run.x_T, CORRECTORS["ald"].build(run, level_snr, n_steps))
