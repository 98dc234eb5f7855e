"""The MNIST experiment's estimators against closed forms (experiments/_mnist_eval.py)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch

from scoresde.data import derive_seed
from scoresde.likelihood import dequantized_bits_per_dim
from scoresde.sde import VPSDE

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "experiments"))
import _mnist_eval as ev  # noqa: E402


class StandardNormalScore:
    """The exact score of data N(0, I) under a VP SDE: p_t = N(0, I) at every t, s(x, t) = -x."""

    def __init__(self) -> None:
        self.sde = VPSDE()

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return -x


def _levels(n: int, shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, ev.LEVELS, (n, *shape), generator=g)


def test_model_bpd_matches_closed_form_and_resumes(tmp_path: Path) -> None:
    # N(0, I): the PF-ODE log-density is exact, and a Rademacher probe gives the exact
    # divergence of s = -x (v^T v = D), so every probe must agree with the closed form.
    k = _levels(ev.CHUNK + 8, (1, 3, 3))  # two chunks, the second one short
    solve = {"solver": "dopri5", "rtol": 1e-5, "atol": 1e-5}
    res = ev.model_bpd(StandardNormalScore(), k, tmp_path, solve=solve, n_probes=2, seed=3)
    normal = torch.distributions.Normal(0.0, 1.0)
    want = []
    for start in (0, ev.CHUNK):  # the same dequantization draw per chunk as model_bpd
        gen = torch.Generator().manual_seed(derive_seed(3, start))
        part = dequantized_bits_per_dim(
            lambda y: normal.log_prob(y).flatten(1).sum(1),
            k[start : start + ev.CHUNK],
            levels=ev.LEVELS,
            generator=gen,
        )
        want.append(part.bpd)
    want_t = torch.cat(want)
    assert res["bpd"].shape == (k.shape[0],) and res["per_probe"].shape == (2, k.shape[0])
    assert torch.allclose(res["bpd"], want_t, atol=1e-4), (res["bpd"] - want_t).abs().max()
    assert torch.allclose(res["per_probe"], want_t.expand(2, -1), atol=1e-4)
    assert res["nfe"] > 0 and res["cpu_s"] > 0
    assert len(list(tmp_path.glob("chunk_*.pt"))) == 2
    again = ev.model_bpd(StandardNormalScore(), k, tmp_path, solve=solve, n_probes=2, seed=3)
    assert torch.equal(again["bpd"], res["bpd"]) and again["nfe"] == res["nfe"]  # loaded


def test_categorical_add_one_by_hand() -> None:
    train, test = _levels(50, (2, 2), seed=1), _levels(5, (2, 2), seed=2)
    tr, te = train.reshape(50, -1), test.reshape(5, -1)
    hand = torch.zeros(5, dtype=torch.float64)
    for j in range(4):
        counts = torch.bincount(tr[:, j], minlength=ev.LEVELS).double()
        hand += -torch.log2((counts[te[:, j]] + 1) / (50 + ev.LEVELS)) / 4
    assert torch.allclose(ev.categorical_bpd(train, test), hand, atol=1e-12)
    assert torch.allclose(ev.categorical_probs(train).sum(1), torch.ones(4, dtype=torch.float64))


def test_gaussian_closed_form_matches_monte_carlo_and_uniform_is_eight_bits() -> None:
    train = _levels(200, (1, 3, 3), seed=4)
    test = _levels(6, (1, 3, 3), seed=5)
    for ridge in (0.0, 1e-2):
        mean, cov = ev.fit_gaussian(train, ridge)
        cf = ev.gaussian_bpd_closed_form(mean, cov, test)
        mc = ev.gaussian_bpd_mc(mean, cov, test, 4000, torch.Generator().manual_seed(0))
        assert torch.allclose(cf, mc.bpd, atol=5 * float(mc.stderr.max()) + 1e-6), (cf, mc.bpd)
    assert torch.equal(ev.uniform_bpd(test), torch.full((6,), math.log2(ev.LEVELS)).double())


def test_choose_ridge_picks_the_held_out_minimum() -> None:
    train = _levels(100, (1, 2, 2), seed=6)
    out = ev.choose_ridge(train, ridges=(1e-4, 1e-2, 1.0))
    assert out["ridge"] == out["grid"][out["held_out_bpd"].index(min(out["held_out_bpd"]))]
    assert out["n_held_out"] == 20
