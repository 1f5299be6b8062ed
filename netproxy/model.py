"""What the proxy programs, as plain values: service ports, endpoints, change tracking, rule units.

Informer events are turned into frozen snapshots (`ServicePortInfo`, `Endpoint`) keyed by service
(`namespace/name`); endpoints come from Endpoints or from the Service's EndpointSlices (merged per Service,
ready ones, else serving terminating ones, as kube-proxy takes them). A changed key is marked dirty with the
time of its first unsynced change; the proxier renders only dirty keys on a partial sync. Each backend renders
one service port into a `Unit` (its own chains, set/map elements, dynamic sets) so that applying a change is a
diff of two units.

Chain-name hashing follows kube-proxy exactly (`KUBE-SVC-` + base32(sha256(portname + protocol))[:16]).
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from netproxy.loadbalancer import ingress_ips
from pybernetes.api import endpointslices
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.discovery.v1 import discovery_pb2 as discovery
from pybernetes.api.endpointslices import SliceCache
from pybernetes.api.objects import key_for

DEFAULT_AFFINITY_TIMEOUT = 10800
TRIGGER_TIME_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"


@dataclass(frozen=True, order=True)
class ServicePortName:
    namespace: str
    name: str
    port: str  # the port's name ("" for a single unnamed port)
    protocol: str  # TCP, UDP, SCTP

    def __str__(self) -> str:  # kube-proxy's ServicePortName.String()
        return self.service_key + (f":{self.port}" if self.port else "")

    @property
    def service_key(self) -> str:
        return key_for(self.namespace, self.name)

    @property
    def proto(self) -> str:
        return self.protocol.lower()


def _hash(text: str, n: int) -> str:
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:n]


def port_proto_hash(spn: ServicePortName, n: int = 16) -> str:
    return _hash(str(spn) + spn.proto, n)


def endpoint_hash(spn: ServicePortName, endpoint: str, n: int = 16) -> str:
    return _hash(str(spn) + spn.proto + endpoint, n)


@dataclass(frozen=True)
class ServicePortInfo:
    spn: ServicePortName
    cluster_ip: str
    port: int
    node_port: int = 0
    external_ips: tuple[str, ...] = ()
    lb_ips: tuple[str, ...] = ()
    lb_source_ranges: tuple[str, ...] = ()
    affinity_timeout: int = 0  # seconds; 0 = no session affinity
    external_local: bool = False  # externalTrafficPolicy Local
    internal_local: bool = False  # internalTrafficPolicy Local

    @property
    def has_external(self) -> bool:
        return bool(self.node_port or self.external_ips or self.lb_ips)


@dataclass(frozen=True, order=True)
class Endpoint:
    ip: str
    port: int
    node_name: str = ""
    is_local: bool = False

    def __str__(self) -> str:
        return f"{self.ip}:{self.port}"


@dataclass(frozen=True)
class Unit:
    """One service port as rendered by a backend: its chains (name -> rules), the elements it contributes to
    shared sets/maps (name -> elements), and the sets it owns (name -> declaration)."""

    chains: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    elements: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    sets: Mapping[str, str] = field(default_factory=dict)


def service_ports(svc: core.Service) -> dict[ServicePortName, ServicePortInfo]:
    """The service ports kube-proxy programs: none for headless, ExternalName or IP-less services."""
    spec = svc.spec
    if spec.type == "ExternalName" or not spec.cluster_ip or spec.cluster_ip == "None":
        return {}
    ns, name = svc.metadata.namespace, svc.metadata.name
    affinity = 0
    if spec.session_affinity == "ClientIP":
        cfg = spec.session_affinity_config.client_ip
        affinity = cfg.timeout_seconds if cfg.HasField("timeout_seconds") and cfg.timeout_seconds > 0 \
            else DEFAULT_AFFINITY_TIMEOUT
    lb_ips = tuple(ingress_ips(svc)) if spec.type == "LoadBalancer" else ()
    external_local = spec.external_traffic_policy == "Local" and spec.type in ("NodePort", "LoadBalancer")
    internal_local = spec.HasField("internal_traffic_policy") and spec.internal_traffic_policy == "Local"
    out: dict[ServicePortName, ServicePortInfo] = {}
    for p in spec.ports:
        proto = p.protocol or "TCP"
        spn = ServicePortName(ns, name, p.name, proto)
        out[spn] = ServicePortInfo(
            spn=spn, cluster_ip=spec.cluster_ip, port=p.port,
            node_port=p.node_port if spec.type in ("NodePort", "LoadBalancer") else 0,
            external_ips=tuple(sorted(set(spec.external_ips))), lb_ips=lb_ips,
            lb_source_ranges=tuple(sorted(set(spec.load_balancer_source_ranges))) if lb_ips else (),
            affinity_timeout=affinity, external_local=external_local, internal_local=internal_local)
    return out


def endpoints_by_port(ep: core.Endpoints, hostname: str) -> dict[tuple[str, str], tuple[Endpoint, ...]]:
    """Ready addresses per (port name, protocol), sorted and deduplicated."""
    acc: dict[tuple[str, str], set[Endpoint]] = {}
    for subset in ep.subsets:
        for port in subset.ports:
            key = (port.name, port.protocol or "TCP")
            bucket = acc.setdefault(key, set())
            for addr in subset.addresses:
                node = addr.node_name if addr.HasField("node_name") else ""
                bucket.add(Endpoint(addr.ip, port.port, node, bool(hostname) and node == hostname))
    return {k: tuple(sorted(v)) for k, v in acc.items()}


def endpoints_from_slices(slices: Iterable[discovery.EndpointSlice],
                          hostname: str) -> dict[tuple[str, str], tuple[Endpoint, ...]]:
    """The endpoints per (port name, protocol) of one Service's slices, as kube-proxy takes them: the ready
    ones, or when none is ready the serving terminating ones (so connections drain onto pods going away
    rather than fail); sorted and deduplicated. FQDN slices and ports without a number are skipped."""
    ready: dict[tuple[str, str], set[Endpoint]] = {}
    terminating: dict[tuple[str, str], set[Endpoint]] = {}
    for s in slices:
        if s.address_type not in ("IPv4", "IPv6"):
            continue
        for port in s.ports:
            if not port.HasField("port"):
                continue
            key = (port.name, port.protocol or "TCP")
            ready.setdefault(key, set())
            for ep in s.endpoints:
                if not ep.addresses:
                    continue
                node = ep.node_name if ep.HasField("node_name") else ""
                e = Endpoint(ep.addresses[0], port.port, node, bool(hostname) and node == hostname)
                if endpointslices.is_ready(ep):
                    ready[key].add(e)
                elif endpointslices.is_serving(ep) and endpointslices.is_terminating(ep):
                    terminating.setdefault(key, set()).add(e)
    return {k: tuple(sorted(v or terminating.get(k, set()))) for k, v in ready.items()}


class ChangeTracker:
    """Current services and endpoints by key, and the keys changed since the last sync."""

    def __init__(self, hostname: str) -> None:
        self.hostname = hostname
        self.services: dict[str, dict[ServicePortName, ServicePortInfo]] = {}
        self.endpoints: dict[str, dict[tuple[str, str], tuple[Endpoint, ...]]] = {}
        self.slices = SliceCache()  # when endpoints come from EndpointSlices
        self.trigger_times: dict[str, float] = {}  # key -> wall time of the first unsynced change
        self.dirty: set[str] = set()

    def _mark(self, key: str, trigger: float | None = None) -> None:
        self.dirty.add(key)
        t = trigger if trigger is not None else time.time()
        self.trigger_times[key] = min(self.trigger_times.get(key, t), t)

    def update_service(self, key: str, svc: core.Service | None) -> bool:
        new = service_ports(svc) if svc is not None else {}
        if self.services.get(key, {}) == new:
            return False
        if new:
            self.services[key] = new
        else:
            self.services.pop(key, None)
        self._mark(key)
        return True

    def update_endpoints(self, key: str, ep: core.Endpoints | None) -> bool:
        new = endpoints_by_port(ep, self.hostname) if ep is not None else {}
        return self._set_endpoints(key, new, ep)

    def update_endpoint_slice(self, s: discovery.EndpointSlice, *, deleted: bool = False) -> bool:
        """A slice added, changed or deleted: its Service's endpoints are those of all its current slices."""
        changed = False
        for key in (self.slices.delete(s) if deleted else self.slices.update(s)):
            new = endpoints_from_slices(self.slices.slices(key), self.hostname)
            changed = self._set_endpoints(key, new, None if deleted else s) or changed
        return changed

    def _set_endpoints(self, key: str, new: dict[tuple[str, str], tuple[Endpoint, ...]],
                       source: core.Endpoints | discovery.EndpointSlice | None) -> bool:
        if self.endpoints.get(key, {}) == new:
            return False
        if new:
            self.endpoints[key] = new
        else:
            self.endpoints.pop(key, None)
        trigger: float | None = None
        if source is not None and TRIGGER_TIME_ANNOTATION in source.metadata.annotations:
            trigger = parse_rfc3339(source.metadata.annotations[TRIGGER_TIME_ANNOTATION])
        self._mark(key, trigger)
        return True

    def ports(self, key: str) -> dict[ServicePortName, tuple[ServicePortInfo, tuple[Endpoint, ...]]]:
        eps = self.endpoints.get(key, {})
        return {spn: (info, eps.get((spn.port, spn.protocol), ()))
                for spn, info in self.services.get(key, {}).items()}

    def all_ports(self) -> dict[ServicePortName, tuple[ServicePortInfo, tuple[Endpoint, ...]]]:
        out: dict[ServicePortName, tuple[ServicePortInfo, tuple[Endpoint, ...]]] = {}
        for key in self.services:
            out.update(self.ports(key))
        return out

    def take_dirty(self) -> tuple[set[str], dict[str, float]]:
        dirty, times = self.dirty, self.trigger_times
        self.dirty, self.trigger_times = set(), {}
        return dirty, times


def parse_rfc3339(text: str) -> float | None:
    from datetime import datetime

    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def sorted_units(units: Mapping[ServicePortName, Unit]) -> Iterable[tuple[ServicePortName, Unit]]:
    return sorted(units.items(), key=lambda kv: kv[0])
