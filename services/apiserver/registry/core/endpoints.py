"""Endpoints: validation of subsets (addresses, ports) and the port protocol default."""

from __future__ import annotations

from pybernetes.api.core.v1 import core_pb2 as core
from services.apiserver.registry.field import Errs, child, index
from services.apiserver.registry.formats import (
    is_dns1123_label,
    is_dns1123_subdomain,
    is_valid_ip,
    special_ip_errors,
    validate_named_port,
)
from services.apiserver.registry.kindstrategy import KindStrategy


def _validate_endpoint_address(a: core.EndpointAddress, path: str, errs: Errs) -> None:
    msgs = is_valid_ip(a.ip)
    errs.invalid_each(child(path, "ip"), a.ip, msgs)
    if not msgs:
        errs.invalid_each(child(path, "ip"), a.ip, special_ip_errors(a.ip))
    if a.hostname:
        errs.invalid_each(child(path, "hostname"), a.hostname, is_dns1123_label(a.hostname))
    if a.HasField("node_name") and a.node_name:
        errs.invalid_each(child(path, "nodeName"), a.node_name, is_dns1123_subdomain(a.node_name))


def validate(ep: core.Endpoints, errs: Errs) -> None:
    for i, ss in enumerate(ep.subsets):
        p = index("subsets", i)
        if not ss.addresses and not ss.not_ready_addresses:
            errs.required(p, "must specify `addresses` or `notReadyAddresses`")
        for j, a in enumerate(ss.addresses):
            _validate_endpoint_address(a, index(child(p, "addresses"), j), errs)
        for j, a in enumerate(ss.not_ready_addresses):
            _validate_endpoint_address(a, index(child(p, "notReadyAddresses"), j), errs)
        names: set[str] = set()
        for j, port in enumerate(ss.ports):
            validate_named_port(port, index(child(p, "ports"), j), errs, require_name=len(ss.ports) > 1, names=names)


def default(ep: core.Endpoints) -> None:
    for subset in ep.subsets:
        for p in subset.ports:
            if not p.protocol:
                p.protocol = "TCP"


STRATEGY = KindStrategy(core.Endpoints, default=default, validate=validate)
