"""Proxy side of type LoadBalancer: which ingress IPs of a Service this node answers (`ingress_ips`).

The controller manager's servicelb controller (--loadbalancer-ip-range) writes
`status.loadBalancer.ingress[].ip`; netproxy.model turns a LoadBalancer Service into ServicePortInfo.lb_ips with
`ingress_ips` (IPv4 only, each once; entries with `ipMode: Proxy` are left to the external load balancer,
as kube-proxy does), and the backends (netproxy.nftables, netproxy.iptables) DNAT them to the endpoints,
through `loadBalancerSourceRanges` when set. Nothing assigns addresses to interfaces: in the lab the pool
is routed to a node (or reached from a client namespace on the node bridge with a route via a node), and
the node's netfilter rules take it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from pybernetes.api.core.v1 import core_pb2 as core


def ingress_ips(svc: core.Service) -> Iterator[str]:
    """The Service's IPv4 ingress IPs in status order, without duplicates or `ipMode: Proxy` entries."""
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
