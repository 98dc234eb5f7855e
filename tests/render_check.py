"""Offline render check of the built site: every formula is typeset by the bundled MathJax.

Usage: ``python tests/render_check.py SITE_DIR [--screenshots DIR]`` after ``mkdocs build``.
Each page with math is loaded by headless Chromium from ``file://`` with every host name
unresolvable (so a CDN could not help), and its DOM after scripts ran must have no raw
``\\(``/``\\[`` left in any ``arithmatex`` element, one typeset ``mjx-container`` per ``arithmatex``
element at least, and, on notebook pages, typeset math in place of ``$...$``. Exits 1 listing the
pages that fail, 2 when no Chromium is installed (``apt-get install chromium``).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
ARITH = re.compile(r'class="arithmatex"')
RAW = re.compile(r'class="arithmatex"[^>]*>\s*\\[(\[]')
DOLLAR = re.compile(r"\$[^$<>\n]{1,200}\$")


def browser() -> str | None:
    """The first headless-capable Chromium on PATH."""
    return next((b for b in BROWSERS if shutil.which(b)), None)


def run(exe: str, url: str, *extra: str) -> str:
    """The DOM of ``url`` after 20 s of virtual time, offline."""
    cmd = [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=20000",
           "--host-resolver-rules=MAP * ~NOTFOUND", *extra, url]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    return out.stdout


def has_math(html: str) -> bool:
    """Whether a built page carries math (arithmatex spans or a notebook's $...$)."""
    return bool(ARITH.search(html)) or ("jp-RenderedMarkdown" in html and bool(DOLLAR.search(html)))


def check_page(exe: str, page: Path, site: Path, shots: Path | None) -> str | None:
    """None if ``page`` renders its math (or has none), else why not."""
    html = page.read_text(errors="replace")
    n_arith = len(ARITH.findall(html))
    notebook = "jp-RenderedMarkdown" in html and bool(DOLLAR.search(html))
    if not has_math(html):
        return None
    dom = run(exe, page.as_uri(), "--dump-dom")
    n_mjx = dom.count("<mjx-container")
    if RAW.search(dom):
        return f"raw TeX left in an arithmatex element ({n_mjx} typeset of {n_arith})"
    if n_mjx < n_arith or (notebook and n_mjx == 0):
        return f"{n_mjx} typeset formulas for {n_arith} arithmatex elements (notebook: {notebook})"
    if shots is not None:
        name = page.relative_to(site).as_posix().replace("/", "_").replace(".html", ".png")
        run(exe, page.as_uri(), "--window-size=1200,1600", f"--screenshot={shots / name}")
    return None


def main(argv: list[str] | None = None) -> int:
    """Check every HTML page of the site; return the exit status."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("site", type=Path)
    p.add_argument("--screenshots", type=Path, default=None, help="save a PNG of each page here")
    args = p.parse_args(argv)
    exe = browser()
    if exe is None:
        print(f"render_check: no browser found (tried {', '.join(BROWSERS)})", file=sys.stderr)
        return 2
    if args.screenshots is not None:
        args.screenshots.mkdir(parents=True, exist_ok=True)
    pages = sorted(args.site.rglob("*.html"))
    failures, checked = [], 0
    for page in pages:
        if "404" in page.name:
            continue
        why = check_page(exe, page, args.site, args.screenshots)
        checked += has_math(page.read_text(errors="replace"))
        if why:
            failures.append(f"{page.relative_to(args.site)}: {why}")
    print(f"render_check: {checked} pages with math checked offline, {len(failures)} failed")
    for f in failures:
        print("  " + f)
    return 1 if failures or checked == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
