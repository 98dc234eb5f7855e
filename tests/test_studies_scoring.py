"""Fast scoring (random-feature MMD, cached reference projections, entropy and floor caches) and
cost columns that measure the method (CPU-time medians, load average in env.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from scoresde.cli.common import PRESETS
from scoresde.metrics import get_metric, mmd, mmd_features, sliced_wasserstein
from scoresde.studies import Problem, StudySpec, coverage, folder, run_study

TWO = PRESETS["2modes"]()


def test_random_feature_mmd_agrees_with_all_pairs_and_is_reproducible() -> None:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(1500, 2, generator=g), torch.randn(1500, 2, generator=g) + 0.5
    exact = mmd(x, y)
    est = [mmd_features(x, y, 2048, generator=torch.Generator().manual_seed(s)) for s in range(4)]
    assert sum(est) / 4 == pytest.approx(exact, rel=0.1)
    again = mmd_features(x, y, 2048, generator=torch.Generator().manual_seed(0))
    assert again == est[0]
    same = mmd_features(x, torch.randn(1500, 2, generator=g), generator=torch.Generator())
    assert abs(same) < 0.1 * exact  # unbiased: about zero for equal laws
    with pytest.raises(ValueError, match="expected n_features >= 1, received 0"):
        mmd_features(x, y, 0)
    assert get_metric("mmd").stochastic and get_metric("mmd_exact").max_points == 4000


def test_cached_reference_projections_match_and_see_in_place_changes() -> None:
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(300, 2, generator=g), torch.randn(400, 2, generator=g)
    first = sliced_wasserstein(x, y, generator=torch.Generator().manual_seed(3))
    cached = sliced_wasserstein(x, y, generator=torch.Generator().manual_seed(3))
    fresh = sliced_wasserstein(x, y.clone(), generator=torch.Generator().manual_seed(3))
    assert first == cached == pytest.approx(fresh, rel=1e-12)
    y.add_(1.0)  # same storage, new values: the cache must not answer
    moved = sliced_wasserstein(x, y, generator=torch.Generator().manual_seed(3))
    assert moved == pytest.approx(
        sliced_wasserstein(x, y.clone(), generator=torch.Generator().manual_seed(3)), rel=1e-12
    )
    assert moved > first + 0.3


def test_entropy_and_floor_are_computed_once_per_problem(tmp_path: Path, monkeypatch) -> None:
    spec = StudySpec(samplers=["ddim"], nfe=[3], seeds=[0, 1], n=60, metrics=["sw2"],
                     floor_repeats=2)  # fmt: skip
    calls = {"floor": 0}
    real = folder.noise_floor_table

    def counting(*a, **k):
        calls["floor"] += 1
        return real(*a, **k)

    monkeypatch.setattr(folder, "noise_floor_table", counting)
    monkeypatch.setattr(folder, "_FLOORS", {})
    a = run_study(spec, Problem.analytic(TWO, n_reference=60), tmp_path / "a", timing_repeats=2)
    b = run_study(spec, Problem.analytic(TWO, n_reference=60), tmp_path / "b", timing_repeats=2)
    assert calls["floor"] == 1 and a is not None and b is not None and a.floor == b.floor
    stats = coverage.exact_stats(TWO)
    assert coverage.exact_stats(TWO) is stats  # one entropy estimate per mixture
    row = a.rows[0]
    assert row["timing_repeats"] == 2 and row["cpu_time_s"] > 0
    assert row["us_per_sample"] == pytest.approx(1e6 * row["cpu_time_s"] / 60)
    env = json.loads((tmp_path / "a" / "env.json").read_text())
    assert env["torch_threads"] == torch.get_num_threads() and env["world_size"] == 1
    assert len(env["load_average_start"]) == 3 and len(env["load_average_end"]) == 3
    with pytest.raises(ValueError, match="expected timing_repeats >= 1, received 0"):
        run_study(spec, Problem.analytic(TWO), timing_repeats=0)
