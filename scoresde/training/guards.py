"""Guards of the training loop: argument checks, finite data, signals, NaN streaks, temporaries.

Each turns a way a run could be lost or reported falsely into an error or a clean stop
(DESIGN.md, contract 13): SIGINT/SIGTERM become a flag checked between steps (the run saves and
stops, and the CLI exits 128 + signal), non-finite data is refused before the first step, a
divergence names the last good checkpoint, and temporaries of a killed writer are removed.
"""

from __future__ import annotations

import inspect
import os
import random
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from scoresde._utils import check_same_sde
from scoresde.data import Dataset
from scoresde.parameterization import ScoreModel

if TYPE_CHECKING:
    from scoresde.training.steps import RunState

__all__ = [
    "Stopper",
    "check_run_folder",
    "check_args",
    "check_finite_data",
    "check_labels_args",
    "diverged_message",
    "remove_stale_temporaries",
    "seed_global_rngs",
]


class Stopper:
    """Turns SIGINT/SIGTERM into a flag checked between steps (main thread only).

    The run finishes its step, writes a checkpoint and stops; a second signal stops at once
    (``KeyboardInterrupt``), keeping the last whole checkpoint.
    """

    def __init__(self) -> None:
        self.flag, self.signum, self.old = False, 0, dict[int, Any]()

    def __enter__(self) -> Stopper:
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self.old[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.flag:  # a second signal: stop now (the last checkpoint on disk is whole)
            raise KeyboardInterrupt(signal.Signals(signum).name)
        self.flag, self.signum = True, signum

    def __exit__(self, *exc: Any) -> None:
        for s, h in self.old.items():
            signal.signal(s, h)


def check_run_folder(out: Path) -> None:
    """Before the first step: the folder must take a checkpoint (no failure at the first save).

    Raises:
        ValueError: If ``out`` or ``out/checkpoint.pt`` is not what it must be, or is not
            writable.
    """
    ckpt = out / "checkpoint.pt"
    if ckpt.exists() and not ckpt.is_file():
        raise ValueError(f"train: expected {ckpt} to be a checkpoint file, received a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".checkpoint.pt.{os.getpid()}probe.tmp"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise ValueError(f"train: expected a writable run folder, received {out} ({err})") from err


def seed_global_rngs(seed: int) -> None:
    """Seed numpy's and Python's global RNGs (a fresh run; a resume restores them instead).

    So that the RNG states a checkpoint holds, and anything an eval hook draws from them, are
    the same after any number of crashes and resumes as in one uninterrupted run.
    """
    np.random.seed(seed % 2**32)  # noqa: NPY002 (the global state is what is checkpointed)
    random.seed(seed)


def diverged_message(run: RunState) -> str:
    """The :class:`TrainingDiverged` message: the streak's steps and the checkpoint to go back to."""
    first = run.step - run.consecutive + 1
    kept = (
        f"go back to the last good checkpoint {run.ckpt} (step {run.saved_step})"
        if run.saved_step is not None
        else "no checkpoint was written"
    )
    return (
        f"training diverged: {run.consecutive} consecutive steps with a non-finite loss or "
        f"gradient (steps {first}-{run.step}); {kept}. Lower the learning rate, clip gradients "
        "or check the data for NaN/inf."
    )


def remove_stale_temporaries(out: Path) -> list[Path]:
    """Delete temporary files of an earlier process of this run killed while writing.

    :func:`~scoresde.training.checkpoint.save_checkpoint` writes ``.checkpoint.pt.<random>.tmp``
    and renames it; ``kill -9`` during the write leaves the temporary behind. One run writes
    into one folder (the CLI refuses a folder of another run), so they are safe to remove.
    """
    stale = [
        p
        for name in ("checkpoint.pt", "log.csv", "eval.csv", "config.json")
        for p in out.glob(f".{name}.*.tmp")
    ]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def check_finite_data(data: Dataset) -> None:
    """The training data in model units must be finite (huge values overflow the scaler)."""
    for split in ("train", "test"):
        x = getattr(data, split, None)
        if isinstance(x, torch.Tensor) and x.is_floating_point():
            z = data.scaler.transform(x[:10_000])
            if not torch.isfinite(z).all():
                bad = int((~torch.isfinite(z)).sum())
                raise ValueError(
                    f"train: expected finite data in model units, received {bad} non-finite "
                    f"values in the {split} split after scaling (|x| up to "
                    f"{float(x[:10_000].abs().max()):.3g}); rescale the data"
                )


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"train: expected {name} an integer >= {minimum}, received {value!r}")


def check_args(
    model: Any,
    loss: Any,
    data: Any,
    optimizer: Any,
    counts: dict[str, int],
    ema_decay: float,
    grad_clip: float | None,
) -> None:
    """Validate :func:`scoresde.training.train`'s arguments (types, counts, ranges, same SDE)."""
    for name, value, kind in (
        ("model", model, ScoreModel),
        ("data", data, Dataset),
        ("optimizer", optimizer, torch.optim.Optimizer),
    ):
        if not isinstance(value, kind):
            raise TypeError(
                f"train: expected {name} a {kind.__name__}, received {type(value).__name__}"
            )
    if not (callable(getattr(loss, "terms", None)) and callable(getattr(loss, "draw", None))):
        raise TypeError(
            f"train: expected loss a scoresde.losses.Loss, received {type(loss).__name__}"
        )
    for name, value in counts.items():
        _check_int(name, value, 0 if name == "eval_every" else 1)
    if not 0 <= ema_decay < 1:
        raise ValueError(f"train: expected ema_decay in [0, 1), received {ema_decay!r}")
    if grad_clip is not None and not grad_clip > 0:
        raise ValueError(f"train: expected grad_clip > 0 or None, received {grad_clip!r}")
    own = {id(p) for p in model.parameters()}
    if any(id(p) not in own for g in optimizer.param_groups for p in g["params"]):
        raise ValueError("train: the optimizer holds parameters that are not the model's")
    check_same_sde(model.sde, getattr(loss, "sde", model.sde), what="loss")


def check_labels_args(model: ScoreModel, loss: Any, data: Dataset, label_dropout: float) -> None:
    """Check the labels of a run: data and loss fit a conditional model, dropout fits the model.

    A conditional model needs labelled data with its number of classes and a loss whose terms
    take labels; label dropout is a probability, nonzero only for a conditional model.

    Raises:
        ValueError: Naming what was expected and what was received.
    """
    p = label_dropout
    if isinstance(p, bool) or not isinstance(p, int | float) or not (0 <= p < 1):
        raise ValueError(f"train: expected label_dropout in [0, 1), received {p!r}")
    k = model.num_classes
    if k is None:
        if p:
            raise ValueError(
                f"train: label_dropout = {p:g} needs a class-conditional model "
                "(a network with num_classes), received an unconditional one"
            )
        return
    have = None if data.labels is None else data.labels.num_classes
    if have != k:
        raise ValueError(
            f"train: the conditional model has num_classes = {k}; expected data with {k} "
            f"classes, received {data.name!r} with "
            + ("no labels" if have is None else f"{have} classes")
        )
    if "y" not in inspect.signature(loss.terms).parameters:
        raise ValueError(
            f"train: a conditional model needs a loss whose terms take labels y (dsm, ddpm, "
            f"smld), received {type(loss).__name__}"
        )
