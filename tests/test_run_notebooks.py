"""tools/run_notebooks.py fails a notebook whose blank passes its check, crashes, or drifts from
its solution, and a solution that fails (the rules CI applies to notebooks/ and solutions/)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADER = "# %%\ndef check(x):\n    if x != 4:\n        raise AssertionError('not yet')\n\n"


def _runner():
    spec = importlib.util.spec_from_file_location(
        "run_notebooks", ROOT / "tools" / "run_notebooks.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _pair(tmp: Path, blank: str, solution: str, shared: str = HEADER) -> Path:
    (tmp / "solutions").mkdir(exist_ok=True)
    (tmp / "nb.py").write_text(shared + '# %% tags=["exercise"]\n' + blank)
    (tmp / "solutions" / "nb.py").write_text(HEADER + '# %% tags=["exercise"]\n' + solution)
    return tmp / "nb.py"


def test_a_good_pair_passes(tmp_path) -> None:
    nb = _pair(tmp_path, "answer = None\ncheck(answer)\n", "answer = 2 + 2\ncheck(answer)\n")
    run = _runner()
    assert (
        run.main(["--blanks", str(nb), "--solutions", str(tmp_path / "solutions" / "nb.py")]) == 0
    )


def test_each_broken_rule_fails(tmp_path) -> None:
    run = _runner()
    cases = {
        "passes": ("answer = 4\ncheck(answer)\n", "answer = 4\ncheck(answer)\n", HEADER),
        "crashes": ("answer = None + 1\ncheck(answer)\n", "answer = 4\ncheck(answer)\n", HEADER),
        "drifts": (
            "answer = None\ncheck(answer)\n",
            "answer = 4\ncheck(answer)\n",
            HEADER + "y = 1\n",
        ),
    }
    for name, (blank, solution, shared) in cases.items():
        d = tmp_path / name
        d.mkdir()
        assert run.main(["--blanks", str(_pair(d, blank, solution, shared))]) == 1, name
    failing = tmp_path / "failing_solution"
    failing.mkdir()
    bad = _pair(failing, "a = None\ncheck(a)\n", "a = 5\ncheck(a)\n")
    assert run.main(["--solutions", str(bad.parent / "solutions" / "nb.py")]) == 1
