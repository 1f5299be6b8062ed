"""pb-proxy's Lease (netproxy.heartbeat) against a real apiserver: created owned by the Node, renewed only while
the proxier's health check passes, released (holder cleared) on a clean stop."""

from __future__ import annotations

import asyncio

import pytest

from netproxy.heartbeat import NAMESPACE, ProxyLease
from pybernetes.api.coordination.v1 import coordination_pb2 as coordination
from pybernetes.api.core.v1 import core_pb2 as core
from tests.integration.conftest import ApiServer

pytestmark = pytest.mark.integration


def at(lease: coordination.Lease) -> tuple[int, int]:
    return lease.spec.renew_time.seconds, lease.spec.renew_time.nanos


async def test_renewed_while_healthy_released_on_stop(apiserver: ApiServer) -> None:
    client = apiserver.client
    node = core.Node()
    node.metadata.name = "node-1"
    node = await client.create(node)
    healthy = True

    async def healthz() -> None:
        if not healthy:
            raise RuntimeError("rules not synced for 90s")

    # pb-proxy's own identity, under its bootstrap role system:node-proxier
    proxy = apiserver.new_client("system:kube-proxy")
    beat = ProxyLease(proxy, "node-1", healthz, duration=4)  # renewed every second
    stop = asyncio.Event()
    task = asyncio.create_task(beat.run(stop))
    try:
        lease = None
        for _ in range(50):
            try:
                lease = await client.get(coordination.Lease, "kube-proxy-node-1", namespace=NAMESPACE)
                break
            except Exception:
                await asyncio.sleep(0.1)
        assert lease is not None and lease.spec.holder_identity == "node-1"
        assert [r.uid for r in lease.metadata.owner_references] == [node.metadata.uid]
        await asyncio.sleep(1.3)
        renewed = await client.get(coordination.Lease, "kube-proxy-node-1", namespace=NAMESPACE)
        assert at(renewed) > at(lease)
        healthy = False
        await asyncio.sleep(1.2)  # one renewal due under way at most
        frozen = await client.get(coordination.Lease, "kube-proxy-node-1", namespace=NAMESPACE)
        await asyncio.sleep(1.3)
        again = await client.get(coordination.Lease, "kube-proxy-node-1", namespace=NAMESPACE)
        assert again.spec.renew_time == frozen.spec.renew_time
    finally:
        stop.set()
        await task
    await beat.release()
    await proxy.close()
    released = await client.get(coordination.Lease, "kube-proxy-node-1", namespace=NAMESPACE)
    assert released.spec.holder_identity == ""
