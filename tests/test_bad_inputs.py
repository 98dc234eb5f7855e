"""A catalogue of bad inputs (issue #12): each is one clear error, and nothing is written.

Every CLI case must exit with status 2 and print one line on stderr (no traceback) that says
what was expected and what was received; every API case must raise the stated exception type
with such a message. In both, no file in the fixtures or the working folder may be created or
changed.
"""

from __future__ import annotations

import copy
import hashlib
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from scoresde.cli import main
from scoresde.cli.build import train_from_config
from scoresde.cli.common import CLIError, int_list, resolve_device, run_dir
from scoresde.cli.config import RunConfig
from scoresde.cli.resume import check_resume
from scoresde.training import CheckpointError, load_checkpoint, load_model, save_checkpoint


def _tiny() -> RunConfig:
    return RunConfig.from_dict({"net": {"kwargs": {"hidden": 16, "depth": 2}},
                                "schedule": {"steps": 2, "batch_size": 16, "log_every": 1,
                                             "ckpt_every": 2}})  # fmt: skip


class _Foo:
    pass


@pytest.fixture(scope="module")
def fx(tmp_path_factory) -> Path:
    """Bad files of every kind, beside one good tiny run."""
    d = tmp_path_factory.mktemp("fx")
    _tiny().save(d / "cfg.json")
    train_from_config(_tiny(), d / "run", progress=False, device="cpu")
    raw = (d / "run" / "checkpoint.pt").read_bytes()
    (d / "trunc.pt").write_bytes(raw[: len(raw) // 2])
    (d / "empty.pt").write_bytes(b"")
    (d / "rand.pt").write_bytes(np.random.default_rng(0).bytes(500))
    torch.save(torch.zeros(3), d / "foreign.pt")
    np.save(d / "arr.npy", np.zeros((5, 2)))
    (d / "pickled.pt").write_bytes(pickle.dumps({"a": _Foo}))
    state = torch.load(d / "run" / "checkpoint.pt", weights_only=True)
    save_checkpoint(d / "noema.pt", {k: v for k, v in state.items() if k != "ema"})
    arch = copy.deepcopy(state)
    arch["model_config"]["net"]["hidden"] = 32
    save_checkpoint(d / "arch.pt", arch)  # re-hashed: a consistent file of another network
    np.save(d / "huge.npy", np.random.default_rng(0).choice([-3e38, 3e38], (100, 2)))
    (d / "afile").write_text("x")
    (d / "dirck" / "checkpoint.pt").mkdir(parents=True)
    (d / "trunc_run").mkdir()
    (d / "trunc_run" / "checkpoint.pt").write_bytes(raw[: len(raw) // 3])
    (d / "sample_run").mkdir()
    (d / "sample_run" / "config.json").write_text(json.dumps({"command": "sample"}))
    (d / "sample_run" / "results.json").write_text("{}")
    yamls = {
        "bad": "schedule: {steps: [1,\n",
        "lrabc": "optim:\n  lr: abc\n",
        "betas": "optim:\n  betas: 0.9\n",
        "seedx": "schedule:\n  seed: x\n",
        "stepstrue": "schedule:\n  steps: true\n",
        "ema": "optim:\n  ema_decay: 1.5\n",
        "evalneg": "schedule:\n  eval_every: -1\n",
        "sigma": "net:\n  sigma_data: 0\n",
        "gamma": "loss:\n  gamma: x\n",
        "kwargs": "data:\n  kwargs: 3\n",
        "sdename": "sde:\n  name: 5\n",
        "toplist": "- 1\n- 2\n",
        "section": "optim: 3\n",
        "section_unknown": "optimizer: {}\n",
        "key_unknown": "optim:\n  learning_rate: 0.1\n",
        "batch0": "schedule:\n  batch_size: 0\n",
        "lrneg": "optim:\n  lr: -1\n",
        "wd": "optim:\n  weight_decay: -1\n",
        "clip": "optim:\n  grad_clip: 0\n",
        "warm": "optim:\n  warmup_steps: 1.5\n",
        "decay": "optim:\n  lr_decay: linear\n",
        "huge": f"data:\n  name: array\n  kwargs: {{path: {d / 'huge.npy'}}}\n",
        "unet": "data: {name: moons}\nnet: {name: unet}\n",
        "wider": json.dumps({**_tiny().to_dict(), "net": {"kwargs": {"hidden": 32, "depth": 2}}}),
    }
    for name, text in yamls.items():
        (d / f"{name}.yaml").write_text(text)
    (d / "cfg.txt").write_text("{}")
    return d


S, T = ["--device", "cpu", "--quiet"], ["train", "--device", "cpu", "--quiet"]
CK = "{fx}/run/checkpoint.pt"

#: (name, argv with {fx} placeholders, fragment of the received value in the message)
CLI_CASES = [
    ("sample-truncated", ["sample", "--ckpt", "{fx}/trunc.pt"], "trunc.pt"),
    ("sample-empty", ["sample", "--ckpt", "{fx}/empty.pt"], "received 0 bytes"),
    ("sample-random-bytes", ["sample", "--ckpt", "{fx}/rand.pt"], "not a scoresde checkpoint"),
    ("sample-npy-as-ckpt", ["sample", "--ckpt", "{fx}/arr.npy"], "NUMPY"),
    ("sample-foreign-torch", ["sample", "--ckpt", "{fx}/foreign.pt"], "Tensor"),
    ("sample-no-ema", ["sample", "--ckpt", "{fx}/noema.pt"], "['ema']"),
    ("sample-other-arch", ["sample", "--ckpt", "{fx}/arch.pt"], "size mismatch"),
    ("sample-missing-ckpt", ["sample", "--ckpt", "{fx}/nope.pt"], "nope.pt"),
    ("nll-truncated", ["nll", "--ckpt", "{fx}/trunc.pt", "--data", "8gaussians"], "trunc.pt"),
    ("nll-other-arch", ["nll", "--ckpt", "{fx}/arch.pt", "--data", "8gaussians"], "mismatch"),
    ("compare-truncated", ["compare", "--ckpt", "{fx}/trunc.pt"], "trunc.pt"),
    ("compare-no-ema", ["compare", "--ckpt", "{fx}/noema.pt"], "['ema']"),
    ("train-resume-truncated", [*T, "--out", "{fx}/trunc_run"], "trunc_run"),
    ("nll-pickled-data", ["nll", "--ckpt", CK, "--data", "{fx}/pickled.pt"], "pickled.pt"),
    ("nll-missing-data", ["nll", "--ckpt", CK, "--data", "{fx}/no.npy"], "no.npy"),
    ("nll-split-train-stream", ["nll", "--ckpt", CK, "--data", "8gaussians", "--split", "train"],
     "8gaussians"),
    ("sample-out-is-file", ["sample", "--ckpt", CK, "--out", "{fx}/afile"], "afile"),
    ("sample-out-train-run", ["sample", "--ckpt", CK, "--out", "{fx}/run"], "config.json"),
    ("nll-out-sample-run", ["nll", "--ckpt", CK, "--data", "8gaussians", "--out",
                            "{fx}/sample_run"], "results.json"),
    ("train-out-sample-run", [*T, "--out", "{fx}/sample_run"], "results.json"),
    ("train-out-is-file", [*T, "--out", "{fx}/afile"], "afile"),
    ("train-ckpt-is-folder", [*T, "--config", "{fx}/cfg.json", "--out", "{fx}/dirck"], "folder"),
    ("threads-negative", ["sample", "--ckpt", CK, "--threads", "-1"], "-1"),
    ("threads-zero", ["sample", "--ckpt", CK, "--threads", "0"], "received 0"),
    ("device-meta", ["sample", "--ckpt", CK, "--device", "meta"], "meta"),
    ("device-nonsense", ["sample", "--ckpt", CK, "--device", "gpu7"], "gpu7"),
    ("sample-nfe-1e9", ["sample", "--ckpt", CK, "--nfe", "1000000000"], "1000000000"),
    ("sample-n-zero", ["sample", "--ckpt", CK, "--n", "0"], "'0'"),
    ("sample-nfe-text", ["sample", "--ckpt", CK, "--nfe", "abc"], "abc"),
    ("sample-grid-unknown", ["sample", "--ckpt", CK, "--grid", "nope.txt"], "nope.txt"),
    ("compare-sampler-unknown", ["compare", "--analytic", "2modes", "--samplers", "nope"], "nope"),
    ("compare-metric-unknown", ["compare", "--analytic", "2modes", "--metrics", "nope"], "nope"),
    ("compare-analytic-bad-json", ["compare", "--analytic", "{bad"], "{bad"),
    ("compare-analytic-keys", ["compare", "--analytic", '{"weights": [1]}'], "weights"),
    ("compare-analytic-huge-means", ["compare", "--analytic", '{"weights": [1], "means": [[1e30, 0]], "covariances": [[1, 1]]}'], "1e+30"),
    ("nll-probes-zero", ["nll", "--ckpt", CK, "--data", "8gaussians", "--probes", "0"], "'0'"),
    ("nll-rtol-negative", ["nll", "--ckpt", CK, "--data", "8gaussians", "--rtol", "-1"], "-1"),
    ("train-config-missing", [*T, "--config", "{fx}/none.yaml"], "none.yaml"),
    ("train-config-suffix", [*T, "--config", "{fx}/cfg.txt"], ".txt"),
    ("train-steps-zero", [*T, "--steps", "0"], "received 0"),
    ("train-batch-negative", [*T, "--batch-size", "-1"], "-1"),
    ("train-lr-negative", [*T, "--lr", "-1"], "-1"),
    ("train-lr-nan", [*T, "--lr", "nan"], "nan"),
    ("train-resume-other-data", [*T, "--config", "{fx}/cfg.json", "--data", "moons", "--out",
                                 "{fx}/run"], "'moons'"),
    ("train-resume-other-sde", [*T, "--config", "{fx}/cfg.json", "--sde", "ve", "--out",
                                "{fx}/run"], "'ve'"),
    ("train-resume-wider-net", [*T, "--config", "{fx}/wider.yaml", "--out", "{fx}/run"], "32"),
] + [
    (f"yaml-{name}", [*T, "--config", f"{{fx}}/{name}.yaml"], received)
    for name, received in [
        ("bad", "line 2"), ("lrabc", "'abc'"), ("betas", "0.9"), ("seedx", "'x'"),
        ("stepstrue", "True"), ("ema", "1.5"), ("evalneg", "-1"), ("sigma", "received 0"),
        ("gamma", "'x'"), ("kwargs", "3"), ("sdename", "5"), ("toplist", "list"),
        ("section", "3"), ("section_unknown", "optimizer"), ("key_unknown", "learning_rate"),
        ("batch0", "received 0"), ("lrneg", "-1"), ("wd", "-1"), ("clip", "received 0"),
        ("warm", "1.5"), ("decay", "linear"), ("huge", "non-finite"), ("unet", "(2,)"),
    ]
]  # fmt: skip


def snapshot(*folders: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for f in folders for p in sorted(f.rglob("*"))}  # fmt: skip


@pytest.mark.parametrize("name,argv,received", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_bad_input_is_one_line_exit_2_and_writes_nothing(
    name, argv, received, fx, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    argv = [a.replace("{fx}", str(fx)) for a in argv]
    argv += [] if argv[0] == "train" or "--device" in argv else S
    before = snapshot(fx, tmp_path)
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse: usage errors exit 2 from parse_args
        code = stop.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and "Traceback" not in err[0], err
    assert "expected" in err[0].lower() and received in err[0], err[0]
    assert snapshot(fx, tmp_path) == before


API_CASES = [
    ("config-lr-string", lambda fx: RunConfig.from_dict({"optim": {"lr": "abc"}}), ValueError,
     "optim.lr", "'abc'"),
    ("config-steps-bool", lambda fx: RunConfig.from_dict({"schedule": {"steps": True}}),
     ValueError, "schedule.steps", "True"),
    ("config-betas-scalar", lambda fx: RunConfig.from_dict({"optim": {"betas": 0.9}}),
     ValueError, "optim.betas", "0.9"),
    ("config-seed-string", lambda fx: RunConfig.from_dict({"schedule": {"seed": "x"}}),
     ValueError, "schedule.seed", "'x'"),
    ("config-not-mapping", lambda fx: RunConfig.from_dict([1]), TypeError, "mapping", "list"),
    ("config-yaml-malformed", lambda fx: RunConfig.from_yaml("a: [\n"), ValueError, "YAML",
     "line"),
    ("config-json-malformed", lambda fx: RunConfig.from_json("{"), ValueError, "JSON",
     "malformed"),
    ("load-truncated", lambda fx: load_checkpoint(fx / "trunc.pt"), CheckpointError,
     "zip archive", "bytes"),
    ("load-random", lambda fx: load_checkpoint(fx / "rand.pt"), CheckpointError,
     "scoresde checkpoint", "500 bytes"),
    ("load-npy", lambda fx: load_checkpoint(fx / "arr.npy"), CheckpointError,
     "scoresde checkpoint", "NUMPY"),
    ("load-model-no-ema", lambda fx: load_model(fx / "noema.pt"), CheckpointError, "ema",
     "without"),
    ("load-model-arch", lambda fx: load_model(fx / "arch.pt"), CheckpointError, "weights",
     "size mismatch"),
    ("run-dir-file", lambda fx: run_dir(str(fx / "afile"), "sample"), CLIError, "folder",
     "afile"),
    ("run-dir-other-run", lambda fx: run_dir(str(fx / "run"), "compare"), CLIError,
     "new or empty folder", "checkpoint.pt"),
    ("resume-changed-data", lambda fx: check_resume(
        RunConfig.from_dict({**_tiny().to_dict(), "data": {"name": "moons"}}), fx / "run"),
     CLIError, "may change", "'moons'"),
    ("device-meta", lambda fx: resolve_device("meta"), CLIError, "cpu", "'meta'"),
    ("int-list-zero", lambda fx: int_list("0"), CLIError, "positive", "'0'"),
    ("train-huge-data", lambda fx: train_from_config(
        RunConfig.from_dict({**_tiny().to_dict(), "data": {"name": "array", "kwargs": {
            "path": str(fx / "huge.npy")}}}), fx / "new_huge", progress=False, device="cpu"),
     ValueError, "finite data", "non-finite"),
]  # fmt: skip


@pytest.mark.parametrize("name,call,exc,expected,received", API_CASES,
                         ids=[c[0] for c in API_CASES])  # fmt: skip
def test_api_bad_input_raises_a_clear_error_and_writes_nothing(
    name, call, exc, expected, received, fx
):
    before = snapshot(fx)
    with pytest.raises(exc) as info:
        call(fx)
    msg = str(info.value)
    assert "expected" in msg.lower() and expected in msg and received in msg, msg
    assert snapshot(fx) == before


def test_catalogue_size():
    assert len(CLI_CASES) + len(API_CASES) >= 60


def test_late_catalogue_additions() -> None:
    """Issue #12's remaining API cases: an empty study, t = 0 in ScoreModel, a dtype mismatch."""
    from scoresde import VPSDE, GaussianMixture, ScoreModel, sample
    from scoresde.nets import ResidualMLP
    from scoresde.studies import compare_samplers

    sde = VPSDE()
    gm = GaussianMixture([1.0], [[0.0, 0.0]], [[1.0, 1.0]], sde=sde)
    with pytest.raises(
        ValueError, match=r"expected at least one sampler \(or saved grid\), received none"
    ):
        compare_samplers(sde, gm, [], [10], torch.randn(10, 2), ("sw2",))
    model = ScoreModel(ResidualMLP(2), sde)
    with pytest.raises(ValueError, match=r"expected times with sigma_t > 0 .* received t = 0"):
        model(torch.randn(3, 2), torch.zeros(3))
    with pytest.raises(
        TypeError,
        match=r"ddim: expected x_T of the model's dtype torch.float64, received torch.float32",
    ):
        sample("ddim", sde, ScoreModel(ResidualMLP(2).double(), sde), torch.randn(3, 2), 10)


def test_zero_spread_column_and_convert_at_sigma_zero() -> None:
    """A constant data column is centred, not divided by ~0; convert refuses sigma = 0."""
    from scoresde.data.core import Scaler
    from scoresde.parameterization import convert

    x = torch.tensor([[1.0, 2.0], [1.0, 4.0]])
    scaler = Scaler.standard(x)
    assert scaler.to_dict()["scale"][0] == 1.0
    assert torch.isfinite(scaler.transform(x)).all()
    ones = torch.ones(2, 2)
    with pytest.raises(
        ValueError, match=r"convert eps -> score: expected sigma > 0, received sigma = 0"
    ):
        convert(ones, ones, 1.0, 0.0, "eps", "score")


def test_study_reference_of_the_wrong_dimension_is_an_error() -> None:
    from scoresde import VPSDE, GaussianMixture
    from scoresde.studies import compare_samplers

    sde = VPSDE()
    gm = GaussianMixture([1.0], [[0.0, 0.0]], [[1.0, 1.0]], sde=sde)
    with pytest.raises(
        ValueError,
        match=r"expected reference samples the score function accepts, received shape \(10, 3\)",
    ):
        compare_samplers(sde, gm, ["ddim"], [10], torch.randn(10, 3, dtype=torch.float64), ("sw2",))
