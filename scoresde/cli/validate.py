"""Up-front checks of a command's flags, before any work: combinations a mode ignores, ranges.

Each check raises :class:`~scoresde.cli.errors.CLIError` with one line naming the flag, what was
expected and what was received (DESIGN.md, contract 8). Flags that a mode would silently ignore
are refused rather than dropped.
"""

from __future__ import annotations

import argparse

from .errors import CLIError

__all__ = ["MAX_SEED", "RTOL_RANGE", "check_flags", "check_seed"]

#: Seeds are taken modulo nothing: they must fit a torch.Generator seed (64 bits, unsigned).
MAX_SEED = 2**63 - 1
#: The documented range of ``nll --rtol`` (= atol): below 1e-12 the float64 ODE solver cannot
#: meet the tolerance and stalls; above 1e-1 the log-likelihood is not worth the name.
RTOL_RANGE = (1e-12, 1e-1)


def check_seed(value: int | None, flag: str = "--seed") -> None:
    """Seeds in ``0..2**63 - 1`` (what a ``torch.Generator`` takes)."""
    if value is not None and not 0 <= value <= MAX_SEED:
        raise CLIError(f"{flag}: expected an integer in 0..2**63-1, received {value}")


def check_flags(args: argparse.Namespace, argv: list[str]) -> None:
    """Refuse flag values out of their documented range and flags the chosen mode ignores.

    Args:
        args: The parsed arguments.
        argv: The command line (to tell a flag given from its default).
    """
    given = {w.split("=")[0] for w in argv if w.startswith("-")}
    check_seed(getattr(args, "seed", None))
    for seed in getattr(args, "seeds", None) or []:
        check_seed(seed, "--seeds")
    if args.command == "nll":
        lo, hi = RTOL_RANGE
        if not lo <= args.rtol <= hi:
            raise CLIError(
                f"--rtol: expected a tolerance in [{lo:g}, {hi:g}], received {args.rtol:g}"
            )
        if args.divergence == "exact" and "--probes" in given:
            raise CLIError(
                "--probes: expected only with --divergence hutchinson (the exact divergence "
                f"draws no probes), received --probes {args.probes}"
            )
    if args.command == "compare":
        if args.ckpt and "--sde" in given:
            raise CLIError(
                f"--sde: expected only with --analytic (a checkpoint carries its own SDE), "
                f"received --sde {args.sde} with --ckpt"
            )
        if args.analytic and args.data:
            raise CLIError(
                "--data: expected only with --ckpt (an --analytic mixture draws its own "
                f"reference samples), received --data {args.data}"
            )
