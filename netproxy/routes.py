"""Node-level plumbing next to the netfilter rules: host-gw pod routes, the service-CIDR sink,
IP forwarding, and conntrack cleanup of stale UDP flows.

host-gw: every other node's `spec.podCIDR(s)` is routed via that node's InternalIP. This only works when
all nodes share one L2 segment (the next hop must be directly reachable); docs/networking.md says what a
multi-subnet cluster needs instead (VXLAN overlay or BGP). Our routes carry protocol number 199 so a sync
(and --cleanup) can tell them from everybody else's and never touches other routes.

The service CIDR is routed into a sink device (`pb-svc0`, dummy or else ifb, like kube-proxy's kube-ipvs0): a cluster IP
nobody DNATed dies there instead of following some default route out of the node. A blackhole route would
do that too, but it also fails a node's own connect() to a cluster IP before the nat OUTPUT hook can DNAT
it; a route to a device lets the lookup succeed, the DNAT happen, and the rerouted packet reach the pod.
Services without endpoints are rejected by the backends' filter rules.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from netproxy.execs import Runner
from pybernetes import netns
from pybernetes.api.core.v1 import core_pb2 as core

log = logging.getLogger("pybernetes.netproxy.routes")

RT_PROTO = 199  # marks routes made by pb-proxy
RTN_BLACKHOLE = 6
SINK_DEVICE = "pb-svc0"


def node_internal_ip(node: core.Node) -> str:
    for a in node.status.addresses:
        if a.type == "InternalIP":
            return a.address
    return ""


def node_pod_cidrs(node: core.Node) -> list[str]:
    cidrs = list(node.spec.pod_cidrs) or ([node.spec.pod_cidr] if node.spec.pod_cidr else [])
    out = []
    for c in cidrs:
        try:
            net = ipaddress.ip_network(c, strict=False)
        except ValueError:
            continue
        if net.version == 4:
            out.append(str(net))
    return out


def desired_routes(nodes: Iterable[core.Node], self_name: str) -> dict[str, str]:
    """podCIDR -> gateway (the owning node's InternalIP), for every node but ourselves."""
    out: dict[str, str] = {}
    for n in sorted(nodes, key=lambda n: n.metadata.name):
        if n.metadata.name == self_name:
            continue
        gw = node_internal_ip(n)
        if not gw:
            continue
        for cidr in node_pod_cidrs(n):
            out[cidr] = gw
    return out


class Routes:
    """pyroute2 on the given namespace (None: the namespace this process runs in). Blocking calls: run
    them in a worker thread from asyncio code."""

    def __init__(self, netns: str | None = None, *, service_cidr: str = "10.96.0.0/16") -> None:
        self.netns = netns
        self.service_cidr = service_cidr
        self.applied: dict[str, str] = {}

    def _ipr(self) -> Any:
        from pyroute2 import IPRoute

        if not self.netns:
            return IPRoute()
        # pyroute2's own netns support forks a helper, which is unsafe next to gRPC's threads: enter the
        # namespace in this thread only, open the socket (it stays bound to that namespace), come back.
        with netns.entered(self.netns):
            return IPRoute()

    def _ours(self, ipr: Any) -> dict[str, tuple[int, str]]:
        out: dict[str, tuple[int, str]] = {}
        for r in ipr.get_routes(family=2, proto=RT_PROTO, table=254):
            dst = f"{r.get('dst') or '0.0.0.0'}/{r['dst_len']}"
            out[dst] = (int(r["type"]), str(r.get("gateway") or ""))
        return out

    def _sink(self, ipr: Any) -> int:
        """The dummy device the service CIDR is routed into (created and brought up if missing)."""
        idx = ipr.link_lookup(ifname=SINK_DEVICE)
        if not idx:
            try:
                ipr.link("add", ifname=SINK_DEVICE, kind="dummy")
            except Exception:
                # Kernels without the dummy driver: an ifb device drops what is routed to it just the same.
                ipr.link("add", ifname=SINK_DEVICE, kind="ifb")
            idx = ipr.link_lookup(ifname=SINK_DEVICE)
        ipr.link("set", index=idx[0], state="up")
        return int(idx[0])

    def sync(self, wanted: Mapping[str, str]) -> None:
        """Make our routes exactly `wanted` (cidr -> gateway) plus the service CIDR into the sink device."""
        with self._ipr() as ipr:
            sink = self._sink(ipr)
            have = self._ours(ipr)
            for dst, (rtype, gw) in have.items():
                if dst == self.service_cidr and rtype != RTN_BLACKHOLE and not gw:
                    continue
                if dst == self.service_cidr or wanted.get(dst) != gw or rtype == RTN_BLACKHOLE:
                    ipr.route("del", dst=dst, proto=RT_PROTO, table=254)
                    log.info("route removed dst=%s gw=%s", dst, gw)
            current = have.get(self.service_cidr)
            if current is None or current[0] == RTN_BLACKHOLE or current[1]:
                ipr.route("replace", dst=self.service_cidr, oif=sink, proto=RT_PROTO)
            for dst, gw in wanted.items():
                if have.get(dst) != (1, gw):
                    try:
                        ipr.route("replace", dst=dst, gateway=gw, proto=RT_PROTO)
                        log.info("route added dst=%s gw=%s", dst, gw)
                    except Exception as e:  # unreachable next hop: another L2 segment
                        log.warning("route failed dst=%s gw=%s err=%s", dst, gw, e)
        self.applied = dict(wanted)

    def cleanup(self) -> None:
        with self._ipr() as ipr:
            for dst in self._ours(ipr):
                ipr.route("del", dst=dst, proto=RT_PROTO, table=254)
            idx = ipr.link_lookup(ifname=SINK_DEVICE)
            if idx:
                ipr.link("del", index=idx[0])
        self.applied = {}

    def addresses(self) -> list[str]:
        """The namespace's IPv4 addresses (for --nodeport-addresses)."""
        with self._ipr() as ipr:
            return [str(a.get("address")) for a in ipr.get_addr(family=2) if a.get("address")]

    def list_ours(self) -> dict[str, tuple[int, str]]:
        with self._ipr() as ipr:
            return self._ours(ipr)


def ensure_forwarding(runner: Runner) -> None:
    runner.run("sysctl", "-q", "-w", "net.ipv4.ip_forward=1")


class Conntrack:
    """Flush conntrack entries that would keep sending UDP to an endpoint that is gone (TCP is fine: the
    peer resets). Uses the `conntrack` CLI; "0 flow entries" exits 1 and is not an error."""

    def __init__(self, runner: Runner, binary: str = "conntrack") -> None:
        self.runner = runner
        self.binary = binary
        self.deleted = 0

    def _delete(self, *args: str) -> None:
        res = self.runner.run(self.binary, "-D", *args, check=False)
        if res.returncode not in (0, 1):
            log.warning("conntrack failed args=%s err=%s", " ".join(args), res.stderr.strip())
        elif res.returncode == 0:
            self.deleted += 1

    def clear_endpoint(self, orig_dst: str, endpoint_ip: str, protocol: str = "udp") -> None:
        self._delete("-p", protocol, "--orig-dst", orig_dst, "--dst-nat", endpoint_ip)

    def clear_nodeport_endpoint(self, port: int, endpoint_ip: str, protocol: str = "udp") -> None:
        self._delete("-p", protocol, "--dport", str(port), "--dst-nat", endpoint_ip)

    def clear_service(self, ip: str, protocol: str = "udp") -> None:
        """Entries to a service IP made while it had no endpoints (they would black-hole new datagrams)."""
        self._delete("-p", protocol, "--orig-dst", ip)
