"""Study specs (crossed/zipped factors), reproducible reruns, resume after a kill, the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from scoresde.cli import main
from scoresde.cli.common import PRESETS
from scoresde.studies import Problem, StudySpec, load_spec, run_study

TWO = PRESETS["2modes"]()
SPEC = {"samplers": ["ddim", "pf_euler"], "nfe": [4, 8], "seeds": [0, 1], "n": 200,
        "metrics": ["sw2"], "factors": {"t_end": [1e-3, 1e-2]}, "floor_repeats": 2}  # fmt: skip


def _numbers(rows: list[dict]) -> list[dict]:
    return [
        {k: v for k, v in r.items() if k not in ("wall_time_s", "us_per_sample", "cpu_time_s")}
        for r in rows
    ]


def test_spec_crossed_zipped_and_from_files(tmp_path: Path) -> None:
    cross = StudySpec.from_dict({**SPEC, "factors": {"grid": ["uniform", "log_snr"],
                                                     "t_end": [1e-3, 1e-4]}})  # fmt: skip
    zipped = StudySpec.from_dict({**cross.to_dict(), "combine": "zip"})
    assert len(cross.settings()) == 4 and len(zipped.settings()) == 2
    assert zipped.settings()[1] == {"grid": "log_snr", "t_end": 1e-4}
    assert len(cross.cells()) == 2 * 4 * 2 * 2  # seeds x settings x samplers x NFEs
    assert cross.cells()[0].config == "ddim [grid=uniform, t_end=0.001]"
    import yaml

    (tmp_path / "s.yaml").write_text(yaml.safe_dump(cross.to_dict()))
    (tmp_path / "s.json").write_text(json.dumps(cross.to_dict()))
    assert load_spec(tmp_path / "s.yaml") == load_spec(tmp_path / "s.json") == cross
    with pytest.raises(ValueError, match="zipped factors need equal lengths, received"):
        StudySpec.from_dict({**SPEC, "combine": "zip", "factors": {"a": [1], "b": [1, 2]}})
    with pytest.raises(ValueError, match="unknown keys \\['nfes'\\]"):
        StudySpec.from_dict({**SPEC, "nfes": [1]})
    with pytest.raises(ValueError, match="expected nfe as a non-empty list of integers >= 1"):
        StudySpec.from_dict({**SPEC, "nfe": [0]})
    with pytest.raises(TypeError, match="expected a mapping, received list"):
        StudySpec.from_dict([])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="expected a StudySpec, received dict"):
        run_study(SPEC, Problem.analytic(TWO))  # type: ignore[arg-type]


def test_same_spec_same_numbers_and_factors_reach_the_sampler(tmp_path: Path) -> None:
    spec = StudySpec.from_dict(SPEC)
    problem = Problem.analytic(TWO, n_reference=200)
    a = run_study(spec, problem, tmp_path / "a")
    b = run_study(spec, Problem.analytic(TWO, n_reference=200), tmp_path / "b")
    assert len(a.rows) == 2 * 2 * 2 * 2 and _numbers(a.rows) == _numbers(b.rows)
    assert a.floor == b.floor and a.floor["sw2"]["sd"] > 0
    assert {"spec.json", "env.json", "floor.json", "cells.jsonl"} <= {p.name for p in
                                                                      (tmp_path / "a").iterdir()}  # fmt: skip
    assert json.loads((tmp_path / "a" / "spec.json").read_text()) == spec.to_dict()
    # t_end is a real factor: ddim's last step differs, and so do its samples.
    r = {(x["sampler"], x["nfe_target"], x["seed"]): x for x in a.rows}
    assert r[("ddim [t_end=0.001]", 8, 0)]["sw2"] != r[("ddim [t_end=0.01]", 8, 0)]["sw2"]
    with pytest.raises(ValueError, match="holds a different spec"):
        run_study(StudySpec.from_dict({**SPEC, "n": 100}), problem, tmp_path / "a")


_SCRIPT = """
import sys, time
from scoresde.cli.common import PRESETS
from scoresde.studies import Problem, StudySpec, run_study
spec = StudySpec.from_dict({spec})
def slow(msg):
    print("cell", flush=True)
    time.sleep(0.2)
run_study(spec, Problem.analytic(PRESETS["2modes"](), n_reference=200), sys.argv[1], progress=slow)
"""


def test_killed_study_resumes_skipping_finished_cells(tmp_path: Path) -> None:
    spec = StudySpec.from_dict({**SPEC, "nfe": [4, 8, 16]})
    out = tmp_path / "run"
    script = tmp_path / "study.py"
    script.write_text(textwrap.dedent(_SCRIPT.format(spec=repr(spec.to_dict()))))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, str(script), str(out)], env=env,
                            stdout=subprocess.PIPE, start_new_session=True)  # fmt: skip
    cells = out / "cells.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if cells.is_file() and len(cells.read_text().splitlines()) >= 4:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = len(cells.read_text().splitlines())
    total = len(spec.cells())
    assert 4 <= finished < total, finished
    runs: list[str] = []
    resumed = run_study(spec, Problem.analytic(TWO, n_reference=200), out, progress=runs.append)
    assert len(runs) == total - finished  # the finished cells were skipped, not rerun
    assert len(cells.read_text().splitlines()) == total
    fresh = run_study(spec, Problem.analytic(TWO, n_reference=200), tmp_path / "fresh")
    assert _numbers(resumed.rows) == _numbers(fresh.rows)


def test_compare_cli_from_a_spec_file_groups_by_factor(tmp_path: Path, capsys) -> None:
    spec = {"samplers": ["dpm_solver_2"], "nfe": [5, 10], "seeds": [0], "n": 200,
            "metrics": ["sw2"], "factors": {"grid": ["uniform", "log_snr"], "t_end": [1e-3, 1e-4]},
            "floor_repeats": 2}  # fmt: skip
    path = tmp_path / "study.json"
    path.write_text(json.dumps(spec))
    out = tmp_path / "c"
    argv = ["compare", "--analytic", "2modes", "--spec", str(path), "--out", str(out), "--quiet"]
    assert main(argv) == 0
    report = (out / "report.md").read_text()
    for part in ("## By grid", "## By t_end", "Noise floor", "## ce_gap", "## mode_mass_err",
                 "Best configuration per NFE budget", "Pareto"):  # fmt: skip
        assert part in report, part
    for fig in ("factors.png", "pareto.png", "samples_grid.png", "quality_vs_nfe_sw2.png"):
        assert (out / fig).is_file(), fig
    res = json.loads((out / "results.json").read_text())
    assert len(res["rows"]) == 8 and set(res["floor"]) >= {"sw2", "ce_gap", "mode_mass_err"}
    before = (out / "cells.jsonl").read_text()
    assert main(argv) == 0 and (out / "cells.jsonl").read_text() == before  # resumed: nothing new
    capsys.readouterr()
    assert main(argv + ["--nfe", "5"]) == 2
    assert "--spec: the spec file sets the study; received also --nfe" in capsys.readouterr().err


def test_data_reference_gives_a_floor_without_a_density(tmp_path: Path) -> None:
    import torch

    from scoresde.sde import VPSDE
    from scoresde.studies import data_pool_sampler

    sde = VPSDE()
    points = TWO.sample(600, torch.Generator().manual_seed(3), dtype=torch.float32)
    problem = Problem(sde, TWO.with_sde(sde), points[:200], data_pool_sampler(points[200:]))
    res = run_study(StudySpec.from_dict({**SPEC, "factors": {}, "seeds": [0]}), problem)
    assert set(res.floor) == {"sw2"} and res.floor["sw2"]["sd"] > 0
    assert all("ce_gap" not in r and r["sw2"] > 0 for r in res.rows)
