"""pb-proxy's Prometheus metrics (kube-proxy's names), in prometheus-client's default registry."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_BUCKETS = (0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192,
            16.384)

SYNC_DURATION = Histogram("kubeproxy_sync_proxy_rules_duration_seconds",
                          "SyncProxyRules latency in seconds", buckets=_BUCKETS)
SYNC_FULL_DURATION = Histogram("kubeproxy_sync_full_proxy_rules_duration_seconds",
                               "SyncProxyRules latency in seconds for full resyncs", buckets=_BUCKETS)
SYNC_PARTIAL_DURATION = Histogram("kubeproxy_sync_partial_proxy_rules_duration_seconds",
                                  "SyncProxyRules latency in seconds for partial resyncs", buckets=_BUCKETS)
LAST_SYNC = Gauge("kubeproxy_sync_proxy_rules_last_timestamp_seconds",
                  "The last time proxy rules were successfully synced")
LAST_QUEUED = Gauge("kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds",
                    "The last time a sync of proxy rules was queued")
NETWORK_PROGRAMMING = Histogram("kubeproxy_network_programming_duration_seconds",
                                "In Cluster Network Programming Latency in seconds",
                                buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300))
RESTORE_FAILURES = Counter("kubeproxy_sync_proxy_rules_iptables_restore_failures",
                           "Failures of iptables-restore / nft -f (the previous rules stay in force)")
SYNC_ERRORS = Counter("kubeproxy_sync_proxy_rules_errors", "Sync errors other than restore failures")
SERVICE_PORTS = Gauge("kubeproxy_sync_proxy_rules_service_ports", "Service ports programmed")
ENDPOINTS = Gauge("kubeproxy_sync_proxy_rules_endpoints", "Endpoints programmed")
