"""describe service: type, cluster IPs, each port with its target and the endpoints behind it."""

from __future__ import annotations

from pbctl.describers.writer import Writer, ios, labels, print_annotations
from pybernetes.api.core.v1 import core_pb2 as core


def describe_service(w: Writer, svc: core.Service, ep: core.Endpoints | None) -> None:
    md, spec = svc.metadata, svc.spec
    w.w(0, f"Name:\t{md.name}\n")
    w.w(0, f"Namespace:\t{md.namespace}\n")
    labels(w, "Labels", md.labels)
    print_annotations(w, md.annotations)
    labels(w, "Selector", spec.selector)
    w.w(0, f"Type:\t{spec.type or 'ClusterIP'}\n")
    if spec.HasField("ip_family_policy"):
        w.w(0, f"IP Family Policy:\t{spec.ip_family_policy}\n")
    if spec.ip_families:
        w.w(0, f"IP Families:\t{','.join(spec.ip_families)}\n")
    w.w(0, f"IP:\t{spec.cluster_ip or '<none>'}\n")
    w.w(0, f"IPs:\t{','.join(spec.cluster_ips) or spec.cluster_ip or '<none>'}\n")
    if spec.external_ips:
        w.w(0, f"External IPs:\t{','.join(spec.external_ips)}\n")
    if spec.external_name:
        w.w(0, f"External Name:\t{spec.external_name}\n")
    for p in spec.ports:
        name = p.name or "<unset>"
        proto = p.protocol or "TCP"
        w.w(0, f"Port:\t{name}\t{p.port}/{proto}\n")
        tp = ios(p.target_port, str(p.port))
        w.w(0, f"TargetPort:\t{tp}/{proto}\n")
        if p.node_port:
            w.w(0, f"NodePort:\t{name}\t{p.node_port}/{proto}\n")
        eps = []
        if ep is not None:
            for ss in ep.subsets:
                for port in ss.ports:
                    if port.name == p.name:
                        eps += [f"{a.ip}:{port.port}" for a in ss.addresses]
        w.w(0, f"Endpoints:\t{','.join(eps)}\n")
    w.w(0, f"Session Affinity:\t{spec.session_affinity or 'None'}\n")
    if spec.external_traffic_policy:
        w.w(0, f"External Traffic Policy:\t{spec.external_traffic_policy}\n")
    if spec.HasField("internal_traffic_policy"):
        w.w(0, f"Internal Traffic Policy:\t{spec.internal_traffic_policy}\n")
