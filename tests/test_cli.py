"""The command line: help texts, the tiny demo end to end, each command, one-line errors."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import numpy as np
import pytest

from scoresde.cli import main
from tests import procs

from .helpers import cli_error

COMMANDS = ["demo", "train", "sample", "nll", "compare"]


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help(command: str | None, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"] if command else ["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "usage: scoresde" in text
    if command in ("sample", "compare"):
        assert "pf_heun" in text and "ddim" in text  # the registry names are listed


def test_python_m_entry_point() -> None:
    res = procs.run(
        [sys.executable, "-m", "scoresde", "--help"], timeout=120, capture_output=True, text=True
    )
    assert res.returncode == 0 and "demo" in res.stdout


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--budget", "tiny", "--out", str(out), "--quiet", "--device", "cpu"]) == 0
    return out


def test_demo_writes_report_figures_and_json(demo_run: Path) -> None:
    for name in ("config.json", "results.json", "report.md", "sampler_study.csv",
                 "likelihood_study.csv", "train/checkpoint.pt"):  # fmt: skip
        assert (demo_run / name).is_file(), name
    results = json.loads((demo_run / "results.json").read_text())
    for fig in ("samples_per_sampler.png", "quality_vs_nfe.png", "trajectories.png",
                "nll_histogram.png"):  # fmt: skip
        assert fig in results["figures"] and (demo_run / fig).stat().st_size > 1000
    nll = results["test_nll"]
    assert nll["entropy"] == pytest.approx(2.8319) and np.isfinite(nll["mean"])
    # The PF-ODE density of any model is a normalized density, so its cross-entropy on the data
    # is at least the data's entropy (Gibbs): the gap is >= 0 up to Monte Carlo error.
    assert (
        nll["n"] > 1 and nll["se"] > 0 and nll["gap"] == pytest.approx(nll["mean"] - nll["entropy"])
    )
    assert -4 * nll["se"] < nll["gap"] < 5.0, nll
    assert nll["kl"]["mean"] > -4 * nll["kl"]["se"], nll  # Gibbs, on the same points
    config = json.loads((demo_run / "config.json").read_text())
    assert config["budget"] == "tiny" and config["run_config"]["data"]["name"] == "8gaussians"
    assert "Test NLL" in (demo_run / "report.md").read_text()


def test_demo_estimator_table_measures_the_estimators(demo_run: Path) -> None:
    rows = json.loads((demo_run / "results.json").read_text())["likelihood_study"]
    kinds = {r["method"]: r["kind"] for r in rows}
    assert kinds == {"exact": "estimate", "hutchinson": "estimate", "elbo": "bound",
                     "reference": "reference", "model_gap": "model"}  # fmt: skip
    ref = next(r for r in rows if r["kind"] == "reference")
    assert ref["rtol"] <= 1e-7 and ref["nfe"] > 0
    # the estimators' errors are against the same model: far below the model's own gap here
    exact = next(r for r in rows if r["method"] == "exact")
    gap = next(r for r in rows if r["kind"] == "model")
    assert exact["mean_abs_error"] < 0.1 * gap["mean_abs_error"], (exact, gap)
    text = (demo_run / "report.md").read_text()
    assert "**upper bound on the NLL**" in text and "NLL_model - NLL_data" in text


def test_demo_hands_over_commands_that_run(demo_run: Path, tmp_path: Path) -> None:
    """The demo's closing commands (in results.json and report.md) run on its checkpoint."""
    steps = json.loads((demo_run / "results.json").read_text())["next_steps"]
    assert set(steps) == {"sample", "nll", "compare"}
    report_md = (demo_run / "report.md").read_text()
    for name, command in steps.items():
        assert command in report_md and str(demo_run / "train" / "checkpoint.pt") in command
        argv = shlex.split(command)
        assert argv[0] == "scoresde" and argv[1] == name
        small = {"sample": ["-n", "20"], "nll": ["-n", "4", "--rtol", "1e-3"],
                 "compare": ["-n", "50", "--seeds", "0", "--nfe", "10"]}[name]  # fmt: skip
        # the printed command as is, made small (the last -n wins) and kept out of runs/
        assert main([*argv[1:], *small, "--out", str(tmp_path / name), "--quiet"]) == 0, command


def test_sample_nll_compare_on_the_demo_checkpoint(demo_run: Path, tmp_path: Path) -> None:
    ckpt = str(demo_run / "train" / "checkpoint.pt")
    out = tmp_path / "s"
    assert main(["sample", "--ckpt", ckpt, "--sampler", "ddim", "--nfe", "10", "--n", "50",
                 "--out", str(out), "--quiet"]) == 0  # fmt: skip
    x = np.load(out / "samples.npy")
    assert x.shape == (50, 2) and np.isfinite(x).all()
    assert json.loads((out / "results.json").read_text())["nfe"] == 10
    out = tmp_path / "n"
    assert main(["nll", "--ckpt", ckpt, "--data", "8gaussians", "--n", "16", "--rtol", "1e-3",
                 "--out", str(out), "--quiet"]) == 0  # fmt: skip
    assert len((out / "nll.csv").read_text().splitlines()) == 17
    out = tmp_path / "c"
    assert main(["compare", "--ckpt", ckpt, "--data", "8gaussians", "--samplers", "ddim", "--nfe",
                 "5", "--seeds", "0", "--n", "100", "--out", str(out), "--quiet"]) == 0  # fmt: skip
    assert (out / "sampler_study.csv").is_file()
    floor = json.loads((out / "results.json").read_text())["floor"]  # data points vs reference
    assert floor["sw2"]["sd"] > 0 and "ce_gap" not in floor


def test_compare_on_an_exact_mixture(tmp_path: Path) -> None:
    spec = '{"weights": [0.5, 0.5], "means": [[-2, 0], [2, 0]], "covariances": [[0.1, 0.1], [0.1, 0.1]]}'
    assert main(["compare", "--analytic", spec, "--samplers", "ddim,pf_euler", "--nfe", "10,20",
                 "--seeds", "0", "--n", "200", "--out", str(tmp_path), "--quiet"]) == 0  # fmt: skip
    res = json.loads((tmp_path / "results.json").read_text())
    assert {r["nfe"] for r in res["rows"]} == {10, 20}
    assert all("ce_gap" in r and "wall_time_s" in r for r in res["rows"])


def test_error_paths_are_one_line(
    demo_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = str(demo_run / "train" / "checkpoint.pt")
    assert "expected an existing checkpoint" in cli_error(
        ["sample", "--ckpt", str(tmp_path / "no.pt")], capsys
    )
    assert "invalid choice" in cli_error(["sample", "--ckpt", ckpt, "--sampler", "nope"], capsys)
    assert "--analytic" in cli_error(["compare", "--analytic", "{not json"], capsys)
    assert "unknown name" in cli_error(
        ["compare", "--analytic", "2modes", "--samplers", "x"], capsys
    )
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((10, 3), dtype=np.float32))
    assert "shape" in cli_error(["nll", "--ckpt", ckpt, "--data", str(bad)], capsys)
    assert "positive" in cli_error(["compare", "--analytic", "2modes", "--nfe", "0"], capsys)
    assert "--device" in cli_error(["demo", "--device", "gpu0", "--budget", "tiny"], capsys)
