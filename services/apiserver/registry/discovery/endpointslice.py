"""EndpointSlices (discovery.k8s.io/v1): validation and defaulting as pkg/apis/discovery/validation does.

addressType is one of IPv4, IPv6, FQDN and immutable; each endpoint has 1 to 100 addresses of
that type (IPs neither unspecified, loopback nor link-local), at most 1000 endpoints and 20000 ports per slice;
port names are unique DNS labels, protocols TCP/UDP/SCTP (defaulted to TCP, names to ""). The labels
`kubernetes.io/service-name` and `endpointslice.kubernetes.io/managed-by` get no rule beyond every label's:
as in Kubernetes, they are conventions between the controller (services/controllers/endpointslice.py) and the
consumers, not something the apiserver enforces.
"""

from __future__ import annotations

import ipaddress

from pybernetes.api.discovery.v1 import discovery_pb2 as discovery
from services.apiserver.registry.field import Errs, child, index, key
from services.apiserver.registry.formats import (
    PORT_PROTOCOLS,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_fully_qualified_domain_name,
    is_label_value,
    is_qualified_name,
    special_ip_errors,
)
from services.apiserver.registry.kindstrategy import KindStrategy
from services.apiserver.registry.metadata import validate_labels

ADDRESS_TYPES = ("FQDN", "IPv4", "IPv6")
MAX_ADDRESSES = 100
MAX_ENDPOINTS = 1000
MAX_PORTS = 20000
MAX_TOPOLOGY_LABELS = 16
MAX_HINTS = 8
ZONE_LABEL = "topology.kubernetes.io/zone"


def _address(address: str, address_type: str, path: str, errs: Errs) -> None:
    if address_type in ("IPv4", "IPv6"):
        version = 4 if address_type == "IPv4" else 6
        try:
            ok = ipaddress.ip_address(address).version == version
        except ValueError:
            ok = False
        if not ok:
            errs.invalid(path, address, f"must be a valid {address_type} address")
        else:
            errs.invalid_each(path, address, special_ip_errors(address))
    elif address_type == "FQDN":
        errs.invalid_each(path, address, is_fully_qualified_domain_name(address))


def _hints(h: discovery.EndpointHints, path: str, errs: Errs) -> None:
    zones_path, nodes_path = child(path, "forZones"), child(path, "forNodes")
    if len(h.for_zones) > MAX_HINTS:
        errs.too_many(zones_path, len(h.for_zones), MAX_HINTS)
    seen: set[str] = set()
    for i, z in enumerate(h.for_zones):
        p = child(index(zones_path, i), "name")
        if z.name in seen:
            errs.duplicate(p, z.name)
        seen.add(z.name)
        errs.invalid_each(p, z.name, is_label_value(z.name))
    if len(h.for_nodes) > MAX_HINTS:
        errs.too_many(nodes_path, len(h.for_nodes), MAX_HINTS)
    seen = set()
    for i, n in enumerate(h.for_nodes):
        p = child(index(nodes_path, i), "name")
        if n.name in seen:
            errs.duplicate(p, n.name)
        seen.add(n.name)
        errs.invalid_each(p, n.name, is_dns1123_subdomain(n.name))


def _endpoints(s: discovery.EndpointSlice, errs: Errs) -> None:
    if len(s.endpoints) > MAX_ENDPOINTS:
        errs.too_many("endpoints", len(s.endpoints), MAX_ENDPOINTS)
        return
    for i, e in enumerate(s.endpoints):
        p = index("endpoints", i)
        addresses = child(p, "addresses")
        if not e.addresses:
            errs.required(addresses, "must contain at least 1 address")
        elif len(e.addresses) > MAX_ADDRESSES:
            errs.too_many(addresses, len(e.addresses), MAX_ADDRESSES)
        for j, a in enumerate(e.addresses):
            _address(a, s.address_type, index(addresses, j), errs)
        if e.HasField("node_name"):
            errs.invalid_each(child(p, "nodeName"), e.node_name, is_dns1123_subdomain(e.node_name))
        topology = child(p, "deprecatedTopology")
        if len(e.deprecated_topology) > MAX_TOPOLOGY_LABELS:
            errs.too_many(topology, len(e.deprecated_topology), MAX_TOPOLOGY_LABELS)
        validate_labels(dict(e.deprecated_topology), topology, errs)
        if ZONE_LABEL in e.deprecated_topology:
            errs.invalid(key(topology, ZONE_LABEL), e.deprecated_topology[ZONE_LABEL], "use `zone` instead")
        if e.HasField("hostname"):
            errs.invalid_each(child(p, "hostname"), e.hostname, is_dns1123_label(e.hostname))
        if e.HasField("hints"):
            _hints(e.hints, child(p, "hints"), errs)


def _ports(s: discovery.EndpointSlice, errs: Errs) -> None:
    if len(s.ports) > MAX_PORTS:
        errs.too_many("ports", len(s.ports), MAX_PORTS)
        return
    names: set[str] = set()
    for i, port in enumerate(s.ports):
        p = index("ports", i)
        if port.name:
            errs.invalid_each(child(p, "name"), port.name, is_dns1123_label(port.name))
        if port.name in names:
            errs.duplicate(child(p, "name"), port.name)
        names.add(port.name)
        if not port.HasField("protocol"):
            errs.required(child(p, "protocol"))
        elif port.protocol not in PORT_PROTOCOLS:
            errs.not_supported(child(p, "protocol"), port.protocol, PORT_PROTOCOLS)
        if port.HasField("app_protocol"):
            errs.invalid_each(child(p, "appProtocol"), port.app_protocol, is_qualified_name(port.app_protocol))


def validate(s: discovery.EndpointSlice, errs: Errs) -> None:
    # An empty addressType is reported by the generic required-field walk.
    if s.address_type and s.address_type not in ADDRESS_TYPES:
        errs.not_supported("addressType", s.address_type, ADDRESS_TYPES)
    _endpoints(s, errs)
    _ports(s, errs)


def validate_update(new: discovery.EndpointSlice, old: discovery.EndpointSlice, errs: Errs) -> None:
    errs.immutable("addressType", new.address_type, old.address_type)


def default(s: discovery.EndpointSlice) -> None:
    """SetDefaults_EndpointPort: an unset name is "", an unset protocol TCP."""
    for p in s.ports:
        if not p.HasField("name"):
            p.name = ""
        if not p.HasField("protocol"):
            p.protocol = "TCP"


STRATEGY = KindStrategy(discovery.EndpointSlice, default=default, validate=validate,
                        validate_update=validate_update)
