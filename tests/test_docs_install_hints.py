"""Optional dependencies the docs rely on are declared, and their absence says what to install."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_docs_extra_has_what_the_pages_and_notebooks_need() -> None:
    text = (ROOT / "pyproject.toml").read_text()  # tomllib is 3.11+; the project supports 3.10

    def extra(name: str) -> list[str]:
        m = re.search(rf"^{name} = \[(.*?)\]$", text, re.DOTALL | re.MULTILINE)
        assert m, name
        return re.findall(r'"([^"]+)"', m[1])

    extras = {"docs": extra("docs"), "digits": extra("digits")}
    names = {re.split(r"[<>=\[]", req)[0] for req in extras["docs"]}
    # digits examples (scikit-learn), notebooks (jupytext, nbclient, ipykernel, mkdocs-jupyter)
    assert {"scikit-learn", "jupytext", "nbclient", "ipykernel", "mkdocs-jupyter"} <= names
    assert any(req.startswith("scikit-learn") for req in extras["digits"])


def test_digits_without_scikit_learn_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from scoresde.data import get_dataset

    monkeypatch.setitem(sys.modules, "sklearn", None)  # import sklearn -> ImportError
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"pip install 'scoresde\[digits\]'"):
        get_dataset("digits")
