"""The kubelet's StatusManager writes its status again when someone else changed the pod's status in the API (the
node lifecycle controller's Ready=False while the node was NotReady), and not while the informer's cache merely
lags behind its own write. Found by bench.chaos: a pod stayed Ready=False after its node came back.
"""

from __future__ import annotations

from typing import Any, cast

from node_agent.status import StatusManager
from pybernetes.api.core.v1 import core_pb2 as core


class FakeClient:
    def __init__(self) -> None:
        self.rv = 10
        self.writes = 0

    async def update_status(self, pod: core.Pod) -> core.Pod:
        self.rv += 1
        self.writes += 1
        out = core.Pod()
        out.CopyFrom(pod)
        out.metadata.resource_version = str(self.rv)
        return out


def pod_with(ready: str, rv: int) -> core.Pod:
    p = core.Pod()
    p.metadata.name, p.metadata.namespace, p.metadata.uid = "p", "default", "u1"
    p.metadata.resource_version = str(rv)
    p.status.phase = "Running"
    p.status.conditions.append(core.PodCondition(type="Ready", status=ready))
    return p


async def test_rewrites_a_status_changed_by_someone_else() -> None:
    client = FakeClient()
    cache = {"u1": pod_with("False", 10)}
    sm = StatusManager(cast(Any, client), cache.get)
    mine = pod_with("True", 0).status
    sm.set(cache["u1"], mine)
    assert sm.pending() == 1
    await sm._write("u1", mine)  # one write without the background loop
    assert client.writes == 1 and sm.pending() == 0
    sm.set(cache["u1"], mine)  # the cache still has rv 10: our write is not in it yet
    assert sm.pending() == 0
    cache["u1"] = pod_with("True", 11)  # the cache caught up
    sm.set(cache["u1"], mine)
    assert sm.pending() == 0
    cache["u1"] = pod_with("False", 12)  # the node lifecycle controller marked it not ready
    sm.set(cache["u1"], mine)
    assert sm.pending() == 1
