"""Prometheus-backed workqueue metrics, with client-go's names, labelled by queue name.

Every named queue reports through these unless given other metrics, so each controller's queue shows up
as workqueue_depth{name="deployment"} etc. without wiring.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_BUCKETS = (1e-5, 1e-4, 1e-3, 0.01, 0.1, 1, 10, 60)

DEPTH = Gauge("workqueue_depth", "Current depth of the workqueue.", ["name"])
ADDS = Counter("workqueue_adds_total", "Adds handled by the workqueue.", ["name"])
RETRIES = Counter("workqueue_retries_total", "Retries handled by the workqueue.", ["name"])
QUEUE_DURATION = Histogram("workqueue_queue_duration_seconds", "Time a key waits before being taken.", ["name"],
                           buckets=_BUCKETS)
WORK_DURATION = Histogram("workqueue_work_duration_seconds", "Time spent processing a key.", ["name"],
                          buckets=_BUCKETS)


class PrometheusMetrics:
    def add(self, queue: str) -> None:
        ADDS.labels(queue).inc()

    def get(self, queue: str, queued_seconds: float) -> None:
        QUEUE_DURATION.labels(queue).observe(queued_seconds)

    def done(self, queue: str, work_seconds: float) -> None:
        WORK_DURATION.labels(queue).observe(work_seconds)

    def retry(self, queue: str) -> None:
        RETRIES.labels(queue).inc()

    def depth(self, queue: str, depth: int) -> None:
        DEPTH.labels(queue).set(depth)


PROMETHEUS = PrometheusMetrics()
