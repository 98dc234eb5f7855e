"""The ``scoresde`` command line: ``demo | train | sample | nll | compare``.

The only place that reads registry names from the user (DESIGN.md, contract 7). Every run writes
a folder (``--out``, default ``runs/<command>-<time>``) with the resolved ``config.json``,
``results.json``, a Markdown ``report.md`` and PNG figures. User errors print one line and exit
with status 2; no tracebacks. ``sample``, ``nll`` and ``compare`` also run under ``torchrun
--nproc_per_node N``: rank 0 writes the same files as one process (docs/howto/scale-out.md);
a failed or stalled rank ends every rank with one line and exit status 1.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from .parser import build_parser

__all__ = ["build_parser", "main"]


def _check_threads(value: int | None) -> int | None:
    from .common import CLIError

    top = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if value is not None and not 1 <= value <= (top or 1):
        raise CLIError(
            f"--threads: expected an integer in 1..{top} (the CPUs this process may use), "
            f"received {value}"
        )
    return value


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``scoresde`` console script and ``python -m scoresde``.

    Exit status: 0 on success; 2 for a user error (one line on stderr, no traceback); 1 when a
    file cannot be written (disk full, I/O error, no permission: one line) or a rank failed;
    130/143 when stopped by SIGINT/SIGTERM, with the command that resumes the run.
    """
    from .signals import Stopped, early_handlers, watch_launcher

    with early_handlers():  # before anything slow: a signal from here on is a clean stop
        argv = list(sys.argv[1:] if argv is None else argv)
        args = build_parser().parse_args(argv)
        watch_launcher(args.command)
        created: list[Path] = []
        try:
            try:
                return _run(args, argv, created)
            except KeyboardInterrupt as err:  # e.g. a second signal during training
                if isinstance(err, Stopped):
                    raise
                name = str(err.args[0]) if err.args else ""  # Stopper: the signal's name
                signum = signal.SIGTERM if name == "SIGTERM" else signal.SIGINT
                raise Stopped(signum) from None
        except Stopped as stop:
            from .rundir import release_locks

            release_locks(cleanup=True)
            _remove_if_empty(created, args.out)
            sys.stderr.write(f"scoresde {args.command}: {stop.describe(_resume(argv, args))}\n")
            return stop.code
        finally:
            from .rundir import release_locks

            release_locks()


def _run(args: argparse.Namespace, argv: list[str], created: list[Path]) -> int:
    import torch

    from ..distributed import RankFailedError, WriteError, env
    from ..distributed.atomic import as_write_error
    from ..training import CheckpointError, TrainingDiverged
    from .common import CLIError, Interrupted, resolve_device, run_dir
    from .rundir import release_locks

    try:
        device = resolve_device(args.device)
        threads = _check_threads(args.threads) or (1 if device.type == "cpu" else None)
        if threads:
            torch.set_num_threads(threads)
        from . import commands, compare, demo, nll
        from .validate import check_flags

        check_flags(args, argv)
        release_locks()  # one main() call, one run folder
        if env.world_size() == 1:  # claim the run folder before any work
            created[:] = _new_paths(args.out)
            default = args.out is None
            args.out = str(run_dir(args.out, args.command, args.force))
            created[:] = [Path(args.out)] * default + created
        run = {
            "demo": demo.run_demo,
            "train": commands.run_train,
            "sample": commands.run_sample,
            "nll": nll.run_nll,
            "compare": compare.run_compare,
        }[args.command]
        out = run(args, device)
    except Interrupted as err:
        sys.stderr.write(f"scoresde {args.command}: {err} Resume with: {_resume(argv, args)}\n")
        return err.code
    except WriteError as err:  # disk full, I/O error, no permission: the environment, not input
        sys.stderr.write(f"scoresde {args.command}: error: {err.strerror}\n")
        release_locks(cleanup=True)
        _remove_if_empty(created, args.out)
        return 1
    except RankFailedError as err:  # under torchrun: another rank failed or stalled
        sys.stderr.write(f"scoresde {args.command}: error: {err}\n")
        return 1
    except (
        CLIError,
        ValueError,
        TypeError,
        OSError,
        ImportError,
        CheckpointError,
        TrainingDiverged,
        RuntimeError,
    ) as err:
        written = as_write_error(err)
        raw = isinstance(err, RuntimeError) and not isinstance(
            err, (CheckpointError, TrainingDiverged)
        )
        if raw and written is None and env.world_size() > 1:
            first = str(err).strip().splitlines()[0][:200] if str(err).strip() else ""
            sys.stderr.write(
                f"scoresde {args.command} (rank {env.rank()}): error: expected "
                f"the other ranks and the rendezvous store to answer, received {type(err).__name__}"
                f" ({first})\n"
            )
            return 1
        if raw and written is None:
            raise
        text = written.strerror if written is not None else str(err)
        msg = text.splitlines()[0] if text else type(err).__name__
        sys.stderr.write(f"scoresde {args.command}: error: {msg}\n")
        release_locks(cleanup=True)
        _remove_if_empty(created, args.out)
        return 1 if written is not None else 2
    if out is not None:  # rank 0 (or one process) wrote the run folder
        print(f"wrote {out}")
    return 0


def _resume(argv: list[str], args: argparse.Namespace) -> str:
    """The command line that resumes this run: the same arguments, with its ``--out``."""
    import shlex

    words, skip = [], False
    for w in argv:
        if skip:
            skip = False
        elif w == "--out":
            skip = True
        elif not w.startswith("--out="):
            words.append(w)
    if args.out:
        words += ["--out", str(args.out)]
    return shlex.join(["scoresde", *words])


def _new_paths(out: str | None) -> list[Path]:
    """The folders that claiming ``out`` (or the default ``runs/...``) may create."""
    if out is None:
        return [Path("runs")] if not Path("runs").exists() else []
    path, new = Path(out), []
    while not path.exists() and path != path.parent:
        new.append(path)
        path = path.parent
    return new


def _remove_if_empty(created: list[Path], out: str | None) -> None:
    """After an error, remove the run folder (and parents) this call created, if still empty."""
    for path in created:
        try:
            path.rmdir()  # only succeeds for an empty folder
        except OSError:
            pass
