"""Services: validation (ports, session affinity, cluster IPs, traffic policies), defaults, create strategy.

Kubernetes' pkg/registry/core/service strategy with the service rules of pkg/apis/core/validation and
SetDefaults_Service. Cluster IPs and node ports are allocated by services/apiserver/allocator.py (called by
the REST layer).
"""

from __future__ import annotations

from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.meta.v1 import meta_pb2 as meta
from services.apiserver.registry.field import Errs, GoValue, child, go_quote, go_strings, index
from services.apiserver.registry.formats import (
    is_dns1035_label,
    is_dns1123_subdomain,
    is_valid_ip,
    is_valid_port_num,
    validate_named_port,
    validate_port_num_or_name,
)
from services.apiserver.registry.kindstrategy import KindStrategy, clear_status
from services.apiserver.registry.metadata import validate_conditions, validate_labels

SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
SESSION_AFFINITIES = ("ClientIP", "None")
MAX_CLIENT_IP_AFFINITY_SECONDS = 86400
DEFAULT_CLIENT_IP_AFFINITY_SECONDS = 10800


def _go_service_port(protocol: str, port: int) -> GoValue:
    return GoValue(f"core.ServicePort{{Name:\"\", Protocol:{go_quote(protocol)}, AppProtocol:(*string)(nil), "
                   f"Port:{port}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}")


def validate(svc: core.Service, errs: Errs) -> None:
    spec = svc.spec
    headless = spec.cluster_ip == "None"
    if not spec.ports and not headless and spec.type != "ExternalName":
        errs.required("spec.ports")
    if not spec.type:
        errs.required("spec.type")
    elif spec.type not in SERVICE_TYPES:
        errs.not_supported("spec.type", spec.type, SERVICE_TYPES)
    if spec.type == "ExternalName":
        if spec.cluster_ips:
            errs.forbidden("spec.clusterIPs", "may not be set for ExternalName services")
        cname = spec.external_name.removesuffix(".")
        if cname:
            errs.invalid_each("spec.externalName", cname, is_dns1123_subdomain(cname))
        else:
            errs.required("spec.externalName")
    # Ports
    names: set[str] = set()
    require_name = len(spec.ports) > 1
    for i, port in enumerate(spec.ports):
        p = index("spec.ports", i)
        validate_named_port(port, p, errs, require_name=require_name, names=names)
        validate_port_num_or_name(port.target_port, child(p, "targetPort"), errs)
        if port.node_port:
            errs.invalid_each(child(p, "nodePort"), port.node_port, is_valid_port_num(port.node_port))
    # Session affinity
    if not spec.session_affinity:
        errs.required("spec.sessionAffinity")
    elif spec.session_affinity not in SESSION_AFFINITIES:
        errs.not_supported("spec.sessionAffinity", spec.session_affinity, SESSION_AFFINITIES)
    if spec.session_affinity == "ClientIP":
        cfg = spec.session_affinity_config.client_ip
        tp = "spec.sessionAffinityConfig.clientIP.timeoutSeconds"
        if not cfg.HasField("timeout_seconds"):
            errs.required(tp)
        elif not 0 < cfg.timeout_seconds <= MAX_CLIENT_IP_AFFINITY_SECONDS:
            errs.invalid(tp, cfg.timeout_seconds,
                         f"must be greater than 0 and less than {MAX_CLIENT_IP_AFFINITY_SECONDS}")
    elif spec.HasField("session_affinity_config"):
        errs.forbidden("spec.sessionAffinityConfig", "must not be set when session affinity is None")
    # Cluster IPs
    if spec.type != "ExternalName":
        ips = list(spec.cluster_ips)
        if ips and spec.cluster_ip != ips[0]:
            errs.invalid("spec.clusterIPs", go_strings(ips), "first value must match `clusterIP`")
        if not ips and spec.cluster_ip:
            ips = [spec.cluster_ip]
        for i, ip in enumerate(ips):
            if i == 0 and ip == "None":
                if len(ips) > 1:
                    errs.invalid("spec.clusterIPs", go_strings(ips), "'None' must be the first and only value")
                continue
            errs.invalid_each(index("spec.clusterIPs", i), ip, is_valid_ip(ip))
    if spec.type == "ClusterIP":
        for i, port in enumerate(spec.ports):
            if port.node_port:
                errs.forbidden(child(index("spec.ports", i), "nodePort"), "may not be used when `type` is 'ClusterIP'")
    if spec.type in ("NodePort", "LoadBalancer") and headless:
        errs.invalid("spec.clusterIPs[0]", "None", f"may not be set to 'None' for {spec.type} services")
    seen_ports: set[tuple[str, int]] = set()
    seen_node_ports: set[tuple[str, int]] = set()
    for i, port in enumerate(spec.ports):
        k = (port.protocol, port.port)
        if k in seen_ports:
            errs.duplicate(index("spec.ports", i), _go_service_port(port.protocol, port.port))
        seen_ports.add(k)
        if port.node_port:
            nk = (port.protocol, port.node_port)
            if nk in seen_node_ports:
                errs.duplicate(child(index("spec.ports", i), "nodePort"), port.node_port)
            seen_node_ports.add(nk)
    for i, ip in enumerate(spec.external_ips):
        errs.invalid_each(index("spec.externalIPs", i), ip, is_valid_ip(ip))
    validate_labels(spec.selector, "spec.selector", errs)
    # Traffic policies
    externally = spec.type in ("NodePort", "LoadBalancer") or (spec.type == "ClusterIP" and len(spec.external_ips) > 0)
    etp = spec.external_traffic_policy
    if not externally:
        if etp:
            errs.invalid("spec.externalTrafficPolicy", etp, "may only be set for externally-accessible services")
    elif not etp:
        errs.required("spec.externalTrafficPolicy")
    elif etp not in ("Cluster", "Local"):
        errs.not_supported("spec.externalTrafficPolicy", etp, ("Cluster", "Local"))
    if not spec.HasField("internal_traffic_policy"):
        if spec.type in ("ClusterIP", "NodePort", "LoadBalancer"):
            errs.required("spec.internalTrafficPolicy")
    elif spec.internal_traffic_policy not in ("Cluster", "Local"):
        errs.not_supported("spec.internalTrafficPolicy", spec.internal_traffic_policy, ("Cluster", "Local"))
    for i, fam in enumerate(spec.ip_families):
        if fam not in ("IPv4", "IPv6"):
            errs.not_supported(index("spec.ipFamilies", i), fam, ("IPv4", "IPv6"))
    if spec.HasField("ip_family_policy") and spec.ip_family_policy not in (
            "SingleStack", "PreferDualStack", "RequireDualStack"):
        errs.not_supported("spec.ipFamilyPolicy", spec.ip_family_policy,
                           ("PreferDualStack", "RequireDualStack", "SingleStack"))


def validate_update(new: core.Service, old: core.Service, errs: Errs) -> None:
    # clusterIP is immutable once allocated, unless the service moves to or from ExternalName.
    if new.spec.type != "ExternalName" and old.spec.type != "ExternalName" and old.spec.cluster_ip:
        errs.immutable("spec.clusterIP", new.spec.cluster_ip, old.spec.cluster_ip)


def validate_status(new: core.Service, old: core.Service, errs: Errs) -> None:
    for i, ing in enumerate(new.status.load_balancer.ingress):
        if ing.ip:
            errs.invalid_each(child(index("status.loadBalancer.ingress", i), "ip"), ing.ip, is_valid_ip(ing.ip))
    validate_conditions(new.status.conditions, "status.conditions", errs)


def _int_or_string_unset(v: meta.IntOrString) -> bool:
    return v.str_val == "" if v.type == 1 else v.int_val == 0


def default(svc: core.Service) -> None:
    spec = svc.spec
    if not spec.session_affinity:
        spec.session_affinity = "None"
    if spec.session_affinity == "None":
        spec.ClearField("session_affinity_config")
    elif spec.session_affinity == "ClientIP" and not spec.session_affinity_config.client_ip.HasField(
            "timeout_seconds"):
        spec.session_affinity_config.client_ip.timeout_seconds = DEFAULT_CLIENT_IP_AFFINITY_SECONDS
    if not spec.type:
        spec.type = "ClusterIP"
    for p in spec.ports:
        if not p.protocol:
            p.protocol = "TCP"
        if _int_or_string_unset(p.target_port):
            p.target_port.CopyFrom(meta.IntOrString(type=0, int_val=p.port))
    externally_accessible = spec.type in ("NodePort", "LoadBalancer") or (
        spec.type == "ClusterIP" and len(spec.external_ips) > 0)
    if externally_accessible and not spec.external_traffic_policy:
        spec.external_traffic_policy = "Cluster"
    if not spec.HasField("internal_traffic_policy") and spec.type in ("ClusterIP", "NodePort", "LoadBalancer"):
        spec.internal_traffic_policy = "Cluster"
    if spec.type == "LoadBalancer" and not spec.HasField("allocate_load_balancer_node_ports"):
        spec.allocate_load_balancer_node_ports = True
    if spec.type != "ExternalName":
        # clusterIP and clusterIPs mirror each other (the apiserver's normalizeClusterIPs).
        if spec.cluster_ip and not spec.cluster_ips:
            spec.cluster_ips.append(spec.cluster_ip)
        elif spec.cluster_ips and not spec.cluster_ip:
            spec.cluster_ip = spec.cluster_ips[0]
        # Single-stack IPv4 cluster: every ClusterIP-bearing service (headless with a selector too).
        if not spec.HasField("ip_family_policy"):
            spec.ip_family_policy = "SingleStack"
        if not spec.ip_families:
            spec.ip_families.append("IPv4")


STRATEGY = KindStrategy(core.Service, default=default, name=is_dns1035_label, validate=validate,
                        validate_update=validate_update, validate_status=validate_status,
                        prepare_for_create=clear_status)
