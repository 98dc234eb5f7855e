"""Deprecated alias of :mod:`scoresde.samplers.run` (renamed; kept while branches migrate)."""

from .run import *  # noqa: F403
from .run import Coefs, CountedScore, SamplerRun, check_grid, check_state, prepare, sqrt_pos  # noqa: F401
