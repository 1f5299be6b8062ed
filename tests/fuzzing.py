"""Hypothesis settings shared by the fuzz tests (tests/unit/test_fuzz_*.py, tests/integration/test_fuzz_apiserver.py).

Profiles: `ci` (selected when CI is set) is derandomized, so a CI run is reproducible; `dev` (the default)
is random and prints the seed of a failure (`print_blob`); `PB_FUZZ_LONG=1` multiplies every test's example
count by PB_FUZZ_LONG_FACTOR (default 50) for a long local run.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_CHECKS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]

settings.register_profile("ci", derandomize=True, deadline=None, suppress_health_check=_CHECKS, database=None)
settings.register_profile("dev", deadline=None, suppress_health_check=_CHECKS, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

LONG = bool(os.environ.get("PB_FUZZ_LONG"))
_FACTOR = int(os.environ.get("PB_FUZZ_LONG_FACTOR", "50"))


def examples(n: int) -> settings:
    """Settings for a test of `n` examples (n * the long factor under PB_FUZZ_LONG)."""
    return settings(max_examples=n * _FACTOR if LONG else n, deadline=None)
