"""Run folders, resume with a changed config, the NaN guard and non-finite data (issue #12).

Each test reproduces one way a run could be lost, mixed with another or reported as a success:
unique default folders (also under concurrency), refusing another run's folder, flags that were
not given never overriding the config file, a resume that refuses a changed model/problem and
applies a changed schedule, checkpoints never written from a NaN streak, non-finite data and
samples refused, stale temporaries removed, and logs that continue exactly after a crash.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from scoresde.cli import main
from scoresde.cli.build import train_from_config
from scoresde.cli.common import CLIError, run_dir
from scoresde.cli.config import RunConfig
from scoresde.training import TrainingDiverged, load_checkpoint, save_checkpoint
from tests.procs import kill_group, spawn

ROOT = Path(__file__).resolve().parents[1]


def tiny(steps=12, **schedule):
    return RunConfig.from_dict(
        {
            "net": {"kwargs": {"hidden": 16, "depth": 2}},
            "optim": {"lr": 1e-3, "ema_decay": 0.9},
            "schedule": {"steps": steps, "batch_size": 16, "log_every": 4, "ckpt_every": 4,
                         **schedule},
        }
    )  # fmt: skip


def snapshot(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``folder`` (empty if it does not exist)."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}  # fmt: skip


@pytest.fixture
def trained(tmp_path_factory):
    """A tiny finished training run folder (its config file beside it)."""
    base = tmp_path_factory.mktemp("trained")
    cfg = tiny()
    cfg.save(base / "cfg.json")
    assert main(["train", "--config", str(base / "cfg.json"), "--out", str(base / "run"),
                 "--device", "cpu", "--quiet"]) == 0  # fmt: skip
    return base / "run"


def test_default_run_folders_are_unique_within_one_second(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(time, "strftime", lambda *a: "20260101-000000")  # same second
    folders = {run_dir(None, "sample") for _ in range(5)}
    assert len(folders) == 5 and all(f.is_dir() and f.parent.name == "runs" for f in folders)


@pytest.mark.timeout(240)
def test_concurrent_commands_without_out_get_distinct_folders(tmp_path, trained):
    tiny(steps=4).save(tmp_path / "cfg.json")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    base = [sys.executable, "-m", "scoresde"]
    cmds = [
        base + ["sample", "--ckpt", str(trained / "checkpoint.pt"), "--n", "20", "--nfe", "4"]
    ] * 2
    cmds += [base + ["train", "--config", str(tmp_path / "cfg.json")]] * 2
    procs = [spawn(c + ["--device", "cpu", "--quiet"], cwd=tmp_path, env=env,
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE) for c in cmds]  # fmt: skip
    try:
        outs = [p.communicate(timeout=200) for p in procs]
    finally:
        for p in procs:
            kill_group(p)
    assert [p.returncode for p in procs] == [0] * 4, [o[1].decode()[-500:] for o in outs]
    folders = sorted((tmp_path / "runs").iterdir())
    assert [f.name.split("-")[0] for f in folders] == ["sample", "sample", "train", "train"]
    for f in folders:
        assert (f / "results.json").is_file() and (f / "config.json").is_file()
    for f in folders[2:]:  # one run's rows only: steps 4 once
        assert [r.split(",")[0] for r in (f / "log.csv").read_text().splitlines()] == ["step", "4"]


def test_out_onto_another_runs_folder_is_refused(tmp_path, trained, capsys):
    before = snapshot(trained)
    ckpt = str(trained / "checkpoint.pt")
    code = main(["sample", "--ckpt", ckpt, "--out", str(trained), "--n", "10", "--nfe", "4",
                 "--device", "cpu", "--quiet"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "config.json" in err and "--force" in err and "sample" in err
    assert snapshot(trained) == before
    # nll into a sample run's folder is refused; --force overrides; sample reuses its own folder
    args = ["sample", "--ckpt", ckpt, "--n", "10", "--nfe", "4", "--device", "cpu", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "s")]) == 0
    first = snapshot(tmp_path / "s")
    nll = ["nll", "--ckpt", ckpt, "--data", "8gaussians", "--n", "4", "--device", "cpu", "--quiet"]
    assert main([*nll, "--out", str(tmp_path / "s")]) == 2
    assert "results.json" in capsys.readouterr().err and snapshot(tmp_path / "s") == first
    assert main([*args, "--out", str(tmp_path / "s")]) == 0  # its own folder: shards reused
    assert main([*args, "--out", str(trained), "--force"]) == 0
    assert (trained / "samples.npy").is_file()
    # train onto a sample folder is refused; --out that is a file is one line
    assert main(["train", "--out", str(tmp_path / "s"), "--steps", "2", "--device", "cpu"]) == 2
    (tmp_path / "f").write_text("x")
    assert main(["train", "--out", str(tmp_path / "f"), "--steps", "2", "--device", "cpu"]) == 2
    assert "expected a folder" in capsys.readouterr().err


def test_train_without_seed_flag_keeps_the_config_seed(tmp_path):
    cfg = tiny(steps=2, seed=7)
    cfg.save(tmp_path / "cfg.yaml")
    out = tmp_path / "run"
    assert main(["train", "--config", str(tmp_path / "cfg.yaml"), "--out", str(out),
                 "--device", "cpu", "--quiet"]) == 0  # fmt: skip
    assert json.loads((out / "config.json").read_text())["schedule"]["seed"] == 7
    out2 = tmp_path / "run2"
    assert main(["train", "--config", str(tmp_path / "cfg.yaml"), "--out", str(out2), "--seed",
                 "3", "--device", "cpu", "--quiet"]) == 0  # fmt: skip
    assert json.loads((out2 / "config.json").read_text())["schedule"]["seed"] == 3


def test_resume_refuses_a_changed_model_and_applies_a_changed_schedule(tmp_path, trained, capsys):
    before = snapshot(trained)
    common = ["--out", str(trained), "--device", "cpu", "--quiet"]
    assert main(["train", "--data", "moons", "--sde", "ve", "--config",
                 str(trained.parent / "cfg.json"), *common]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "data.name: '8gaussians' -> 'moons'" in err and "sde.name: 'vp' -> 've'" in err
    wider = tiny()
    wider.net.kwargs["hidden"] = 32
    wider.save(tmp_path / "wider.json")
    assert main(["train", "--config", str(tmp_path / "wider.json"), *common]) == 2
    assert "net.kwargs" in capsys.readouterr().err and snapshot(trained) == before
    # lr and steps may change: applied, announced, recorded; config.json tells what ran
    assert main(["train", "--config", str(trained.parent / "cfg.json"), "--lr", "0.01",
                 "--steps", "16", *common]) == 0  # fmt: skip
    assert "optim.lr 0.001 -> 0.01" in capsys.readouterr().err
    state = load_checkpoint(trained / "checkpoint.pt")
    assert state["step"] == 16 and state["optimizer"]["param_groups"][0]["lr"] == 0.01
    assert json.loads((trained / "config.json").read_text())["optim"]["lr"] == 0.01
    hist = [json.loads(line) for line in (trained / "history.jsonl").read_text().splitlines()]
    assert hist[0]["step"] == 12 and hist[0]["changed"]["optim.lr"] == [0.001, 0.01]


def test_nan_guard_never_saves_a_streak_as_last_good(tmp_path, capsys):
    cfg = tiny(steps=40, ckpt_every=1, max_nan_steps=3)
    cfg.optim.lr, cfg.optim.grad_clip = 1e6, None
    with pytest.raises(TrainingDiverged) as info:
        train_from_config(cfg, tmp_path / "api", progress=False, device="cpu")
    msg = str(info.value)
    first, last = (int(v) for v in msg.split("(steps ")[1].split(")")[0].split("-"))
    assert last - first + 1 == 3
    ckpt = tmp_path / "api" / "checkpoint.pt"
    if first == 1:
        assert not ckpt.exists() and "no checkpoint was written" in msg
    else:  # the kept checkpoint is the step before the streak, and the message names it
        assert load_checkpoint(ckpt)["step"] == first - 1 and f"(step {first - 1})" in msg
    cfg.save(tmp_path / "cfg.json")
    assert main(["train", "--config", str(tmp_path / "cfg.json"), "--out", str(tmp_path / "cli"),
                 "--device", "cpu", "--quiet"]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "diverged" in err[0] and "Traceback" not in err[0]


def test_non_finite_data_and_samples_are_errors(tmp_path, trained, capsys):
    x = np.random.default_rng(0).choice([-3e38, 3e38], size=(200, 2)).astype(np.float32)
    np.save(tmp_path / "huge.npy", x)
    cfg = tiny(steps=2)
    cfg.data.name, cfg.data.kwargs = "array", {"path": str(tmp_path / "huge.npy")}
    cfg.save(tmp_path / "cfg.json")
    out = tmp_path / "huge"
    assert main(["train", "--config", str(tmp_path / "cfg.json"), "--out", str(out), "--device",
                 "cpu", "--quiet"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "expected finite data" in err and "received" in err and not out.exists()
    # samples that overflow in data units (the ±3e38 data's scaler): no samples.npy, exit 2
    state = load_checkpoint(trained / "checkpoint.pt")
    sc = state["scaler"]["scale"]
    state["scaler"]["scale"] = [3e38] * len(sc) if isinstance(sc, list) else 3e38
    save_checkpoint(tmp_path / "bad.pt", {k: v for k, v in state.items() if k != "format"})
    out = tmp_path / "s"
    assert main(["sample", "--ckpt", str(tmp_path / "bad.pt"), "--out", str(out), "--n", "10",
                 "--nfe", "4", "--device", "cpu", "--quiet"]) == 2  # fmt: skip
    assert "non-finite" in capsys.readouterr().err and not (out / "samples.npy").exists()


def test_resume_removes_stale_temporaries(tmp_path, trained):
    stale = trained / ".checkpoint.pt.k9abcd.tmp"
    stale.write_bytes(b"\0" * 100)
    assert main(["train", "--config", str(trained.parent / "cfg.json"), "--steps", "13",
                 "--out", str(trained), "--device", "cpu", "--quiet"]) == 0  # fmt: skip
    assert not list(trained.glob(".*.tmp"))


def _rows(path: Path) -> list[list[str]]:
    lines = [r.split(",") for r in path.read_text().splitlines()]
    drop = lines[0].index("seconds") if "seconds" in lines[0] else None
    return [[c for i, c in enumerate(r) if i != drop] for r in lines]


def test_logs_after_a_crash_equal_an_uninterrupted_run(tmp_path):
    from scoresde.cli.build import build_loss, build_sde
    from scoresde.training import make_test_loss_hook

    cfg = tiny(steps=20, log_every=3, ckpt_every=5, eval_every=2)
    hook = [make_test_loss_hook(build_loss(cfg.loss, build_sde(cfg)), batch_size=50)]
    kw = {"progress": False, "device": "cpu", "eval_hooks": hook}
    train_from_config(cfg, tmp_path / "full", **kw)
    run = tmp_path / "run"
    train_from_config(cfg, run, stop_after=5, **kw)  # checkpoint at step 5 (mid log window)
    shutil.copy(run / "checkpoint.pt", tmp_path / "ckpt5")
    train_from_config(cfg, run, stop_after=4, **kw)  # logs and evals up to step 9 ...
    shutil.copy(tmp_path / "ckpt5", run / "checkpoint.pt")  # ... then "kill -9" before step 10
    train_from_config(cfg, run, **kw)
    for name in ("log.csv", "eval.csv"):
        assert _rows(run / name) == _rows(tmp_path / "full" / name), name


def test_run_dir_refuses_an_out_it_cannot_create(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(CLIError, match="expected a writable folder, received"):
        run_dir(str(tmp_path / "file" / "sub"), "sample")


def test_shared_run_dir_passes_force_under_a_launcher(tmp_path) -> None:
    # rank 0 of a 2-rank job claims the folder; --force must reach it as in one process
    from scoresde.cli.common import CLIError
    from scoresde.cli.rundir import release_locks
    from scoresde.cli.scaleout import shared_run_dir
    from scoresde.distributed import World

    class Store(dict):
        def set(self, k, v):
            self[k] = v.encode()

    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("someone else's files")
    world = World(rank=0, size=2, store=Store())
    try:
        with pytest.raises(CLIError, match="--out"):
            shared_run_dir(world, str(other), "sample")
        assert shared_run_dir(world, str(other), "sample", force=True) == other
        assert world.store["run_dir"] == str(other).encode()
    finally:
        release_locks()
