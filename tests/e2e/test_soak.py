"""The soak against the shared lab (`bench.soak --quick`): mixed reads, writes and watches, every lab process
sampled; no component's memory grows more than 10 %, and watches, fds and tasks return to their baseline.
Only with PB_SOAK=1 (docs/DEVELOPING.md); PB_SOAK_DURATION sets the length (default: --quick, 90 s).
"""

from __future__ import annotations

import os

import pytest

from tests.integration.test_soak import TEST_TIMEOUT, run_soak

from .conftest import Lab

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(os.environ.get("PB_SOAK") != "1", reason="the soak: set PB_SOAK=1")]


@pytest.mark.timeout(TEST_TIMEOUT)
def test_soak_lab(lab: Lab) -> None:
    run_soak("--dir", str(lab.dir))
