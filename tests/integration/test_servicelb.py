"""LoadBalancer Services get addresses from the pool: distinct, released, re-learned; pending when exhausted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from pybernetes.api import codec
from pybernetes.api.core.v1 import core_pb2 as core
from services.controllers.main import ControllerManager
from tests.helpers import eventually
from tests.integration.conftest import ApiServer
from tests.integration.test_controller_manager import manager_config

pytestmark = pytest.mark.integration

POOL = "172.30.9.200-172.30.9.201"


def lb(name: str, ip: str = "") -> core.Service:
    spec: dict[str, object] = {"type": "LoadBalancer", "selector": {"app": name}, "ports": [{"port": 80}]}
    if ip:
        spec["loadBalancerIP"] = ip
    return codec.from_dict({"metadata": {"name": name, "namespace": "default"}, "spec": spec}, core.Service)


async def running_manager(api: ApiServer) -> tuple[asyncio.Task[None], asyncio.Event]:
    cm = ControllerManager(manager_config(["servicelb"], config=str(api.admin_conf),
                                          loadbalancer_ip_range=POOL))
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(cm.run(ready, stop))
    await asyncio.wait_for(ready.wait(), 10)
    return task, stop


@pytest.fixture
async def manager(apiserver: ApiServer) -> AsyncIterator[ApiServer]:
    task, stop = await running_manager(apiserver)
    try:
        yield apiserver
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def ingress(api: ApiServer, name: str) -> str:
    svc = await api.client.get(core.Service, name, namespace="default")
    return svc.status.load_balancer.ingress[0].ip if svc.status.load_balancer.ingress else ""


async def test_addresses_from_the_pool(manager: ApiServer) -> None:
    api = manager
    await api.client.create(lb("a"))
    await api.client.create(lb("b"))
    a = await eventually(lambda: ingress(api, "a"), what="a's address")
    b = await eventually(lambda: ingress(api, "b"), what="b's address")
    assert {a, b} == {"172.30.9.200", "172.30.9.201"}
    # The pool is exhausted: c stays pending, with an event saying why.
    await api.client.create(lb("c"))

    async def pending_event() -> bool:
        evs = (await api.client.list(core.Event, namespace="default", field_selector="involvedObject.name=c")).items
        return any(e.reason == "AllocationFailed" and "no available IPs" in e.message for e in evs)

    await eventually(pending_event, what="AllocationFailed event")
    assert await ingress(api, "c") == ""
    # Deleting a frees its address for c.
    await api.client.delete(core.Service, "a", namespace="default")
    assert await eventually(lambda: ingress(api, "c"), what="c's address") == a
    # A Service that stops being a LoadBalancer gives its address back.
    cur = await api.client.get(core.Service, "b", namespace="default")
    cur.spec.type = "ClusterIP"
    cur.spec.ClearField("external_traffic_policy")
    cur.spec.ClearField("allocate_load_balancer_node_ports")
    for p in cur.spec.ports:
        p.node_port = 0
    await api.client.update(cur)

    async def released() -> bool:
        return await ingress(api, "b") == ""

    await eventually(released, what="b's address released")


async def test_requested_address_and_restart(apiserver: ApiServer) -> None:
    api = apiserver
    task, stop = await running_manager(api)
    try:
        await api.client.create(lb("want", ip="172.30.9.201"))
        assert await eventually(lambda: ingress(api, "want"), what="requested address") == "172.30.9.201"
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    # A new manager re-learns what is taken: the next Service gets the other address.
    task, stop = await running_manager(api)
    try:
        await api.client.create(lb("next"))
        assert await eventually(lambda: ingress(api, "next"), what="next address") == "172.30.9.200"
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
