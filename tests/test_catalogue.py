"""Issue #24's catalogue of bad inputs: every case is a clear one-line error (or warning).

The cases live in :mod:`tests.catalogue_cases`, the classifier in :mod:`tests.catalogue`
(``python -m tests.catalogue`` prints the table). Each case must be ``clear``; the working folder
must stay empty (a refused command writes nothing).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.catalogue import OUTCOMES, Case, classify, table
from tests.catalogue_cases import CASES, make_fixtures


@pytest.fixture(scope="module")
def fx(tmp_path_factory) -> Path:
    return make_fixtures(tmp_path_factory.mktemp("catalogue") / "fx")


def test_the_catalogue_is_large_and_names_are_unique() -> None:
    assert len(CASES) >= 200
    assert len({c.name for c in CASES}) == len(CASES)
    assert (
        sum(c.argv is not None for c in CASES) >= 150
        and sum(c.call is not None for c in CASES) >= 40
    )


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_bad_input_is_clear(case: Case, fx: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    outcome, seen = classify(case, fx)
    assert outcome == "clear", f"{outcome}: {seen}"
    if not case.warn:
        assert list(tmp_path.iterdir()) == [], "a refused command wrote into the working folder"


def test_the_classifier_tells_the_outcomes_apart(fx: Path, tmp_path: Path, monkeypatch) -> None:
    """The catalogue can fail: each outcome other than clear is recognised."""
    monkeypatch.chdir(tmp_path)

    def boom(fx: Path) -> None:
        raise IndexError("list index out of range")

    def vague(fx: Path) -> None:
        raise ValueError("bad")

    seen = {
        "hang": classify(Case("h", "x", call=lambda fx: time.sleep(5)), fx, timeout=1)[0],
        "traceback": classify(Case("t", "x", call=boom), fx)[0],
        "unclear": classify(Case("u", "x", call=vague), fx)[0],
        "silent": classify(Case("s", "x", call=lambda fx: 1), fx)[0],
        "clear": classify(Case("c", "'x'", call=lambda fx: int_list_error()), fx)[0],
    }
    assert seen == {k: k for k in seen}
    assert "| 1 | 1 | 0 | 0 | 0 | 0 |" in table({"a": ("clear", "")}) and len(OUTCOMES) == 5


def int_list_error() -> None:
    from scoresde.cli.common import int_list

    int_list("x")
