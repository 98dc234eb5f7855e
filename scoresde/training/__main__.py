"""``python -m scoresde.training --config run.yaml --out runs/a`` (works under ``torchrun``)."""

import sys

from scoresde.training.loop import main

sys.exit(main())
