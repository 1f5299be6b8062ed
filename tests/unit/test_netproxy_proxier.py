"""Proxier: partial vs full syncs, failed applies keep state dirty and count; flags."""

from __future__ import annotations

from typing import Any, cast

from netproxy import metrics
from netproxy.backend import Plan
from netproxy.execs import CommandError
from netproxy.main import parse_args
from netproxy.nftables import NftBackend
from netproxy.proxier import Proxier
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.meta.v1 import meta_pb2 as meta
from tests.unit.test_netproxy_iptables import FakeRunner


class FlakyBackend(NftBackend):
    def __init__(self) -> None:
        super().__init__(FakeRunner())
        self.fail = False
        self.plans: list[Plan] = []

    def execute(self, plan: Plan) -> None:
        self.plans.append(plan)
        if self.fail:
            raise CommandError(["nft", "-f", "-"], 1, "Error: boom")


def svc(name: str, ip: str) -> core.Service:
    s = core.Service(metadata=meta.ObjectMeta(name=name, namespace="default"))
    s.spec.cluster_ip = ip
    s.spec.ports.add(name="http", port=80, protocol="TCP")
    return s


def eps(name: str, *ips: str) -> core.Endpoints:
    e = core.Endpoints(metadata=meta.ObjectMeta(name=name, namespace="default"))
    sub = e.subsets.add()
    for ip in ips:
        sub.addresses.add(ip=ip)
    sub.ports.add(name="http", port=8080, protocol="TCP")
    return e


async def test_partial_then_failure_then_full() -> None:
    b = FlakyBackend()
    p = Proxier(b, hostname="n1", min_sync_period=0, sync_period=3600)
    for i in range(3):
        p.on_service(svc(f"s{i}", f"10.96.0.{i + 1}"))
        p.on_endpoints(eps(f"s{i}", f"10.244.1.{i + 1}"))
    assert await p.sync()
    assert b.plans[-1].full and b.plans[-1].changed == 3
    p.on_endpoints(eps("s1", "10.244.1.2", "10.244.1.9"))
    assert await p.sync()
    assert not b.plans[-1].full and b.plans[-1].changed == 1
    assert "10.244.1.9" in b.plans[-1].script and "10.96.0.3" not in b.plans[-1].script
    before = metrics.RESTORE_FAILURES._value.get()
    b.fail = True
    p.on_endpoints(eps("s2", "10.244.1.7"))
    assert not await p.sync()
    assert metrics.RESTORE_FAILURES._value.get() == before + 1
    assert "default/s2" in p.tracker.dirty and p.need_full
    spn2 = next(iter(p.by_key["default/s2"]))
    assert any("10.244.1.3" in r for rules in b.applied[spn2].chains.values() for r in rules)  # old state kept
    b.fail = False
    assert await p.sync()
    assert b.plans[-1].full and "10.244.1.7" in b.plans[-1].script and not p.tracker.dirty
    p.on_service_delete(svc("s0", "10.96.0.1"))
    assert await p.sync()
    assert "delete element ip pybernetes cluster-ips { 10.96.0.1 }" in b.plans[-1].script
    assert len(p.snapshots) == 2


def test_flags() -> None:
    cfg = parse_args(["--server", "127.0.0.1:6443", "--token", "t", "--hostname-override", "node-1",
                      "--backend", "iptables", "--cluster-cidr", "10.245.0.0/16", "--min-sync-period", "500ms",
                      "--sync-period", "1m", "--health-port", "0", "--metrics-port", "0", "--masquerade-all",
                      "--nodeport-addresses", "172.30.0.0/24, 10.0.0.0/8"])
    assert cfg.backend == "iptables" and cfg.hostname_override == "node-1" and cfg.cluster_cidr == "10.245.0.0/16"
    assert cfg.min_sync_period == 0.5 and cfg.sync_period == 60 and cfg.masquerade_all
    assert cfg.nodeport_addresses == ["172.30.0.0/24", "10.0.0.0/8"]
    default = parse_args([])
    assert default.backend == "nftables" and default.health_port == 10256 and default.metrics_port == 10249
    assert parse_args(["--cleanup"]).cleanup


async def test_endpoint_slices_source() -> None:
    from pybernetes.api.discovery.v1 import discovery_pb2 as discovery
    from pybernetes.api.endpointslices import SERVICE_NAME_LABEL
    from pybernetes.cache import InformerFactory

    assert parse_args([]).endpoint_source == "endpoints"
    assert parse_args(["--endpoint-source", "endpointslices"]).endpoint_source == "endpointslices"
    b = FlakyBackend()
    p = Proxier(b, hostname="n1", min_sync_period=0, sync_period=3600, endpoint_source="endpointslices")
    factory = InformerFactory(cast(Any, None))
    p.register(factory)
    assert {i.name for i in factory.informers()} == {"Service", "EndpointSlice", "Node"}
    p.on_service(svc("s0", "10.96.0.1"))
    s = discovery.EndpointSlice(metadata=meta.ObjectMeta(name="s0-abcde", namespace="default"), address_type="IPv4")
    s.metadata.labels[SERVICE_NAME_LABEL] = "s0"
    s.ports.add(name="http", port=8080, protocol="TCP")
    s.endpoints.add(addresses=["10.244.1.1"]).conditions.ready = True
    s.endpoints.add(addresses=["10.244.1.2"]).conditions.ready = False
    p.on_endpoint_slice(s)
    assert await p.sync()
    assert "10.244.1.1" in b.plans[-1].script and "10.244.1.2" not in b.plans[-1].script
    p.on_endpoint_slice_delete(s)
    assert await p.sync()
    assert "add element ip pybernetes no-endpoint-services { 10.96.0.1 . tcp . 80" in b.plans[-1].script
