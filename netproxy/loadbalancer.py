"""Proxy side of type LoadBalancer: the ingress IPs the apiserver assigned are answered like external IPs.

The apiserver allocates `status.loadBalancer.ingress[].ip` from its pool; every proxy then accepts traffic
to those IPs on the service ports (DNAT to the endpoints, through `loadBalancerSourceRanges` when set).
Ingress entries with `ipMode: Proxy` are left to the external load balancer (kube-proxy does the same).
Nothing here assigns addresses to interfaces: in the lab the pool is routed to a node (or reached from a
client namespace on the node bridge with a route via a node), and the node's netfilter rules take it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from pybernetes.api.core.v1 import core_pb2 as core


def ingress_ips(svc: core.Service) -> Iterator[str]:
    seen: set[str] = set()
    for ing in svc.status.load_balancer.ingress:
        if not ing.ip or (ing.HasField("ip_mode") and ing.ip_mode == "Proxy"):
            continue
        try:
            ip = str(ipaddress.IPv4Address(ing.ip))
        except ValueError:
            continue
        if ip not in seen:
            seen.add(ip)
            yield ip
