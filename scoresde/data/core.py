"""The data types every source shares: a scaler, a dataset, and seed derivation.

:class:`Scaler` maps data units <-> model units; :class:`Dataset` holds a fixed test set and
training batches that are a deterministic function of ``(seed, step)``; :class:`Labels`, the
class labels of a source that has them (for class-conditional models); :func:`derive_seed`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

__all__ = ["Dataset", "Labels", "Scaler", "derive_seed"]


@dataclass
class Scaler:
    """Affine map ``z = (x - shift) / scale`` from data units to model units.

    ``shift`` and ``scale`` are floats or per-feature lists (last data axis for vectors).
    """

    shift: float | list[float] = 0.0
    scale: float | list[float] = 1.0

    def _params(self, ref: Tensor) -> tuple[Tensor, Tensor]:
        return (
            torch.as_tensor(self.shift, dtype=ref.dtype, device=ref.device),
            torch.as_tensor(self.scale, dtype=ref.dtype, device=ref.device),
        )

    def transform(self, x: Tensor) -> Tensor:
        """Map data units to model units."""
        shift, scale = self._params(x)
        return (x - shift) / scale

    def inverse(self, z: Tensor) -> Tensor:
        """Map model units back to data units."""
        shift, scale = self._params(z)
        return z * scale + shift

    def log_abs_det(self, event_shape: Sequence[int]) -> float:
        """``log |det dz/dx|`` per example: ``log p_x(x) = log p_z(z) + log_abs_det``."""
        scale = torch.as_tensor(self.scale, dtype=torch.float64)
        full = torch.broadcast_to(scale, tuple(event_shape))
        return float(-torch.log(full.abs()).sum())

    @classmethod
    def minmax(cls, lo: float, hi: float) -> Scaler:
        """Scaler sending ``[lo, hi]`` to ``[-1, 1]``."""
        if not hi > lo:
            raise ValueError(f"minmax scaler needs hi > lo, received lo={lo}, hi={hi}")
        return cls(shift=(lo + hi) / 2, scale=(hi - lo) / 2)

    @classmethod
    def standard(cls, x: Tensor) -> Scaler:
        """Per-feature standardisation of vectors ``x`` of shape ``(n, d)``.

        A constant feature (zero spread) is only centred (scale 1), never divided by ~0.
        """
        std = x.std(dim=0)
        std = torch.where(std > 0, std, torch.ones_like(std))
        return cls(shift=x.mean(dim=0).tolist(), scale=std.tolist())

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable representation."""
        return {"shift": self.shift, "scale": self.scale}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Scaler:
        """Inverse of :meth:`to_dict`."""
        if set(d) != {"shift", "scale"}:
            raise ValueError(f"scaler dict needs keys ['scale', 'shift'], received {sorted(d)}")
        return cls(shift=d["shift"], scale=d["scale"])

    def to_json(self) -> str:
        """Serialise to a JSON string."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, s: str) -> Scaler:
        """Inverse of :meth:`to_json`."""
        return cls.from_dict(json.loads(s))


@dataclass
class Labels:
    """The class labels y in ``0..num_classes - 1`` of a data source's examples.

    Attributes:
        num_classes: Number of classes K.
        test: Labels of the test set, shape ``(n_test,)``.
        train: Labels of a finite training set, shape ``(n_train,)``.
        sampler: ``sampler(n, generator) -> (x, y)`` of a labelled stream; its ``x`` are the
            points the source's unlabelled ``sampler`` draws with the same generator.
        names: Name of each class (e.g. ``"0"``..``"9"`` for digits), if any.
    """

    num_classes: int
    test: Tensor
    train: Tensor | None = None
    sampler: Callable[[int, torch.Generator | None], tuple[Tensor, Tensor]] | None = None
    names: list[str] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The label set, as a checkpoint stores it: ``{"num_classes", "names"}``."""
        return {"num_classes": self.num_classes, "names": self.names}


@dataclass
class Dataset:
    """A data source in data units.

    Attributes:
        name: Source name.
        shape: Event shape, e.g. ``(2,)`` or ``(1, 8, 8)``.
        scaler: Map to model units.
        test: Fixed test set, shape ``(n_test, *shape)``.
        train: Finite training set ``(n_train, *shape)``, or ``None`` for an infinite stream.
        sampler: ``sampler(n, generator)`` for infinite streams (toy sets, mixtures).
        entropy: Entropy in nats of the data distribution (data units) if known.
        levels: Number of discrete levels for quantised data (for dequantisation), else ``None``.
        dequantize: For quantised data, add uniform noise to every training batch (default), so
            that the model learns the density that dequantized bits/dim evaluates.
        labels: The class labels (:class:`Labels`) of a source that has them, else ``None``;
            unconditional training ignores them, and :meth:`batch` is the same with or without.
    """

    name: str
    shape: tuple[int, ...]
    scaler: Scaler
    test: Tensor
    train: Tensor | None = None
    sampler: Callable[[int, torch.Generator | None], Tensor] | None = None
    entropy: float | None = None
    levels: int | None = None
    dequantize: bool = True
    labels: Labels | None = None
    _perm_cache: tuple[int, Tensor] | None = field(default=None, repr=False, compare=False)

    def batch(self, step: int, batch_size: int, seed: int) -> Tensor:
        """The global training batch for ``step``: a deterministic function of ``(seed, step)``.

        Finite sets are walked through one random permutation per epoch (seeded by
        ``(seed, epoch)``); streams draw fresh samples from a generator seeded by ``(seed, step)``.

        Returns:
            Tensor of shape ``(batch_size, *shape)`` in data units.
        """
        return self._draw(step, batch_size, seed, labeled=False)[0]

    def labeled_batch(self, step: int, batch_size: int, seed: int) -> tuple[Tensor, Tensor]:
        """The batch of :meth:`batch` and its class labels, shape ``(batch_size,)`` (long).

        Raises:
            ValueError: If the source has no labels.
        """
        if self.labels is None:
            raise ValueError(
                f"data set {self.name!r}: expected a source with class labels (e.g. digits, "
                "mnist, 8gaussians, checkerboard, a mixture with labels), received one without"
            )
        x, y = self._draw(step, batch_size, seed, labeled=True)
        assert y is not None
        return x, y

    def _draw(
        self, step: int, batch_size: int, seed: int, labeled: bool
    ) -> tuple[Tensor, Tensor | None]:
        if self.train is None:
            g = torch.Generator().manual_seed(derive_seed(seed, step))
            if labeled:
                assert self.labels is not None and self.labels.sampler is not None
                return self.labels.sampler(batch_size, g)
            assert self.sampler is not None
            return self.sampler(batch_size, g), None
        n = self.train.shape[0]
        pos = torch.arange(step * batch_size, (step + 1) * batch_size)
        idx = torch.empty(batch_size, dtype=torch.long)
        for epoch in torch.unique(pos // n).tolist():
            sel = pos // n == epoch
            idx[sel] = self._perm(seed, epoch, n)[pos[sel] % n]
        x = self.train[idx]
        y = None
        if labeled:
            assert self.labels is not None and self.labels.train is not None
            y = self.labels.train[idx]
        if self.levels and self.dequantize:
            # Uniform dequantization (Theis et al. 2016): level k -> k + u - 1/2, u ~ U[0, 1),
            # fresh for every step and seeded by (seed, step) so that resume stays exact. The
            # scaler maps [-1/2, levels - 1/2] to [-1, 1], so level k fills the model-space cell
            # [-1 + 2k / levels, -1 + 2 (k + 1) / levels) that bits_per_dim scores.
            g = torch.Generator().manual_seed(derive_seed(seed, 2_000_003 + step))
            x = x + torch.rand(x.shape, generator=g, dtype=x.dtype) - 0.5
        return x, y

    def _perm(self, seed: int, epoch: int, n: int) -> Tensor:
        if self._perm_cache is None or self._perm_cache[0] != epoch:
            g = torch.Generator().manual_seed(derive_seed(seed, 1_000_003 + epoch))
            self._perm_cache = (epoch, torch.randperm(n, generator=g))
        return self._perm_cache[1]


def derive_seed(seed: int, k: int) -> int:
    """A 63-bit seed derived from ``(seed, k)`` (splitmix-style, deterministic across runs)."""
    z = (seed * 0x9E3779B97F4A7C15 + k * 0xBF58476D1CE4E5B9 + 1) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return (z ^ (z >> 31)) & 0x7FFFFFFFFFFFFFFF
