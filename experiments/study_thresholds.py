"""Calibrate the study thresholds on training problems (never the reported 8gaussians).

* ``FLOOR_Z`` (:mod:`scoresde.studies.coverage`): exact draws should almost never fall more than
  FLOOR_Z floor sds below the floor of precision/recall (floor: 5 exact draws, as in a study).
* ``FLOOR_TIE_Z`` (:mod:`scoresde.studies.significance`): exact draws should sit at or below
  floor mean + FLOOR_TIE_Z floor sd for sliced W2 in nearly all trials.

Training problems: the ``2modes`` preset and two 3-component mixtures (well separated and
overlapping), at n = 500, 2000 and 5000. Prints the false-alarm rate per threshold; one torch
thread. Usage: ``python experiments/study_thresholds.py [--trials 40]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scoresde.analytic import GaussianMixture  # noqa: E402
from scoresde.cli.common import PRESETS  # noqa: E402
from scoresde.metrics import get_metric  # noqa: E402
from scoresde.studies import noise_floor_table, precision_recall  # noqa: E402

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


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--trials", type=int, default=40)
    args = p.parse_args()
    torch.set_num_threads(1)
    print(f"torch threads: {torch.get_num_threads()}")
    zs, tie_zs = (3.0, 4.0, 5.0), (2.0, 3.0, 4.0)
    sw2 = get_metric("sw2")
    for name, gm in TRAINING.items():
        for n in (500, 2000, 5000):

            def draw(k: int, g: torch.Generator, gm: GaussianMixture = gm) -> torch.Tensor:
                return gm.sample(k, g, dtype=torch.float32)

            ref = draw(n, torch.Generator().manual_seed(10_000))
            floor = noise_floor_table(draw, ref, ["sw2"], n=n, repeats=5, density=gm, seed=0)
            low = dict.fromkeys(zs, 0)
            high = dict.fromkeys(tie_zs, 0)
            for t in range(args.trials):
                x = draw(n, torch.Generator().manual_seed(500 + t))
                pr = precision_recall(x, gm)
                for z in zs:
                    low[z] += any(pr[c] < floor[c]["mean"] - z * floor[c]["sd"]
                                  for c in ("precision", "recall"))  # fmt: skip
                v = sw2(x, ref, torch.Generator().manual_seed(t))
                for z in tie_zs:
                    high[z] += v > floor["sw2"]["mean"] + z * floor["sw2"]["sd"]
            lows = ", ".join(f"z={z:g}: {low[z]}/{args.trials}" for z in zs)
            highs = ", ".join(f"z={z:g}: {high[z]}/{args.trials}" for z in tie_zs)
            print(
                f"{name:18s} n={n:5d}  below precision/recall floor [{lows}]  "
                f"sw2 above floor+z sd [{highs}]"
            )


if __name__ == "__main__":
    main()
