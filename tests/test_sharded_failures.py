"""Sharded evaluation when ranks fail: an error naming the rank (no hang), and resume.

Every launch has a deadline (``tests/sharded_launch.py``) and every test a pytest timeout, so a
hang fails the test instead of stalling the suite.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import torch

from scoresde.analytic import GaussianMixture
from scoresde.distributed import World, run_sharded, sharded_log_likelihood
from scoresde.likelihood import log_likelihood
from scoresde.sde import VPSDE
from tests.sharded_launch import launch

SDE = VPSDE()
GM = GaussianMixture([0.4, 0.6], [[-1.0, 0.5], [1.0, -0.5]], [[0.3, 0.2], [0.2, 0.4]])
SCORE = GM.with_sde(SDE)
X = GM.sample(7, torch.Generator().manual_seed(0))
KW = {"rtol": 1e-4, "atol": 1e-4, "shard_size": 2}


@pytest.fixture(autouse=True, scope="module")
def _warm() -> None:
    """Import torch.func's machinery before forking: a first import takes seconds, longer than
    the short timeouts below (a rank importing counts as making no progress)."""
    log_likelihood(SDE, SCORE, X[:1], rtol=1e-2, atol=1e-2)


def _score_failing_on(rank: int, what: str):
    def score(x, t):
        if int(os.environ["RANK"]) == rank:
            if what == "raise":
                raise ValueError("score_fn exploded")
            if what == "freeze":
                time.sleep(600)
        return SCORE(x, t)

    return score


@pytest.mark.timeout(60)
def test_failed_rank_ends_the_job_naming_it() -> None:
    def job(rank: int):
        with World.from_env("cpu", timeout=30, poll=0.05) as world:
            sharded_log_likelihood(SDE, _score_failing_on(1, "raise"), X, world=world, **KW)

    start = time.monotonic()
    out = launch(job, 3, timeout=40)
    assert time.monotonic() - start < 25  # an explicit failure does not wait for the timeout
    assert sorted(out) == [0, 1, 2]
    assert out[1][1]["type"] == "ValueError" and "score_fn exploded" in out[1][1]["message"]
    for r in (0, 2):
        status, info = out[r]
        assert status == "error" and info["type"] == "RankFailedError", info
        assert (
            info["rank"] == 1 and "rank 1 failed: ValueError: score_fn exploded" in info["message"]
        )


@pytest.mark.timeout(60)
def test_frozen_rank_ends_the_job_within_the_timeout() -> None:
    def job(rank: int):
        with World.from_env("cpu", timeout=3.0, poll=0.05) as world:
            sharded_log_likelihood(SDE, _score_failing_on(1, "freeze"), X, world=world, **KW)

    start = time.monotonic()
    out = launch(job, 3, timeout=30, wait_for={0, 2})  # rank 1 sleeps; it is killed afterwards
    elapsed = time.monotonic() - start
    for r in (0, 2):  # rank 0 sees the stall, rank 2 learns it from rank 0
        status, info = out[r]
        assert status == "error" and info["type"] == "RankFailedError" and info["rank"] == 1, info
        assert "rank 1 made no progress for 3 s" in info["message"]
    assert 3.0 <= elapsed < 20


@pytest.mark.timeout(90)
def test_resume_after_a_killed_run(tmp_path: Path) -> None:
    folder = tmp_path / "shards"
    ref = sharded_log_likelihood(SDE, SCORE, X, **{**KW, "shard_size": 1})

    def job(rank: int, kill_at: int | None = None):
        computed = []

        def score(x, t):
            if kill_at is not None and rank == 1 and len(computed) == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer would
            return SCORE(x, t)

        def shard(start, stop, beat):
            computed.append(start)
            r = log_likelihood(
                SDE, lambda x, t: (beat(), score(x, t))[1], X[start:stop], rtol=1e-4, atol=1e-4
            )
            return {"log_prob": r.log_prob}

        with World.from_env("cpu", timeout=3.0, poll=0.05) as world:
            parts = run_sharded(
                shard, 7, shard_size=1, world=world, shard_dir=folder, fingerprint={"job": "test"}
            )
        return computed, None if parts is None else torch.cat([p["log_prob"] for p in parts])

    # 7 shards on 2 ranks: rank 0 takes 0, 2, 4, 6; rank 1 takes 1, 3, 5 and dies in shard 3
    out = launch(lambda r: job(r, kill_at=2), 2, timeout=40, wait_for={0})
    status, info = out[0]
    assert status == "error" and info["rank"] == 1 and "made no progress" in info["message"]
    assert 1 not in out  # killed: no report
    kept = sorted(int(p.stem.split("-")[1]) for p in folder.glob("shard-*.pt"))
    assert kept == [0, 1, 2, 4, 6]
    # the rerun, on 3 ranks, computes only the missing shards 3 and 5 and gives the same numbers
    out = launch(job, 3, timeout=40)
    assert all(s == "ok" for s, _ in out.values()), out
    computed = sorted(s for r in range(3) for s in out[r][1][0])
    assert computed == [3, 5]
    torch.testing.assert_close(out[0][1][1], ref.log_prob, rtol=0, atol=0)


def test_resume_refuses_another_job(tmp_path: Path) -> None:
    folder = tmp_path / "shards"
    sharded_log_likelihood(SDE, SCORE, X[:2], shard_dir=folder, **KW)
    with pytest.raises(ValueError, match=r"holds another job .*'seed' was 0, now 1"):
        sharded_log_likelihood(SDE, SCORE, X[:2], shard_dir=folder, seed=1, **KW)
    same = sharded_log_likelihood(SDE, SCORE, X[:2], shard_dir=folder, **KW)  # resumes: loads
    assert same.nfe > 0 and same.log_prob.shape == (2,)
