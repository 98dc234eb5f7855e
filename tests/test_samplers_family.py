"""Every registered sampler converges at its defaults on problems of the random-mixture family.

Issue 21, item 4. Two fixed-seed members of :func:`scoresde.data.family.random_mixture` (small
dimensions, so that the test stays cheap; neither seed is a training seed of
``benchmarks/few_step_defaults.py``), the exact score, VP, sub-VP and VE. For every registered
fixed-step sampler at its defaults (``sample(name, sde, score, x_T, nfe)``):

* at NFE 100 the cross-entropy gap mean(-log p0(x)) - H(p0) is within 0.25 nats of zero for a
  deterministic sampler and 0.4 for a stochastic one (a sampler that plateaus, e.g. one that
  leaves residual noise of the data's scale after its last step, fails here);
* from NFE 50 to 100 the |gap| does not grow beyond three standard errors.
"""

from __future__ import annotations

import functools
import math

import pytest
import torch

from scoresde import VESDE, VPSDE, SubVPSDE
from scoresde.analytic import GaussianMixture
from scoresde.data.family import narrowest_std, random_mixture
from scoresde.samplers import SAMPLERS, sample

SDES = {"vp": VPSDE(), "subvp": SubVPSDE(), "ve": VESDE()}
#: (seed, dimension): the narrowest component stds are drawn by the family (0.013 and 0.015).
PROBLEMS = ((500, 2), (501, 3))
N = 400
#: Every registered fixed-step sampler with every SDE it supports.
CASES = [
    (n, k)
    for n, s in sorted(SAMPLERS.items())
    if not s.adaptive
    for k in SDES
    if s.supports(SDES[k])
]


@functools.cache
def problem(seed: int, dim: int) -> tuple[GaussianMixture, float]:
    """The family member and its entropy H(p0) from 40,000 exact samples."""
    gm = random_mixture(seed, dim=dim)
    ref = gm.sample(40_000, torch.Generator().manual_seed(seed + 1))
    return gm, float(-gm.log_prob(ref).mean())


@functools.cache
def gap(name: str, sde_name: str, seed: int, dim: int, nfe: int) -> tuple[float, float]:
    """(CE gap, its standard error) of ``name`` at its defaults."""
    gm, entropy = problem(seed, dim)
    sde = SDES[sde_name]
    x_T = sde.prior_sample((N, dim), torch.Generator().manual_seed(seed), dtype=torch.float64)
    x, info = sample(
        name, sde, gm.with_sde(sde), x_T, nfe, generator=torch.Generator().manual_seed(1)
    )
    assert info.nfe <= nfe
    nll = -gm.log_prob(x)
    return float(nll.mean()) - entropy, float(nll.std()) / math.sqrt(N)


def test_the_problems_are_family_members_with_narrow_components() -> None:
    for seed, dim in PROBLEMS:
        gm, _ = problem(seed, dim)
        x = gm.sample(20_000, torch.Generator().manual_seed(0))
        assert gm.dim == dim and 2 <= gm.K <= 10
        assert 0.01 <= narrowest_std(gm) <= 0.5
        torch.testing.assert_close(
            x.mean(0), torch.zeros(dim, dtype=torch.float64), atol=0.05, rtol=0
        )
        torch.testing.assert_close(
            x.var(0), torch.ones(dim, dtype=torch.float64), atol=0.06, rtol=0
        )


#: Measured misses (docs/howto/sample.md): it converges, too slowly for the bound at NFE 100.
#: Annealed Langevin (no predictor) at NFE 50 / 100 / 200 / 400 on seed 500: |gap| 1.09, 0.61,
#: 0.28, 0.37 (its lag and bias shrink as N^-1/2). PF-ODE Euler on VE (a miss until its
#: defaults could pick the noise coordinates) and torchsde on VP (until it stepped once per grid
#: interval) now pass.
MISSES = {("annealed_langevin", "ve")}


@pytest.mark.parametrize(("name", "sde_name"), CASES)
def test_sampler_converges_at_its_defaults(name: str, sde_name: str, request) -> None:
    if (name, sde_name) in MISSES:
        request.applymarker(pytest.mark.xfail(strict=True, reason="measured miss, documented"))
    bound = 0.4 if SAMPLERS[name].stochastic else 0.25
    for seed, dim in PROBLEMS:
        (g50, se50), (g100, se100) = (gap(name, sde_name, seed, dim, n) for n in (50, 100))
        assert abs(g100) <= bound, (name, sde_name, seed, g50, g100)
        assert abs(g100) <= abs(g50) + 3 * math.hypot(se50, se100), (
            name,
            sde_name,
            seed,
            g50,
            g100,
        )


def test_auto_runs_the_recommended_sampler_for_exact_and_learned_scores() -> None:
    from scoresde.samplers.defaults import RECOMMENDED, RECOMMENDED_LEARNED, sde_kind

    gm, _ = problem(500, 2)

    class Net(torch.nn.Module):  # a "trained network": the exact score inside a module
        def forward(self, x, t):
            return gm.with_sde(self.sde)(x, t)

    for sde in SDES.values():
        kind = sde_kind(sde)
        net = Net()
        net.sde = sde
        x_T = sde.prior_sample((8, 2), torch.Generator().manual_seed(0), dtype=torch.float64)
        for nfe, band in ((10, "<=10"), (20, "11-25"), (50, ">25")):
            _, info = sample("auto", sde, gm.with_sde(sde), x_T, nfe)
            assert info.sampler == RECOMMENDED[kind][band]
            assert info.settings["auto"] and info.settings["score_kind"] == "exact"
            _, info = sample("auto", sde, net, x_T, nfe, generator=torch.Generator())
            assert info.sampler == RECOMMENDED_LEARNED[kind][band]
            assert SAMPLERS[info.sampler].stochastic and info.settings["score_kind"] == "learned"
            _, info = sample("auto", sde, gm.with_sde(sde), x_T, nfe, score_kind="learned")
            assert info.sampler == RECOMMENDED_LEARNED[kind][band]


def test_guidance_wrappers_pass_on_the_score_kind() -> None:
    from scoresde.samplers.defaults import score_kind_of
    from scoresde.samplers.guidance import bind_label, classifier_free_guidance

    class Net(torch.nn.Module):
        def forward(self, x, t, y=None):
            return -x

    net = Net()
    assert score_kind_of(net) == "learned" and score_kind_of(lambda x, t: -x) == "exact"
    assert score_kind_of(bind_label(net, 0)) == "learned"
    assert score_kind_of(classifier_free_guidance(bind_label(net, 0), net, 2.0)) == "learned"
    exact = classifier_free_guidance(lambda x, t: -x, lambda x, t: -x, 2.0)
    assert score_kind_of(exact) == "exact"


def test_score_kind_is_checked() -> None:
    gm, _ = problem(500, 2)
    sde = SDES["vp"]
    x_T = sde.prior_sample((4, 2), torch.Generator().manual_seed(0), dtype=torch.float64)
    with pytest.raises(ValueError, match="expected a score kind in .*received 'trained'"):
        sample("auto", sde, gm.with_sde(sde), x_T, 10, score_kind="trained")
    with pytest.raises(ValueError, match="score_kind is for name='auto'"):
        sample("ddim", sde, gm.with_sde(sde), x_T, 10, score_kind="exact")
