"""Test helpers shared by integration and e2e tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(check: Callable[[], Awaitable[T]], timeout: float = 20.0, interval: float = 0.1,
                     what: str = "condition") -> T:
    """Poll `check` until it returns a truthy value (returned) or the deadline passes (AssertionError).

    Exceptions inside check count as "not yet" until the deadline, then the last one is re-raised."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            value = await check()
            if value:
                return value
            last_exc = None
        except AssertionError as e:
            last_exc = e
        except Exception as e:
            last_exc = e
        if time.monotonic() > deadline:
            if last_exc is not None:
                raise AssertionError(f"{what} not reached within {timeout}s: {last_exc!r}") from last_exc
            raise AssertionError(f"{what} not reached within {timeout}s")
        await asyncio.sleep(interval)
