"""Shared test configuration: one torch thread (2-core CI machines), no leaked processes.

The test process is made a child subreaper, so that a process a test starts (or its orphaned
grandchildren, e.g. the ranks of a killed ``torchrun``) stays its descendant; after every test
:func:`tests.procs.reap_survivors` fails the test if any is still alive (and kills it).
"""

from __future__ import annotations

import pytest
import torch

from tests.procs import children, reap_survivors, subreaper

torch.set_num_threads(1)
SUBREAPER = subreaper()


@pytest.fixture(autouse=True)
def no_process_survives_the_test():
    """Every process a test starts ends with the test (issue #24: orphaned ranks)."""
    before = children()
    yield
    survivors = reap_survivors(before)
    assert not survivors, f"processes started by the test still alive (killed now): {survivors}"
