"""Rate limiters deciding how long a failed key waits before it is retried (client-go semantics).

Callers: RateLimitingQueue.add_rate_limited (every queue has one; `Controller.add_queue(rate_limiter=...)` may pick
another, which no controller does today).
`default_controller_rate_limiter()` = max(per-key exponential 5 ms..1000 s, token bucket 10 qps
burst 100): one key failing fast backs off alone, and a storm of distinct keys is capped overall.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, Protocol, TypeVar

from pybernetes.clock import Clock, RealClock

K = TypeVar("K", bound=Hashable)
K_contra = TypeVar("K_contra", bound=Hashable, contravariant=True)


class RateLimiter(Protocol[K_contra]):
    def when(self, item: K_contra) -> float:
        """Seconds to wait before retrying `item`; records one more failure."""
        ...

    def forget(self, item: K_contra) -> None:
        """Clear `item`'s failure history (call after it succeeded)."""
        ...

    def num_requeues(self, item: K_contra) -> int: ...


class ItemExponentialFailureRateLimiter(Generic[K]):
    """base * 2**failures per key, capped at max_delay."""

    def __init__(self, base_delay: float = 0.005, max_delay: float = 1000.0) -> None:
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._failures: dict[K, int] = {}

    def when(self, item: K) -> float:
        exp = self._failures.get(item, 0)
        self._failures[item] = exp + 1
        if exp >= 64:  # 2**64 * base overflows any sensible cap; skip the float arithmetic.
            return self.max_delay
        return min(self.base_delay * float(2**exp), self.max_delay)

    def forget(self, item: K) -> None:
        self._failures.pop(item, None)

    def num_requeues(self, item: K) -> int:
        return self._failures.get(item, 0)


class BucketRateLimiter(Generic[K]):
    """Overall token bucket (golang.org/x/time/rate Reserve semantics): tokens may go negative,
    and the wait is how long until the reserved token has refilled."""

    def __init__(self, qps: float = 10.0, burst: int = 100, *, clock: Clock | None = None) -> None:
        self.qps = qps
        self.burst = burst
        self._clock: Clock = clock or RealClock()
        self._tokens = float(burst)
        self._last: float | None = None

    def when(self, item: K) -> float:
        now = self._clock.now()
        if self._last is not None:
            self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
        self._last = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    def forget(self, item: K) -> None:
        pass

    def num_requeues(self, item: K) -> int:
        return 0


class MaxOfRateLimiter(Generic[K]):
    """The longest wait any of the limiters asks for; every limiter records every failure."""

    def __init__(self, *limiters: RateLimiter[K]) -> None:
        self.limiters = limiters

    def when(self, item: K) -> float:
        return max((limiter.when(item) for limiter in self.limiters), default=0.0)

    def forget(self, item: K) -> None:
        for limiter in self.limiters:
            limiter.forget(item)

    def num_requeues(self, item: K) -> int:
        return max((limiter.num_requeues(item) for limiter in self.limiters), default=0)


def default_controller_rate_limiter(clock: Clock | None = None) -> MaxOfRateLimiter[K]:
    return MaxOfRateLimiter(
        ItemExponentialFailureRateLimiter(0.005, 1000.0),
        BucketRateLimiter(10.0, 100, clock=clock),
    )
