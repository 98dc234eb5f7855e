"""Sharded evaluation: identical log-likelihoods and samples for world sizes 1, 2 and 3 (gloo).

Ranks are forked processes with torchrun's environment (``tests/sharded_launch.py``); world
size 1 runs in the test process. 7 items in shards of 2 or 3 split unevenly over 2 and 3 ranks.
"""

from __future__ import annotations

import time

import pytest
import torch

from scoresde.analytic import GaussianMixture
from scoresde.distributed import (
    World,
    item_seed,
    plan_shards,
    run_sharded,
    sharded_bits_per_dim,
    sharded_compare_samplers,
    sharded_log_likelihood,
    sharded_sample,
)
from scoresde.likelihood import log_likelihood
from scoresde.samplers import OptimizedGrid, grid_for_nfe
from scoresde.sde import VPSDE
from scoresde.studies import compare_samplers
from tests.sharded_launch import launch

SDE = VPSDE()
GM = GaussianMixture([0.4, 0.6], [[-1.0, 0.5], [1.0, -0.5]], [[0.3, 0.2], [0.2, 0.4]])
SCORE = GM.with_sde(SDE)
X = GM.sample(7, torch.Generator().manual_seed(0))
LIK = {"rtol": 1e-4, "atol": 1e-4, "shard_size": 2}


def _on_ranks(job, size: int, timeout: float = 60.0):
    out = launch(job, size, timeout=timeout)
    assert sorted(out) == list(range(size)), f"ranks that reported: {sorted(out)}"
    errors = {r: v for r, (s, v) in out.items() if s != "ok"}
    assert not errors, {r: v["traceback"] for r, v in errors.items()}
    assert all(out[r][1] is None for r in range(1, size))  # results live on rank 0 only
    return out[0][1]


def test_plan_and_item_seeds() -> None:
    assert plan_shards(7, 3) == [(0, 3), (3, 6), (6, 7)]
    assert plan_shards(2, 5) == [(0, 2)]
    seeds = {item_seed(0, i, s) for i in range(50) for s in ("prior", "noise", "probes")}
    assert len(seeds) == 150 and all(0 <= s < 2**63 for s in seeds)
    assert item_seed(1, 3, "prior") == item_seed(1, 3, "prior") != item_seed(2, 3, "prior")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("divergence", ["exact", "hutchinson"])
def test_log_likelihood_identical_for_world_sizes(divergence: str) -> None:
    kw = {**LIK, "divergence": divergence, "n_probes": 2}
    ref = sharded_log_likelihood(SDE, SCORE, X, **kw)
    # each shard is one log_likelihood call on the same points with the same per-point seeds
    seeds = [item_seed(0, i, "probes") for i in (2, 3)] if divergence == "hutchinson" else None
    direct = log_likelihood(
        SDE, SCORE, X[2:4], seeds=seeds, rtol=1e-4, atol=1e-4, divergence=divergence, n_probes=2
    )
    torch.testing.assert_close(ref.log_prob[2:4], direct.log_prob, rtol=0, atol=0)
    if divergence == "exact":  # and it is log p: the closed form of the mixture
        torch.testing.assert_close(ref.log_prob, GM.log_prob(X), rtol=0, atol=5e-3)
    else:
        assert ref.per_probe.shape == (2, 7) and ref.stderr.shape == (7,)

    def job(rank: int):
        with World.from_env("cpu", timeout=30, poll=0.1) as world:
            res = sharded_log_likelihood(SDE, SCORE, X, world=world, **kw)
        return None if res is None else (res.log_prob, res.z, res.per_probe, res.nfe)

    for size in (2, 3):
        logp, z, per_probe, nfe = _on_ranks(job, size)
        assert torch.equal(logp, ref.log_prob) and torch.equal(z, ref.z), size
        assert nfe == ref.nfe
        if divergence == "hutchinson":
            assert torch.equal(per_probe, ref.per_probe)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("sampler", ["euler_maruyama", "pf_adaptive"])
def test_sample_identical_for_world_sizes(sampler: str) -> None:
    if sampler == "pf_adaptive":
        grid = torch.tensor([SDE.T, SDE.eps], dtype=torch.float64)
    else:
        grid = grid_for_nfe(SDE, sampler, 8, None, exact=False)
    kw = {"shard_size": 3, "seed": 5, "dtype": torch.float64}
    ref, info = sharded_sample(sampler, SDE, SCORE, (2,), 7, grid, **kw)
    assert ref.shape == (7, 2) and bool(torch.isfinite(ref).all())
    # sample 6 alone (its own shard) is the same sample as inside the 7
    alone, _ = sharded_sample(sampler, SDE, SCORE, (2,), 7, grid, **{**kw, "shard_size": 1})
    if sampler == "euler_maruyama":  # fixed grid: no coupling through the batch at all
        assert torch.equal(alone, ref)
    else:  # the adaptive solver takes different step counts on different shards
        assert len(set(info["nfe_per_shard"])) > 1
        torch.testing.assert_close(alone, ref, rtol=1e-3, atol=1e-3)

    def job(rank: int):
        with World.from_env("cpu", timeout=30, poll=0.1) as world:
            out = sharded_sample(sampler, SDE, SCORE, (2,), 7, grid, world=world, **kw)
        return None if out is None else (out[0], out[1]["nfe_per_shard"])

    for size in (2, 3):
        x, nfe_per_shard = _on_ranks(job, size)
        assert torch.equal(x, ref), size
        assert nfe_per_shard == info["nfe_per_shard"]


@pytest.mark.timeout(60)
def test_one_progress_bar_on_rank_zero_counts_all_ranks(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SCORESDE_PROGRESS_EVERY", "0")  # a log line per update (not a terminal)

    def shard(start: int, stop: int, beat) -> dict:
        if start == 0:  # rank 0's first shard is slow: the bar shows the other ranks' items
            time.sleep(1.0)
        return {"n": stop - start}

    def job(rank: int):
        with World.from_env("cpu", timeout=30, poll=0.05) as world:
            run_sharded(shard, 7, shard_size=2, world=world, progress=True, desc="items")

    out = launch(job, 3, log=str(tmp_path / "err"))
    assert all(s == "ok" for s, _ in out.values())
    bar = (tmp_path / "err.0").read_text()
    assert "items:  57%" in bar and "4/7" in bar  # ranks 1 and 2 done, rank 0 busy
    assert "items: 100%" in bar and "7/7" in bar
    for r in (1, 2):
        assert "items" not in (tmp_path / f"err.{r}").read_text()


def test_validation_messages() -> None:
    with pytest.raises(ValueError, match=r"expected timeout > 0 seconds, received 0"):
        World(timeout=0)
    with pytest.raises(ValueError, match=r"expected 0 <= rank < 2, received 2"):
        World(rank=2, size=2, store=object())
    with pytest.raises(ValueError, match="expected a store for size > 1"):
        World(rank=0, size=2)
    with pytest.raises(ValueError, match="expected an integer shard_size >= 1, received 0"):
        plan_shards(3, 0)
    with pytest.raises(TypeError, match="expected a callable fn"):
        run_sharded(3, 4, shard_size=2)
    with pytest.raises(TypeError, match="expected fn to return a dict, received list"):
        run_sharded(lambda a, b, beat: [a], 4, shard_size=2)
    with pytest.raises(TypeError, match="expected a World, received str"):
        run_sharded(lambda a, b, beat: {}, 4, shard_size=2, world="cpu")
    with pytest.raises(ValueError, match="expected a fingerprint with shard_dir"):
        run_sharded(lambda a, b, beat: {}, 4, shard_size=2, shard_dir="x")
    with pytest.raises(ValueError, match="expected seed=, received generator"):
        sharded_log_likelihood(SDE, SCORE, X, generator=torch.Generator())
    with pytest.raises(TypeError, match=r"expected a tensor \(n, \*dims\), received list"):
        sharded_log_likelihood(SDE, SCORE, [1.0])
    with pytest.raises(TypeError, match="expected an integer seed, received 1.5"):
        sharded_sample("ddim", SDE, SCORE, (2,), 4, torch.tensor([1.0, 0.1]), seed=1.5)
    with pytest.raises(ValueError, match="unknown sampler"):
        sharded_sample("nope", SDE, SCORE, (2,), 4, torch.tensor([1.0, 0.1]))
    with pytest.raises(ValueError, match=r"expected a shape of positive integers, received \(0,\)"):
        sharded_sample("ddim", SDE, SCORE, (0,), 4, torch.tensor([1.0, 0.1]))


_TIMING = ("wall_time_s", "cpu_time_s", "us_per_sample")


@pytest.mark.timeout(120)
def test_bits_per_dim_and_sampler_study_identical_for_world_sizes() -> None:
    k = torch.randint(0, 4, (5, 2), generator=torch.Generator().manual_seed(1))
    bpd_kw = {
        "levels": 4,
        "shard_size": 2,
        "rtol": 1e-3,
        "atol": 1e-3,
        "n_draws": 2,
        "divergence": "hutchinson",
    }
    ref = sharded_bits_per_dim(SDE, SCORE, k, **bpd_kw)
    assert ref.bpd.shape == (5,) and ref.per_draw.shape == (2, 5)
    assert bool(torch.isfinite(ref.bpd).all()) and not torch.equal(ref.per_draw[0], ref.per_draw[1])
    reference = GM.sample(40, torch.Generator().manual_seed(2)).float()
    times = torch.linspace(SDE.T, SDE.eps, 5, dtype=torch.float64)
    grids = {"ddim[saved]": OptimizedGrid("ddim", 4, times, repr(SDE))}
    study_args = (SDE, SCORE, ["ddim", "euler_maruyama"], [4], reference, ["sw2"])
    study = sharded_compare_samplers(*study_args, seeds=[1, 2], grids=grids)
    rows = [{k: v for k, v in r.items() if k not in _TIMING} for r in study.rows]
    # the rows of one process running compare_samplers itself, in its order
    plain = compare_samplers(*study_args, seeds=[1, 2], grids=grids)
    assert rows == [{k: v for k, v in r.items() if k not in _TIMING} for r in plain.rows]
    assert [(r["seed"], r["sampler"]) for r in rows] == [
        (s, n) for s in (1, 2) for n in ("ddim", "euler_maruyama", "ddim[saved]")
    ]

    def job(rank: int):
        with World.from_env("cpu", timeout=30, poll=0.1) as world:
            b = sharded_bits_per_dim(SDE, SCORE, k, world=world, **bpd_kw)
            s = sharded_compare_samplers(*study_args, seeds=[1, 2], grids=grids, world=world)
        if b is None:
            return None
        return b.per_draw, [{k: v for k, v in r.items() if k not in _TIMING} for r in s.rows]

    per_draw, rows3 = _on_ranks(job, 3)
    assert torch.equal(per_draw, ref.per_draw) and rows3 == rows


@pytest.mark.timeout(60)
def test_world_inside_a_process_group_the_user_started() -> None:
    import torch.distributed as dist

    def job(rank: int):
        dist.init_process_group("gloo")  # the user's own group (e.g. for DDP training)
        with World.from_env("cpu", timeout=30, poll=0.05) as world:
            parts = run_sharded(
                lambda a, b, beat: {"items": list(range(a, b))}, 5, shard_size=2, world=world
            )
        with World.from_env("cpu", timeout=30, poll=0.05) as world:  # a second job, same group
            again = run_sharded(lambda a, b, beat: {"rank": rank}, 3, shard_size=1, world=world)
        assert dist.is_initialized()  # left to its owner
        dist.destroy_process_group()
        if parts is None:
            return None
        return [i for p in parts for i in p["items"]], [p["rank"] for p in again]

    assert _on_ranks(job, 2) == ([0, 1, 2, 3, 4], [0, 1, 0])


def test_world_from_env_validates_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="expected an integer WORLD_SIZE, received 'two'"):
        World.from_env("cpu")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(ValueError, match="expected 0 <= RANK < WORLD_SIZE=2, received RANK=2"):
        World.from_env("cpu")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    monkeypatch.delenv("MASTER_PORT", raising=False)
    with pytest.raises(ValueError, match="expected MASTER_ADDR and MASTER_PORT in the environment"):
        World.from_env("cpu")
    with pytest.raises(
        ValueError, match="expected a device such as 'cpu' or 'cuda', received 'gpu0'"
    ):
        World.from_env("gpu0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert World.from_env("cpu").size == 1
