"""Moved: the hybrid objective and its two-output network (still importable from here).

They live in :mod:`scoresde.losses.hybrid` and :mod:`scoresde.parameterization.eps_v`.
"""

from __future__ import annotations

from ..losses.hybrid import HybridLoss, learned_log_variance
from ..parameterization.eps_v import EpsVModel

__all__ = ["EpsVModel", "HybridLoss", "learned_log_variance"]
