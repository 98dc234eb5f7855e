"""eps-models under deterministic samplers: the x0_clip switch at low SNR and the one-time warning."""

from __future__ import annotations

import warnings

import pytest
import torch

from scoresde import checks
from scoresde.analytic import GaussianMixture
from scoresde.checks import UnstableParameterizationWarning, warn_unstable_parameterization
from scoresde.losses import DSMLoss
from scoresde.nets import ResidualMLP
from scoresde.parameterization import ScoreModel
from scoresde.samplers import SAMPLERS, plan_for_nfe, sample
from scoresde.sde import VPSDE

F64 = torch.float64
#: The study notes' 2-D demo: four Gaussians at (+-2, +-2) with std 0.5.
MEANS = [[2.0, 2.0], [-2.0, -2.0], [2.0, -2.0], [-2.0, 2.0]]
CLIP = 4.0  # a bound of the data per coordinate (2 + 4 std)
#: |x| far beyond the data (|x| < 5) and beyond what coarse solvers reach with the exact score
#: (7.1 for 5 steps of DPM-Solver-2); unclipped eps-models send paths to |x| ~ 100.
RUNAWAY = 12.0
DETERMINISTIC = sorted(n for n, s in SAMPLERS.items() if not s.stochastic and not s.adaptive)


def _data() -> GaussianMixture:
    return GaussianMixture([0.25] * 4, MEANS, [[0.25, 0.25]] * 4)


@pytest.fixture(scope="module")
def eps_model() -> ScoreModel:
    """A tiny eps-model trained 300 steps (seconds): enough to show the runaway paths."""
    torch.manual_seed(0)
    g, sde, gm = torch.Generator().manual_seed(0), VPSDE(), _data()
    model = ScoreModel(ResidualMLP(2, hidden=64, depth=2, generator=g), sde, predicts="eps")
    loss, opt = DSMLoss(sde), torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(300):
        value = loss(model, gm.sample(128, g).float(), generator=g)
        opt.zero_grad()
        value.backward()
        opt.step()
    return model.requires_grad_(False)


def _reachable(sde: VPSDE, name: str, nfe: int) -> int:
    """The first NFE >= ``nfe`` that sampler ``name`` can spend exactly."""
    for k in range(nfe, nfe + 6):
        try:
            plan_for_nfe(sde, name, k)
        except ValueError:
            continue
        return k
    raise AssertionError(f"{name}: no reachable NFE in [{nfe}, {nfe + 5}]")


def _runaways(model: ScoreModel, name: str, nfe: int, n: int = 800) -> int:
    sde = model.sde
    x_T = sde.prior_sample((n, 2), generator=torch.Generator().manual_seed(1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnstableParameterizationWarning)
        x, _ = sample(name, sde, model, x_T, _reachable(sde, name, nfe))
    assert bool(torch.isfinite(x).all()), name
    return int((x.norm(dim=1) > RUNAWAY).sum())


@pytest.mark.parametrize("nfe", [10, 100])
def test_clipped_eps_model_has_no_runaway_paths_under_any_deterministic_sampler(
    eps_model: ScoreModel, nfe: int
) -> None:
    eps_model.x0_clip = CLIP
    try:
        bad = {
            name: _runaways(eps_model, name, nfe, n=800 if nfe <= 20 else 300)
            for name in DETERMINISTIC
        }
    finally:
        eps_model.x0_clip = None
    assert len(bad) >= 8 and all(v == 0 for v in bad.values()), bad


def test_unclipped_eps_model_does_run_away(eps_model: ScoreModel) -> None:
    """The control: the same network without the switch loses paths (what the clip fixes)."""
    assert _runaways(eps_model, "ddim", 20, n=2000) > 10
    assert _runaways(eps_model, "pf_euler", 20, n=2000) > 10


def test_clip_never_hurts_an_exact_denoiser_and_is_inactive_at_high_snr() -> None:
    sde, gm = VPSDE(), _data()
    exact = gm.with_sde(sde)
    net = lambda x, c: exact.eps(x, c)  # noqa: E731 - the exact eps network
    raw = ScoreModel(net, sde, predicts="eps")
    clipped = ScoreModel(net, sde, predicts="eps", x0_clip=CLIP)
    g = torch.Generator().manual_seed(3)
    x0 = exact.sample(500, g)
    for t in (0.05, 0.3, 0.6, 0.95):
        alpha, sigma = (float(v) for v in sde.marginal(torch.tensor(t, dtype=F64)))
        x = alpha * x0 + sigma * torch.randn(x0.shape, generator=g, dtype=F64)
        tt = torch.full((500,), t, dtype=F64)
        truth = exact.denoise(x, tt)
        inside = (truth.abs() <= CLIP).all(dim=1)
        err_raw = (raw.denoise(x, tt) - truth).abs()[inside]
        err_clip = (clipped.denoise(x, tt) - truth).abs()[inside]
        assert bool((err_clip <= err_raw + 1e-12).all())
        if sigma < alpha:  # high SNR: the eps view is kept, exactly
            torch.testing.assert_close(clipped.score_fn(x, tt), raw.score_fn(x, tt))
    torch.testing.assert_close(  # a huge box changes nothing anywhere
        ScoreModel(net, sde, predicts="eps", x0_clip=1e9).score_fn(x, tt), exact.score(x, tt)
    )


def test_warning_once_for_the_unstable_combination_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checks, "_WARNED", set())
    model = ScoreModel(lambda x, c: x, VPSDE(), predicts="eps")
    with pytest.warns(UnstableParameterizationWarning, match="'pf_heun' is deterministic"):
        assert warn_unstable_parameterization(model, "pf_heun", deterministic=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert warn_unstable_parameterization(model.score_fn, "pf_heun", True)  # once
        assert not warn_unstable_parameterization(model, "ddpm", deterministic=False)
        for kw in ({"predicts": "edm"}, {"predicts": "v"}, {"predicts": "eps", "x0_clip": 1.0}):
            safe = ScoreModel(lambda x, c: x, VPSDE(), **kw)
            assert not warn_unstable_parameterization(safe, "ddim", deterministic=True)
    with pytest.raises(ValueError, match="expected x0_clip > 0 or None, received -1.0"):
        ScoreModel(lambda x, c: x, VPSDE(), x0_clip=-1.0)


def test_command_line_eps_models_are_clipped_by_default(tmp_path) -> None:
    """`scoresde train`'s default (eps, x0_clip "auto") bounds x0 by 1.25 max|x| of the data,
    and the bound is stored in the checkpoint; other parameterizations are not clipped."""
    from scoresde.cli.build import build_run, train_from_config
    from scoresde.cli.config import RunConfig
    from scoresde.training import load_model

    cfg = RunConfig.from_dict({"data": {"name": "8gaussians"},
                               "schedule": {"steps": 2, "batch_size": 16, "ckpt_every": 2}})  # fmt: skip
    data = build_run(cfg).data
    bound = float(data.scaler.transform(data.test).abs().max())
    train_from_config(cfg, tmp_path / "run", device="cpu", progress=False)
    model = load_model(tmp_path / "run" / "checkpoint.pt").model
    assert model.predicts == "eps" and model.x0_clip == pytest.approx(1.25 * bound)
    edm = RunConfig.from_dict({"net": {"predicts": "edm"}})
    assert build_run(edm).model.x0_clip is None
