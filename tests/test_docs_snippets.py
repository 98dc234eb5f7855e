"""Every Python code block in docs/ runs as written.

The blocks of one page run in order in one namespace (a page reads like a session), in a
temporary working directory. A block that is not meant to run carries, on the line just above its
fence (one blank line between is allowed), ``<!-- docs-test: skip REASON -->`` (REASON is required and is shown in the site's
source only); a block that takes more than a few seconds carries ``<!-- docs-test: slow -->``
and runs with ``pytest -m slow``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
#: Optional peers: a block importing one that is missing is reported as a skip, not a failure.
OPTIONAL = ("diffusers",)
FENCE = re.compile(
    r"(?:<!-- docs-test: (?P<mark>skip|slow)(?P<why>[^>]*?)-->[ \t]*\n(?:[ \t]*\n)?)?"
    r"^```python[^\n]*\n(?P<code>.*?)^```\s*$",
    re.DOTALL | re.MULTILINE,
)


@dataclass
class Block:
    page: Path
    line: int
    code: str
    mark: str | None
    why: str


def blocks(page: Path) -> list[Block]:
    """The Python blocks of one page with their markers."""
    text = page.read_text()
    out = []
    for m in FENCE.finditer(text):
        line = text.count("\n", 0, m.start("code"))
        out.append(Block(page, line, m["code"], m["mark"], (m["why"] or "").strip()))
    return out


def _pages() -> list:
    params = []
    for page in sorted(DOCS.rglob("*.md")):
        found = blocks(page)
        if not found:
            continue
        slow = any(b.mark == "slow" for b in found)
        rel = page.relative_to(DOCS).as_posix()
        params.append(pytest.param(page, id=rel, marks=[pytest.mark.slow] if slow else []))
    return params


def test_fence_parser_sees_markers() -> None:
    text = (
        "a\n<!-- docs-test: skip needs a GPU -->\n```python\nx = 1\n```\n\n```python\ny = 2\n```\n"
    )
    text += "<!-- docs-test: slow trains -->\n\n```python\nz = 3\n```\n"
    found = list(FENCE.finditer(text))
    assert [m["mark"] for m in found] == ["skip", None, "slow"]
    assert found[0]["why"].strip() == "needs a GPU" and found[1]["code"] == "y = 2\n"


def test_there_are_blocks_and_skips_say_why() -> None:
    every = [b for page in DOCS.rglob("*.md") for b in blocks(page)]
    assert len(every) >= 18, len(every)
    for b in every:
        if b.mark == "skip":
            assert len(b.why) > 10, f"{b.page}:{b.line}: a skipped block must say why"


@pytest.mark.parametrize("page", _pages())
def test_page_blocks_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    import matplotlib

    matplotlib.use("Agg")
    namespace: dict = {"__name__": f"docs_{page.stem}"}
    missing = []  # blocks of optional peers (OPTIONAL) that are not installed
    for b in blocks(page):
        if b.mark == "skip":
            continue
        try:
            exec(compile(b.code, f"{page}:{b.line}", "exec"), namespace)  # noqa: S102
        except ModuleNotFoundError as err:
            if err.name not in OPTIONAL:
                raise AssertionError(f"{page}:{b.line + 1}: block failed: {err!r}") from err
            missing.append(f"line {b.line + 1} needs {err.name}")
        except Exception as err:  # the page and line make the failure findable
            raise AssertionError(f"{page}:{b.line + 1}: block failed: {err!r}") from err
    if missing:
        pytest.skip(f"{page.name}: the other blocks ran; not installed: {'; '.join(missing)}")
