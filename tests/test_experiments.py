"""Every experiment script runs in its --fast mode and writes figures and results.json."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"
SCRIPTS = sorted(p for p in EXPERIMENTS.glob("*.py") if not p.name.startswith("_"))


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(f"experiment_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _check_forward_process(res: dict) -> None:
    for name, row in res["sdes"].items():
        kl = row["kl_pT_prior"]
        assert kl["lower"] <= kl["upper"], name
        assert abs(kl["kl"]) < 1e-4, name
        em = row["em_check"]
        assert abs(em["em_mean_sq_norm"] - em["exact"]) < 5 * em["se"] + 0.05 * em["exact"], name


#: Extra sanity checks on the fast-mode results, by script name.
CHECKS = {"forward_process": _check_forward_process}


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_experiment_fast_mode(script: Path, tmp_path: Path) -> None:
    results = _load(script).main(["--fast", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["fast"] is True and results["figures"]
    for name in results["figures"]:
        assert (tmp_path / name).stat().st_size > 1000, name
    CHECKS.get(script.stem, lambda r: None)(results)
