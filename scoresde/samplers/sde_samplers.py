"""Deprecated alias of :mod:`scoresde.samplers.reverse_sde` (renamed; kept while branches move)."""

from .reverse_sde import *  # noqa: F403
from .reverse_sde import get_predictor  # noqa: F401
