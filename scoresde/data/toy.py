"""Two-dimensional toy distributions with reproducible samplers and known entropies.

The generators follow the widely used FFJORD toy set (Grathwohl et al. 2019, ``toy_data.py``) so
that numbers are comparable with the literature. Every sampler takes ``(n, generator)`` and
returns a float32 tensor of shape ``(n, 2)``.

Entropies ``H(p) = -E log p(x)`` (nats) are the floor for the test NLL of a perfect model:

* ``8gaussians``: 8 isotropic Gaussians of std ``0.5 / 1.414`` centred at radius
  ``4 / 1.414`` on the unit-circle directions ``k pi / 4``, equal weights. Mixture entropy computed
  once by 2-D quadrature: ``2.8319`` (slightly below ``log 8 + log(2 pi e s^2) = 2.838`` because
  neighbouring components overlap a little).
* ``checkerboard``: uniform on 8 squares of side 2 in ``[-4, 4]^2``, area 32: ``log 32 = 3.4657``.
* ``4gaussians``: the study notes' 2-D demo, 4 Gaussians of std 0.5 at ``(+-2, +-2)``, equal
  weights (:func:`four_gaussians_mixture` gives its exact marginals and scores): the components
  are 8 std apart, so ``H = log 4 + log(2 pi e 0.25) = 2.8379`` up to ~1e-7.

The other sets (moons, swiss roll, pinwheel, two spirals, rings) have no closed-form entropy.

Class labels (for class-conditional models): ``8gaussians`` labels each point by its component
(k = 0..7, direction k pi / 4) and ``checkerboard`` by its square (8 cells, column-major from
the left); their labelled samplers draw the same points as the unlabelled ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from scoresde._utils import names_list

if TYPE_CHECKING:
    from scoresde.analytic import GaussianMixture

__all__ = [
    "FOUR_GAUSSIANS_MEANS",
    "TOY_SETS",
    "ToySpec",
    "eight_gaussians_mixture",
    "four_gaussians_mixture",
    "sample_toy",
]

#: Centres of the study notes' ``4gaussians`` set (std 0.5, equal weights).
FOUR_GAUSSIANS_MEANS = ((2.0, 2.0), (-2.0, -2.0), (2.0, -2.0), (-2.0, 2.0))


def _rand(n: int, g: torch.Generator | None) -> Tensor:
    return torch.rand(n, generator=g)


def _randn(*shape: int, g: torch.Generator | None) -> Tensor:
    return torch.randn(*shape, generator=g)


# The FFJORD ring: centres 4 (k pi / 4 directions) and std 0.5, all divided by 1.414 (not sqrt 2).
_RING_RADIUS, _RING_STD, _RING_SCALE = 4.0, 0.5, 1.414


def _ring_directions(dtype: torch.dtype = torch.float32) -> Tensor:
    angles = torch.arange(8, dtype=dtype) * (math.pi / 4)
    return torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)


def eight_gaussians_labeled(
    n: int, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """8 Gaussians on a circle and each point's component k (direction k pi / 4)."""
    centers = _RING_RADIUS * _ring_directions()
    idx = torch.randint(0, 8, (n,), generator=generator)
    return (centers[idx] + _RING_STD * _randn(n, 2, g=generator)) / _RING_SCALE, idx


def eight_gaussians(n: int, generator: torch.Generator | None = None) -> Tensor:
    """8 Gaussians on a circle (FFJORD ``8gaussians``)."""
    return eight_gaussians_labeled(n, generator)[0]


def eight_gaussians_mixture() -> GaussianMixture:
    """The exact density of ``8gaussians`` as a float64 :class:`~scoresde.analytic.GaussianMixture`.

    Equal weights, means at radius ``4 / 1.414`` on the directions ``k pi / 4``, isotropic std
    ``0.5 / 1.414``: exact scores, log-densities and entropies for tests, studies and the CLI.
    """
    from scoresde.analytic import GaussianMixture

    f64 = torch.float64
    means = (_RING_RADIUS / _RING_SCALE) * _ring_directions(f64)
    var = torch.full((8, 2), (_RING_STD / _RING_SCALE) ** 2, dtype=f64)
    return GaussianMixture(torch.full((8,), 1 / 8, dtype=f64), means, var)


def four_gaussians(n: int, generator: torch.Generator | None = None) -> Tensor:
    """The study notes' demo: 4 Gaussians of std 0.5 at (+-2, +-2), equal weights."""
    idx = torch.randint(0, 4, (n,), generator=generator)
    return torch.tensor(FOUR_GAUSSIANS_MEANS)[idx] + 0.5 * _randn(n, 2, g=generator)


def four_gaussians_mixture() -> GaussianMixture:
    """``4gaussians`` as a :class:`~scoresde.analytic.GaussianMixture` (exact p_t and scores)."""
    from scoresde.analytic import GaussianMixture

    return GaussianMixture([0.25] * 4, FOUR_GAUSSIANS_MEANS, [[0.25, 0.25]] * 4)


def checkerboard_labeled(n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """The checkerboard and each point's square: 2 column + row, column and row in 0..3, 0..1."""
    x1 = _rand(n, generator) * 4 - 2
    u = _rand(n, generator)  # drawn before the row: the stream of the unlabelled set
    row = torch.randint(0, 2, (n,), generator=generator)
    x2_ = u - row.float() * 2
    x2 = x2_ + torch.floor(x1) % 2
    cell = 2 * (torch.floor(x1).long() + 2) + row
    return torch.stack([x1, x2], dim=1) * 2, cell


def checkerboard(n: int, generator: torch.Generator | None = None) -> Tensor:
    """Uniform on the dark squares of a 4x4 checkerboard on ``[-4, 4]^2``."""
    return checkerboard_labeled(n, generator)[0]


def moons(n: int, generator: torch.Generator | None = None) -> Tensor:
    """Two interleaved half circles with noise 0.1, scaled by 2 and centred."""
    theta = _rand(n, generator) * math.pi
    upper = torch.rand(n, generator=generator) < 0.5
    outer = torch.stack([torch.cos(theta), torch.sin(theta)], dim=1)
    inner = torch.stack([1 - torch.cos(theta), 0.5 - torch.sin(theta)], dim=1)
    x = torch.where(upper[:, None], outer, inner) + 0.1 * _randn(n, 2, g=generator)
    return x * 2 + torch.tensor([-1.0, -0.2])


def swiss_roll(n: int, generator: torch.Generator | None = None) -> Tensor:
    """Swiss roll (the ``x``-``z`` plane of scikit-learn's, noise 1.0), divided by 5."""
    t = 1.5 * math.pi * (1 + 2 * _rand(n, generator))
    x = torch.stack([t * torch.cos(t), t * torch.sin(t)], dim=1) + _randn(n, 2, g=generator)
    return x / 5


def pinwheel(n: int, generator: torch.Generator | None = None) -> Tensor:
    """Five curved arms (FFJORD ``pinwheel``: radial std 0.3, tangential 0.1, rate 0.25)."""
    labels = torch.randint(0, 5, (n,), generator=generator)
    feats = _randn(n, 2, g=generator) * torch.tensor([0.3, 0.1]) + torch.tensor([1.0, 0.0])
    angles = labels.float() * (2 * math.pi / 5) + 0.25 * torch.exp(feats[:, 0])
    c, s = torch.cos(angles), torch.sin(angles)
    rot = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], dim=-2)
    return 2 * torch.einsum("ti,tij->tj", feats, rot)


def two_spirals(n: int, generator: torch.Generator | None = None) -> Tensor:
    """Two interleaved spirals (FFJORD ``2spirals``)."""
    half = (n + 1) // 2
    r = torch.sqrt(_rand(half, generator)) * 540 * (2 * math.pi) / 360
    dx = -torch.cos(r) * r + _rand(half, generator) * 0.5
    dy = torch.sin(r) * r + _rand(half, generator) * 0.5
    d = torch.stack([dx, dy], dim=1)
    x = torch.cat([d, -d])[:n] / 3
    return x + 0.1 * _randn(n, 2, g=generator)


def rings(n: int, generator: torch.Generator | None = None) -> Tensor:
    """Four concentric rings of radii 0.75, 1.5, 2.25, 3 with Gaussian noise 0.08."""
    radius = 0.75 * (torch.randint(0, 4, (n,), generator=generator).float() + 1)
    theta = 2 * math.pi * _rand(n, generator)
    x = radius[:, None] * torch.stack([torch.cos(theta), torch.sin(theta)], dim=1)
    return x + 0.08 * _randn(n, 2, g=generator)


@dataclass(frozen=True)
class ToySpec:
    """A registered 2-D toy set: its sampler, entropy in nats (``None`` if unknown), labels.

    ``labeled(n, generator) -> (x, y)`` draws the points of ``sampler`` with their class labels
    in ``0..num_classes - 1`` (sets with classes only).
    """

    sampler: Callable[[int, torch.Generator | None], Tensor]
    entropy: float | None
    labeled: Callable[[int, torch.Generator | None], tuple[Tensor, Tensor]] | None = None
    num_classes: int | None = None


TOY_SETS: dict[str, ToySpec] = {
    "8gaussians": ToySpec(eight_gaussians, 2.8319, eight_gaussians_labeled, 8),
    "checkerboard": ToySpec(checkerboard, math.log(32.0), checkerboard_labeled, 8),
    "4gaussians": ToySpec(four_gaussians, math.log(4.0) + math.log(2 * math.pi * math.e * 0.25)),
    "moons": ToySpec(moons, None),
    "swissroll": ToySpec(swiss_roll, None),
    "pinwheel": ToySpec(pinwheel, None),
    "2spirals": ToySpec(two_spirals, None),
    "rings": ToySpec(rings, None),
}


def sample_toy(name: str, n: int, generator: torch.Generator | None = None) -> Tensor:
    """Draw ``n`` points from a registered toy set.

    Args:
        name: One of ``TOY_SETS``.
        n: Number of points (positive).
        generator: Optional generator for reproducibility.

    Returns:
        Float32 tensor of shape ``(n, 2)``.

    Raises:
        ValueError: For an unknown name or a non-positive ``n``.
    """
    if name not in TOY_SETS:
        raise ValueError(f"unknown toy set {name!r}; expected one of {names_list(TOY_SETS)}")
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, received {n!r}")
    return TOY_SETS[name].sampler(n, generator)
