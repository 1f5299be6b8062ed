"""The cluster zone: the DNS records of every Service and its endpoints, as the Kubernetes DNS-based service
discovery specification (kubernetes/dns docs/specification.md, schema 1.0.1) lays them out.

    dns-version.<zone>                         TXT   the schema version
    <svc>.<ns>.svc.<zone>                      A     the ClusterIP; headless: every ready endpoint IP
                                               CNAME type ExternalName: spec.externalName
    <hostname>.<svc>.<ns>.svc.<zone>           A     a ready endpoint of a headless Service (its hostname, as
                                                     a StatefulSet pod's `web-0`, else its IP dashed)
    _<port>._<proto>.<svc>.<ns>.svc.<zone>     SRV   named ports (headless: one per ready endpoint)
    <d>.<c>.<b>.<a>.in-addr.arpa               PTR   ClusterIPs and headless endpoint IPs
    <a>-<b>-<c>-<d>.<ns>.pod.<zone>            A     the deprecated pod records (computed, not stored)

The informers' handlers (clusterdns.main) call `set_service`/`delete_service` and either `set_endpoints`/
`delete_endpoints` or `set_endpoint_slice`/`delete_endpoint_slice` (a Service's slices are merged; an endpoint
counts when `ready`, as CoreDNS reads slices); each change rebuilds only that Service's records.
`lookup(qname, qtype)` answers from memory: the records, NODATA (NOERROR, SOA in authority) for a name that
exists with other types, NXDOMAIN for a name in the zone that does not exist (a headless Service without ready
endpoints has no name). Names outside the cluster domain and unknown reverse names are not this zone's (`owns`
says which). Comparisons are case-insensitive (dnspython names compare so).
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass, field

import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.reversename
import dns.rrset

from pybernetes.api import endpointslices, objects
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.discovery.v1 import discovery_pb2 as discovery
from pybernetes.api.endpointslices import SliceCache

SCHEMA_VERSION = "1.0.1"
TTL = 5  # CoreDNS' kubernetes plugin default: short, so a changed Service is seen soon
TOLERATE_UNREADY = "service.alpha.kubernetes.io/tolerate-unready-endpoints"
REVERSE_V4 = dns.name.from_text("in-addr.arpa.")
REVERSE_V6 = dns.name.from_text("ip6.arpa.")

RdataType = dns.rdatatype.RdataType
Records = dict[tuple[dns.name.Name, RdataType], list[dns.rdata.Rdata]]
# Addresses (ip, hostname, ready) and the ports (name, port, protocol) they serve: a subset, or a slice.
EndpointGroup = tuple[list[tuple[str, str, bool]], list[tuple[str, int, str]]]


@dataclass
class Result:
    """What the zone answers: rcode, answer RRsets, additional RRsets, the SOA for negative answers."""

    rcode: dns.rcode.Rcode = dns.rcode.NOERROR
    answer: list[dns.rrset.RRset] = field(default_factory=list)
    additional: list[dns.rrset.RRset] = field(default_factory=list)
    authority: list[dns.rrset.RRset] = field(default_factory=list)


def _rdata(rdtype: RdataType, text: str) -> dns.rdata.Rdata:
    return dns.rdata.from_text(dns.rdataclass.IN, rdtype, text)


def _address_type(ip: str) -> RdataType:
    return dns.rdatatype.AAAA if ipaddress.ip_address(ip).version == 6 else dns.rdatatype.A


def _dashed(ip: str) -> str:
    """The system-assigned hostname of an endpoint without one (CoreDNS: its IP with dashes)."""
    return ip.replace(".", "-").replace(":", "-")


def cluster_ips(svc: core.Service) -> list[str]:
    ips = list(svc.spec.cluster_ips) or ([svc.spec.cluster_ip] if svc.spec.cluster_ip else [])
    return [ip for ip in ips if ip and ip != "None"]


def is_headless(svc: core.Service) -> bool:
    return svc.spec.cluster_ip == "None"


class Zone:
    def __init__(self, domain: str = "cluster.local") -> None:
        self.origin = dns.name.from_text(domain.strip(".") + ".")
        self.services: dict[str, core.Service] = {}
        self.endpoints: dict[str, core.Endpoints] = {}
        self.slices = SliceCache()  # fed instead of `endpoints` when pb-dns reads EndpointSlices
        self._by_key: dict[str, Records] = {}
        self._index: dict[tuple[dns.name.Name, RdataType], dict[str, list[dns.rdata.Rdata]]] = {}
        self._names: Counter[dns.name.Name] = Counter()  # every owner name and its ancestors in the zone
        self.soa = dns.rrset.from_text(self.origin, TTL, "IN", "SOA",
                                       f"ns.dns.{self.origin} hostmaster.{self.origin} 1 7200 1800 86400 {TTL}")
        self._static: Records = {(dns.name.from_text("dns-version", self.origin), dns.rdatatype.TXT):
                                 [_rdata(dns.rdatatype.TXT, f'"{SCHEMA_VERSION}"')]}
        self._publish("", self._static)

    # -- changes (the informers' handlers) -------------------------------------------------------------

    def set_service(self, svc: core.Service) -> None:
        key = objects.key(svc)
        self.services[key] = svc
        self._rebuild(key)

    def delete_service(self, key: str) -> None:
        self.services.pop(key, None)
        self._rebuild(key)

    def set_endpoints(self, ep: core.Endpoints) -> None:
        key = objects.key(ep)
        self.endpoints[key] = ep
        self._rebuild(key)

    def delete_endpoints(self, key: str) -> None:
        self.endpoints.pop(key, None)
        self._rebuild(key)

    def set_endpoint_slice(self, s: discovery.EndpointSlice) -> None:
        for key in self.slices.update(s):
            self._rebuild(key)

    def delete_endpoint_slice(self, s: discovery.EndpointSlice) -> None:
        for key in self.slices.delete(s):
            self._rebuild(key)

    def _endpoint_groups(self, key: str) -> list[EndpointGroup]:
        """The Service's addresses with their ports, from its Endpoints' subsets or its EndpointSlices."""
        groups: list[EndpointGroup] = []
        ep = self.endpoints.get(key)
        for subset in ep.subsets if ep is not None else ():
            ports = [(p.name, p.port, p.protocol or "TCP") for p in subset.ports]
            groups.append(([(a.ip, a.hostname, True) for a in subset.addresses]
                           + [(a.ip, a.hostname, False) for a in subset.not_ready_addresses], ports))
        for sl in self.slices.slices(key):
            if sl.address_type not in ("IPv4", "IPv6"):
                continue
            ports = [(p.name, p.port, p.protocol or "TCP") for p in sl.ports if p.HasField("port")]
            groups.append(([(e.addresses[0], e.hostname, endpointslices.is_ready(e)) for e in sl.endpoints
                            if e.addresses], ports))
        return groups

    def _rebuild(self, key: str) -> None:
        old = self._by_key.pop(key, None)
        if old is not None:
            self._unpublish(key, old)
        svc = self.services.get(key)
        if svc is not None:
            new = self._records(svc, self._endpoint_groups(key))
            self._by_key[key] = new
            self._publish(key, new)

    def _publish(self, key: str, records: Records) -> None:
        for (name, rdtype), rdatas in records.items():
            self._index.setdefault((name, rdtype), {})[key] = rdatas
            self._count(name, 1)

    def _unpublish(self, key: str, records: Records) -> None:
        for (name, rdtype) in records:
            owners = self._index.get((name, rdtype), {})
            owners.pop(key, None)
            if not owners:
                self._index.pop((name, rdtype), None)
            self._count(name, -1)

    def _count(self, name: dns.name.Name, delta: int) -> None:
        """Count `name` and its ancestors down to the zone apex or the reverse root (empty non-terminals)."""
        while True:
            self._names[name] += delta
            if self._names[name] <= 0:
                del self._names[name]
            if name in (self.origin, REVERSE_V4, REVERSE_V6) or name == dns.name.root:
                return
            name = name.parent()

    # -- records of one Service ------------------------------------------------------------------------

    def _records(self, svc: core.Service, groups: list[EndpointGroup]) -> Records:
        md = objects.meta_of(svc)
        base = dns.name.from_text(f"{md.name}.{md.namespace}.svc", self.origin)
        out: Records = {}

        def add(name: dns.name.Name, rdtype: RdataType, text: str) -> None:
            rdata = _rdata(rdtype, text)
            rdatas = out.setdefault((name, rdtype), [])
            if rdata not in rdatas:
                rdatas.append(rdata)

        if svc.spec.type == "ExternalName":
            if svc.spec.external_name:
                add(base, dns.rdatatype.CNAME, svc.spec.external_name.rstrip(".") + ".")
            return out
        if not is_headless(svc):
            for ip in cluster_ips(svc):
                add(base, _address_type(ip), ip)
                add(dns.reversename.from_address(ip), dns.rdatatype.PTR, base.to_text())
            for p in svc.spec.ports:
                if p.name:
                    srv = dns.name.from_text(f"_{p.name}._{(p.protocol or 'TCP').lower()}", base)
                    add(srv, dns.rdatatype.SRV, f"0 100 {p.port} {base}")
            return out
        tolerate = svc.spec.publish_not_ready_addresses or md.annotations.get(TOLERATE_UNREADY) == "true"
        for addresses, ports in groups:
            for ip, hostname, ready in addresses:
                if not (ready or tolerate):
                    continue
                host = dns.name.from_text(hostname or _dashed(ip), base)
                add(base, _address_type(ip), ip)
                add(host, _address_type(ip), ip)
                add(dns.reversename.from_address(ip), dns.rdatatype.PTR, host.to_text())
                for name, port, protocol in ports:
                    if name:
                        srv = dns.name.from_text(f"_{name}._{protocol.lower()}", base)
                        add(srv, dns.rdatatype.SRV, f"0 100 {port} {host}")
        return out

    # -- queries ---------------------------------------------------------------------------------------

    def owns(self, qname: dns.name.Name) -> bool:
        """Whether the zone answers `qname`: the cluster domain, and reverse names it has records for."""
        if qname.is_subdomain(self.origin):
            return True
        return qname in self._names and (qname.is_subdomain(REVERSE_V4) or qname.is_subdomain(REVERSE_V6))

    def lookup(self, qname: dns.name.Name, qtype: RdataType) -> Result:
        res = Result()
        pod = self._pod_address(qname)
        if pod is not None:
            if qtype in (_address_type(pod), dns.rdatatype.ANY):
                res.answer.append(dns.rrset.from_text(qname, TTL, "IN", dns.rdatatype.to_text(_address_type(pod)),
                                                      pod))
            else:
                res.authority.append(self.soa)
            return res
        if qname not in self._names:
            res.rcode = dns.rcode.NXDOMAIN
            res.authority.append(self.soa)
            return res
        if qname == self.origin and qtype in (dns.rdatatype.SOA, dns.rdatatype.ANY):
            res.answer.append(self.soa)
        cname = self._rdatas(qname, dns.rdatatype.CNAME)
        if cname and qtype != dns.rdatatype.CNAME:
            # The target is outside the zone: the client's resolver follows it (we do not recurse).
            res.answer.append(dns.rrset.from_rdata_list(qname, TTL, cname))
            return res
        types = [qtype] if qtype != dns.rdatatype.ANY else [dns.rdatatype.A, dns.rdatatype.AAAA,
                                                             dns.rdatatype.SRV, dns.rdatatype.TXT,
                                                             dns.rdatatype.PTR]
        for t in types:
            rdatas = self._rdatas(qname, t)
            if rdatas:
                res.answer.append(dns.rrset.from_rdata_list(qname, TTL, rdatas))
        if qtype == dns.rdatatype.SRV:
            res.additional.extend(self._targets(res.answer))
        if not res.answer:
            res.authority.append(self.soa)
        return res

    def _rdatas(self, name: dns.name.Name, rdtype: RdataType) -> list[dns.rdata.Rdata]:
        owners = self._index.get((name, rdtype))
        if not owners:
            return []
        out: list[dns.rdata.Rdata] = []
        for rdatas in owners.values():
            out.extend(r for r in rdatas if r not in out)
        return out

    def _targets(self, answer: list[dns.rrset.RRset]) -> list[dns.rrset.RRset]:
        """The A/AAAA records of SRV targets (the additional section the specification allows)."""
        out = []
        seen: set[dns.name.Name] = set()
        for rrset in answer:
            for rd in rrset:
                target = rd.target
                if target in seen:
                    continue
                seen.add(target)
                for t in (dns.rdatatype.A, dns.rdatatype.AAAA):
                    rdatas = self._rdatas(target, t)
                    if rdatas:
                        out.append(dns.rrset.from_rdata_list(target, TTL, rdatas))
        return out

    def _pod_address(self, qname: dns.name.Name) -> str | None:
        """`a-b-c-d.<ns>.pod.<zone>` -> a.b.c.d (the deprecated pod records, answered for any address)."""
        rel = qname.relativize(self.origin).labels if qname.is_subdomain(self.origin) else ()
        if len(rel) != 3 or rel[2].lower() != b"pod":
            return None
        try:
            return str(ipaddress.IPv4Address(rel[0].decode().replace("-", ".")))
        except ValueError:
            return None
