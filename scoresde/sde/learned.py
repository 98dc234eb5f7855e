"""A learned VP noise schedule: the monotone log-SNR network of VDM (Kingma et al. 2021).

Variational Diffusion Models (Kingma, Salimans, Poole & Ho 2021, Sec. 3.4 and App. H) write a
VP diffusion through gamma_eta(t) = -lambda(t), the negative log-SNR, a learned function that
increases in t:

    alpha_t^2 = sigmoid(-gamma(t)),   sigma_t^2 = sigmoid(gamma(t))              (VDM Eq. 3-4)

In Song et al.'s (2021) VP notation (Eq. 11 and 29, alpha_t^2 = exp(-B(t))) this is a
:class:`~scoresde.sde.schedules.BetaSchedule` with

    B(t) = softplus(gamma(t)),   beta(t) = B'(t) = sigmoid(gamma(t)) gamma'(t),

so ``VPSDE(schedule=LearnedLogSNR())`` is a :class:`~scoresde.sde.LinearSDE` with exact
marginals, drift, g(t)^2 = beta(t) and a log-SNR inverse (bisection on the monotone gamma):
every sampler, likelihood and grid of the library accepts it unchanged.

The network (VDM App. H, with positive weights): with w_1, w_2, w_3 > 0 (softplus of free
parameters), phi the logistic sigmoid and K hidden units,

    h(t) = w_1 t + sum_k w_3k phi(w_2k w_1 t + b_2k),
    gamma(t) = gamma_0 + (gamma_1 - gamma_0) (h(t) - h(0)) / (h(1) - h(0)).

h is strictly increasing, so gamma is, for every parameter value; the end points
gamma_0 = gamma(0) and gamma_1 = gamma(1) are learned separately (gamma_1 - gamma_0 is a softplus,
hence positive). gamma'(t) is computed in closed form, so beta(t) and g(t)^2 stay differentiable
in the parameters (the VLB of :mod:`scoresde.vlb` trains them).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.functional import softplus
from typing_extensions import override

from .schedules import BetaSchedule, _bisect, register_schedule

__all__ = ["LearnedLogSNR"]


def _inv_softplus(y: float) -> float:
    return y + math.log(-math.expm1(-y))


@register_schedule("learned_log_snr")
class LearnedLogSNR(nn.Module, BetaSchedule):
    """A monotone learned negative log-SNR gamma_eta(t) on [0, 1], usable as a VP beta schedule.

    Args:
        gamma_min: gamma(0) = -lambda(0) at initialisation (VDM uses -13.3: sigma_0 = 1.3e-3).
        gamma_max: gamma(1) = -lambda(1) at initialisation (default 10: alpha_1^2 = 4.5e-5,
            as the linear VP SDE, so the N(0, I) prior of the samplers fits; VDM uses 5).
        hidden: Number K of sigmoid units of the monotone network (VDM uses 1024).
        init_scale: Spread of the random initial hidden weights; 0 makes gamma linear in t at
            initialisation to about 1e-4 (the LogSNRLinearBeta schedule with the same end
            points, up to the tiny sigma_0 of its gamma_0).
        generator: Seeds the random initialisation.

    Parameters are float32 by default (``.double()`` converts them); queries run in the dtype
    of ``t``.
    """

    def __init__(
        self,
        gamma_min: float = -13.3,
        gamma_max: float = 10.0,
        hidden: int = 64,
        init_scale: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> None:
        nn.Module.__init__(self)
        for name, v in (("gamma_min", gamma_min), ("gamma_max", gamma_max)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"LearnedLogSNR: expected a finite {name}, received {v!r}")
        if not gamma_min < gamma_max:
            raise ValueError(
                "LearnedLogSNR: expected gamma_min < gamma_max, received "
                f"gamma_min={gamma_min}, gamma_max={gamma_max}"
            )
        if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
            raise ValueError(f"LearnedLogSNR: expected an int hidden >= 1, received {hidden!r}")
        if not (isinstance(init_scale, (int, float)) and init_scale >= 0):
            raise ValueError(f"LearnedLogSNR: expected init_scale >= 0, received {init_scale!r}")
        self.gamma_0 = nn.Parameter(torch.tensor(float(gamma_min)))
        self.raw_range = nn.Parameter(torch.tensor(_inv_softplus(gamma_max - gamma_min)))
        noise = torch.randn(3, hidden, generator=generator) * init_scale
        self.raw_w1 = nn.Parameter(torch.tensor(_inv_softplus(1.0)))
        # init_scale = 0: w_3 = softplus(-12) = 6e-6, so h is linear in t to about 1e-4 (and
        # still trainable: the gradient reaching raw_w3 is not vanishingly small).
        w3_raw = -12.0 + noise[0] if init_scale == 0 else noise[0] - math.log(hidden)
        self.raw_w3 = nn.Parameter(w3_raw)
        self.raw_w2 = nn.Parameter(noise[1] + _inv_softplus(6.0))
        self.b2 = nn.Parameter(-3.0 + 2 * noise[2])

    # -- the monotone network ----------------------------------------------------------------
    def _h(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """h(t) and h'(t), shaped like ``t``."""
        dt = t.dtype
        w1 = softplus(self.raw_w1).to(dt)
        w2, w3 = softplus(self.raw_w2).to(dt), softplus(self.raw_w3).to(dt)
        u = (w1 * t)[..., None] * w2 + self.b2.to(dt)  # (..., K)
        s = torch.sigmoid(u)
        h = w1 * t + (w3 * s).sum(-1)
        dh = w1 * (1 + (w3 * w2 * s * (1 - s)).sum(-1))
        return h, dh

    def shape(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """The normalised shape r(t) = (h(t) - h(0)) / (h(1) - h(0)) in [0, 1] and r'(t).

        gamma(t) = gamma_0 + (gamma_1 - gamma_0) r(t): r carries every parameter except the
        end points (the VLB depends on it only through the Monte Carlo variance, VDM Sec. 5).
        """
        ends = torch.tensor([0.0, 1.0], dtype=t.dtype, device=t.device)
        h, dh = self._h(t)
        h_ends, _ = self._h(ends)
        span = h_ends[1] - h_ends[0]
        return (h - h_ends[0]) / span, dh / span

    def ends(self, dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
        """The end points (gamma_0, gamma_1) = (gamma(0), gamma(1))."""
        g0 = self.gamma_0.to(dtype)
        return g0, g0 + softplus(self.raw_range).to(dtype)

    def gamma_from_shape(self, r: Tensor, dr: Tensor) -> tuple[Tensor, Tensor]:
        """gamma(t) and gamma'(t) from the shape ``(r, r')`` of :meth:`shape`."""
        g0, g1 = self.ends(r.dtype)
        return g0 + (g1 - g0) * r, (g1 - g0) * dr

    def gamma(self, t: Tensor) -> Tensor:
        """The negated log-SNR gamma(t) = -lambda(t), increasing in t, shaped like ``t``."""
        return self.gamma_and_grad(t)[0]

    def gamma_and_grad(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """gamma(t) and d gamma / dt (> 0), both shaped like ``t``."""
        return self.gamma_from_shape(*self.shape(t))

    # -- the BetaSchedule interface (alpha_t^2 = exp(-B(t)) = sigmoid(-gamma(t))) ---------------
    @override
    def beta(self, t: Tensor) -> Tensor:
        g, dg = self.gamma_and_grad(t)
        return torch.sigmoid(g) * dg

    @override
    def integral(self, t: Tensor) -> Tensor:
        return softplus(self.gamma(t))

    @override
    def inverse_integral(self, b: Tensor) -> Tensor:
        # softplus(gamma) = B  =>  gamma = log(expm1(B)); gamma is increasing: bisect in t.
        target = torch.log(torch.expm1(b.to(torch.float64)))
        with torch.no_grad():
            return _bisect(self.gamma, target, 0.0, 1.0).to(b.dtype)

    @override
    def to_config(self) -> dict[str, Any]:
        """The schedule's shape (``hidden``) and current end points, for ``sde.config()``.

        The learned parameters are state, not configuration: they live in ``state_dict()``
        (register the schedule on the model, ``model.add_module("schedule", sde.schedule)``,
        and every checkpoint carries them). :meth:`from_config` rebuilds a schedule of this shape
        whose parameters ``load_state_dict`` then fills.
        """
        with torch.no_grad():
            g0, g1 = self.ends(torch.float64)
        return {
            "kind": self.kind,
            "gamma_0": float(g0),
            "gamma_1": float(g1),
            "hidden": int(self.raw_w2.numel()),
        }

    @classmethod
    @override
    def from_config(cls, config: dict[str, Any]) -> LearnedLogSNR:
        """A schedule of the shape :meth:`to_config` describes, with those end points.

        Its hidden units are a fixed initialisation until ``load_state_dict`` restores the
        learned ones (:func:`scoresde.training.model_from_config` does so through the model's
        state dict).

        Raises:
            ValueError: If ``config`` is not a ``learned_log_snr`` description.
        """
        keys = {"kind", "gamma_0", "gamma_1", "hidden"}
        if not isinstance(config, dict) or set(config) != keys:
            got = sorted(config) if isinstance(config, dict) else type(config).__name__
            raise ValueError(
                f"LearnedLogSNR.from_config: expected the keys {sorted(keys)}, received {got}"
            )
        if config["kind"] != "learned_log_snr":
            raise ValueError(
                f"LearnedLogSNR.from_config: expected kind 'learned_log_snr', received "
                f"{config['kind']!r}"
            )
        return cls(
            gamma_min=config["gamma_0"],
            gamma_max=config["gamma_1"],
            hidden=config["hidden"],
            generator=torch.Generator().manual_seed(0),
        )

    @override
    def extra_repr(self) -> str:
        with torch.no_grad():
            g0, g1 = self.ends(torch.float64)
        return f"gamma_0={float(g0):.4g}, gamma_1={float(g1):.4g}, hidden={self.raw_w2.numel()}"
