"""The public API: a small top level, and a docs page that lists every public name."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import scoresde

ROOT = Path(__file__).resolve().parents[1]


def test_top_level_is_small_and_importable() -> None:
    assert set(scoresde.__all__) == {
        "VPSDE", "SubVPSDE", "VESDE", "ScoreModel", "GaussianMixture", "DSMLoss", "train",
        "load_model", "sample", "SAMPLERS", "make_grid", "log_likelihood", "bits_per_dim",
        "elbo", "__version__",
    }  # fmt: skip
    for name in scoresde.__all__:
        assert getattr(scoresde, name) is not None
    for gone in ("convert", "decode", "get_sde", "append_dims", "adapters"):  # in subpackages
        assert gone not in scoresde.__all__


def test_api_docs_page_lists_every_public_name() -> None:
    spec = importlib.util.spec_from_file_location("api_index", ROOT / "tools" / "api_index.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.main(["--check"]) == 0, "docs/api/index.md is stale: run python tools/api_index.py"
