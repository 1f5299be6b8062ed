"""RateLimitingQueue: a DelayingQueue that asks a RateLimiter how long a failed key must wait.

Callers: `pybernetes.controller.Controller` (one per named queue; handlers add keys), `run_workers`
(add_rate_limited on failure, forget on success) and controllers re-checking later (`add_after`).
"""

from __future__ import annotations

from pybernetes.clock import Clock
from pybernetes.workqueue.delaying import DelayingQueue
from pybernetes.workqueue.queue import K, QueueMetrics
from pybernetes.workqueue.rate_limiters import RateLimiter, default_controller_rate_limiter


class RateLimitingQueue(DelayingQueue[K]):
    def __init__(
        self,
        rate_limiter: RateLimiter[K] | None = None,
        *,
        name: str = "",
        clock: Clock | None = None,
        metrics: QueueMetrics | None = None,
    ) -> None:
        super().__init__(name=name, clock=clock, metrics=metrics)
        self.rate_limiter: RateLimiter[K] = rate_limiter or default_controller_rate_limiter(self.clock)

    def add_rate_limited(self, key: K) -> None:
        self.add_after(key, self.rate_limiter.when(key))

    def forget(self, key: K) -> None:
        self.rate_limiter.forget(key)

    def num_requeues(self, key: K) -> int:
        return self.rate_limiter.num_requeues(key)
