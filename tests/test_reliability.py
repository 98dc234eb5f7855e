"""Issue #24: run folders and their lock, checkpoint hashes, write errors, file permissions.

Each test names the failure it guards against; the faults (a full disk, a permission error) are
injected by monkeypatching the write, so no tmpfs or root is needed.
"""

from __future__ import annotations

import errno
import fcntl
import io
import json
import os
import pathlib
import signal
import stat
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch

from scoresde.cli import main
from scoresde.cli.common import CLIError
from scoresde.cli.config import RunConfig
from scoresde.cli.rundir import LOCK_FILE, run_dir
from scoresde.distributed import atomic
from scoresde.distributed.atomic import (
    WriteError,
    append_text,
    as_write_error,
    atomic_save_torch,
    atomic_write_bytes,
)
from scoresde.sde import VESDE
from scoresde.training import (
    CheckpointError,
    UnverifiedCheckpointWarning,
    load_checkpoint,
    load_model,
)

CPU = ["--device", "cpu", "--quiet"]
ROOT = Path(__file__).resolve().parents[1]


def _cfg(tmp: Path, steps: int = 4, ckpt_every: int = 2) -> str:
    cfg = RunConfig.from_dict({"net": {"kwargs": {"hidden": 16, "depth": 2}},
                               "schedule": {"steps": steps, "batch_size": 16, "log_every": 1,
                                            "ckpt_every": ckpt_every}})  # fmt: skip
    cfg.save(tmp / "cfg.json")
    return str(tmp / "cfg.json")


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """One finished tiny training run (its folder)."""
    d = tmp_path_factory.mktemp("rel")
    assert main(["train", "--config", _cfg(d), "--out", str(d / "run"), *CPU]) == 0
    return d / "run"


def _err(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
    return lines[0]


# -- 1. run folders and the lock ------------------------------------------------------------


def test_out_must_be_new_empty_or_own_run(tmp_path, run, capsys):
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "chapter1.tex").write_text("precious")
    argv = ["sample", "--ckpt", str(run / "checkpoint.pt"), "--n", "4", "--nfe", "2", *CPU]
    assert main([*argv, "--out", str(thesis)]) == 2
    assert "chapter1.tex" in _err(capsys) and [p.name for p in thesis.iterdir()] == ["chapter1.tex"]
    assert main([*argv, "--out", "/"]) == 2
    msg = _err(capsys)
    assert "--out: / holds files that are not a run" in msg and "--force" in msg
    assert main([*argv, "--out", ""]) == 2
    assert "received an empty string" in _err(capsys)
    assert (
        main(["train", "--config", str(run.parent / "cfg.json"), "--out", str(thesis), *CPU]) == 2
    )
    assert "chapter1.tex" in _err(capsys)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([*argv, "--out", str(empty)]) == 0  # an empty folder is fine
    assert main([*argv, "--out", str(empty)]) == 0  # and then it is this command's own run
    assert json.loads((empty / LOCK_FILE).read_text()) == {"command": "sample"}
    assert main(["nll", "--ckpt", str(run / "checkpoint.pt"), "--data", "8gaussians", "--out",
                 str(empty), *CPU]) == 2  # fmt: skip
    assert "(sample:" in _err(capsys)
    assert run_dir(str(thesis), "sample", force=True) == thesis  # --force: the user's choice


def test_a_failed_command_leaves_no_lock_file(tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    assert main(["sample", "--ckpt", str(tmp_path / "missing.pt"), "--out", str(out), *CPU]) == 2
    assert list(out.iterdir()) == [] and "missing.pt" in _err(capsys)


def test_a_second_process_on_a_locked_folder_fails_at_once_naming_the_pid(tmp_path, run, capsys):
    out = tmp_path / "busy"
    out.mkdir()
    with open(out / LOCK_FILE, "w") as fh:  # another process holds the lock
        fh.write(json.dumps({"command": "train", "pid": 4242}))
        fh.flush()
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        argv = ["train", "--config", str(run.parent / "cfg.json"), "--out", str(out), *CPU]
        assert main(argv) == 2
        msg = _err(capsys)
        assert "in use by another process (pid 4242, scoresde train)" in msg, msg
        assert not (out / "log.csv").exists()
    assert main(argv) == 0  # released: the folder is free again


def test_the_lock_is_released_after_each_call(tmp_path):
    out = run_dir(str(tmp_path / "r"), "sample")
    from scoresde.cli.rundir import release_locks

    release_locks()
    with open(out / LOCK_FILE) as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # would raise if still held


# -- 2. checkpoint content hashes ------------------------------------------------------------


def _flip_a_weight_bit(src: Path, dst: Path) -> None:
    raw = bytearray(src.read_bytes())
    w = next(v for v in load_checkpoint(src)["ema"].values() if v.numel() > 8)
    at = raw.find(w.contiguous().numpy().tobytes())
    assert at > 0
    raw[at + 5] ^= 0x10
    dst.write_bytes(bytes(raw))


def test_a_bit_flip_is_detected(tmp_path, run, capsys):
    _flip_a_weight_bit(run / "checkpoint.pt", tmp_path / "flip.pt")
    with pytest.raises(CheckpointError, match="checkpoint is corrupt or was edited: .*flip.pt"):
        load_checkpoint(tmp_path / "flip.pt")
    assert main(["sample", "--ckpt", str(tmp_path / "flip.pt"), *CPU]) == 2
    assert "checkpoint is corrupt or was edited" in _err(capsys)


def test_an_edited_sde_is_detected(tmp_path, run, capsys):
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert state["model_config"]["sde"]["name"] == "vp"
    state["model_config"]["sde"] = VESDE().config()  # VP -> VE, the stored hash kept
    torch.save(state, tmp_path / "ve.pt")
    with pytest.raises(CheckpointError, match="corrupt or was edited"):
        load_model(tmp_path / "ve.pt")
    for cmd in (["sample"], ["nll", "--data", "8gaussians"], ["compare"]):
        assert main([*cmd, "--ckpt", str(tmp_path / "ve.pt"), *CPU]) == 2
        assert "corrupt or was edited" in _err(capsys)


def test_a_checkpoint_without_a_hash_loads_with_a_warning(tmp_path, run):
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    del state["sha256"]
    torch.save(state, tmp_path / "old.pt")
    with pytest.warns(UnverifiedCheckpointWarning, match="no content hash"):
        model = load_model(tmp_path / "old.pt").model
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ref = load_model(run / "checkpoint.pt").model  # a hashed one: no warning
    for a, b in zip(model.state_dict().values(), ref.state_dict().values(), strict=True):
        assert torch.equal(a, b)


class _Evil:
    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(os.environ["EVIL_TARGET"]),))


def test_loading_never_runs_code_from_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("EVIL_TARGET", str(tmp_path / "pwned"))
    state = {"format": "scoresde-checkpoint-v2", "step": 0, "evil": _Evil()}
    torch.save(state, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="could run code"):
        load_checkpoint(tmp_path / "evil.pt")
    assert not (tmp_path / "pwned").exists()


# -- 3. write errors: one line, the previous file kept ---------------------------------------


def _fail_writes(monkeypatch, match: str, err: int = errno.ENOSPC, after: int = 0) -> list[int]:
    """Make ``Path.write_bytes`` of files whose name contains ``match`` fail after ``after``."""
    calls, real = [0], pathlib.Path.write_bytes

    def write_bytes(self, data):
        if match in self.name:
            calls[0] += 1
            if calls[0] > after:
                with open(self, "wb") as fh:  # a partial file, as a full disk leaves one
                    fh.write(bytes(data)[:10])
                raise OSError(err, os.strerror(err))
        return real(self, data)

    monkeypatch.setattr(pathlib.Path, "write_bytes", write_bytes)
    return calls


def test_atomic_write_keeps_the_old_file_and_names_path_and_bytes(tmp_path, monkeypatch):
    target = tmp_path / "a.bin"
    atomic_write_bytes(target, b"old")
    _fail_writes(monkeypatch, "a.bin")
    with pytest.raises(WriteError) as info:
        atomic_write_bytes(target, b"x" * 5000)
    msg = str(info.value.strerror)
    assert f"cannot write {target}: no space left on device (needs 5 kB" in msg, msg
    assert "the previous file is kept" in msg
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["a.bin"]
    for code, words in ((errno.EIO, "input/output error"), (errno.EACCES, "permission denied")):
        _fail_writes(monkeypatch, "a.bin", code)
        with pytest.raises(WriteError, match=words):
            atomic_write_bytes(target, b"y")


def test_append_and_torch_errors_become_write_errors(tmp_path, monkeypatch):
    real = pathlib.Path.open

    def open_(self, mode="r", *a, **k):
        if "a" in mode:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, mode, *a, **k)

    monkeypatch.setattr(pathlib.Path, "open", open_)
    with pytest.raises(WriteError, match=r"log.csv: no space left on device \(needs 4 bytes"):
        append_text(tmp_path / "log.csv", "1,2\n")
    wrapped = RuntimeError("[enforce fail at inline_container.cc] unexpected pos 64")
    wrapped.__context__ = OSError(errno.ENOSPC, "No space left on device", "x.pt")
    assert "cannot write x.pt: no space left" in str(as_write_error(wrapped).strerror)
    assert as_write_error(RuntimeError("other")) is None


def test_train_on_a_full_disk_keeps_the_last_checkpoint_and_exits_1(tmp_path, monkeypatch, capsys):
    cfg = _cfg(tmp_path, steps=6, ckpt_every=2)
    _fail_writes(monkeypatch, ".tmp.pt", after=1)  # the second checkpoint fails
    out = tmp_path / "full"
    assert main(["train", "--config", cfg, "--out", str(out), *CPU]) == 1
    msg = _err(capsys)
    assert f"cannot write {out}/checkpoint.pt: no space left on device (needs" in msg, msg
    assert "the previous file is kept" in msg
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 2
    assert not [p for p in out.iterdir() if ".tmp" in p.name]
    monkeypatch.undo()
    assert main(["train", "--config", cfg, "--out", str(out), *CPU]) == 0  # space freed: resume
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 6


def test_sample_on_a_full_disk_is_one_line(tmp_path, run, monkeypatch, capsys):
    _fail_writes(monkeypatch, "samples.npy")
    out = tmp_path / "s"
    argv = ["sample", "--ckpt", str(run / "checkpoint.pt"), "--n", "8", "--nfe", "2"]
    assert main([*argv, "--out", str(out), *CPU]) == 1
    msg = _err(capsys)
    assert f"cannot write {out}/samples.npy: no space left on device (needs" in msg, msg


def test_shard_files_are_written_by_the_one_writer(tmp_path, monkeypatch):
    from scoresde.distributed import ShardStore

    store = ShardStore(tmp_path / "shards", {"job": 1})
    _fail_writes(monkeypatch, "shard-00000")
    with pytest.raises(WriteError, match="shard-00000.pt: no space left"):
        store.save(0, (0, 2), {"x": torch.zeros(2)})
    (tmp_path / "shards" / "shard-00001.pt").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="shard-00001.pt: expected a shard file written by"):
        store.load(1, (2, 4))


# -- 7. permissions: every output follows the umask --------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_every_output_file_follows_the_umask(tmp_path, run, umask, monkeypatch):
    old = os.umask(umask)
    monkeypatch.setattr(atomic, "_UMASK", [])
    try:
        out = tmp_path / "t"
        assert (
            main(["train", "--config", str(run.parent / "cfg.json"), "--out", str(out), *CPU]) == 0
        )
        s = tmp_path / "s"
        argv = ["sample", "--ckpt", str(out / "checkpoint.pt"), "--n", "8", "--nfe", "2", *CPU]
        assert main([*argv, "--out", str(s)]) == 0
    finally:
        os.umask(old)
    modes = {str(p.relative_to(tmp_path)): stat.S_IMODE(p.stat().st_mode)
             for d in (out, s) for p in d.rglob("*") if p.is_file()}  # fmt: skip
    assert {"t/checkpoint.pt", "t/log.csv", "s/samples.npy", "s/samples.png"} <= set(modes)
    assert set(modes.values()) == {0o666 & ~umask}, modes


def test_atomic_save_torch_round_trips(tmp_path):
    atomic_save_torch(tmp_path / "x.pt", {"a": torch.arange(3)})
    assert torch.equal(torch.load(tmp_path / "x.pt", weights_only=True)["a"], torch.arange(3))
    buf = io.BytesIO((tmp_path / "x.pt").read_bytes())
    assert torch.load(buf, weights_only=True)["a"].tolist() == [0, 1, 2]


def test_run_dir_refuses_a_file_and_cli_error_is_a_value_error(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(CLIError, match="expected a folder, received the existing file"):
        run_dir(str(tmp_path / "f"), "sample")


# -- 5. no orphans: a rank whose launcher dies stops -------------------------------------------

LAUNCHER = """
import subprocess, sys, time
rank = subprocess.Popen(sys.argv[1:], stderr=open(sys.argv[0] + '.err', 'w'))
print(rank.pid, flush=True)
time.sleep(600)
"""


@pytest.mark.timeout(120)
def test_a_rank_whose_launcher_dies_exits_with_one_line(tmp_path):
    """Rank 1 waits for a rendezvous that never comes; its launcher is killed: it must stop."""
    from tests.procs import children, free_port, kill_group, spawn

    _cfg(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "WORLD_SIZE": "2",
           "RANK": "1", "LOCAL_RANK": "1", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(free_port()), "SCORESDE_PG_TIMEOUT": "600",
           "SCORESDE_ORPHAN_GRACE": "3"}  # fmt: skip
    script = tmp_path / "launcher.py"
    script.write_text(LAUNCHER)
    cmd = [sys.executable, str(script), sys.executable, "-m", "scoresde", "train", "--config",
           str(tmp_path / "cfg.json"), "--out", str(tmp_path / "ddp"), *CPU]  # fmt: skip
    launcher = spawn(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        rank = int(launcher.stdout.readline())
        time.sleep(8)  # the rank is up, waiting to rendezvous with rank 0 (which never comes)
        assert rank in children(launcher.pid)
        os.kill(launcher.pid, signal.SIGKILL)
        launcher.wait(timeout=10)
        t0 = time.monotonic()
        while Path(f"/proc/{rank}").exists() and _state(rank) != "Z":
            assert time.monotonic() - t0 < 40, "the orphaned rank is still running"
            time.sleep(0.2)
    finally:
        kill_group(launcher)
    err = Path(f"{script}.err").read_text().strip().splitlines()
    assert any(f"its launcher (pid {launcher.pid}) exited" in line for line in err), err
    assert not any("Traceback" in line for line in err), err


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


# -- 6. signals: at start-up, mid-step and during a checkpoint write -------------------------


def test_sigint_at_start_up_leaves_nothing_and_exits_130(tmp_path):
    from tests.procs import kill_group, spawn

    _cfg(tmp_path, steps=10**6)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    out = tmp_path / "new" / "run"
    cmd = [sys.executable, "-m", "scoresde", "train", "--config", str(tmp_path / "cfg.json"),
           "--out", str(out), *CPU]  # fmt: skip
    proc = spawn(cmd, env=env, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        while not (out / LOCK_FILE).exists():  # the run folder is claimed: start-up under way
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.005)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        kill_group(proc)
    lines = err.strip().splitlines()
    assert proc.returncode == 130 and len(lines) == 1, err
    assert "stopped by SIGINT" in lines[0] and "Resume with: scoresde train" in lines[0]
    has_ckpt = (out / "checkpoint.pt").is_file()
    assert has_ckpt or not (tmp_path / "new").exists(), sorted(map(str, tmp_path.rglob("*")))


def test_sigterm_mid_run_saves_and_prints_the_resume_command(tmp_path):
    from tests.procs import kill_group, spawn

    _cfg(tmp_path, steps=10**6, ckpt_every=10**6)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "scoresde", "train", "--config", str(tmp_path / "cfg.json"),
           "--out", str(out), *CPU]  # fmt: skip
    proc = spawn(cmd, env=env, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        while (
            not (out / "log.csv").is_file() or len((out / "log.csv").read_text().splitlines()) < 3
        ):
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        kill_group(proc)
    assert proc.returncode == 143, err
    line = err.strip().splitlines()[-1]
    resume = line.split("Resume with: ")[1]
    assert resume.startswith("scoresde train --config") and f"--out {out}" in resume
    step = load_checkpoint(out / "checkpoint.pt")["step"]
    assert step >= 2 and f"at step {step}" in line


def test_sigint_during_a_checkpoint_write_keeps_a_whole_checkpoint(tmp_path, monkeypatch, capsys):
    """The signal lands inside the write: the write completes, the run stops, the resume works."""
    cfg = _cfg(tmp_path, steps=8, ckpt_every=2)
    real, calls = atomic.atomic_write_bytes, [0]

    def write(path, data):
        if Path(path).name == "checkpoint.pt":
            calls[0] += 1
            if calls[0] == 2:  # the second checkpoint (step 4): signal mid-write
                os.kill(os.getpid(), signal.SIGINT)
        return real(path, data)

    monkeypatch.setattr(atomic, "atomic_write_bytes", write)
    out = tmp_path / "run"
    assert main(["train", "--config", cfg, "--out", str(out), *CPU]) == 130
    assert "Resume with: scoresde train" in capsys.readouterr().err
    step = load_checkpoint(out / "checkpoint.pt")["step"]
    assert step in (4, 5) and not [p for p in out.iterdir() if ".tmp" in p.name]
    monkeypatch.undo()
    assert main(["train", "--config", cfg, "--out", str(out), *CPU]) == 0
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 8


def test_a_second_signal_stops_at_once_keeping_the_last_checkpoint(tmp_path, monkeypatch, capsys):
    cfg = _cfg(tmp_path, steps=8, ckpt_every=2)
    real, calls = atomic.atomic_write_bytes, [0]

    def write(path, data):
        if Path(path).name == "checkpoint.pt":
            calls[0] += 1
            if calls[0] == 2:  # two SIGTERMs inside the second checkpoint's write
                os.kill(os.getpid(), signal.SIGTERM)
                os.kill(os.getpid(), signal.SIGTERM)
        return real(path, data)

    monkeypatch.setattr(atomic, "atomic_write_bytes", write)
    out = tmp_path / "run"
    assert main(["train", "--config", cfg, "--out", str(out), *CPU]) == 143
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "stopped by SIGTERM" in err[0] and "Resume with" in err[0], err
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 2  # the write under way was dropped
    assert not [p for p in out.iterdir() if ".tmp" in p.name]
