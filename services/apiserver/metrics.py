"""The apiserver's metrics, with Kubernetes' names.

Hot paths never call `.labels(...)` (a lock, label validation and a tuple build each time): the labelled
children are looked up once in a plain dict keyed by the label tuple and reused. `set_enabled(False)`
(`pb-apiserver --enable-metrics=false`) turns request and etcd recording off; it exists to measure their
overhead (bench/metrics.py), not for production.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter("apiserver_request_total", "Requests by verb, resource and HTTP-equivalent code.",
                   ["verb", "resource", "code"])
REQUEST_DURATION = Histogram("apiserver_request_duration_seconds", "Request latency by verb and resource.",
                             ["verb", "resource"],
                             buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60))
STORAGE_OBJECTS = Gauge("apiserver_storage_objects", "Objects stored, by resource.", ["resource"])
REGISTERED_WATCHERS = Gauge("apiserver_registered_watchers", "Open watches on the watch cache, by resource.",
                            ["resource"])
INFLIGHT_REQUESTS = Gauge("apiserver_current_inflight_requests", "Requests being served now, by kind (readOnly, "
                          "mutating): what --max-requests-inflight and --max-mutating-requests-inflight cap.",
                          ["request_kind"])
DROPPED_REQUESTS = Counter("apiserver_dropped_requests_total", "Requests refused with TooManyRequests (429) by the "
                           "in-flight limits, by kind.", ["request_kind"])
ETCD_REQUEST_DURATION = Histogram("etcd_request_duration_seconds", "etcd request latency by operation.",
                                  ["operation", "type"],
                                  buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
                                           10, 30))

ENABLED = True

_requests: dict[tuple[str, str, int], Any] = {}
_durations: dict[tuple[str, str], Any] = {}
_etcd: dict[tuple[str, str], Histogram] = {}


def set_enabled(on: bool) -> None:
    """Record requests and etcd calls (the default) or not (for the overhead figure only)."""
    global ENABLED
    ENABLED = on


def request_counter(verb: str, resource: str, code: int) -> Any:
    """The `apiserver_request_total` child for these labels (cached)."""
    key = (verb, resource, code)
    child = _requests.get(key)
    if child is None:
        child = _requests[key] = REQUESTS.labels(verb, resource, str(code))
    return child


def record_request(verb: str, resource: str, code: int, seconds: float) -> None:
    if not ENABLED:
        return
    key = (verb, resource, code)
    child = _requests.get(key)
    if child is None:
        child = _requests[key] = REQUESTS.labels(verb, resource, str(code))
    child.inc()
    dkey = (verb, resource)
    hist = _durations.get(dkey)
    if hist is None:
        hist = _durations[dkey] = REQUEST_DURATION.labels(verb, resource)
    hist.observe(seconds)


def count_request(verb: str, resource: str, code: int) -> None:
    """Count a request without a duration (watches and streams: long-running)."""
    if ENABLED:
        request_counter(verb, resource, code).inc()


def etcd_observer(operation: str, type_: str) -> Histogram:
    """The `etcd_request_duration_seconds` child for (operation, type) (cached)."""
    key = (operation, type_)
    child = _etcd.get(key)
    if child is None:
        child = _etcd[key] = ETCD_REQUEST_DURATION.labels(operation, type_)
    return child


def storage_objects(resource: str) -> Any:
    """The `apiserver_storage_objects` child of one resource (callers keep it)."""
    return STORAGE_OBJECTS.labels(resource)
