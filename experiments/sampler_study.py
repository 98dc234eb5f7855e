"""Which sampler at which NFE budget, ranked beyond noise, and the study thresholds' calibration.

Held-out problem (reported in docs/howto/sampler-study.md): the ``8gaussians`` mixture, VP SDE,
exact score, i.e. ``scoresde compare --analytic 8gaussians --samplers ddim,dpm_solver_2,pf_heun,
ddpm --nfe 5,10,20 --seeds 0,1,2,3,4 --n 5000``, run through the study engine and its report
(paired rankings with ties, the CE-gap cross-check, precision/recall against the floor).

Training problems (the thresholds were chosen on them, never on 8gaussians): the ``2modes``
preset and two 3-component mixtures (well separated, overlapping). For each, at several sample
sizes, a floor of 5 exact draws (50 for precision/recall, as in a study) and then ``trials``
fresh exact draws: how often an exact draw falls more than z floor sds *below* the
precision/recall floor (``FLOOR_Z`` in :mod:`scoresde.studies.coverage`), and more than z floor
sds *above* the sliced-W2 floor (``FLOOR_TIE_Z`` in :mod:`scoresde.studies.significance`).

Figures (from the study's report): quality_vs_nfe_sw2.png, quality_vs_nfe_ce_gap.png,
samples_grid.png. results.json: the study's floor, rankings, disagreements, precision/recall
check and summaries, its CPU seconds on one thread, and the calibration counts.

Run: ``python experiments/sampler_study.py [--fast] [--out DIR]`` (about 2 CPU-minutes).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parse_args, save_json  # noqa: E402

from scoresde.analytic import GaussianMixture  # noqa: E402
from scoresde.cli.common import PRESETS  # noqa: E402
from scoresde.cli.study_report import write_study_report  # noqa: E402
from scoresde.metrics import get_metric  # noqa: E402
from scoresde.studies import (  # noqa: E402
    Problem,
    StudySpec,
    noise_floor_table,
    precision_recall,
    run_study,
)
from scoresde.studies.coverage import FLOOR_Z  # noqa: E402
from scoresde.studies.significance import FLOOR_TIE_Z  # noqa: E402

TRAINING = {
    "2modes": PRESETS["2modes"](),
    "three_separated": GaussianMixture(
        [0.2, 0.3, 0.5], [[-4.0, 0.0], [4.0, 0.0], [0.0, 4.0]], [[0.3, 0.3]] * 3
    ),  # fmt: skip
    "three_overlapping": GaussianMixture(
        [0.5, 0.25, 0.25],
        [[0.0, 0.0], [1.5, 0.0], [0.0, 1.5]],
        [[0.5, 0.4], [0.3, 0.6], [0.4, 0.4]],
    ),  # fmt: skip
}
FIGURES = ("quality_vs_nfe_sw2.png", "quality_vs_nfe_ce_gap.png", "samples_grid.png")


def calibrate(sizes: tuple[int, ...], trials: int) -> dict[str, Any]:
    """False alarms of exact draws against their own floor, per training problem and size."""
    sw2 = get_metric("sw2")
    zs, tie_zs = (3.0, 4.0, 5.0), (2.0, 3.0, 4.0)
    out: dict[str, Any] = {"trials": trials, "floor_z": list(zs), "tie_z": list(tie_zs),
                           "chosen": {"FLOOR_Z": FLOOR_Z, "FLOOR_TIE_Z": FLOOR_TIE_Z},
                           "rows": []}  # fmt: skip
    for name, gm in TRAINING.items():
        for n in sizes:

            def draw(k: int, g: torch.Generator, gm: GaussianMixture = gm) -> torch.Tensor:
                return gm.sample(k, g, dtype=torch.float32)

            ref = draw(n, torch.Generator().manual_seed(10_000))
            floor = noise_floor_table(draw, ref, ["sw2"], n=n, repeats=5, density=gm, seed=0)
            low, high = [0] * len(zs), [0] * len(tie_zs)
            for t in range(trials):
                x = draw(n, torch.Generator().manual_seed(500 + t))
                pr = precision_recall(x, gm)
                for i, z in enumerate(zs):
                    low[i] += any(pr[c] < floor[c]["mean"] - z * floor[c]["sd"]
                                  for c in ("precision", "recall"))  # fmt: skip
                v = sw2(x, ref, torch.Generator().manual_seed(t))
                for i, z in enumerate(tie_zs):
                    high[i] += v > floor["sw2"]["mean"] + z * floor["sw2"]["sd"]
            out["rows"].append({"problem": name, "n": n, "below_floor": low, "above_floor": high})
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the held-out study and the calibration; write figures and results.json."""
    args = parse_args("sampler_study", __doc__.splitlines()[0], argv)
    started = time.perf_counter()
    torch.set_num_threads(1)
    fast = args.fast
    spec = StudySpec(samplers=["ddim", "dpm_solver_2", "pf_heun", "ddpm"],
                     nfe=[5, 10] if fast else [5, 10, 20], seeds=[0, 1] if fast else [0, 1, 2, 3, 4],
                     n=500 if fast else 5000, metrics=["sw2", "mmd"])  # fmt: skip
    problem = Problem.analytic(PRESETS["8gaussians"](), "vp", spec.n, 10_000)
    cpu = time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        result = run_study(spec, problem, Path(tmp) / "run")
        assert result is not None
        write_study_report(Path(tmp) / "run", result, "8gaussians sampler study")
        cpu = time.process_time() - cpu
        for name in FIGURES:
            shutil.copy(Path(tmp) / "run" / name, args.out / name)
        import json

        report = json.loads((Path(tmp) / "run" / "results.json").read_text())
    report.pop("rows")
    calibration = calibrate((500,) if fast else (500, 2000, 5000), 3 if fast else 40)
    results = {"fast": fast, "spec": spec.to_dict(), "threads": torch.get_num_threads(),
               "study_cpu_seconds": cpu, "study": report, "calibration": calibration,
               "figures": list(FIGURES)}  # fmt: skip
    save_json(results, args.out, started)
    return results


if __name__ == "__main__":
    main()
