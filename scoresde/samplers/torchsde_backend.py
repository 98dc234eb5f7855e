"""The torchsde backend, and shared Brownian paths for the built-in stochastic samplers.

``sample_torchsde`` integrates the reverse SDE (Song et al. 2021, Eq. 6) with
``torchsde.sdeint`` (methods 'euler', 'milstein', 'srk', ...) through the time-reversed
:class:`~scoresde.samplers.adapters.ReverseTimeSDE`, driven by a ``BrownianInterval`` (or a
``BrownianTree``) seeded from the caller's generator.

:class:`BrownianNoise` is a ``noise_sampler`` for the built-in samplers: the noise of the step
from t to t_next is (W(t) - W(t_next)) / sqrt(t - t_next) on one Brownian path, so runs with
different step sizes see the same path (strong-convergence studies).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torchsde
from torch import Tensor

from .._utils import names_list
from ..sde.reverse import reverse_drift
from .adapters import ReverseTimeSDE
from .register import register
from .run import SampleInfo, SamplerRun
from .spec import REVERSE_SDE

__all__ = ["TORCHSDE_METHODS", "BrownianNoise", "sample_torchsde"]

#: torchsde methods for diagonal Ito noise, with their score evaluations per step.
TORCHSDE_METHODS: dict[str, int] = {"euler": 1, "milstein": 1, "srk": 9}


def _entropy(generator: torch.Generator | None) -> int:
    return int(torch.randint(0, 2**31 - 1, (1,), generator=generator))


def _brownian(
    kind: str, t0: float, t1: float, like: Tensor, generator: torch.Generator | None, levy: bool
) -> Any:
    kw: dict[str, Any] = {
        "dtype": like.dtype,
        "device": like.device,
        "entropy": _entropy(generator),
    }
    if levy:
        kw["levy_area_approximation"] = "space-time"
    if kind == "interval":
        return torchsde.BrownianInterval(t0=t0, t1=t1, size=tuple(like.shape), **kw)
    if kind == "tree":
        return torchsde.BrownianTree(t0=t0, t1=t1, w0=torch.zeros_like(like), tol=1e-8, **kw)
    raise ValueError(
        f"unknown brownian {kind!r}; expected one of {names_list(['interval', 'tree'])}"
    )


class BrownianNoise:
    """A ``noise_sampler`` whose draws are increments of one Brownian path on [t_min, t_max].

    Args:
        x: A state shaped like the sampler's ``x_T`` (gives shape, dtype and device).
        t_min: Start of the path (``sde.eps``).
        t_max: End of the path (``sde.T``).
        generator: Seeds the path (via torchsde's ``entropy``).
        kind: 'interval' (``BrownianInterval``, default) or 'tree' (``BrownianTree``).
    """

    def __init__(
        self,
        x: Tensor,
        t_min: float,
        t_max: float,
        generator: torch.Generator | None = None,
        kind: str = "interval",
    ) -> None:
        self.bm = _brownian(kind, float(t_min), float(t_max), x, generator, levy=False)

    def __call__(self, x: Tensor, t: Tensor, t_next: Tensor) -> Tensor:
        """(W(t) - W(t_next)) / sqrt(t - t_next) for a backward step t > t_next."""
        hi, lo = float(t), float(t_next)
        if not hi > lo:
            raise ValueError(
                f"BrownianNoise: expected a step with t > t_next, received t={hi:g}, t_next={lo:g} "
                "(correctors need fresh noise, not path increments)"
            )
        return self.bm(lo, hi) / math.sqrt(hi - lo)


@register(
    "torchsde", **REVERSE_SDE, nfe_per_step=lambda o: TORCHSDE_METHODS[o.get("method", "euler")]
)
def sample_torchsde(
    run: SamplerRun,
    *,
    method: str = "euler",
    dt: float | None = None,
    brownian: str = "interval",
    bm: Any = None,
) -> tuple[Tensor, SampleInfo]:
    """The reverse SDE (Song et al. 2021, Eq. 6) through ``torchsde.sdeint`` (fixed step ``dt``).

    The arguments are those of every sampler (:class:`~scoresde.samplers.Sampler`), except that
    ``generator`` seeds the Brownian path and
    ``callback`` runs at each grid time after the solve; of the common options only
    ``return_trajectory`` and ``denoise`` apply (``hook``, ``noise_sampler`` and ``seeds`` do
    not).

    Args:
        run: The validated run (built by :func:`~scoresde.samplers.register.register`).
        method: 'euler' (strong order 1 for this additive noise), 'milstein' or 'srk' (1.5).
        dt: A fixed step size inside every grid interval. Default: one step per grid interval,
            so the NFE budget holds on every grid kind (a fixed ``dt`` below the largest
            interval spends more score evaluations than the budget counts).
        brownian: 'interval' (``BrownianInterval``) or 'tree' (``BrownianTree``).
        bm: Optional torchsde Brownian motion on [-grid[0], -grid[-1]] (s = -t), shaped
            ``(batch, prod(dims))``, to share one path across calls; overrides ``brownian``.

    Returns:
        ``(x, info)`` with samples at ``grid[-1]``.
    """
    if method not in TORCHSDE_METHODS:
        raise ValueError(
            f"torchsde: unknown method {method!r}; expected one of {names_list(TORCHSDE_METHODS)}"
        )
    for key in ("hook", "noise_sampler", "seeds"):
        if run.options.get(key) is not None:
            raise ValueError(f"torchsde: option {key!r} is not supported by the torchsde backend")
    sde, x_T, callback = run.sde, run.x_T, run.callback
    if dt is not None and not float(dt) > 0:
        raise ValueError(f"torchsde: expected dt > 0, received {dt!r}")

    def drift(x: Tensor, t: Tensor) -> Tensor:  # reverse drift f - g^2 s (Eq. 6)
        t = t.to(x.dtype)
        return reverse_drift(sde.drift(x, t), sde.g2(t), run.score(x, t))

    rsde = ReverseTimeSDE(drift, lambda t: sde.diffusion(t.to(x_T.dtype)), tuple(x_T.shape))
    y0 = x_T.reshape(x_T.shape[0], -1)
    s_times = -run.t  # increasing times s = -t
    if bm is None:
        bm = _brownian(
            brownian,
            float(s_times[0]),
            float(s_times[-1]),
            y0,
            run.noise.generator,
            method == "srk",
        )
    if dt is not None:  # 1 + 1e-9: round-off never adds a sliver step before a grid time
        ys = torchsde.sdeint(rsde, y0, s_times, bm=bm, method=method, dt=float(dt) * (1 + 1e-9))
    else:  # one step per grid interval, on one Brownian path
        ys_list = [y0]
        for i in range(run.n_steps):
            h = float(s_times[i + 1] - s_times[i]) * (1 + 1e-9)
            ys_list.append(
                torchsde.sdeint(rsde, ys_list[-1], s_times[i : i + 2], bm=bm, method=method, dt=h)[
                    -1
                ]
            )
        ys = torch.stack(ys_list)
    ys = ys.reshape(ys.shape[0], *x_T.shape)
    if callback is not None:
        for i in range(run.n_steps):
            callback(i, run.t[i + 1], ys[i + 1])
    return run.finish(ys[-1], list(ys) if run.keep else None, method=method)
