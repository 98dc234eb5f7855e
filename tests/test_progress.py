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
