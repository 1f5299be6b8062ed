"""netproxy.model: kube-proxy chain-name hashing, Service/Endpoints/EndpointSlice snapshots, change tracking."""

from __future__ import annotations

from netproxy.iptables import ext_chain, fw_chain, sep_chain, svc_chain, svl_chain
from netproxy.model import (
    DEFAULT_AFFINITY_TIMEOUT,
    TRIGGER_TIME_ANNOTATION,
    ChangeTracker,
    Endpoint,
    ServicePortName,
    endpoints_by_port,
    endpoints_from_slices,
    service_ports,
)
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.discovery.v1 import discovery_pb2 as discovery
from pybernetes.api.endpointslices import SERVICE_NAME_LABEL
from pybernetes.api.meta.v1 import meta_pb2 as meta


def svc(name: str = "svc1", **spec: object) -> core.Service:
    s = core.Service(metadata=meta.ObjectMeta(name=name, namespace="ns1"))
    s.spec.cluster_ip = "10.96.0.10"
    s.spec.ports.add(name="p80", port=80, protocol="TCP")
    for k, v in spec.items():
        setattr(s.spec, k, v)
    return s


def eps(name: str = "svc1", ready: tuple[tuple[str, str], ...] = (("10.244.1.5", "n1"),),
        not_ready: tuple[str, ...] = ()) -> core.Endpoints:
    e = core.Endpoints(metadata=meta.ObjectMeta(name=name, namespace="ns1"))
    sub = e.subsets.add()
    for ip, node in ready:
        sub.addresses.add(ip=ip, node_name=node)
    for ip in not_ready:
        sub.not_ready_addresses.add(ip=ip)
    sub.ports.add(name="p80", port=8080, protocol="TCP")
    return e


def test_chain_names_match_kube_proxy() -> None:
    # values from kube-proxy's own tests (pkg/proxy/iptables/proxier_test.go)
    spn = ServicePortName("ns1", "svc1", "p80", "TCP")
    assert str(spn) == "ns1/svc1:p80"
    assert svc_chain(spn) == "KUBE-SVC-XPGD46QRK7WJZT7O"
    assert ext_chain(spn) == "KUBE-EXT-XPGD46QRK7WJZT7O"
    assert fw_chain(spn) == "KUBE-FW-XPGD46QRK7WJZT7O"
    assert svl_chain(spn) == "KUBE-SVL-XPGD46QRK7WJZT7O"
    assert sep_chain(spn, Endpoint("10.180.0.1", 80)) == "KUBE-SEP-SXIVWICOYRO3J4NJ"
    assert svc_chain(ServicePortName("ns2", "svc2", "p80", "TCP")) == "KUBE-SVC-GNZBNJ2PO5MGZ6GT"
    assert str(ServicePortName("ns", "s", "", "UDP")) == "ns/s"


def test_service_ports_skip_headless_and_external_name() -> None:
    assert service_ports(svc(cluster_ip="None")) == {}
    assert service_ports(svc(type="ExternalName", cluster_ip="")) == {}
    (info,) = service_ports(svc()).values()
    assert info.cluster_ip == "10.96.0.10" and info.port == 80 and info.node_port == 0
    assert info.affinity_timeout == 0 and not info.has_external


def test_service_ports_affinity_nodeport_lb() -> None:
    s = svc(type="LoadBalancer", session_affinity="ClientIP", external_traffic_policy="Local")
    s.spec.ports[0].node_port = 30080
    s.spec.load_balancer_source_ranges.append("192.0.2.0/24")
    s.status.load_balancer.ingress.add(ip="192.0.2.10")
    s.status.load_balancer.ingress.add(ip="192.0.2.11", ip_mode="Proxy")
    (info,) = service_ports(s).values()
    assert info.affinity_timeout == DEFAULT_AFFINITY_TIMEOUT
    assert info.node_port == 30080 and info.lb_ips == ("192.0.2.10",) and info.external_local
    assert info.lb_source_ranges == ("192.0.2.0/24",)
    s.spec.session_affinity_config.client_ip.timeout_seconds = 60
    (info,) = service_ports(s).values()
    assert info.affinity_timeout == 60


def test_endpoints_ready_only_and_local() -> None:
    got = endpoints_by_port(eps(ready=(("10.244.1.5", "n1"), ("10.244.2.5", "n2")), not_ready=("10.244.3.3",)), "n1")
    assert got == {("p80", "TCP"): (Endpoint("10.244.1.5", 8080, "n1", True),
                                    Endpoint("10.244.2.5", 8080, "n2", False))}


def test_change_tracker_marks_only_real_changes() -> None:
    t = ChangeTracker("n1")
    assert t.update_service("ns1/svc1", svc())
    assert not t.update_service("ns1/svc1", svc())  # same content: nothing to do
    e = eps()
    e.metadata.annotations[TRIGGER_TIME_ANNOTATION] = "2024-01-01T00:00:00Z"
    assert t.update_endpoints("ns1/svc1", e)
    dirty, times = t.take_dirty()
    assert dirty == {"ns1/svc1"} and times["ns1/svc1"] == 1704067200.0
    assert not t.dirty
    ports = t.ports("ns1/svc1")
    (_info, endpoints), = ports.values()
    assert endpoints == (Endpoint("10.244.1.5", 8080, "n1", True),)
    assert t.update_service("ns1/svc1", None) and t.ports("ns1/svc1") == {}


def eslice(name: str, eps_: list[tuple[str, str, bool | None, bool, bool]], *, service: str = "svc1",
           port: int = 8080, address_type: str = "IPv4") -> discovery.EndpointSlice:
    """A slice of `service` with endpoints (ip, node, ready, serving, terminating); ready None = unset."""
    s = discovery.EndpointSlice(metadata=meta.ObjectMeta(name=name, namespace="ns1"), address_type=address_type)
    s.metadata.labels[SERVICE_NAME_LABEL] = service
    s.ports.add(name="p80", port=port, protocol="TCP")
    for ip, node, ready, serving, terminating in eps_:
        e = s.endpoints.add(addresses=[ip], node_name=node)
        if ready is not None:
            e.conditions.ready = ready
        e.conditions.serving, e.conditions.terminating = serving, terminating
    return s


def test_endpoints_from_slices_as_kube_proxy_takes_them() -> None:
    a = eslice("svc1-a", [("10.244.1.5", "n1", True, True, False), ("10.244.1.6", "n2", False, False, False)])
    b = eslice("svc1-b", [("10.244.2.5", "n2", None, False, False), ("10.244.1.5", "n1", True, True, False)],
               port=9090)
    fqdn = eslice("svc1-c", [("example.com", "", True, True, False)], address_type="FQDN")
    got = endpoints_from_slices([a, b, fqdn], "n1")
    assert got == {("p80", "TCP"): (Endpoint("10.244.1.5", 8080, "n1", True), Endpoint("10.244.1.5", 9090, "n1", True),
                                    Endpoint("10.244.2.5", 9090, "n2", False))}
    # no ready endpoint: the serving terminating ones carry the traffic while they drain
    term = eslice("svc1-a", [("10.244.1.5", "n1", False, True, True), ("10.244.1.6", "n2", False, False, True)])
    assert endpoints_from_slices([term], "") == {("p80", "TCP"): (Endpoint("10.244.1.5", 8080, "n1"),)}


def test_change_tracker_merges_a_services_slices() -> None:
    t = ChangeTracker("n1")
    a = eslice("svc1-a", [("10.244.1.5", "n1", True, True, False)])
    b = eslice("svc1-b", [("10.244.1.6", "n2", True, True, False)])
    assert t.update_endpoint_slice(a) and t.update_endpoint_slice(b)
    assert [e.ip for e in t.endpoints["ns1/svc1"][("p80", "TCP")]] == ["10.244.1.5", "10.244.1.6"]
    t.take_dirty()
    assert not t.update_endpoint_slice(a)  # unchanged
    assert t.update_endpoint_slice(a, deleted=True)
    assert [e.ip for e in t.endpoints["ns1/svc1"][("p80", "TCP")]] == ["10.244.1.6"]
    moved = eslice("svc1-b", [("10.244.1.6", "n2", True, True, False)], service="svc2")
    assert t.update_endpoint_slice(moved)  # its label names another Service now: both change
    assert "ns1/svc1" not in t.endpoints and "ns1/svc2" in t.endpoints
    assert t.take_dirty()[0] == {"ns1/svc1", "ns1/svc2"}
