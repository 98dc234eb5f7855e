"""Per-sample Hutchinson probes: a sample's probes and estimate do not depend on its batch."""

from __future__ import annotations

import pytest
import torch

from scoresde.analytic import GaussianMixture
from scoresde.likelihood import log_likelihood
from scoresde.likelihood.divergence import probes_from_seeds
from scoresde.sde import VPSDE


@pytest.mark.parametrize("kind", ["rademacher", "gaussian"])
def test_probes_from_seeds_are_per_sample(kind: str) -> None:
    both = probes_from_seeds(kind, [5, 6], 3, (4,), dtype=torch.float64)
    alone = probes_from_seeds(kind, [6], 3, (4,), dtype=torch.float64)
    assert both.shape == (3, 2, 4)
    assert torch.equal(both[:, 1:], alone)
    assert not torch.equal(both[:, 0], both[:, 1])
    # E[eps eps^T] = I: the second moment of many draws is close to one
    many = probes_from_seeds(kind, list(range(400)), 1, (4,), dtype=torch.float64)
    assert abs(float((many**2).mean()) - 1.0) < 0.1


def test_log_likelihood_seeds_make_estimates_batch_independent() -> None:
    sde = VPSDE()
    gm = GaussianMixture([0.4, 0.6], [[-1.0, 0.5], [1.0, -0.5]], [[0.3, 0.2], [0.2, 0.4]])
    score = gm.with_sde(sde)
    x = gm.sample(3, torch.Generator().manual_seed(0))
    kw = {"divergence": "hutchinson", "n_probes": 2, "solver": "rk4", "options": {"step_size": 0.1}}
    batch = log_likelihood(sde, score, x, seeds=[10, 11, 12], **kw)
    alone = log_likelihood(sde, score, x[2:], seeds=[12], **kw)
    torch.testing.assert_close(batch.per_probe[:, 2:], alone.per_probe, rtol=1e-12, atol=1e-12)
    other = log_likelihood(sde, score, x[2:], seeds=[13], **kw)
    assert not torch.equal(other.per_probe, alone.per_probe)


def test_log_likelihood_seeds_validation() -> None:
    sde = VPSDE()
    x = torch.zeros(2, 2, dtype=torch.float64)
    score = lambda y, t: -y  # noqa: E731
    with pytest.raises(ValueError, match="expected 2 seeds"):
        log_likelihood(sde, score, x, divergence="hutchinson", seeds=[1])
    with pytest.raises(ValueError, match="at most one of generator and seeds"):
        log_likelihood(sde, score, x, seeds=[1, 2], generator=torch.Generator())
