"""ClusterIP and NodePort allocation: unique under concurrent creates, kept on update, freed on delete,
consistent across apiserver restarts; the `kubernetes` Service exists."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from pybernetes import errors
from pybernetes.api import codec
from pybernetes.api.core.v1 import core_pb2 as core
from tests.integration.conftest import ApiServer

pytestmark = pytest.mark.integration


def service(name: str, type_: str = "ClusterIP", cluster_ip: str = "", node_port: int = 0) -> core.Service:
    port: dict[str, object] = {"port": 80, "targetPort": 8080}
    if node_port:
        port["nodePort"] = node_port
    spec: dict[str, object] = {"type": type_, "selector": {"app": name}, "ports": [port]}
    if cluster_ip:
        spec["clusterIP"] = cluster_ip
    return codec.from_dict({"metadata": {"name": name, "namespace": "default"}, "spec": spec}, core.Service)


async def test_kubernetes_service_exists(apiserver: ApiServer) -> None:
    svc = await apiserver.client.get(core.Service, "kubernetes", namespace="default")
    assert svc.spec.cluster_ip == "10.96.0.1"
    assert svc.spec.ports[0].port == 443 and svc.spec.ports[0].target_port.int_val == apiserver.cfg.secure_port


async def test_concurrent_creates_get_distinct_ips_and_ports(apiserver: ApiServer) -> None:
    made = await asyncio.gather(*(apiserver.client.create(service(f"s{i}", "NodePort")) for i in range(40)))
    ips = [s.spec.cluster_ip for s in made]
    ports = [s.spec.ports[0].node_port for s in made]
    assert len(set(ips)) == 40 and len(set(ports)) == 40
    net = ipaddress.ip_network("10.96.0.0/16")
    assert all(ipaddress.ip_address(ip) in net and ip != "10.96.0.1" for ip in ips)
    assert all(30000 <= p <= 32767 for p in ports)
    assert [s.spec.cluster_ips[0] for s in made] == ips


async def test_requested_values_are_exclusive(apiserver: ApiServer) -> None:
    c = apiserver.client
    await c.create(service("a", "NodePort", cluster_ip="10.96.5.5", node_port=30555))
    with pytest.raises(errors.Invalid, match="already allocated"):
        await c.create(service("b", cluster_ip="10.96.5.5"))
    with pytest.raises(errors.Invalid, match="already allocated"):
        await c.create(service("c", "NodePort", node_port=30555))
    with pytest.raises(errors.Invalid, match="valid range"):
        await c.create(service("d", "NodePort", node_port=80))
    with pytest.raises(errors.Invalid, match="valid range"):
        await c.create(service("e", cluster_ip="10.97.0.5"))
    # A failed create claimed nothing: the values stay free for others.
    ok = await c.create(service("f", "NodePort", node_port=30556))
    assert ok.spec.ports[0].node_port == 30556


async def test_update_keeps_values_delete_frees_them(apiserver: ApiServer) -> None:
    c = apiserver.client
    s = await c.create(service("keep", "NodePort"))
    ip, port = s.spec.cluster_ip, s.spec.ports[0].node_port
    # An apply-style update that omits clusterIP and nodePort keeps them.
    again = service("keep", "NodePort")
    again.metadata.resource_version = s.metadata.resource_version
    again.metadata.labels["v"] = "2"
    updated = await c.update(again)
    assert updated.spec.cluster_ip == ip and updated.spec.ports[0].node_port == port
    # Switching to ClusterIP gives the node port back.
    updated.spec.type = "ClusterIP"
    updated.spec.ClearField("external_traffic_policy")
    as_cluster_ip = await c.update(updated)
    assert as_cluster_ip.spec.ports[0].node_port == 0
    await c.create(service("taker", "NodePort", node_port=port))
    await c.delete(core.Service, "keep", namespace="default")
    reused = await c.create(service("reuse", cluster_ip=ip))
    assert reused.spec.cluster_ip == ip


async def test_allocations_survive_restart(apiserver: ApiServer) -> None:
    s = await apiserver.client.create(service("persist", "NodePort"))
    await apiserver.restart()
    with pytest.raises(errors.Invalid, match="already allocated"):
        await apiserver.client.create(service("clash", cluster_ip=s.spec.cluster_ip))
