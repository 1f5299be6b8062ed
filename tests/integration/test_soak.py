"""The soak against a standalone apiserver and etcd (`bench.soak --standalone`): memory growth at most 10 %,
watches, fds and asyncio tasks back at their baseline once the clients stop. Only with PB_SOAK=1
(docs/DEVELOPING.md); PB_SOAK_DURATION sets the length in seconds (default: --quick, 90 s).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(os.environ.get("PB_SOAK") != "1", reason="the soak: set PB_SOAK=1")


DURATION = os.environ.get("PB_SOAK_DURATION", "")
# bench.soak's own bound; the test's (pytest-timeout, 300 s by default) adds room for a lab's start.
RUN_TIMEOUT = float(DURATION or 90) * 2 + 120
TEST_TIMEOUT = int(RUN_TIMEOUT) + 600


def run_soak(*args: str) -> dict[str, object]:
    length = ["--duration", DURATION] if DURATION else ["--quick"]
    res = subprocess.run([sys.executable, "-m", "bench.soak", *length, *args], capture_output=True, text=True,
                         timeout=RUN_TIMEOUT, cwd=REPO)
    lines = res.stdout.strip().splitlines()
    assert lines, f"bench.soak printed nothing ({res.returncode}):\n{res.stderr[-3000:]}"
    figures: dict[str, object] = json.loads(lines[-1])
    print("\n".join(lines[-40:]))  # the report, shown with -s
    report = "\n".join(lines[-40:]) + "\n" + res.stderr[-2000:]
    assert figures["failures"] == [], report  # every reason, each component's (bench.soak.failures)
    assert figures["flagged"] == [], report
    assert figures["watchers_back_to_baseline"] is True, report
    assert figures["apiserver_fds_leaked"] == 0, report
    leaked = figures["apiserver_tasks_leaked"]
    assert isinstance(leaked, int) and leaked <= 0, report
    assert figures["errors"] == 0, report
    return figures


@pytest.mark.timeout(TEST_TIMEOUT)
def test_soak_standalone() -> None:
    run_soak("--standalone")
