"""The control loops together: a node stops renewing its Lease, the node lifecycle controller marks it
NotReady and taints it, its pods are evicted, the ReplicaSet replaces them and the scheduler places the
replacements on the healthy nodes. Real apiserver, etcd, controller manager and scheduler; hollow nodes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from pybernetes import errors
from pybernetes.api import codec
from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.coordination.v1 import coordination_pb2 as coordination
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.times import micro_now
from pybernetes.client.client import Client
from services.controllers.main import ControllerManager
from services.scheduler import main as scheduler_main
from tests.helpers import eventually
from tests.integration.conftest import ApiServer
from tests.integration.test_controller_manager import manager_config
from tests.integration.test_controllers import HollowKubelet

pytestmark = pytest.mark.integration

NODES = ["node-1", "node-2", "node-3"]


class LeasedHollowNodes(HollowKubelet):
    """Hollow kubelets that renew a Lease per node; a stopped node neither renews nor runs its pods."""

    def __init__(self, client: Client) -> None:
        super().__init__(client, nodes=3, bind=False, prefix="node")
        self.node_names = NODES
        self.dead: set[str] = set()
        self._leases: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await super().start()
        for name in self.node_names:
            lease = coordination.Lease()
            lease.metadata.name, lease.metadata.namespace = name, "kube-node-lease"
            lease.spec.holder_identity, lease.spec.lease_duration_seconds = name, 40
            with contextlib.suppress(errors.AlreadyExists):
                await self.client.create(lease)
        self._leases = asyncio.create_task(self._renew())

    async def _renew(self) -> None:
        while True:
            for name in self.node_names:
                if name in self.dead:
                    continue
                with contextlib.suppress(errors.ApiError):
                    lease = await self.client.get(coordination.Lease, name, namespace="kube-node-lease")
                    lease.spec.renew_time.CopyFrom(micro_now())
                    lease.spec.renew_time.nanos = (lease.spec.renew_time.nanos + 1) % 10**9
                    await self.client.update(lease)
            await asyncio.sleep(0.3)

    async def _sync(self, key: str) -> None:
        namespace, name = key.split("/", 1)
        pod = self.lister.get(namespace, name)
        if pod is not None and pod.spec.node_name in self.dead:
            return  # a dead node runs nothing and finalizes nothing
        await super()._sync(key)

    async def stop(self) -> None:
        if self._leases is not None:
            self._leases.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._leases
        await super().stop()


@pytest.fixture
async def control_plane(apiserver: ApiServer) -> AsyncIterator[tuple[ApiServer, LeasedHollowNodes]]:
    nodes = LeasedHollowNodes(apiserver.new_client())
    await nodes.start()
    cm = ControllerManager(manager_config(["*"], config=str(apiserver.admin_conf)))
    sched_cfg = scheduler_main.Config(kubeconfig=str(apiserver.admin_conf), leader_elect=False,
                                      health_port=0)
    stop = asyncio.Event()
    cm_ready, sched_ready = asyncio.Event(), asyncio.Event()
    tasks = [asyncio.create_task(cm.run(cm_ready, stop)),
             asyncio.create_task(scheduler_main.run(sched_cfg, sched_ready, stop))]
    await asyncio.wait_for(asyncio.gather(cm_ready.wait(), sched_ready.wait()), 20)
    try:
        yield apiserver, nodes
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)
        await nodes.stop()


async def test_node_failure_evicts_and_replaces_pods(control_plane: tuple[ApiServer, LeasedHollowNodes]) -> None:
    api, nodes = control_plane
    c = api.client
    d = codec.from_dict({
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 6, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                     # Short tolerations so eviction happens within the test (Kubernetes' default is 300 s).
                     "tolerations": [{"key": k, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 2}
                                     for k in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")],
                     "containers": [{"name": "web", "image": "localhost:5000/busybox:stable",
                                     "resources": {"requests": {"cpu": "100m"}}}]}}},
    }, apps.Deployment)
    await c.create(d)

    async def healthy_pods(exclude: str = "") -> list[core.Pod]:
        pods = (await c.list(core.Pod, namespace="default", label_selector="app=web")).items
        return [p for p in pods if p.status.phase == "Running" and not p.metadata.HasField("deletion_timestamp")
                and p.spec.node_name and p.spec.node_name != exclude]

    async def spread() -> bool:
        pods = await healthy_pods()
        return len(pods) == 6 and {p.spec.node_name for p in pods} == set(NODES)

    await eventually(spread, timeout=30, what="6 pods Running on all three nodes")
    nodes.dead.add("node-2")

    async def node_down() -> bool:
        n = await c.get(core.Node, "node-2")
        ready = next((x for x in n.status.conditions if x.type == "Ready"), None)
        tainted = any(t.key == "node.kubernetes.io/unreachable" and t.effect == "NoExecute" for t in n.spec.taints)
        return ready is not None and ready.status == "Unknown" and tainted

    await eventually(node_down, timeout=30, what="node-2 NotReady (Unknown) with the unreachable taint")

    async def replaced() -> bool:
        pods = await healthy_pods(exclude="node-2")
        return len(pods) == 6

    await eventually(replaced, timeout=40, what="6 healthy pods on node-1 and node-3")
    dep = await c.get(apps.Deployment, "web", namespace="default")
    assert dep.spec.replicas == 6
    # Nothing new lands on the failed node while it is tainted.
    pods = (await c.list(core.Pod, namespace="default", label_selector="app=web")).items
    assert not [p for p in pods if p.spec.node_name == "node-2" and not p.metadata.HasField("deletion_timestamp")]
