"""The Node authorizer against a real apiserver (real etcd), over REST (HTTPS) and gRPC: a kubelet's
credentials read only what the pods bound to its node use.

Users from a static token file: system:node:node-1 and system:node:node-2 in group system:nodes, and the
admin in system:masters (who, until RBAC lands, is allowed everything).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from pybernetes import errors
from pybernetes.api.coordination.v1 import coordination_pb2 as coordination
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.client.client import Client
from services.apiserver.storage.embedded import EmbeddedEtcd
from tests.integration.conftest import ApiServer

pytestmark = pytest.mark.integration

TOKENS = {"node-1": "node-1-token", "node-2": "node-2-token"}


@pytest.fixture
async def cluster(etcd: EmbeddedEtcd, tmp_path: Path) -> AsyncIterator[ApiServer]:
    srv = ApiServer(etcd, tmp_path / "apiserver")
    srv.cfg.data_dir.mkdir(parents=True)
    lines = ['admin-token,system:admin,admin,"system:masters"']
    lines += [f'{tok},system:node:{node},{node},"system:nodes,system:authenticated"' for node, tok in TOKENS.items()]
    (srv.cfg.data_dir / "tokens.csv").write_text("\n".join(lines) + "\n")
    await srv.start()
    try:
        admin = srv.client
        for i in (1, 2):
            s = core.Secret()
            s.metadata.name, s.metadata.namespace = f"s{i}", "default"
            s.data["password"] = b"hunter2"
            await admin.create(s)
            c = core.ConfigMap()
            c.metadata.name, c.metadata.namespace = f"c{i}", "default"
            c.data["k"] = "v"
            await admin.create(c)
            p = core.Pod()
            p.metadata.name, p.metadata.namespace = f"web-{i}", "default"
            p.spec.node_name = f"node-{i}"
            ctr = p.spec.containers.add(name="c", image="busybox")
            env = ctr.env.add(name="PASSWORD")
            env.value_from.secret_key_ref.name, env.value_from.secret_key_ref.key = f"s{i}", "password"
            p.spec.volumes.add(name="conf").config_map.name = f"c{i}"
            await admin.create(p)
        yield srv
    finally:
        await srv.stop()


async def eventually(ok: Callable[[], Awaitable[bool]], what: str) -> None:
    """The graph follows the pods watch cache: wait (bounded) for it to catch up."""
    for _ in range(200):
        if await ok():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never: {what}")


def forbidden(user: str, verb: str, resource: str, name: str = "", reason: str = "") -> str:
    target = f'{resource} "{name}"' if name else resource
    return (f'{target} is forbidden: User "system:node:{user}" cannot {verb} resource "{resource}" in API group "" '
            f'in the namespace "default": {reason}')


NO_RELATION = "no relationship found between node 'node-1' and this object"


async def test_grpc_node_reads_only_its_pods_objects(cluster: ApiServer) -> None:
    node1 = Client(cluster.address, token=TOKENS["node-1"], timeout=10, tls=cluster.tls)
    try:
        async def can_read_s1() -> bool:
            try:
                await node1.get(core.Secret, "s1", namespace="default")
            except errors.Forbidden:
                return False
            return True

        await eventually(can_read_s1, "node-1 reads its pod's Secret")
        assert (await node1.get(core.ConfigMap, "c1", namespace="default")).data["k"] == "v"
        assert (await node1.get(core.Pod, "web-1", namespace="default")).spec.node_name == "node-1"
        with pytest.raises(errors.Forbidden) as e:
            await node1.get(core.Secret, "s2", namespace="default")
        assert str(e.value) == forbidden("node-1", "get", "secrets", "s2", NO_RELATION)
        with pytest.raises(errors.Forbidden):
            await node1.get(core.ConfigMap, "c2", namespace="default")
        with pytest.raises(errors.Forbidden):
            await node1.get(core.Pod, "web-2", namespace="default")
        with pytest.raises(errors.Forbidden) as e:
            await node1.list(core.Secret, namespace="default")
        assert str(e.value) == forbidden("node-1", "list", "secrets", reason="No Object name found")
        mine = await node1.list(core.Pod, field_selector="spec.nodeName=node-1")
        assert [p.metadata.name for p in mine.items] == ["web-1"]
        with pytest.raises(errors.Forbidden):
            await node1.list(core.Pod, field_selector="spec.nodeName=node-2")
        node2 = Client(cluster.address, token=TOKENS["node-2"], timeout=10, tls=cluster.tls)
        try:
            assert (await node2.get(core.Secret, "s2", namespace="default")).data["password"] == b"hunter2"
            with pytest.raises(errors.Forbidden):
                await node2.get(core.Secret, "s1", namespace="default")
        finally:
            await node2.close()

        # The pod goes: so does its node's access to what it used.
        await cluster.client.delete(core.Pod, "web-1", namespace="default", grace_period_seconds=0)

        async def s1_refused() -> bool:
            return not await can_read_s1()

        await eventually(s1_refused, "node-1 loses the Secret once its pod is deleted")
        # The admin (not a node) is unaffected.
        assert (await cluster.client.get(core.Secret, "s2", namespace="default")).metadata.name == "s2"
    finally:
        await node1.close()


async def test_rest_node_reads_only_its_pods_objects(cluster: ApiServer) -> None:
    ctx = ssl.create_default_context(cafile=str(cluster.cfg.data_dir / "pki" / "ca.crt"))
    base = f"https://localhost:{cluster.cfg.secure_port}/api/v1"
    headers = {"Authorization": f"Bearer {TOKENS['node-1']}"}
    async with aiohttp.ClientSession(headers=headers, connector=aiohttp.TCPConnector(ssl=ctx)) as s:
        async def status_of(url: str) -> int:
            async with s.get(url) as r:
                return r.status

        async def s1_ok() -> bool:
            return await status_of(f"{base}/namespaces/default/secrets/s1") == 200

        await eventually(s1_ok, "node-1 reads its pod's Secret over REST")
        assert await status_of(f"{base}/namespaces/default/configmaps/c1") == 200
        async with s.get(f"{base}/namespaces/default/secrets/s2") as r:
            body = await r.json()
            assert r.status == 403
            assert (body["kind"], body["reason"], body["code"]) == ("Status", "Forbidden", 403)
            assert body["message"] == forbidden("node-1", "get", "secrets", "s2", NO_RELATION)
        for url in (f"{base}/namespaces/default/secrets", f"{base}/secrets",
                    f"{base}/namespaces/default/configmaps/c2", f"{base}/namespaces/default/pods/web-2",
                    f"{base}/pods", f"{base}/nodes/node-2"):
            assert await status_of(url) == 403, url
        assert await status_of(f"{base}/pods?fieldSelector=spec.nodeName%3Dnode-1") == 200
        # A watch of the one Secret it may read, as a kubelet's secret manager does (metadata.name names it).
        watch_s1 = f"{base}/namespaces/default/secrets?watch=1&timeoutSeconds=1&fieldSelector=metadata.name%3Ds1"
        assert await status_of(watch_s1) == 200
        assert await status_of(watch_s1.replace("s1", "s2")) == 403


async def test_grpc_node_writes_only_its_own_lease(cluster: ApiServer) -> None:
    other = coordination.Lease()
    other.metadata.name, other.metadata.namespace = "node-2", "kube-node-lease"
    await cluster.client.create(other)
    node1 = Client(cluster.address, token=TOKENS["node-1"], timeout=10, tls=cluster.tls)
    try:
        lease = coordination.Lease()
        lease.metadata.name, lease.metadata.namespace = "node-1", "kube-node-lease"
        lease.spec.holder_identity = "node-1"
        lease = await node1.create(lease)
        lease.spec.lease_duration_seconds = 40
        assert (await node1.update(lease)).spec.lease_duration_seconds == 40  # named by the object it sends
        theirs = await node1.get(coordination.Lease, "node-1", namespace="kube-node-lease")
        theirs.metadata.name = "node-2"
        with pytest.raises(errors.Forbidden) as e:
            await node1.update(theirs)
        assert "can only access node lease with the same name as the requesting node" in str(e.value)
        with pytest.raises(errors.Forbidden):
            await node1.get(coordination.Lease, "node-2", namespace="kube-node-lease")
    finally:
        await node1.close()
