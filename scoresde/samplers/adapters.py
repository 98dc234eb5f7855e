"""The one place where scoresde's ``(x, t)`` order meets torchdiffeq/torchsde's ``(t, y)`` order.

* :class:`ODEFunc` wraps a vector field ``field(x, t)`` as torchdiffeq's ``func(t, y)``.
* :func:`torchdiffeq_methods`: torchdiffeq's method names, and which of them choose their own
  steps (the table :data:`~scoresde.sde.pf_ode.TORCHDIFFEQ_METHODS`).
* :class:`ReverseTimeSDE` presents the reverse SDE (Song et al. 2021, Eq. 6), which runs from T
  down to eps, as a forward Ito SDE in s = -t for ``torchsde.sdeint`` (which needs increasing
  times): with y(s) = x(-s),

      dy = -[f(y, -s) - g(-s)^2 s_theta(y, -s)] ds + g(-s) dW_s,

  with diagonal noise on the flattened state of shape ``(batch, prod(dims))``.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from ..sde.pf_ode import ADAPTIVE_METHODS, TORCHDIFFEQ_METHODS

__all__ = ["ODEFunc", "ReverseTimeSDE", "torchdiffeq_methods"]


def torchdiffeq_methods() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """torchdiffeq's ODE methods, and the adaptive ones (:mod:`scoresde.sde.pf_ode`'s table).

    Returns:
        ``(methods, adaptive)``: two tuples of names, ``adaptive`` a subset of ``methods``.
    """
    return tuple(TORCHDIFFEQ_METHODS), ADAPTIVE_METHODS


class ODEFunc:
    """torchdiffeq's ``func(t, y)`` for a field ``field(x, t)`` (state first, as in scoresde)."""

    def __init__(self, field: Callable[[Tensor, Tensor], Tensor]) -> None:
        self.field = field

    def __call__(self, t: Tensor, y: Tensor) -> Tensor:
        """d y / d t at (t, y)."""
        return self.field(y, t)


class ReverseTimeSDE:
    """A torchsde SDE (``f``, ``g``, diagonal Ito noise) for the reverse SDE in s = -t.

    Args:
        drift: ``drift(x, t)``, the reverse drift f - g^2 s_theta at state ``x`` of shape
            ``(batch, *dims)`` and a 0-d time ``t``.
        diffusion: ``diffusion(t) -> g(t)`` for a 0-d ``t``.
        shape: The state shape ``(batch, *dims)``; torchsde sees ``(batch, prod(dims))``.
    """

    noise_type = "diagonal"
    sde_type = "ito"

    def __init__(
        self,
        drift: Callable[[Tensor, Tensor], Tensor],
        diffusion: Callable[[Tensor], Tensor],
        shape: tuple[int, ...],
    ) -> None:
        self.drift, self.diffusion, self.shape = drift, diffusion, tuple(shape)
        self._memo: tuple[Tensor, Tensor, Tensor] | None = None

    def f(self, s: Tensor, y: Tensor) -> Tensor:
        """Minus the reverse drift at (y, t = -s), flattened.

        The last value is memoized on the identity of ``y``: torchsde probes ``f(t0, y0)`` to
        check shapes and then evaluates it again in the first step; the score is paid once.
        """
        memo = self._memo
        if memo is not None and memo[1] is y and bool(memo[0] == s):
            return memo[2]
        out = -self.drift(y.reshape(self.shape), -s).reshape(y.shape)
        self._memo = (s, y, out)
        return out

    def g(self, s: Tensor, y: Tensor) -> Tensor:
        """The diffusion g(t = -s), broadcast to the diagonal noise shape of ``y``."""
        return self.diffusion(-s).to(y.dtype).expand(y.shape)
