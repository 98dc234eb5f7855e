"""Integer shifts of quantised images: levels kept, offsets uniform, fill, validation."""

from __future__ import annotations

import pytest
import torch

from scoresde.data.augment import random_shift


def _shifted(x: torch.Tensor, dy: int, dx: int, fill: float) -> torch.Tensor:
    """Reference: shift one image (C, H, W) by (dy, dx) with constant fill, by loops."""
    out = torch.full_like(x, fill)
    H, W = x.shape[-2:]
    for i in range(H):
        for j in range(W):
            if 0 <= i - dy < H and 0 <= j - dx < W:
                out[:, i, j] = x[:, i - dy, j - dx]
    return out


def test_every_output_is_one_of_the_allowed_shifts_and_offsets_are_uniform() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(1, 17, (900, 2, 5, 6), generator=g).float()  # no zeros: shifts are visible
    out = random_shift(x, max_shift=1, fill=-1.0, generator=g)
    counts: dict[tuple[int, int], int] = {}
    for a, b in zip(x, out, strict=True):
        hits = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                if torch.equal(b, _shifted(a, dy, dx, -1.0))]  # fmt: skip
        assert len(hits) == 1
        counts[hits[0]] = counts.get(hits[0], 0) + 1
    assert len(counts) == 9 and all(60 < c < 140 for c in counts.values()), counts  # 100 each


def test_probability_zero_is_the_identity_and_p_sets_the_fraction_moved() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randint(1, 17, (2000, 1, 8, 8), generator=g).float()
    assert torch.equal(random_shift(x, p=0.0, generator=g), x)
    moved = (random_shift(x, p=0.3, generator=g) != x).flatten(1).any(1).float().mean()
    assert abs(float(moved) - 0.3 * 8 / 9) < 0.04  # (0, 0) is one of the 9 offsets


def test_validation_messages() -> None:
    x = torch.zeros(2, 1, 8, 8)
    with pytest.raises(TypeError, match="expected a tensor x, received list"):
        random_shift([1, 2])  # type: ignore[arg-type]
    with pytest.raises(
        ValueError, match=r"expected x of shape \(batch, C, H, W\), received \(2, 8\)"
    ):
        random_shift(torch.zeros(2, 8))
    with pytest.raises(ValueError, match="expected 0 <= max_shift < 8, received 8"):
        random_shift(x, max_shift=8)
    with pytest.raises(TypeError, match="expected an integer max_shift, received 1.5"):
        random_shift(x, max_shift=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="expected p in \\[0, 1\\], received 1.2"):
        random_shift(x, p=1.2)
