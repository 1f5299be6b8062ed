"""pb-dns against a real apiserver, queried with dnspython over UDP and TCP: a Service's name resolves once
it exists, a headless Service resolves to its ready endpoints only, unknown names are NXDOMAIN, SRV and PTR,
names outside the cluster domain SERVFAIL without an upstream, /readyz and /metrics; and the same from the
EndpointSlices the real controller makes of pods the test makes ready and unready."""

from __future__ import annotations

import asyncio
import contextlib
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass

import dns.asyncquery
import dns.message
import dns.rcode
import dns.reversename
import pytest

from clusterdns import main as dns_main
from pybernetes.api import codec
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.ports import free_port
from services.controllers.main import Config as ManagerConfig
from services.controllers.main import ControllerManager
from tests.helpers import eventually
from tests.integration.conftest import ApiServer

pytestmark = pytest.mark.integration


@dataclass
class DNS:
    cfg: dns_main.Config

    async def ask(self, name: str, rdtype: str = "A", tcp: bool = False) -> dns.message.Message:
        q = dns.message.make_query(name, rdtype)
        if tcp:
            return await dns.asyncquery.tcp(q, "127.0.0.1", port=self.cfg.port, timeout=2)
        return await dns.asyncquery.udp(q, "127.0.0.1", port=self.cfg.port, timeout=2)

    async def answers(self, name: str, rdtype: str = "A") -> tuple[str, list[str]]:
        r = await self.ask(name, rdtype)
        return dns.rcode.to_text(r.rcode()), sorted(rd.to_text() for rrset in r.answer for rd in rrset)


@pytest.fixture
async def cluster_dns(apiserver: ApiServer) -> AsyncIterator[DNS]:
    async with running_dns(apiserver) as d:
        yield d


@contextlib.asynccontextmanager
async def running_dns(apiserver: ApiServer, endpoint_source: str = "endpoints") -> AsyncIterator[DNS]:
    # pb-dns's own identity (the kube-system/coredns ServiceAccount), under its bootstrap role system:kube-dns
    cfg = dns_main.Config(kubeconfig=str(apiserver.kubeconfig_for("system:serviceaccount:kube-system:coredns")),
                          bind_address="127.0.0.1",
                          port=free_port(), health_bind_address="127.0.0.1", health_port=free_port(),
                          endpoint_source=endpoint_source)
    ready, stop = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(dns_main.run(cfg, ready, stop))
    done, _ = await asyncio.wait([task, asyncio.create_task(ready.wait())], return_when=asyncio.FIRST_COMPLETED,
                                 timeout=30)
    if task in done:
        task.result()
    try:
        yield DNS(cfg)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def service(name: str, *, headless: bool = False) -> core.Service:
    spec: dict[str, object] = {"selector": {"app": name},
                               "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}
    if headless:
        spec["clusterIP"] = "None"
    return codec.from_dict({"metadata": {"name": name, "namespace": "default"}, "spec": spec}, core.Service)


def endpoints(name: str, ready: list[tuple[str, str]], not_ready: list[str]) -> core.Endpoints:
    subset: dict[str, object] = {"ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}
    if ready:
        subset["addresses"] = [{"ip": ip, **({"hostname": h} if h else {})} for ip, h in ready]
    if not_ready:
        subset["notReadyAddresses"] = [{"ip": ip} for ip in not_ready]
    return codec.from_dict({"metadata": {"name": name, "namespace": "default"}, "subsets": [subset]},
                           core.Endpoints)


async def test_service_name_resolves_srv_ptr_tcp(apiserver: ApiServer, cluster_dns: DNS) -> None:
    svc = await apiserver.client.create(service("hello"))
    ip = svc.spec.cluster_ip
    name = "hello.default.svc.cluster.local."

    async def resolves() -> bool:
        return await cluster_dns.answers(name) == ("NOERROR", [ip])
    await eventually(resolves, what="hello resolving")
    assert (await cluster_dns.ask(name, tcp=True)).answer[0][0].to_text() == ip
    assert await cluster_dns.answers("_http._tcp." + name, "SRV") == ("NOERROR", [f"0 100 80 {name}"])
    assert await cluster_dns.answers(dns.reversename.from_address(ip).to_text(), "PTR") == ("NOERROR", [name])
    # the apiserver's own Service, made at bootstrap, is there too
    assert (await cluster_dns.answers("kubernetes.default.svc.cluster.local."))[1] == ["10.96.0.1"]
    assert await cluster_dns.answers("dns-version.cluster.local.", "TXT") == ("NOERROR", ['"1.0.1"'])

    await apiserver.client.delete(core.Service, "hello", namespace="default")

    async def gone() -> bool:
        return (await cluster_dns.answers(name))[0] == "NXDOMAIN"
    await eventually(gone, what="hello gone")


async def test_unknown_names_and_names_outside_the_cluster(cluster_dns: DNS) -> None:
    assert (await cluster_dns.answers("nope.default.svc.cluster.local."))[0] == "NXDOMAIN"
    assert (await cluster_dns.answers("example.com."))[0] == "SERVFAIL"


async def test_headless_service_ready_endpoints_only(apiserver: ApiServer, cluster_dns: DNS) -> None:
    await apiserver.client.create(service("db", headless=True))
    await apiserver.client.create(endpoints("db", [("10.244.1.5", "db-0"), ("10.244.2.6", "db-1")], ["10.244.3.7"]))
    name = "db.default.svc.cluster.local."

    async def both() -> bool:
        return await cluster_dns.answers(name) == ("NOERROR", ["10.244.1.5", "10.244.2.6"])
    await eventually(both, what="headless answers")
    assert await cluster_dns.answers("db-0." + name) == ("NOERROR", ["10.244.1.5"])
    assert (await cluster_dns.answers("_http._tcp." + name, "SRV"))[1] == [
        f"0 100 8080 db-0.{name}", f"0 100 8080 db-1.{name}"]
    assert await cluster_dns.answers(dns.reversename.from_address("10.244.2.6").to_text(), "PTR") == (
        "NOERROR", [f"db-1.{name}"])

    # db-1 turns unready: it drops out
    ep = await apiserver.client.get(core.Endpoints, "db", namespace="default")
    ep.CopyFrom(endpoints("db", [("10.244.1.5", "db-0")], ["10.244.2.6", "10.244.3.7"]))
    current = await apiserver.client.get(core.Endpoints, "db", namespace="default")
    ep.metadata.resource_version = current.metadata.resource_version
    await apiserver.client.update(ep)

    async def one() -> bool:
        return await cluster_dns.answers(name) == ("NOERROR", ["10.244.1.5"])
    await eventually(one, what="unready endpoint dropped")
    assert (await cluster_dns.answers("db-1." + name))[0] == "NXDOMAIN"


async def test_readyz_and_metrics(cluster_dns: DNS) -> None:
    await cluster_dns.answers("nope.default.svc.cluster.local.")
    base = f"http://127.0.0.1:{cluster_dns.cfg.health_port}"

    def get(path: str) -> str:
        with urllib.request.urlopen(base + path, timeout=5) as r:
            return str(r.read().decode())
    assert "ok" in await asyncio.to_thread(get, "/readyz")
    metrics = await asyncio.to_thread(get, "/metrics")
    assert "coredns_dns_requests_total" in metrics
    assert 'coredns_dns_responses_total{rcode="NXDOMAIN"' in metrics or 'rcode="NXDOMAIN"' in metrics
    assert "coredns_dns_request_duration_seconds_bucket" in metrics


async def test_kube_dns_service_published(apiserver: ApiServer, cluster_dns: DNS) -> None:
    from clusterdns import kubedns

    await kubedns.publish(apiserver.client, "10.96.0.10", "172.30.0.10")
    await kubedns.publish(apiserver.client, "10.96.0.10", "172.30.0.11")  # again: the Endpoints follow

    async def resolves() -> bool:
        return await cluster_dns.answers("kube-dns.kube-system.svc.cluster.local.") == ("NOERROR", ["10.96.0.10"])
    await eventually(resolves, what="kube-dns resolving")
    ep = await apiserver.client.get(core.Endpoints, "kube-dns", namespace="kube-system")
    assert [a.ip for a in ep.subsets[0].addresses] == ["172.30.0.11"]
    assert {(p.port, p.protocol) for p in ep.subsets[0].ports} == {(53, "UDP"), (53, "TCP"), (9153, "TCP")}


async def test_headless_service_from_endpoint_slices(apiserver: ApiServer) -> None:
    """pb-dns reading EndpointSlices that the EndpointSlice controller makes of pods: ready pods only, a pod that
    turns unready drops out, a StatefulSet-style pod resolves by hostname."""
    c = apiserver.client
    await c.create(service("web", headless=True))
    for name, ip, ready in (("web-0", "10.244.1.5", True), ("web-1", "10.244.2.6", True), ("web-2", "10.244.3.7",
                                                                                             False)):
        await c.create(codec.from_dict({
            "metadata": {"name": name, "namespace": "default", "labels": {"app": "web"}},
            "spec": {"hostname": name, "subdomain": "web", "nodeName": "n1",
                     "containers": [{"name": "c", "image": "busybox", "ports": [{"containerPort": 8080}]}]}},
            core.Pod))
        await set_pod_status(apiserver, name, ip, ready)
    manager = ControllerManager(ManagerConfig(controllers=["endpointslice"], leader_elect=False, health_port=0),
                                client=apiserver.new_client())
    ready_ev, stop = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(manager.run(ready_ev, stop))
    try:
        await asyncio.wait_for(ready_ev.wait(), 10)
        async with running_dns(apiserver, "endpointslices") as d:
            name = "web.default.svc.cluster.local."

            async def answers(want: list[str]) -> bool:
                return await d.answers(name) == ("NOERROR", want)
            await eventually(lambda: answers(["10.244.1.5", "10.244.2.6"]), 15, what="ready pods resolving")
            assert await d.answers("web-0." + name) == ("NOERROR", ["10.244.1.5"])
            assert (await d.answers("web-2." + name))[0] == "NXDOMAIN"
            assert (await d.answers("_http._tcp." + name, "SRV"))[1] == [
                f"0 100 8080 web-0.{name}", f"0 100 8080 web-1.{name}"]
            await set_pod_status(apiserver, "web-1", "10.244.2.6", False)
            await set_pod_status(apiserver, "web-2", "10.244.3.7", True)
            await eventually(lambda: answers(["10.244.1.5", "10.244.3.7"]), 10, what="readiness followed")
            assert (await d.answers("web-1." + name))[0] == "NXDOMAIN"
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def set_pod_status(apiserver: ApiServer, name: str, ip: str, ready: bool) -> None:
    p = await apiserver.client.get(core.Pod, name, namespace="default")
    p.status.phase, p.status.pod_ip = "Running", ip
    del p.status.conditions[:]
    p.status.conditions.add(type="Ready", status="True" if ready else "False")
    await apiserver.client.update_status(p)
