"""Shared fixtures-as-functions for the spine tests."""

from __future__ import annotations

from typing import Any

import torch

from scoresde.sde import (
    VESDE,
    VPSDE,
    CustomBeta,
    CustomSigma,
    LinearSDE,
    SubVPSDE,
)


def all_sdes() -> dict[str, LinearSDE]:
    """Every SDE flavour, including user-plugged schedules."""
    return {
        "vp_linear": VPSDE(),
        "vp_cosine": VPSDE(schedule="cosine"),
        "subvp": SubVPSDE(),
        "ve": VESDE(),
        # beta(t) = 1 + 4 t^3, B(t) = t + t^4 (no closed-form inverse: bisection path)
        "vp_custom": VPSDE(schedule=CustomBeta(lambda t: 1 + 4 * t**3, lambda t: t + t**4)),
        # sigma(t) = 0.1 + 3 t^2 (autograd path for d sigma^2 / dt, bisection inverse)
        "ve_custom": VESDE(schedule=CustomSigma(lambda t: 0.1 + 3 * t**2)),
    }


def random_spd(k: int, d: int, generator: torch.Generator) -> torch.Tensor:
    """k random symmetric positive-definite d x d matrices (float64)."""
    a = torch.randn(k, d, d, generator=generator, dtype=torch.float64) / d**0.5
    return a @ a.transpose(-1, -2) + 0.3 * torch.eye(d, dtype=torch.float64)


def cli_error(argv: list[str], capsys: Any) -> str:
    """Run ``scoresde argv``; assert exit status 2 and one stderr line, no traceback; return it."""
    from scoresde.cli import main

    try:
        code = main(argv)
    except SystemExit as exc:  # argparse errors
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err
