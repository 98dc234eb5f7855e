"""``FORMAT:PATH`` -> a loaded model: the one place that maps a format name to its loader."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..._utils import names_list
from .diffusers_folder import load_diffusers
from .files import Pretrained
from .kdiffusion import load_kdiffusion
from .score_sde import load_score_sde

__all__ = ["FORMATS", "load_pretrained"]

#: Model formats by name: ``name -> loader(path) -> Pretrained``.
FORMATS: dict[str, Callable[..., Pretrained]] = {
    "diffusers": load_diffusers,
    "kdiffusion": load_kdiffusion,
    "scoresde": load_score_sde,
}


def load_pretrained(spec: str, device: Any = "cpu") -> Pretrained:
    """Load ``FORMAT:PATH`` (e.g. ``diffusers:runs/ddpm``) onto ``device``, in eval mode.

    ``FORMAT`` is one of :data:`FORMATS`: ``diffusers`` (a diffusers folder), ``kdiffusion`` (a
    k-diffusion/EDM denoiser checkpoint) or ``scoresde`` (a score_sde checkpoint folder).

    Raises:
        ValueError: If ``spec`` is not ``FORMAT:PATH`` with a known format.
        FileNotFoundError: If ``PATH`` does not exist.
    """
    name, sep, path = spec.partition(":")
    if not sep or name not in FORMATS or not path:
        raise ValueError(
            f"expected FORMAT:PATH with FORMAT one of {names_list(FORMATS)}, received {spec!r}"
        )
    if not Path(path).exists():
        raise FileNotFoundError(f"{name}: expected an existing folder or file, received {path}")
    loaded = FORMATS[name](path)
    return loaded._replace(model=loaded.model.to(device).eval())
