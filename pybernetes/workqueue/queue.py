"""The basic work queue (client-go util/workqueue semantics) for one asyncio event loop.

Callers: DelayingQueue/RateLimitingQueue (subclasses), `run_workers`, and every controller that
turns informer events into keys (through `pybernetes.controller.Controller`). Rules kept from upstream:
  * a key is queued at most once (`dirty` set), however often it is added;
  * a key being processed (`processing` set) is never handed to a second worker; if it is added
    meanwhile it is marked dirty and re-queued by `done()`, so it runs exactly once more;
  * after `shutdown()` adds are ignored, `get()` still hands out what is queued, then raises ShutDown.
All methods but `get` are synchronous so informer handlers can enqueue without awaiting.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Hashable
from typing import Generic, Protocol, TypeVar

from pybernetes.clock import Clock, RealClock

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)


class ShutDown(Exception):
    """Raised by `get()` once the queue is shut down and empty: the worker should exit."""


class QueueMetrics(Protocol):
    """Hooks a metrics backend implements (prometheus: workqueue_* labelled by queue name)."""

    def add(self, queue: str) -> None:
        """A key newly entered the queue (workqueue_adds_total)."""
        ...

    def get(self, queue: str, queued_seconds: float) -> None:
        """A worker took a key after it waited `queued_seconds` (workqueue_queue_duration_seconds)."""
        ...

    def done(self, queue: str, work_seconds: float) -> None:
        """A worker finished a key after `work_seconds` (workqueue_work_duration_seconds)."""
        ...

    def retry(self, queue: str) -> None:
        """A key was scheduled again after a delay (workqueue_retries_total)."""
        ...

    def depth(self, queue: str, depth: int) -> None:
        """The number of keys waiting for a worker changed (workqueue_depth)."""
        ...


class NoopMetrics:
    def add(self, queue: str) -> None:
        pass

    def get(self, queue: str, queued_seconds: float) -> None:
        pass

    def done(self, queue: str, work_seconds: float) -> None:
        pass

    def retry(self, queue: str) -> None:
        pass

    def depth(self, queue: str, depth: int) -> None:
        pass


class Queue(Generic[K]):
    def __init__(
        self, *, name: str = "", clock: Clock | None = None, metrics: QueueMetrics | None = None
    ) -> None:
        self.name = name
        self.clock: Clock = clock or RealClock()
        self.metrics: QueueMetrics = metrics or (_prometheus() if name else NoopMetrics())
        self._queue: deque[K] = deque()
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        self._added_at: dict[K, float] = {}
        self._started_at: dict[K, float] = {}
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._shutting_down = False
        self._drained: asyncio.Event | None = None

    def add(self, key: K) -> None:
        if self._shutting_down:
            return
        if key in self._dirty:
            return
        self._dirty.add(key)
        self._added_at.setdefault(key, self.clock.now())
        self.metrics.add(self.name)
        if key in self._processing:
            # done() re-queues it; handing it out now would let two workers run the same key.
            return
        self._queue.append(key)
        self.metrics.depth(self.name, len(self._queue))
        self._wake_one()

    def __len__(self) -> int:
        return len(self._queue)

    async def get(self) -> K:
        while not self._queue:
            if self._shutting_down:
                raise ShutDown()
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                if fut in self._waiters:
                    self._waiters.remove(fut)
                elif fut.done() and not fut.cancelled():
                    # We were woken for an item but cancelled before taking it: pass the wake-up on.
                    self._wake_one()
                raise
        key = self._queue.popleft()
        self._processing.add(key)
        self._dirty.discard(key)
        now = self.clock.now()
        self._started_at[key] = now
        self.metrics.get(self.name, now - self._added_at.pop(key, now))
        self.metrics.depth(self.name, len(self._queue))
        return key

    def done(self, key: K) -> None:
        """Mark a key from `get()` finished; re-queue it if it was added while being processed."""
        self._processing.discard(key)
        started = self._started_at.pop(key, None)
        if started is not None:
            self.metrics.done(self.name, self.clock.now() - started)
        if key in self._dirty:
            self._queue.append(key)
            self.metrics.depth(self.name, len(self._queue))
            self._wake_one()
        elif not self._processing and self._drained is not None:
            self._drained.set()

    def shutdown(self) -> None:
        """Stop accepting keys and wake every waiter; queued keys are still handed out."""
        if not self._shutting_down:
            log.debug("workqueue shutting down queue=%s depth=%d", self.name, len(self._queue))
        self._shutting_down = True
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)

    async def shutdown_with_drain(self) -> None:
        """Shut down, then wait until no key is being processed."""
        self.shutdown()
        if self._processing:
            self._drained = asyncio.Event()
            await self._drained.wait()

    def shutting_down(self) -> bool:
        return self._shutting_down

    def processing(self) -> frozenset[K]:
        return frozenset(self._processing)

    def _wake_one(self) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return


def _prometheus() -> QueueMetrics:
    from pybernetes.workqueue.metrics import PROMETHEUS  # deferred: the queue itself needs no prometheus

    return PROMETHEUS
