"""Every port pybernetes uses, named once (Kubernetes' numbers where one exists), and free loopback ports
for tests, benchmarks and embedded children.

The named ports are defaults: a standalone component takes them unless given others; the lab uses them inside
its own network namespaces. No other module writes a port number as a literal.

A port the kernel hands out for `bind(0)` comes from the ephemeral range (net.ipv4.ip_local_port_range,
32768-60999 by default), the same range it uses for the local end of outgoing connections: between
picking such a port and the server binding it, any client connection (a gRPC channel to etcd, say) may
take it, and the server fails with EADDRINUSE. So pick below the ephemeral range and above the
well-known ports we use (6443, 9090, 10250...), never the same port twice in one process.
"""

from __future__ import annotations

import random
import socket
import threading

# The API: Kubernetes' REST API over HTTPS (kubectl, client libraries; the apiserver's --secure-port).
APISERVER = 6443
# The same API over gRPC (pbctl's and the components' protocol); kubeconfigs name it in the cluster's
# `pybernetes.io/grpc` extension.
APISERVER_GRPC = 6442
# The apiserver's /healthz, /readyz, /livez and /metrics over plain HTTP.
APISERVER_HEALTH = 6444
KUBERNETES_SERVICE = 443  # the port of Service default/kubernetes (the API inside the cluster)
ETCD_CLIENT = 2379
ETCD_PEER = 2380
# etcd's /metrics listener: Prometheus scrapes this one; only the apiserver connects to the client port.
ETCD_METRICS = 2381
KUBELET = 10250  # logs, exec, stats: the apiserver is its only client
KUBELET_HEALTH = 10248
SCHEDULER = 10259  # metrics, healthz
CONTROLLER_MANAGER = 10257  # metrics, healthz
PROXY_METRICS = 10249
PROXY_HEALTH = 10256
REGISTRY = 5000  # images as localhost:5000/NAME:TAG on every node
PROMETHEUS = 9090
DNS = 53
DNS_METRICS = 9153
DASHBOARD = 8001
NODE_PORT_RANGE = (30000, 32767)

# Below NodePorts (30000-32767) and the ephemeral range, above every fixed port named above.
PORT_RANGE = (20000, 29999)

_lock = threading.Lock()
_handed_out: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
            return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now and outside the kernel's ephemeral range."""
    eph_lo, eph_hi = _ephemeral_range()
    lo, hi = PORT_RANGE
    with _lock:
        for _ in range(200):
            port = random.randint(lo, hi)
            if port in _handed_out or eph_lo <= port <= eph_hi:
                continue
            if _bindable(port):
                _handed_out.add(port)
                return port
    raise RuntimeError(f"no free port found in {lo}-{hi}")
