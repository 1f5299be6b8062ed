"""The apiserver's metrics, with Kubernetes' names."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter("apiserver_request_total", "Requests by verb, resource and HTTP-equivalent code.",
                   ["verb", "resource", "code"])
REQUEST_DURATION = Histogram("apiserver_request_duration_seconds", "Request latency by verb and resource.",
                             ["verb", "resource"],
                             buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60))
STORAGE_OBJECTS = Gauge("apiserver_storage_objects", "Objects stored, by resource.", ["resource"])
ETCD_REQUEST_DURATION = Histogram("etcd_request_duration_seconds", "etcd request latency by operation.",
                                  ["operation", "type"])
