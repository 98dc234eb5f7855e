"""Where a sampler's Gaussian noise comes from.

One torch.Generator, one generator per sample (``seeds``, so sample i is the same whatever the
batch size), or an injected ``noise_sampler`` (e.g. a Brownian path shared across step sizes).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

__all__ = ["NoiseSampler", "NoiseSource", "noise_from_seeds"]

#: ``noise_sampler(x, t, t_next) -> z`` with z ~ N(0, I) shaped like ``x`` (a hook's draws pass
#: no times: ``t = t_next = None``).
NoiseSampler = Callable[[Tensor, Tensor | None, Tensor | None], Tensor]


class NoiseSource:
    """Standard normal draws from one generator, per-sample seeds, or an injected sampler."""

    def __init__(
        self,
        x: Tensor,
        generator: torch.Generator | None,
        seeds: Sequence[int] | None,
        noise_sampler: NoiseSampler | None,
    ) -> None:
        given = [n for n, v in (("generator", generator), ("seeds", seeds)) if v is not None]
        if noise_sampler is not None:
            given.append("noise_sampler")
        if len(given) > 1:
            raise ValueError(f"expected at most one source of noise, received {', '.join(given)}")
        self.generator, self.noise_sampler = generator, noise_sampler
        self.generators = None if seeds is None else _seed_generators(seeds, x)

    def __call__(self, x: Tensor, t: Tensor | None = None, t_next: Tensor | None = None) -> Tensor:
        """z ~ N(0, I) shaped like ``x`` for the step from ``t`` to ``t_next``."""
        if self.noise_sampler is not None:
            return self.noise_sampler(x, t, t_next)
        if self.generators is not None:
            return torch.stack(
                [torch.randn(x.shape[1:], generator=g, dtype=x.dtype) for g in self.generators]
            ).to(x.device)
        return torch.randn(x.shape, generator=self.generator, dtype=x.dtype, device=x.device)


def _seed_generators(seeds: Sequence[int], x: Tensor) -> list[torch.Generator]:
    seeds = list(seeds)
    if len(seeds) != x.shape[0] or not all(isinstance(s, int) for s in seeds):
        raise ValueError(
            f"seeds: expected {x.shape[0]} integer seeds (one per sample), received "
            f"{len(seeds)} values"
        )
    return [torch.Generator().manual_seed(s) for s in seeds]


def noise_from_seeds(seeds: Sequence[int], shape: Sequence[int], **kw: Any) -> Tensor:
    """A batch of N(0, I) draws, row i from ``torch.Generator().manual_seed(seeds[i])``.

    Args:
        seeds: One integer per sample.
        shape: The shape of one sample, ``dims``.
        **kw: ``dtype`` / ``device`` of the result.

    Returns:
        A tensor of shape ``(len(seeds), *shape)``; row i does not depend on the other seeds.
    """
    rows = [
        torch.randn(tuple(shape), generator=torch.Generator().manual_seed(int(s))) for s in seeds
    ]
    return torch.stack(rows).to(**kw)
