"""Per-step hooks for controllable generation; inpainting is the first (Song et al. 2021, App. I.2).

A hook is called as ``hook(x, t, i, randn_like) -> x`` after step i of a sampler (and once on
x_T with i = -1), where ``randn_like(x)`` draws standard normal noise from the sampler's own
noise source (its generator or per-sample seeds), so hooks stay reproducible.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ..sde import LinearSDE

__all__ = ["InpaintHook"]


class InpaintHook:
    """Replace the known coordinates by their forward-noised values at every step.

    At time t the known part becomes alpha_t x_known + sigma_t z, a draw from p_{0t}(x_t | x_known)
    (Eq. 29), while the sampler fills in the unknown part consistently with it.

    Args:
        sde: The linear SDE of the sampler.
        x_known: Data of shape ``(batch, *dims)`` (values outside ``mask`` are ignored).
        mask: Boolean tensor broadcastable to ``x_known``, True where the value is known.
    """

    def __init__(self, sde: LinearSDE, x_known: Tensor, mask: Tensor) -> None:
        if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
            raise TypeError(f"InpaintHook: expected a boolean mask tensor, received {mask!r}")
        try:
            torch.broadcast_shapes(mask.shape, x_known.shape)
        except RuntimeError:
            raise ValueError(
                f"InpaintHook: mask shape {tuple(mask.shape)} does not broadcast to x_known "
                f"{tuple(x_known.shape)}"
            ) from None
        self.sde, self.x_known, self.mask = sde, x_known, mask

    def __call__(
        self, x: Tensor, t: Tensor, i: int, randn_like: Callable[[Tensor], Tensor]
    ) -> Tensor:
        """x with the known coordinates set to alpha_t x_known + sigma_t z."""
        if x.shape != self.x_known.shape:
            raise ValueError(
                f"InpaintHook: expected states shaped like x_known {tuple(self.x_known.shape)}, "
                f"received {tuple(x.shape)}"
            )
        alpha, sigma = self.sde.marginal(t)
        known = alpha * self.x_known.to(x) + sigma * randn_like(x)
        return torch.where(self.mask.to(x.device), known, x)
