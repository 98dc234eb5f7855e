"""Write (or check) ``docs/api/index.md``: every public name of scoresde with its one-line purpose.

The public API is the top level's ``__all__`` and each subpackage's ``__all__``. A name's purpose
is the first line of its docstring, or the ``#:`` comment above a constant in its source, or
the entry of :data:`PURPOSES` below. ``python tools/api_index.py`` rewrites the page;
``--check`` (run by ``tests/test_api.py``) exits 1 if the page is out of date.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "api" / "index.md"
MODULES = [
    "scoresde",
    "scoresde.sde",
    "scoresde.parameterization",
    "scoresde.parameterization.pretrained",
    "scoresde.analytic",
    "scoresde.samplers",
    "scoresde.likelihood",
    "scoresde.losses",
    "scoresde.nets",
    "scoresde.data",
    "scoresde.training",
    "scoresde.metrics",
    "scoresde.studies",
    "scoresde.distributed",
    "scoresde.cli",
]
#: Purposes of names without a docstring or ``#:`` comment (constants and type aliases).
PURPOSES = {
    "__version__": "The package version.",
    "ScoreFn": "Type of a score function ``score_fn(x, t) -> Tensor`` shaped like ``x``.",
    "PREDICTS": "What a prediction may be: 'eps', 'x0', 'v', 'score'.",
    "MODEL_OUTPUTS": "What a ScoreModel's network may output: PREDICTS or 'edm'.",
    "TIME_INPUTS": "How time enters a ScoreModel's network: 't', 'log_snr', 'sigma'.",
    "COMMON_OPTIONS": "Options every sampler accepts (seeds, noise_sampler, hook, denoise, ...).",
    "DIVERGENCES": "Divergence estimators of log_likelihood: 'exact', 'hutchinson'.",
    "LOSSES": "Registry of losses by name: 'dsm', 'ddpm', 'smld'.",
    "WEIGHTINGS": "DSM weightings lambda(t): 'sigma2', 'likelihood', 'uniform', 'min_snr'.",
    "T_SAMPLINGS": "How DSM draws t: 'uniform' or 'importance'.",
    "NETS": "Registry of networks by name: 'mlp', 'unet'.",
    "DATASETS": "Registry of data sources by name (toy sets, mixture, digits, mnist, files).",
    "TOY_SETS": "The 2-D toy sets with their samplers and entropies.",
    "EvalHook": "Type of an eval hook ``hook(step, ema_model, dataset) -> {metric: value}``.",
}


def _comment_above(module: object, name: str) -> str | None:
    """The first line of the ``#:`` comment above ``name = ...`` in the package's modules."""
    prefix = getattr(module, "__name__", "") + "."
    subs = [sys.modules[m] for m in sorted(sys.modules) if m.startswith(prefix)]
    for mod in [module, *subs]:
        try:
            lines = inspect.getsource(mod).splitlines()
        except (TypeError, OSError):
            continue
        for i, line in enumerate(lines):
            if re.match(rf"{re.escape(name)}\s*(:[^=]*)?=", line):
                j = i
                while j > 0 and lines[j - 1].startswith("#:"):
                    j -= 1
                if j < i:
                    return lines[j][2:].strip()
    return None


def purpose(module: object, name: str) -> str:
    """The one-line purpose of ``module.name``."""
    obj = getattr(module, name)
    doc = None
    # a callable object with its own docstring (a registered sampler) reads like a function
    own_doc = callable(obj) and "__doc__" in getattr(obj, "__dict__", {})
    if inspect.isclass(obj) or inspect.isroutine(obj) or own_doc:
        doc = inspect.getdoc(obj)
    line = (doc or "").strip().splitlines()[0] if doc else None
    line = line or PURPOSES.get(name) or _comment_above(module, name)
    if not line:
        raise SystemExit(f"api_index: no purpose for {module.__name__}.{name}")
    return re.sub(r":\w+:`~?([^`]+)`", r"`\1`", line).replace("|", "\\|")


def render() -> str:
    """The page's Markdown."""
    out = [
        "# Public API",
        "",
        "Every public name, by module, with its one-line purpose (written by",
        "`python tools/api_index.py`; `tests/test_api.py` checks it is current). The top level",
        "is what a user needs to train, sample and evaluate; everything else lives in its",
        "subpackage. Sizes (`__all__`) before the restructure of issue #10 → after it: top",
        "level 33 → 15; `scoresde.parameterization` 11 + `scoresde.adapters` 4 → 15 (one",
        "package); `scoresde.training` 5 + `scoresde.training_ckpt` 8 → 12 (one package).",
    ]
    for name in MODULES:
        mod = importlib.import_module(name)
        names = list(mod.__all__)
        out += ["", f"## `{name}` ({len(names)})", "", "| name | purpose |", "|---|---|"]
        out += [f"| `{n}` | {purpose(mod, n)} |" for n in names]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the page, or with ``--check`` return 1 if it differs from what would be written."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="only compare; exit 1 if out of date")
    args = p.parse_args(argv)
    text = render()
    if args.check:
        if not PAGE.is_file() or PAGE.read_text() != text:
            print(f"{PAGE} is out of date: run python tools/api_index.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
