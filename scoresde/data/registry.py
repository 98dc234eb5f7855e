"""The data registry: ``DATASETS`` maps a source name to its loader; :func:`get_dataset`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from scoresde._utils import names_list
from scoresde.data.core import Dataset, Labels, Scaler
from scoresde.data.files import load_array, load_digits, load_image_folder, load_mnist
from scoresde.data.toy import TOY_SETS, sample_toy

__all__ = ["DATASETS", "get_dataset", "load_mixture", "load_toy"]

TOY_TEST_SEED = 2021  # the fixed test set of a toy distribution is drawn with this seed


def load_toy(name: str, n_test: int = 10_000) -> Dataset:
    """A 2-D toy stream from :mod:`scoresde.data.toy`; identity scaling (NLL in data units).

    Sets with classes (``8gaussians``, ``checkerboard``) carry their :class:`Labels`.
    """
    spec = TOY_SETS[name]
    test = sample_toy(name, n_test, torch.Generator().manual_seed(TOY_TEST_SEED))
    labels = None
    if spec.labeled is not None and spec.num_classes is not None:
        _, test_y = spec.labeled(n_test, torch.Generator().manual_seed(TOY_TEST_SEED))
        labels = Labels(spec.num_classes, test_y, sampler=spec.labeled)
    return Dataset(
        name, (2,), Scaler(), test, sampler=spec.sampler, entropy=spec.entropy, labels=labels
    )


def load_mixture(
    weights: Sequence[float],
    means: Sequence[Sequence[float]],
    covariances: Any,
    n_test: int = 10_000,
    labels: Sequence[int] | None = None,
) -> Dataset:
    """A Gaussian-mixture stream sampled through :class:`scoresde.analytic.GaussianMixture`.

    ``labels``: one class in ``0..K-1`` per component (as :class:`scoresde.conditional.
    LabeledMixture`), so that each point carries its component's class.
    """
    from scoresde.analytic import GaussianMixture

    gm = GaussianMixture(
        torch.as_tensor(weights), torch.as_tensor(means), torch.as_tensor(covariances)
    )
    lab = None if labels is None else torch.as_tensor(labels)
    if lab is not None and (lab.shape != (gm.K,) or lab.is_floating_point() or lab.min() < 0):
        raise ValueError(
            f"mixture labels: expected {gm.K} integers >= 0 (one per component), received {labels!r}"
        )

    def labeled(n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        x, k = gm.sample_with_components(n, generator=generator)
        return x.float(), (k if lab is None else lab.long()[k])

    def sampler(n: int, generator: torch.Generator | None = None) -> Tensor:
        return labeled(n, generator)[0]

    test, test_y = labeled(n_test, torch.Generator().manual_seed(TOY_TEST_SEED))
    classes = None if lab is None else Labels(int(lab.max()) + 1, test_y, sampler=labeled)
    shape = tuple(test.shape[1:])
    return Dataset("mixture", shape, Scaler(), test, sampler=sampler, labels=classes)


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
