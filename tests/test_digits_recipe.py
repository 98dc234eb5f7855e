"""The digits experiment's ELBO in bits/dim and its data stream, against exact identities."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from types import SimpleNamespace

import torch

from scoresde.analytic import GaussianMixture
from scoresde.losses import DSMLoss
from scoresde.sde import VPSDE

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "experiments"))
import _digits_recipe as rc  # noqa: E402

F64 = torch.float64


def _mixture() -> tuple[GaussianMixture, VPSDE]:
    sde = VPSDE(eps=1e-5)
    mix = GaussianMixture(
        [0.4, 0.6], [[0.3, -0.2, 0.1, 0.0], [-0.4, 0.2, 0.0, 0.3]], [[0.02] * 4, [0.05] * 4],
        sde=sde, event_shape=(1, 2, 2),
    )  # fmt: skip
    return mix, sde


def test_elbo_with_the_exact_score_is_the_cross_entropy_and_a_shift_costs_its_closed_form():
    """With eps_hat = E[eps | x_t] the bound's mean over the data is the entropy up to the
    O(t_eps) truncation and KL(p_T || N(0, I)) (both tiny here); adding a constant c to eps_hat
    adds exactly 1/2 (lambda(t_eps) - lambda(T)) D c^2 (E[eps - eps_hat | x_t] = 0)."""
    mix, sde = _mixture()
    g = torch.Generator().manual_seed(0)
    n, D, c = 40000, 4, 0.1
    y = mix.sample(n, generator=g)
    t = DSMLoss(sde, weighting="likelihood", t_sampling="importance").sample_t(n, g, "cpu", F64)
    noise = torch.randn(y.shape, generator=g, dtype=F64)
    exact = rc.elbo_terms(SimpleNamespace(sde=sde, eps_fn=mix.eps), y, t, noise)
    shifted = rc.elbo_terms(SimpleNamespace(sde=sde, eps_fn=lambda x, s: mix.eps(x, s) + c), y, t, noise)  # fmt: skip
    gap = exact + mix.log_prob(y)
    se = float(gap.std()) / math.sqrt(n)
    assert abs(float(gap.mean())) < 4 * se + 0.01, (float(gap.mean()), se)
    lam = sde.log_snr(torch.tensor([sde.eps, sde.T], dtype=F64))
    predicted = 0.5 * float(lam[0] - lam[1]) * D * c**2
    diff = shifted - exact
    se_d = float(diff.std()) / math.sqrt(n)
    assert abs(float(diff.mean()) - predicted) < 4 * se_d, (float(diff.mean()), predicted, se_d)


def test_screen_split_is_disjoint_and_the_stream_keeps_levels():
    from scoresde.data import load_digits

    base = load_digits().train
    train_k, held_k = rc.split("screen")
    j = torch.arange(base.shape[0])
    assert torch.equal(train_k, base[j % 3 == 1]) and torch.equal(held_k, base[j % 3 == 0])
    all_train, test = rc.split("all")
    assert all_train.shape[0] == 1497 and test.shape[0] == 300
    known = {tuple(x.flatten().tolist()) for x in train_k}
    for p, expect_all_known in ((0.0, True), (1.0, False)):
        data = rc.load_digits_dequantized(part="screen", aug_p=p)
        x = data.sampler(256, torch.Generator().manual_seed(0))
        k = torch.floor(x)
        assert torch.all((k >= 0) & (k <= 16)) and torch.all(x - k < 1)  # levels + U[0, 1)
        in_train = [tuple(v.flatten().tolist()) in known for v in k]
        assert all(in_train) == expect_all_known, p  # shifts make images not in the set
