"""The data registry: ``DATASETS`` maps a source name to its loader; :func:`get_dataset`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from scoresde._utils import names_list
from scoresde.data.core import Dataset, Scaler
from scoresde.data.files import load_array, load_digits, load_image_folder, load_mnist
from scoresde.data.toy import TOY_SETS, sample_toy

__all__ = ["DATASETS", "get_dataset", "load_mixture", "load_toy"]

TOY_TEST_SEED = 2021  # the fixed test set of a toy distribution is drawn with this seed


def load_toy(name: str, n_test: int = 10_000) -> Dataset:
    """A 2-D toy stream from :mod:`scoresde.data.toy`; identity scaling (NLL in data units)."""
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
        raise ValueError(f"unknown dataset {name!r}; expected one of {names_list(DATASETS)}")
    return DATASETS[name](**kwargs)
