"""The cluster zone's records (Kubernetes DNS specification) and the handler's answers, without sockets."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.reversename

from clusterdns.server import Handler
from clusterdns.zone import Zone
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.discovery.v1 import discovery_pb2 as discovery
from pybernetes.api.endpointslices import SERVICE_NAME_LABEL


def service(name: str, ns: str = "default", ip: str = "10.96.0.20", ports: tuple[tuple[str, int, str], ...] = (),
            type_: str = "ClusterIP", external_name: str = "") -> core.Service:
    svc = core.Service()
    svc.metadata.name, svc.metadata.namespace = name, ns
    svc.spec.cluster_ip = ip
    if ip != "None":
        svc.spec.cluster_ips.append(ip)
    svc.spec.type = type_
    svc.spec.external_name = external_name
    for pname, port, proto in ports:
        svc.spec.ports.add(name=pname, port=port, protocol=proto)
    return svc


def endpoints(name: str, ready: list[tuple[str, str]], not_ready: list[tuple[str, str]] | None = None,
              ports: tuple[tuple[str, int, str], ...] = (), ns: str = "default") -> core.Endpoints:
    ep = core.Endpoints()
    ep.metadata.name, ep.metadata.namespace = name, ns
    sub = ep.subsets.add()
    for ip, host in ready:
        sub.addresses.add(ip=ip, hostname=host)
    for ip, host in not_ready or []:
        sub.not_ready_addresses.add(ip=ip, hostname=host)
    for pname, port, proto in ports:
        sub.ports.add(name=pname, port=port, protocol=proto)
    return ep


def q(zone: Zone, name: str, rdtype: str = "A") -> tuple[str, list[str]]:
    res = zone.lookup(dns.name.from_text(name), dns.rdatatype.from_text(rdtype))
    texts = sorted(rd.to_text() for rrset in res.answer for rd in rrset)
    return dns.rcode.to_text(res.rcode), texts


def test_cluster_ip_service_a_srv_ptr() -> None:
    z = Zone()
    z.set_service(service("hello", ports=(("http", 80, "TCP"), ("", 81, "TCP"), ("dns", 53, "UDP"))))
    assert q(z, "hello.default.svc.cluster.local.") == ("NOERROR", ["10.96.0.20"])
    assert q(z, "HELLO.Default.svc.cluster.local.") == ("NOERROR", ["10.96.0.20"])  # case-insensitive
    assert q(z, "_http._tcp.hello.default.svc.cluster.local.", "SRV") == (
        "NOERROR", ["0 100 80 hello.default.svc.cluster.local."])
    assert q(z, "_dns._udp.hello.default.svc.cluster.local.", "SRV")[1] == ["0 100 53 hello.default.svc.cluster.local."]
    assert q(z, dns.reversename.from_address("10.96.0.20").to_text(), "PTR") == (
        "NOERROR", ["hello.default.svc.cluster.local."])
    # the name exists, the type does not: NODATA with the SOA
    res = z.lookup(dns.name.from_text("hello.default.svc.cluster.local."), dns.rdatatype.AAAA)
    assert res.rcode == dns.rcode.NOERROR and not res.answer and res.authority
    # SRV answers carry the target's A record
    res = z.lookup(dns.name.from_text("_http._tcp.hello.default.svc.cluster.local."), dns.rdatatype.SRV)
    assert [rd.to_text() for rrset in res.additional for rd in rrset] == ["10.96.0.20"]


def test_unknown_names_are_nxdomain_and_empty_non_terminals_nodata() -> None:
    z = Zone()
    z.set_service(service("hello"))
    assert q(z, "nope.default.svc.cluster.local.")[0] == "NXDOMAIN"
    assert q(z, "hello.other.svc.cluster.local.")[0] == "NXDOMAIN"
    assert q(z, "default.svc.cluster.local.") == ("NOERROR", [])
    assert q(z, "svc.cluster.local.") == ("NOERROR", [])
    assert q(z, "dns-version.cluster.local.", "TXT") == ("NOERROR", ['"1.0.1"'])
    assert q(z, "cluster.local.", "SOA")[0] == "NOERROR"


def test_service_delete_removes_its_records() -> None:
    z = Zone()
    z.set_service(service("hello"))
    z.delete_service("default/hello")
    assert q(z, "hello.default.svc.cluster.local.")[0] == "NXDOMAIN"
    assert q(z, "default.svc.cluster.local.")[0] == "NXDOMAIN"
    assert not z.owns(dns.reversename.from_address("10.96.0.20"))


def test_headless_service_ready_endpoints_hostnames_srv_ptr() -> None:
    z = Zone()
    z.set_service(service("nginx", ip="None", ports=(("web", 80, "TCP"),)))
    assert q(z, "nginx.default.svc.cluster.local.")[0] == "NXDOMAIN"  # no ready endpoints yet (spec 2.4.1)
    z.set_endpoints(endpoints("nginx", [("10.244.1.5", "web-0"), ("10.244.2.6", "")], [("10.244.3.7", "web-2")],
                              ports=(("web", 8080, "TCP"),)))
    assert q(z, "nginx.default.svc.cluster.local.") == ("NOERROR", ["10.244.1.5", "10.244.2.6"])
    assert q(z, "web-0.nginx.default.svc.cluster.local.") == ("NOERROR", ["10.244.1.5"])
    assert q(z, "10-244-2-6.nginx.default.svc.cluster.local.") == ("NOERROR", ["10.244.2.6"])
    assert q(z, "web-2.nginx.default.svc.cluster.local.")[0] == "NXDOMAIN"  # not ready
    assert q(z, "_web._tcp.nginx.default.svc.cluster.local.", "SRV")[1] == [
        "0 100 8080 10-244-2-6.nginx.default.svc.cluster.local.", "0 100 8080 web-0.nginx.default.svc.cluster.local."]
    assert q(z, dns.reversename.from_address("10.244.1.5").to_text(), "PTR")[1] == [
        "web-0.nginx.default.svc.cluster.local."]


def test_headless_endpoint_turning_unready_drops_out() -> None:
    z = Zone()
    z.set_service(service("db", ip="None"))
    z.set_endpoints(endpoints("db", [("10.244.1.5", ""), ("10.244.2.6", "")]))
    assert q(z, "db.default.svc.cluster.local.")[1] == ["10.244.1.5", "10.244.2.6"]
    z.set_endpoints(endpoints("db", [("10.244.1.5", "")], [("10.244.2.6", "")]))
    assert q(z, "db.default.svc.cluster.local.")[1] == ["10.244.1.5"]
    assert not z.owns(dns.reversename.from_address("10.244.2.6"))
    z.set_endpoints(endpoints("db", [], [("10.244.1.5", ""), ("10.244.2.6", "")]))
    assert q(z, "db.default.svc.cluster.local.")[0] == "NXDOMAIN"
    z.delete_endpoints("default/db")
    assert q(z, "db.default.svc.cluster.local.")[0] == "NXDOMAIN"


def endpoint_slice(name: str, service_name: str, eps: list[tuple[str, str, bool]],
                   ports: tuple[tuple[str, int, str], ...] = ()) -> discovery.EndpointSlice:
    s = discovery.EndpointSlice(address_type="IPv4")
    s.metadata.name, s.metadata.namespace = name, "default"
    s.metadata.labels[SERVICE_NAME_LABEL] = service_name
    for ip, host, ready in eps:
        e = s.endpoints.add(addresses=[ip])
        if host:
            e.hostname = host
        e.conditions.ready = ready
    for pname, port, proto in ports:
        s.ports.add(name=pname, port=port, protocol=proto)
    return s


def test_headless_service_from_endpoint_slices() -> None:
    """The same records from a Service's EndpointSlices (merged), as CoreDNS reads them."""
    z = Zone()
    z.set_service(service("nginx", ip="None", ports=(("web", 80, "TCP"),)))
    a = endpoint_slice("nginx-aaaaa", "nginx", [("10.244.1.5", "web-0", True), ("10.244.3.7", "web-2", False)],
                       ports=(("web", 8080, "TCP"),))
    b = endpoint_slice("nginx-bbbbb", "nginx", [("10.244.2.6", "", True)], ports=(("web", 8080, "TCP"),))
    z.set_endpoint_slice(a)
    z.set_endpoint_slice(b)
    assert q(z, "nginx.default.svc.cluster.local.") == ("NOERROR", ["10.244.1.5", "10.244.2.6"])
    assert q(z, "web-0.nginx.default.svc.cluster.local.") == ("NOERROR", ["10.244.1.5"])
    assert q(z, "web-2.nginx.default.svc.cluster.local.")[0] == "NXDOMAIN"  # not ready
    assert q(z, "_web._tcp.nginx.default.svc.cluster.local.", "SRV")[1] == [
        "0 100 8080 10-244-2-6.nginx.default.svc.cluster.local.", "0 100 8080 web-0.nginx.default.svc.cluster.local."]
    # web-0 turns unready, then the other slice goes: the name goes with its last ready endpoint
    z.set_endpoint_slice(endpoint_slice("nginx-aaaaa", "nginx", [("10.244.1.5", "web-0", False)]))
    assert q(z, "nginx.default.svc.cluster.local.")[1] == ["10.244.2.6"]
    z.delete_endpoint_slice(b)
    assert q(z, "nginx.default.svc.cluster.local.")[0] == "NXDOMAIN"


def test_publish_not_ready_addresses() -> None:
    z = Zone()
    svc = service("db", ip="None")
    svc.spec.publish_not_ready_addresses = True
    z.set_service(svc)
    z.set_endpoints(endpoints("db", [], [("10.244.2.6", "db-1")]))
    assert q(z, "db-1.db.default.svc.cluster.local.")[1] == ["10.244.2.6"]


def test_external_name_and_pod_records_and_other_domain() -> None:
    z = Zone("example.internal")
    z.set_service(service("ext", ip="", type_="ExternalName", external_name="www.example.com"))
    assert q(z, "ext.default.svc.example.internal.") == ("NOERROR", ["www.example.com."])
    assert q(z, "10-244-1-5.default.pod.example.internal.") == ("NOERROR", ["10.244.1.5"])
    assert not z.owns(dns.name.from_text("hello.default.svc.cluster.local."))
    assert not z.owns(dns.name.from_text("example.com."))


def test_two_services_sharing_nothing_keep_their_own_records() -> None:
    z = Zone()
    z.set_service(service("a", ip="10.96.0.21"))
    z.set_service(service("b", ip="10.96.0.22"))
    z.delete_service("default/a")
    assert q(z, "b.default.svc.cluster.local.")[1] == ["10.96.0.22"]
    assert q(z, "default.svc.cluster.local.")[0] == "NOERROR"


async def test_handler_nxdomain_servfail_without_upstream_and_aa() -> None:
    z = Zone()
    z.set_service(service("hello"))
    h = Handler(z, [])

    async def ask(name: str, rdtype: str = "A") -> dns.message.Message:
        query = dns.message.make_query(name, rdtype)
        out = await h.answer(query.to_wire(), "udp")
        assert out is not None
        return dns.message.from_wire(out)

    r = await ask("hello.default.svc.cluster.local.")
    assert r.rcode() == dns.rcode.NOERROR and r.answer[0][0].to_text() == "10.96.0.20"
    assert r.flags & dns.flags.AA
    assert (await ask("nope.default.svc.cluster.local.")).rcode() == dns.rcode.NXDOMAIN
    assert (await ask("example.com.")).rcode() == dns.rcode.SERVFAIL
    assert (await ask(dns.reversename.from_address("8.8.8.8").to_text(), "PTR")).rcode() == dns.rcode.SERVFAIL
    assert await h.answer(b"\x00", "udp") is None


async def test_large_udp_answers_are_truncated_and_tcp_carries_them() -> None:
    z = Zone()
    z.set_service(service("big", ip="None"))
    z.set_endpoints(endpoints("big", [(f"10.244.1.{i}", "") for i in range(1, 101)]))
    h = Handler(z, [])
    query = dns.message.make_query("big.default.svc.cluster.local.", "A")
    udp = await h.answer(query.to_wire(), "udp")
    tcp = await h.answer(query.to_wire(), "tcp")
    assert udp is not None and tcp is not None
    small, full = dns.message.from_wire(udp), dns.message.from_wire(tcp)
    assert small.flags & dns.flags.TC and not small.answer
    assert len(full.answer[0]) == 100 and not full.flags & dns.flags.TC
    # a garbled message with a header gets FORMERR with its id
    bad = await h.answer(b"\x12\x34" + b"\x01\x00\x00\x01" + b"\x00" * 6 + b"\x07broken", "udp")
    assert bad is not None and dns.message.from_wire(bad).rcode() == dns.rcode.FORMERR
    assert dns.message.from_wire(bad).id == 0x1234
