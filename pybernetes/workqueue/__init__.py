"""Work queues for controllers (client-go util/workqueue for asyncio): Queue ⊂ DelayingQueue ⊂
RateLimitingQueue, the rate limiters, and `run_workers` with its PermanentError."""

from pybernetes.workqueue.delaying import DelayingQueue
from pybernetes.workqueue.queue import NoopMetrics, Queue, QueueMetrics, ShutDown
from pybernetes.workqueue.rate_limiters import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    RateLimiter,
    default_controller_rate_limiter,
)
from pybernetes.workqueue.rate_limiting import RateLimitingQueue
from pybernetes.workqueue.worker import PermanentError, run_workers

__all__ = [
    "BucketRateLimiter",
    "DelayingQueue",
    "ItemExponentialFailureRateLimiter",
    "MaxOfRateLimiter",
    "NoopMetrics",
    "PermanentError",
    "Queue",
    "QueueMetrics",
    "RateLimiter",
    "RateLimitingQueue",
    "ShutDown",
    "default_controller_rate_limiter",
    "run_workers",
]
