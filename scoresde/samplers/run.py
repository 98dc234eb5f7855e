"""The sampling run: validation, NFE counting, noise, schedule coefficients and the loop.

A sampler (see :class:`~scoresde.samplers.Sampler` for the signature and the options every
sampler accepts) is registered once with its :class:`~scoresde.samplers.SamplerSpec`
(:func:`~scoresde.samplers.register.register`); a call builds a :class:`SamplerRun` with
:func:`prepare`, which validates every input once, up front, and reads from the spec which
SDEs the sampler supports. The sampler's body then (1) precomputes its per-step coefficients on
the grid with :meth:`SamplerRun.coefs` and (2) hands a ``step(x, i) -> x`` closure to
:meth:`SamplerRun.loop`, which owns what is common: per-step hooks, callbacks, the trajectory,
the optional final Tweedie denoising step and the :class:`SampleInfo` record. Nothing is kept
between calls.

Score evaluations go through :class:`CountedScore`, so ``SampleInfo.nfe`` is a count, not an
estimate. On the CPU each evaluation is checked for NaN/Inf (an error names the step and time);
on accelerators the check runs once, on the samples, to avoid a host sync per step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .._utils import check_same_sde, names_list, sde_of
from ..sde import LinearSDE
from ..sde.pf_ode import tweedie_x0
from .noise import NoiseSource
from .signature import COMMON_OPTIONS, Callback, Hook, SampleInfo, Sampler
from .spec import SamplerSpec

__all__ = [
    "COMMON_OPTIONS",
    "Coefs",
    "CountedScore",
    "NoiseSource",
    "SampleInfo",
    "Sampler",
    "SamplerRun",
    "prepare",
]


class CountedScore:
    """``score_fn`` behind a counter, a shape check and (on the CPU) a finiteness check."""

    def __init__(self, score_fn: Callable[[Tensor, Tensor], Tensor], x: Tensor) -> None:
        self.fn, self.nfe, self.step = score_fn, 0, -1
        self.check_every_call = x.device.type == "cpu"

    def __call__(self, x: Tensor, t: Tensor) -> Tensor:
        """s(x, t) with ``t`` a 0-d tensor, broadcast to shape ``(batch,)`` for ``score_fn``."""
        out = self.fn(x, t.expand(x.shape[0]) if t.ndim == 0 else t)
        self.nfe += 1
        if not isinstance(out, Tensor) or out.shape != x.shape:
            got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise ValueError(
                f"score_fn: expected an output shaped like x {tuple(x.shape)}, received {got}"
            )
        # A sum is finite iff every entry is (up to overflow, which the full check then
        # rules out): one reduction instead of a boolean tensor per evaluation.
        if self.check_every_call and not (
            math.isfinite(float(out.sum())) or bool(torch.isfinite(out).all())
        ):
            t0 = float(t.reshape(-1)[0])
            raise ValueError(
                f"score_fn returned NaN/Inf at step {self.step} (t={t0:.6g}); expected finite "
                "scores (check the model, the grid's smallest time and the dtype)"
            )
        return out


@dataclass(frozen=True)
class Coefs:
    """Schedule quantities at a set of times, each of shape ``(M,)`` in the dtype of ``x``.

    Attributes:
        t: The times.
        alpha: alpha_t of the marginal x_t = alpha_t x0 + sigma_t eps.
        sigma: sigma_t.
        log_snr: lambda_t = log(alpha_t^2 / sigma_t^2), the log-SNR (as in ``sde.log_snr``).
        a: The drift coefficient a(t) of f(x, t) = a(t) x.
        g2: g(t)^2.
    """

    t: Tensor
    alpha: Tensor
    sigma: Tensor
    log_snr: Tensor
    a: Tensor
    g2: Tensor

    @property
    def lam_half(self) -> Tensor:
        """lambda_t / 2 = log(alpha_t / sigma_t): the variable Lu et al. (2022) call lambda_t."""
        return 0.5 * self.log_snr


class SamplerRun:
    """One validated sampling call: the counted score, the noise, the grid and the loop."""

    def __init__(
        self,
        spec: SamplerSpec,
        sde: LinearSDE,
        score: CountedScore,
        x: Tensor,
        grid: Tensor,
        noise: NoiseSource,
        callback: Callback | None,
        opts: dict[str, Any],
    ) -> None:
        self.spec, self.name, self.sde, self.score = spec, spec.name, sde, score
        self.noise, self.callback = noise, callback
        self.grid64 = grid.to(dtype=torch.float64, device="cpu")
        self.t = grid.to(dtype=x.dtype, device=x.device)
        self.n_steps = int(grid.numel()) - 1
        self.hook: Hook | None = opts.get("hook")
        self.denoise = bool(opts.get("denoise", False))
        self.keep = bool(opts.get("return_trajectory", False))
        self.options = opts
        self.x_T = self.like = x

    def coefs(self, times: Tensor | None = None) -> Coefs:
        """Schedule quantities at ``times`` (default: the grid), computed once in float64."""
        tt = self.grid64 if times is None else times.to(dtype=torch.float64, device="cpu")
        alpha, sigma = self.sde.marginal(tt)
        log_snr = self.sde.log_snr(tt)
        vals = (tt, alpha, sigma, log_snr, self.sde.drift_coef(tt), self.sde.g2(tt))
        return Coefs(*(v.to(dtype=self.like.dtype, device=self.like.device) for v in vals))

    def x0(self, x: Tensor, s: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
        """Tweedie's denoiser x0 = (x + sigma^2 s) / alpha from a score ``s`` at x."""
        return tweedie_x0(x, s, alpha, sigma)

    def loop(self, x: Tensor, step: Callable[[Tensor, int], Tensor]) -> tuple[Tensor, SampleInfo]:
        """Run ``x <- step(x, i)`` for i = 0..N-1 with hooks, callbacks and the final denoise."""
        if self.hook is not None:
            x = self.hook(x, self.t[0], -1, self.noise)
        traj = [x] if self.keep else None
        for i in range(self.n_steps):
            self.score.step = i
            x = step(x, i)
            if self.hook is not None:
                x = self.hook(x, self.t[i + 1], i, self.noise)
            if traj is not None:
                traj.append(x)
            if self.callback is not None:
                self.callback(i, self.t[i + 1], x)
        return self.finish(x, traj)

    def finish(
        self, x: Tensor, traj: list[Tensor] | None, **stats: Any
    ) -> tuple[Tensor, SampleInfo]:
        """Apply the optional Tweedie step, check the samples, and build the info record."""
        if self.denoise:
            self.score.step = self.n_steps
            c = self.coefs(self.grid64[-1:])
            t_end = self.t[-1]
            x = self.x0(x, self.score(x, t_end), c.alpha[0], c.sigma[0])
        if not self.score.check_every_call and not bool(torch.isfinite(x).all()):
            raise ValueError(f"{self.name}: the samples contain NaN/Inf (expected finite values)")
        trajectory = torch.stack(traj) if traj is not None else None
        return x, SampleInfo(self.name, self.score.nfe, self.grid64, trajectory, dict(stats))


def check_grid(grid: Tensor, sde: LinearSDE, *, name: str = "grid") -> Tensor:
    """Validate a strictly decreasing 1-D time grid inside [eps, T]; return it in float64 (CPU)."""
    if not isinstance(grid, Tensor):
        raise TypeError(
            f"{name}: expected a 1-D torch.Tensor of times, received {type(grid).__name__}"
        )
    if grid.ndim != 1 or grid.numel() < 2 or not grid.is_floating_point():
        raise ValueError(
            f"{name}: expected a floating 1-D tensor with at least 2 times, received dtype "
            f"{grid.dtype} and shape {tuple(grid.shape)}"
        )
    g = grid.detach().to(dtype=torch.float64, device="cpu")
    if not bool(torch.isfinite(g).all()):
        raise ValueError(f"{name}: expected finite times, received NaN/Inf")
    if not bool((g[1:] < g[:-1]).all()):
        k = int(torch.nonzero(g[1:] >= g[:-1])[0])
        raise ValueError(
            f"{name}: expected strictly decreasing times (from T to eps), received "
            f"t[{k}]={float(g[k]):.6g} <= t[{k + 1}]={float(g[k + 1]):.6g}"
        )
    slack = 1e-6 * sde.T
    if float(g[0]) > sde.T + slack or float(g[-1]) < sde.eps - slack * 1e-3:
        raise ValueError(
            f"{name}: expected times in [eps, T] = [{sde.eps:g}, {sde.T:g}], received "
            f"[{float(g[-1]):.6g}, {float(g[0]):.6g}]"
        )
    return g.clamp(sde.eps, sde.T)


def check_state(x: Tensor, *, name: str = "x_T") -> None:
    """Validate a floating, finite state of shape ``(batch, *dims)``."""
    if not isinstance(x, Tensor) or not x.is_floating_point():
        dtype = f" of dtype {x.dtype}" if isinstance(x, Tensor) else ""
        raise TypeError(
            f"{name}: expected a floating-point torch.Tensor, received {type(x).__name__}{dtype}"
        )
    if x.ndim < 1 or x.shape[0] < 1 or x.numel() == 0:
        raise ValueError(
            f"{name}: expected shape (batch, *dims) with batch >= 1, received {tuple(x.shape)}"
        )
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name}: expected finite values, received NaN/Inf")


def prepare(
    spec: SamplerSpec,
    sde: LinearSDE,
    score_fn: Callable[[Tensor, Tensor], Tensor],
    x_T: Tensor,
    grid: Tensor,
    generator: torch.Generator | None,
    callback: Callback | None,
    options: dict[str, Any],
    own: tuple[str, ...] = (),
) -> SamplerRun:
    """Validate every input once and build the :class:`SamplerRun` of the sampler ``spec``.

    The SDEs the sampler supports are read from ``spec.sdes``; ``options`` are the common
    options (``own`` names the sampler's own, for the message about an unknown one).
    """
    name = spec.name
    check_sde(spec, sde)
    if not callable(score_fn):
        raise TypeError(f"{name}: expected a callable score_fn(x, t), received {score_fn!r}")
    check_same_sde(sde, sde_of(score_fn), what=f"{name}: score_fn")
    if callback is not None and not callable(callback):
        raise TypeError(f"{name}: expected callback(i, t, x) to be callable, received {callback!r}")
    unknown = set(options) - set(COMMON_OPTIONS)
    if unknown:
        raise TypeError(
            f"{name}: unexpected options {names_list(unknown)}; expected the sampler's own "
            f"({names_list(own) if own else 'none'}) or the common options "
            f"{names_list(COMMON_OPTIONS)}"
        )
    check_state(x_T)
    check_dtype(name, score_fn, x_T)
    g = check_grid(grid, sde)
    noise = NoiseSource(x_T, generator, options.get("seeds"), options.get("noise_sampler"))
    return SamplerRun(spec, sde, CountedScore(score_fn, x_T), x_T, g, noise, callback, options)


def check_dtype(name: str, score_fn: object, x_T: Tensor) -> None:
    """Raise ``TypeError`` if ``score_fn`` is a module whose parameters have another dtype."""
    module = (
        score_fn if isinstance(score_fn, torch.nn.Module) else getattr(score_fn, "__self__", None)
    )
    if isinstance(module, torch.nn.Module):
        p = next((q for q in module.parameters() if q.is_floating_point()), None)
        if p is not None and p.dtype != x_T.dtype:
            raise TypeError(
                f"{name}: expected x_T of the model's dtype {p.dtype}, received {x_T.dtype} "
                f"(convert one of them: model.to({x_T.dtype}) or x_T.to({p.dtype}))"
            )


def check_sde(spec: SamplerSpec, sde: object) -> None:
    """Raise unless ``sde`` is an SDE that the sampler ``spec`` supports (``spec.sdes``)."""
    supported = spec.sdes
    if not isinstance(sde, supported):
        hint = f". {spec.unsupported_hint}" if spec.unsupported_hint else ""
        raise ValueError(
            f"sampler {spec.name!r} does not support {type(sde).__name__}; expected one of "
            f"{names_list(c.__name__ for c in supported)}{hint}"
        )


def sqrt_pos(v: Tensor) -> Tensor:
    """sqrt(max(v, 0)): variances that should be >= 0 but may round to -1e-17."""
    return torch.sqrt(torch.clamp(v, min=0.0))
