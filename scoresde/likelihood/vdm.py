"""Moved: the VDM objective lives in :mod:`scoresde.losses.vdm` (this name stays importable)."""

from __future__ import annotations

from ..losses.vdm import VDMLoss, VDMTerms, vdm_vlb

__all__ = ["VDMLoss", "VDMTerms", "vdm_vlb"]
