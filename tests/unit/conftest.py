"""Fixtures shared by unit tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from pybernetes.clock import settle


@pytest.fixture
async def no_leaked_tasks() -> AsyncIterator[None]:
    """After the test, no asyncio task it started is still running (for the modules that start tasks: informers,
    queues, controllers; `pytestmark = pytest.mark.usefixtures("no_leaked_tasks")`)."""
    yield
    await settle(5)
    current = asyncio.current_task()
    leaked = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    assert not leaked, f"leaked tasks: {leaked}"
