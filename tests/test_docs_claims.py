"""Numbers quoted in docs/ agree with the experiments' committed results.json.

Each quoted number is marked ``<!--claim ...-->`` and rendered by experiments/_claims.py; after
re-running an experiment, ``python experiments/_claims.py`` rewrites the pages.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _claims():
    spec = importlib.util.spec_from_file_location("_claims", ROOT / "experiments" / "_claims.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_claim_matches_its_results() -> None:
    claims = _claims()
    seen = 0
    for page in claims.pages():
        text = page.read_text()
        seen += len(claims.PATTERN.findall(text))
        _, changed = claims.process(text)
        assert not changed, f"{page}: stale claims (run python experiments/_claims.py): {changed}"
    assert seen >= 30, seen  # the experiment pages and the four-views page are marked


def test_experiment_pages_are_marked() -> None:
    claims = _claims()
    for name in ("forward-process", "ddpm-ddim-convergence", "sde-comparison", "likelihood"):
        text = (ROOT / "docs" / "experiments" / f"{name}.md").read_text()
        assert claims.PATTERN.search(text), name
    assert claims.PATTERN.search((ROOT / "docs/concepts/four-views.md").read_text())


def test_a_drifted_number_is_caught() -> None:
    claims = _claims()
    spec = "ddpm_ddim_convergence|orders/ode/ddim|.2f"
    good = f"order <!--claim {spec}-->{claims.render(spec)}<!--/claim-->"
    assert claims.process(good)[1] == []
    bad = f"order <!--claim {spec}-->1.00001<!--/claim-->"
    (changed,) = claims.process(bad)[1]
    assert changed[1] == "1.00001"


def test_bad_specs_name_what_is_expected() -> None:
    claims = _claims()
    with pytest.raises(ValueError, match="unknown derived claim 'nope'; expected one of"):
        claims.render("=nope")
    with pytest.raises(ValueError, match="must be 'EXP|PATH|FMT'"):
        claims.render("four_views|steps")


def test_no_inline_claim_starts_a_line() -> None:
    # Markdown reads a line that starts with "<!--" as raw HTML, which breaks lists and
    # paragraphs; only block claims (a table) stand alone on their line.
    claims = _claims()
    for page in claims.pages():
        for n, line in enumerate(page.read_text().splitlines(), 1):
            s = line.strip()
            if s.startswith("<!--claim"):
                assert s.endswith("-->") and s.count("<!--") == 1, f"{page}:{n}: {s[:60]}"
