"""The contract every registered sampler passes unchanged (a new entry of SAMPLERS included).

Shape, finiteness, the exact NFE, generator reproducibility, callbacks, trajectories, 4-D
(image-shaped) states, and a clear error on an unsupported SDE.
"""

from __future__ import annotations

import inspect

import pytest
import torch

from scoresde import GaussianMixture
from scoresde.samplers import SAMPLERS, expected_nfe, make_grid, sample

from .test_samplers_common import make_sdes, mixture, prior

SDES = make_sdes()
CASES = [(n, s) for n in sorted(SAMPLERS) for s in sorted(SDES) if SAMPLERS[n].supports(SDES[s])]
N_STEPS = 24


def _run(name: str, sde_name: str, seed: int = 0, **kw: object) -> tuple:
    sde = SDES[sde_name]
    grid = make_grid(sde, N_STEPS, SAMPLERS[name].default_grid)
    g = torch.Generator().manual_seed(seed)
    return sample(name, sde, mixture(sde), prior(sde, 32), grid, generator=g, **kw)


@pytest.mark.parametrize(("name", "sde_name"), CASES)
def test_shape_finiteness_and_exact_nfe(name: str, sde_name: str) -> None:
    x, info = _run(name, sde_name)
    assert x.shape == (32, 2) and x.dtype == torch.float64
    assert bool(torch.isfinite(x).all())
    assert info.sampler in (name, "dpm_solver_1", "dpm_solver_2", "dpm_solver_3")
    want = expected_nfe(name, N_STEPS)
    assert info.nfe == want if want is not None else info.nfe > 0
    assert info.n_steps == N_STEPS


@pytest.mark.parametrize(("name", "sde_name"), CASES)
def test_same_generator_seed_gives_identical_samples(name: str, sde_name: str) -> None:
    x1, _ = _run(name, sde_name, seed=3)
    x2, _ = _run(name, sde_name, seed=3)
    assert torch.equal(x1, x2)
    if SAMPLERS[name].stochastic:
        x3, _ = _run(name, sde_name, seed=4)
        assert not torch.equal(x1, x3)


@pytest.mark.parametrize(("name", "sde_name"), CASES)
def test_callback_and_trajectory(name: str, sde_name: str) -> None:
    calls: list[tuple[int, float]] = []
    x, info = _run(
        name, sde_name, callback=lambda i, t, x: calls.append((i, float(t))), return_trajectory=True
    )
    grid = info.grid
    assert [i for i, _ in calls] == list(range(N_STEPS))
    assert [t for _, t in calls] == pytest.approx(grid[1:].tolist(), rel=1e-6)
    assert info.trajectory is not None and info.trajectory.shape == (N_STEPS + 1, 32, 2)
    assert torch.equal(info.trajectory[-1], x)


@pytest.mark.parametrize(("name", "sde_name"), CASES)
def test_denoise_adds_one_evaluation(name: str, sde_name: str) -> None:
    _, info = _run(name, sde_name)
    x, info_d = _run(name, sde_name, denoise=True)
    assert info_d.nfe == info.nfe + 1 and bool(torch.isfinite(x).all())


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_image_shaped_states(name: str) -> None:
    spec = SAMPLERS[name]
    sde = next(s for s in SDES.values() if spec.supports(s))
    gm = mixture(sde, dim=4)
    gm = GaussianMixture(gm.weights, gm.means, gm.covariances, sde=sde, event_shape=(1, 2, 2))
    x_T = prior(sde, 8, dim=4).reshape(8, 1, 2, 2)
    x, _ = sample(
        name, sde, gm, x_T, make_grid(sde, 24), generator=torch.Generator().manual_seed(0)
    )
    assert x.shape == (8, 1, 2, 2) and bool(torch.isfinite(x).all())


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_unsupported_sde_raises(name: str) -> None:
    spec = SAMPLERS[name]
    for sde in SDES.values():
        if not spec.supports(sde):
            with pytest.raises(ValueError, match="does not support"):
                sample(name, sde, mixture(sde), prior(sde, 4), make_grid(sde, 24))


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_signature_and_metadata(name: str) -> None:
    spec = SAMPLERS[name]
    params = inspect.signature(spec.fn).parameters
    assert list(params)[:4] == ["sde", "score_fn", "x_T", "grid"]
    for kw in ("generator", "callback"):
        assert params[kw].kind is inspect.Parameter.KEYWORD_ONLY
    assert spec.order_variable in ("t", "log_snr")
    assert spec.order is None or spec.order > 0


def test_sample_accepts_a_target_nfe() -> None:
    sde = SDES["vp"]
    for name, nfe in [("pf_heun", 9), ("dpm_solver_2", 8), ("euler_maruyama", 30)]:
        _, info = sample(name, sde, mixture(sde), prior(sde, 8), nfe, exact=True)
        assert info.nfe == nfe
    _, info = sample("pf_heun", sde, mixture(sde), prior(sde, 8), 10)  # 4 steps + Tweedie
    assert info.nfe == 9
