"""DelayingQueue: a Queue whose keys can be added after a delay measured on the injected clock.

Callers: RateLimitingQueue (backoff requeues) and controllers that re-check later (`add_after`).
Each waiting key holds one clock timer; adding a waiting key again keeps the earlier deadline, as
client-go's waitingForQueue does. No background task: timers call `add` on the loop.
"""

from __future__ import annotations

from pybernetes.clock import Clock, TimerHandle
from pybernetes.workqueue.queue import K, Queue, QueueMetrics


class DelayingQueue(Queue[K]):
    def __init__(
        self, *, name: str = "", clock: Clock | None = None, metrics: QueueMetrics | None = None
    ) -> None:
        super().__init__(name=name, clock=clock, metrics=metrics)
        self._waiting: dict[K, tuple[float, TimerHandle]] = {}

    def add_after(self, key: K, delay: float) -> None:
        if self._shutting_down:
            return
        self.metrics.retry(self.name)
        if delay <= 0:
            self.add(key)
            return
        ready_at = self.clock.now() + delay
        existing = self._waiting.get(key)
        if existing is not None:
            if existing[0] <= ready_at:
                return
            existing[1].cancel()
        handle = self.clock.call_later(delay, lambda: self._ready(key))
        self._waiting[key] = (ready_at, handle)

    def waiting(self) -> int:
        """Keys scheduled but not yet queued."""
        return len(self._waiting)

    def _ready(self, key: K) -> None:
        self._waiting.pop(key, None)
        self.add(key)

    def shutdown(self) -> None:
        super().shutdown()
        for _, handle in self._waiting.values():
            handle.cancel()
        self._waiting.clear()
