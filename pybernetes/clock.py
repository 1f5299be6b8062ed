"""Injectable time: the `Clock` protocol, `RealClock` for production and `FakeClock` for tests.

Callers: pybernetes.workqueue (delays, rate limiting, metrics durations), pybernetes.cache (reflector
backoff, informer resync) and any controller that waits. Tests drive `FakeClock.advance` /
`FakeClock.run_for` so that timers fire deterministically instead of waiting on the wall clock.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Protocol


class TimerHandle(Protocol):
    """A scheduled callback that can still be cancelled."""

    def cancel(self) -> None: ...


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds: only differences are meaningful."""
        ...

    def wall(self) -> float:
        """Seconds since the epoch, for timestamps shown to people or stored in objects."""
        ...

    async def sleep(self, seconds: float) -> None: ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        """Run `callback` on the event loop after `delay` seconds; it must not block."""
        ...


class RealClock:
    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        return asyncio.get_running_loop().call_later(max(0.0, delay), callback)


class _FakeTimer:
    __slots__ = ("callback", "cancelled", "deadline")

    def __init__(self, deadline: float, callback: Callable[[], None]) -> None:
        self.deadline = deadline
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """Time moves only when a test calls `advance` or `run_for`.

    Timers (and therefore sleepers) fire in deadline order, ties in scheduling order, with `now()`
    set to each timer's deadline while it fires.
    """

    def __init__(self, start: float = 1000.0, wall_start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._wall_offset = wall_start - start
        self._timers: list[tuple[float, int, _FakeTimer]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._now + self._wall_offset

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        timer = _FakeTimer(self._now + max(0.0, delay), callback)
        heapq.heappush(self._timers, (timer.deadline, next(self._seq), timer))
        return timer

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not fut.done():
                fut.set_result(None)

        timer = self.call_later(seconds, wake)
        try:
            await fut
        finally:
            timer.cancel()

    def pending(self) -> int:
        """Live timers, including sleepers: lets a test wait until something is blocked on time."""
        return sum(1 for _, _, t in self._timers if not t.cancelled)

    def next_deadline(self) -> float | None:
        self._drop_cancelled()
        return self._timers[0][0] if self._timers else None

    def advance(self, seconds: float) -> None:
        """Move time forward, firing every timer due by then synchronously (sleepers wake on next yield)."""
        target = self._now + seconds
        while True:
            self._drop_cancelled()
            if not self._timers or self._timers[0][0] > target:
                break
            deadline, _, timer = heapq.heappop(self._timers)
            self._now = max(self._now, deadline)
            timer.cancelled = True
            timer.callback()
        self._now = max(self._now, target)

    async def run_for(self, seconds: float, *, settle_rounds: int = 50) -> None:
        """Advance timer by timer, letting the loop run between firings so chained sleeps also fire."""
        target = self._now + seconds
        await settle(settle_rounds)
        while True:
            nxt = self.next_deadline()
            if nxt is None or nxt > target:
                break
            self.advance(nxt - self._now)
            await settle(settle_rounds)
        self.advance(target - self._now)
        await settle(settle_rounds)

    def _drop_cancelled(self) -> None:
        while self._timers and self._timers[0][2].cancelled:
            heapq.heappop(self._timers)


async def settle(rounds: int = 50) -> None:
    """Yield to the event loop `rounds` times so ready tasks run (tests only; no time passes)."""
    for _ in range(rounds):
        await asyncio.sleep(0)
