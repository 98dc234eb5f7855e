"""Shared test configuration: one torch thread (2-core CI machines), float64 helpers."""

from __future__ import annotations

import torch

torch.set_num_threads(1)
