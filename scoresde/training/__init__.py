"""Training: the loop (EMA, NaN guard, DDP through ``torchrun``), checkpoints and logs.

* :mod:`scoresde.training.loop`: :func:`train` and its result.
* :mod:`scoresde.training.checkpoint`: atomic, weights-only checkpoints, RNG states, ``load_model``.
* :mod:`scoresde.training.log`: ``log.csv`` (running means, loss binned by t) and ``eval.csv``.
"""

from __future__ import annotations

from scoresde.training.checkpoint import (
    CheckpointError,
    atomic_write_text,
    load_checkpoint,
    load_model,
    save_checkpoint,
)
from scoresde.training.loop import (
    EvalHook,
    TrainingDiverged,
    TrainResult,
    main,
    make_test_loss_hook,
    train,
)

__all__ = [
    "CheckpointError",
    "EvalHook",
    "TrainResult",
    "TrainingDiverged",
    "atomic_write_text",
    "load_checkpoint",
    "load_model",
    "main",
    "make_test_loss_hook",
    "save_checkpoint",
    "train",
]
