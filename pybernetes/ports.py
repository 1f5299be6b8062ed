"""Free loopback ports for tests, benchmarks and embedded children.

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

# Below NodePorts (30000-32767) and the ephemeral range, above every fixed port in CONVENTIONS.
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
