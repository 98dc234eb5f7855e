"""Training: ``train(model, loss, data, optimizer, ...)`` with EMA, checkpoints, logs and DDP.

* :mod:`scoresde.training.loop`: :func:`train` and its result; takes objects, never configs.
* :mod:`scoresde.training.steps`: the named steps of a run (restore, batch, optimize, save).
* :mod:`scoresde.training.checkpoint`: atomic, weights-only checkpoints, RNG states, and
  :func:`load_model`, which rebuilds a model through the network and SDE registries.
* :mod:`scoresde.training.log`: ``log.csv`` (running means, loss binned by t) and ``eval.csv``.
* DDP under ``torchrun`` runs through :mod:`scoresde.distributed.ddp` (the one runtime layer).

The command line (``scoresde train``, also under ``torchrun``) builds the objects from a run
config and calls :func:`train`.
"""

from __future__ import annotations

from scoresde.training.checkpoint import (
    CheckpointError,
    TrainedModel,
    UnverifiedCheckpointWarning,
    content_hash,
    load_checkpoint,
    load_model,
    model_config,
    model_from_config,
    save_checkpoint,
)
from scoresde.training.loop import (
    EvalHook,
    TrainingDiverged,
    TrainResult,
    make_test_loss_hook,
    train,
)

__all__ = [
    "CheckpointError",
    "EvalHook",
    "TrainResult",
    "TrainedModel",
    "TrainingDiverged",
    "UnverifiedCheckpointWarning",
    "content_hash",
    "load_checkpoint",
    "load_model",
    "make_test_loss_hook",
    "model_config",
    "model_from_config",
    "save_checkpoint",
    "train",
]
