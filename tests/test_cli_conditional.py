"""The command line with a class-conditional run: train, sample --class/--guidance, nll --class."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from scoresde.cli import main
from scoresde.cli.config import RunConfig
from scoresde.training import load_model

from .helpers import cli_error


def _config(labels: bool) -> RunConfig:
    return RunConfig.from_dict(
        {
            "data": {"name": "8gaussians", "labels": labels, "label_dropout": 0.2},
            "net": {"kwargs": {"hidden": 32, "depth": 2}},
            "optim": {"lr": 3e-3, "ema_decay": 0.9},
            "schedule": {"steps": 20, "batch_size": 32, "log_every": 10, "ckpt_every": 10},
        }
    )


def _train(tmp: Path, labels: bool) -> str:
    cfg = tmp / "run.json"
    _config(labels).save(cfg)
    out = tmp / "run"
    argv = ["train", "--config", str(cfg), "--out", str(out), "--quiet", "--device", "cpu"]
    assert main(argv) == 0
    return str(out / "checkpoint.pt")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return {
        "cond": _train(tmp_path_factory.mktemp("cond"), True),
        "plain": _train(tmp_path_factory.mktemp("plain"), False),
    }


def test_conditional_run_keeps_its_label_set(runs: dict[str, str]) -> None:
    model = load_model(runs["cond"]).model
    assert model.num_classes == 8 and model.net.config()["num_classes"] == 8
    assert load_model(runs["plain"]).model.num_classes is None


def test_sample_with_class_and_guidance_end_to_end(runs: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "s"
    argv = ["sample", "--ckpt", runs["cond"], "--class", "3", "--guidance", "2", "--n", "40"]
    assert main([*argv, "--nfe", "10", "--sampler", "ddim", "--out", str(out), "--quiet"]) == 0
    x = np.load(out / "samples.npy")
    assert x.shape == (40, 2) and np.isfinite(x).all()
    res = json.loads((out / "results.json").read_text())
    assert res["class"] == 3 and res["guidance"] == 2.0
    assert "class 3, guidance w = 2" in (out / "report.md").read_text()
    out = tmp_path / "n"
    argv = ["nll", "--ckpt", runs["cond"], "--class", "3", "--data", "8gaussians", "--n", "8"]
    assert main([*argv, "--rtol", "1e-3", "--out", str(out), "--quiet"]) == 0
    assert json.loads((out / "results.json").read_text())["class"] == 3


def test_class_errors_are_one_line_and_name_expected_and_received(
    runs: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["sample", "--n", "4", "--nfe", "5", "--quiet", "--out", str(tmp_path / "e")]
    err = cli_error([*base, "--ckpt", runs["plain"], "--class", "1"], capsys)
    assert "expected a class-conditional checkpoint" in err and "unconditional" in err
    err = cli_error([*base, "--ckpt", runs["cond"], "--class", "8"], capsys)
    assert "expected a class in 0..7" in err and "received 8" in err
    err = cli_error([*base, "--ckpt", runs["cond"], "--guidance", "3"], capsys)
    assert "expected --class K with it" in err
    assert "w > -1" in cli_error(
        [*base, "--ckpt", runs["cond"], "--class", "1", "--guidance", "-2"], capsys
    )
    assert "integers >= 0" in cli_error([*base, "--ckpt", runs["cond"], "--class", "-1"], capsys)
    nll = ["nll", "--ckpt", runs["plain"], "--data", "8gaussians", "--n", "4", "--class", "0"]
    assert "unconditional" in cli_error([*nll, "--out", str(tmp_path / "f")], capsys)


def test_labels_on_a_source_without_classes_is_a_clearcli_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _config(True).to_dict()
    cfg["data"]["name"] = "moons"
    path = tmp_path / "c.json"
    path.write_text(json.dumps(cfg))
    err = cli_error(
        ["train", "--config", str(path), "--out", str(tmp_path / "r"), "--quiet"], capsys
    )
    assert "data.labels: expected a data set with class labels" in err and "'moons'" in err
    cfg["data"].update(name="8gaussians", label_dropout=1.5)
    path.write_text(json.dumps(cfg))
    err = cli_error(
        ["train", "--config", str(path), "--out", str(tmp_path / "r"), "--quiet"], capsys
    )
    assert "data.label_dropout: expected a probability in [0, 1)" in err


def test_compare_with_a_guidance_factor_on_a_labelled_mixture(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "study.json"
    spec.write_text(
        json.dumps(
            {
                "samplers": ["ddim"],
                "nfe": [10],
                "seeds": [0],
                "n": 200,
                "metrics": ["sw2"],
                "floor_repeats": 2,
                "factors": {"guidance": [0, 2]},
            }
        )
    )
    mix = {"weights": [0.5, 0.5], "means": [[-2, 0], [2, 0]], "covariances": [[0.3, 0.3]] * 2}
    labelled = json.dumps({**mix, "labels": [0, 1], "class": 1})
    out = tmp_path / "c"
    argv = ["compare", "--analytic", labelled, "--spec", str(spec), "--quiet"]
    assert main([*argv, "--out", str(out)]) == 0
    rows = [json.loads(line) for line in (out / "cells.jsonl").read_text().splitlines()]
    assert sorted(r["guidance"] for r in rows) == [0, 2] and not any(r["error"] for r in rows)
    plain = ["compare", "--analytic", json.dumps(mix), "--spec", str(spec), "--quiet"]
    err = cli_error([*plain, "--out", str(tmp_path / "d")], capsys)
    assert "a 'guidance' factor needs a labelled exact mixture" in err
    bad = json.dumps({**mix, "labels": [0, 1], "class": 3})
    err = cli_error(["compare", "--analytic", bad, "--spec", str(spec), "--out", str(out)], capsys)
    assert "expected labels" in err and "received labels [0, 1] and class 3" in err
    # the same factor from the flag, and the report's tilted-target section
    flags = ["compare", "--analytic", labelled, "--samplers", "ddim", "--nfe", "10", "--quiet"]
    flags += ["--seeds", "0", "-n", "200", "--metrics", "sw2", "--guidance", "0,2"]
    assert main([*flags, "--out", str(tmp_path / "g")]) == 0
    assert "## tilted_ce_gap" in (tmp_path / "g" / "report.md").read_text()


def test_compare_with_class_and_guidance_on_a_checkpoint(
    runs: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from scoresde.data import get_dataset

    out = tmp_path / "c"
    argv = ["compare", "--ckpt", runs["cond"], "--samplers", "ddim", "--nfe", "10", "--quiet"]
    argv += ["--seeds", "0", "-n", "100", "--metrics", "sw2"]
    assert main([*argv, "--class", "3", "--guidance", "0,2", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in (out / "cells.jsonl").read_text().splitlines()]
    assert sorted(r["guidance"] for r in rows) == [0, 2] and not any(r["error"] for r in rows)
    assert json.loads((out / "spec.json").read_text())["factors"] == {"guidance": [0.0, 2.0]}
    # w = 0 is scored against the class's own data: reference and floor pool are class 3 only
    from scoresde.cli.compare import compare_problem
    from scoresde.cli.parser import build_parser

    args = build_parser().parse_args([*argv, "--class", "3", "--guidance", "0,2"])
    problem = compare_problem(args, torch.device("cpu"), 100)
    data = get_dataset("8gaussians")
    means = torch.stack([data.test[data.labels.test == k].mean(0) for k in range(8)])
    nearest = torch.cdist(data.scaler.inverse(problem.reference.double()), means.double()).argmin(1)
    assert bool((nearest == 3).all())
    assert problem.guidance.reference(0.0) is problem.reference
    # one-line errors naming expected and received
    err = cli_error(
        [*argv, "--ckpt", runs["plain"], "--class", "1", "--out", str(tmp_path / "e")], capsys
    )
    assert "expected a class-conditional checkpoint" in err and "unconditional" in err
    err = cli_error([*argv, "--class", "8", "--out", str(tmp_path / "e")], capsys)
    assert "expected a class in 0..7" in err and "received 8" in err
    err = cli_error([*argv, "--guidance", "1,3", "--out", str(tmp_path / "e")], capsys)
    assert "expected --class K with it, received --guidance 1,3 alone" in err
    err = cli_error(
        [*argv, "--class", "1", "--guidance", "1,-3", "--out", str(tmp_path / "e")], capsys
    )
    assert "w > -1" in err
    mix = json.dumps({"weights": [1.0], "means": [[0, 0]], "covariances": [[1, 1]]})
    ana = ["compare", "--analytic", mix, "--class", "0", "--out", str(tmp_path / "e")]
    assert "--class: only with --ckpt or --model" in cli_error(ana, capsys)


def test_conditional_unet_on_digits_through_train_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``train --labels --label-dropout`` on 8x8 digits: a conditional U-Net, resumed, sampled."""
    cfg = tmp_path / "digits.json"
    RunConfig.from_dict(
        {
            "data": {"name": "digits"},
            "net": {"name": "unet", "kwargs": {"base_channels": 8}},
            "schedule": {"steps": 2, "batch_size": 8, "log_every": 1, "ckpt_every": 2},
        }
    ).save(cfg)
    out = tmp_path / "run"
    argv = ["train", "--config", str(cfg), "--out", str(out), "--quiet", "--device", "cpu"]
    assert main([*argv, "--labels", "--label-dropout", "0.2"]) == 0
    tm = load_model(out / "checkpoint.pt")
    assert tm.model.num_classes == 10 and tm.model.class_names == [str(k) for k in range(10)]
    data = tm.metadata["run_config"]["data"]
    assert data["labels"] is True and data["label_dropout"] == 0.2
    # resume: the same flags and two more steps continue the run from its checkpoint
    assert main([*argv, "--labels", "--label-dropout", "0.2", "--steps", "4"]) == 0
    assert json.loads((out / "results.json").read_text())["steps"] == 4
    assert load_model(out / "checkpoint.pt").model.num_classes == 10
    assert "resuming at step 2 with schedule.steps 2 -> 4" in capsys.readouterr().err
    # a resume without --labels is another model: refused, naming the field
    err = cli_error([*argv, "--steps", "6"], capsys)
    assert "data.labels: True -> False" in err
    s = tmp_path / "s"
    cmd = ["sample", "--ckpt", str(out / "checkpoint.pt"), "--class", "7", "--guidance", "1"]
    cmd += ["-n", "4", "--nfe", "4", "--sampler", "ddim", "--out", str(s), "--quiet"]
    assert main(cmd) == 0
    x = np.load(s / "samples.npy")
    assert x.shape == (4, 1, 8, 8) and np.isfinite(x).all()
    assert json.loads((s / "results.json").read_text())["class"] == 7
    plain = [*argv[:4], str(tmp_path / "p"), "--quiet", "--label-dropout", "0.2"]
    assert "expected --labels with it" in cli_error(plain, capsys)
