"""The site renders its math offline: MathJax is bundled, configured, and a browser check works.

The full check of the built site is ``python tests/render_check.py SITE`` (a CI step after
``mkdocs build``); here the configuration is checked, and the check itself is run on a two-page
synthetic site to show it passes with the bundled MathJax and fails without it.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from . import render_check

ROOT = Path(__file__).resolve().parent.parent
JS = ROOT / "docs" / "javascripts"


def _extra_javascript() -> list[str]:
    text = (ROOT / "mkdocs.yml").read_text()
    block = re.search(r"^extra_javascript:\n((?:  - .*\n)+)", text, re.MULTILINE)
    assert block, "mkdocs.yml has no extra_javascript list"
    return [line.strip()[2:] for line in block[1].splitlines()]


def test_mathjax_is_bundled_not_fetched() -> None:
    scripts = _extra_javascript()
    assert not [s for s in scripts if s.startswith(("http:", "https:", "//"))], scripts
    vendored = [s for s in scripts if "vendor/mathjax" in s]
    assert len(vendored) == 1, scripts
    bundle = ROOT / "docs" / vendored[0]
    assert bundle.stat().st_size > 1_000_000 and b"MathJax" in bundle.read_bytes()[:20000]
    assert (JS / "vendor" / "MATHJAX-LICENSE.txt").is_file()
    config = (JS / "mathjax.js").read_text()
    assert scripts.index("javascripts/mathjax.js") < scripts.index(vendored[0])  # config first
    for delim in (r'["\\(", "\\)"]', r'["$", "$"]'):
        assert delim in config, delim


PAGE = """<!doctype html><html><head><meta charset="utf-8"></head><body>
<p>Inline <span class="arithmatex">\\(\\alpha_t^2 + \\sigma_t^2 = 1\\)</span> and display</p>
<div class="arithmatex">\\[\\boldsymbol\\epsilon \\sim \\mathcal{N}(\\mathbf{0}, \\mathbf{I})\\]</div>
{scripts}</body></html>"""


@pytest.mark.skipif(
    render_check.browser() is None, reason="needs chromium (apt-get install chromium)"
)
def test_render_check_passes_with_the_bundle_and_fails_without(tmp_path: Path) -> None:
    exe = render_check.browser()
    assert exe is not None
    site = tmp_path / "site"
    (site / "js").mkdir(parents=True)
    for s in _extra_javascript():
        shutil.copy(ROOT / "docs" / s, site / "js" / Path(s).name)
    tags = "".join(f'<script src="js/{Path(s).name}"></script>' for s in _extra_javascript())
    tags = "<script>window.document$ = {subscribe() {}};</script>" + tags  # Material's hook
    good, bad = site / "good.html", site / "bad.html"
    good.write_text(PAGE.replace("{scripts}", tags))
    bad.write_text(PAGE.replace("{scripts}", ""))
    assert render_check.check_page(exe, good, site, None) is None
    assert "raw TeX" in (render_check.check_page(exe, bad, site, None) or "")
