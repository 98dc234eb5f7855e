"""Up-front checks of a command's flags, before any work: combinations a mode ignores, ranges.

Each check raises :class:`~scoresde.cli.errors.CLIError` with one line naming the flag, what was
expected and what was received (DESIGN.md, contract 8). Flags that a mode would silently ignore
are refused rather than dropped.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from ..likelihood.ode import RTOL_RANGE
from .errors import CLIError

__all__ = [
    "MAX_SEED",
    "available_memory",
    "check_flags",
    "check_memory",
    "check_seed",
    "check_train_memory",
]

#: Seeds are taken modulo nothing: they must fit a torch.Generator seed (64 bits, unsigned).
MAX_SEED = 2**63 - 1


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


def available_memory(device: Any = "cpu") -> int | None:
    """Bytes available for new allocations on ``device`` (None if unknown)."""
    import torch

    dev = torch.device(device)
    if dev.type == "cuda" and torch.cuda.is_available():
        return int(torch.cuda.mem_get_info(dev)[0])
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def _gb(n: float) -> str:
    if n >= 1e12:
        return f"{n / 1e12:.3g} TB"
    return f"{n / 1e9:.3g} GB" if n >= 1e8 else f"{n / 1e6:.3g} MB"


def check_memory(needed: float, flag: str, value: int, how: str, device: Any = "cpu") -> None:
    """Refuse a size whose estimated memory exceeds 80% of what ``device`` has available.

    Args:
        needed: Estimated bytes.
        flag: The flag or config field (for the message).
        value: Its value.
        how: How the estimate was made (for the message).
        device: Where the memory is needed.
    """
    free = available_memory(device)
    if free is not None and needed > 0.8 * free:
        raise CLIError(
            f"{flag}: expected a size that fits in memory, received {value} (needs about "
            f"{_gb(needed)}: {how}; {_gb(free)} available)"
        )


def check_train_memory(model: Any, loss: Any, data: Any, batch_size: int, device: Any) -> None:
    """Measure the activation memory per example on a batch of 2, refuse a batch that cannot fit.

    The tensors autograd keeps for the backward pass are counted with
    :func:`torch.autograd.graph.saved_tensors_hooks`; the batch needs about twice that per
    example (the saved tensors and their gradients). Global RNG states are left untouched.
    """
    import torch

    x1 = data.scaler.transform(data.test[:1]).to(device)
    saved = [0]

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved[0] += t.numel() * t.element_size()
        return t

    def measure(n: int) -> int:
        saved[0] = 0
        x = x1.expand(n, *x1.shape[1:]).contiguous()
        with (
            torch.random.fork_rng(devices=[]),
            torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t),
        ):
            t, noise = loss.draw(x, torch.Generator(device=x.device).manual_seed(0))
            loss(model, x, t=t, noise=noise)
        return saved[0]

    per = 2 * max(0, measure(4) - measure(2)) / 2  # weights saved once cancel out
    check_memory(
        per * batch_size,
        "schedule.batch_size",
        batch_size,
        f"{per / 1e3:.3g} kB per example, measured on batches of 2 and 4",
        device,
    )
