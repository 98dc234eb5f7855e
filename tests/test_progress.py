"""Progress bars: a tqdm bar on a terminal, sparse whole lines in a log file."""

from __future__ import annotations

import io

import pytest

from scoresde._utils import progress_bar


def test_redirected_progress_writes_sparse_whole_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stderr", io.StringIO())  # not a terminal
    log = io.StringIO()
    bar = progress_bar(total=1000, desc="train", file=log, every=3600.0)
    for i in range(1000):
        bar.update(1)
        bar.set_postfix(loss=f"{i:d}")  # forces a refresh in plain tqdm
    bar.close()
    text = log.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert len(lines) == 2, lines  # the start and the end, nothing in between within an hour
    assert "1000/1000" in lines[-1] and "loss=999" in lines[-1]


def test_every_defaults_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stderr", io.StringIO())
    monkeypatch.setenv("SCORESDE_PROGRESS_EVERY", "0")
    log = io.StringIO()
    bar = progress_bar(total=5, file=log, mininterval=0)
    for _ in range(5):
        bar.update(1)
    bar.close()
    assert len(log.getvalue().splitlines()) >= 6  # a line per update, plus start and end


@pytest.mark.parametrize("name", ["ddim", "dpm_solver_3", "unipc", "pc", "torchsde", "pf_heun"])
def test_sample_progress_counts_every_step_of_the_grid(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from scoresde import VPSDE, GaussianMixture
    from scoresde.samplers import plan_for_nfe, sample

    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)  # not a terminal: whole lines at the start and end
    sde = VPSDE()
    gm = GaussianMixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.0]], [[0.1, 0.1]] * 2, sde=sde)
    x_T = sde.prior_sample((8, 2), torch.Generator().manual_seed(0), dtype=torch.float64)
    seen: list[int] = []
    sample(name, sde, gm, x_T, 20, progress=True, callback=lambda i, t, x: seen.append(i))
    steps = plan_for_nfe(sde, name, 20, exact=False)[0].numel() - 1
    assert seen == list(range(steps))  # the user's callback still runs, once a step
    last = err.getvalue().strip().splitlines()[-1]
    assert last.startswith(name) and f"{steps}/{steps}" in last, last
