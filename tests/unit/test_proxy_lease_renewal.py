"""pb-proxy's Lease renewal (netproxy.heartbeat.ProxyLease.renew, through pybernetes.heartbeat) against an
in-memory client: one write per renewal from the copy the last write returned, as the kubelet renews its node
Lease; read again only after a Conflict. (tests/integration/test_proxy_lease.py runs it against a real
apiserver.)"""

from __future__ import annotations

from collections import Counter
from typing import Any, cast

import pytest
from google.protobuf.message import Message

from netproxy.heartbeat import ProxyLease
from pybernetes import errors
from pybernetes.api.coordination.v1 import coordination_pb2 as coordination
from pybernetes.api.core.v1 import core_pb2 as core


class FakeClient:
    """One Node and at most one Lease, versioned; counts the calls by verb and kind."""

    def __init__(self) -> None:
        self.objs: dict[type[Message], Any] = {}
        self.calls: Counter[str] = Counter()
        self.rv = 0
        node = core.Node()
        node.metadata.name, node.metadata.uid = "node-1", "uid-1"
        self.objs[core.Node] = node

    def _stored(self, obj: Any) -> Any:
        self.rv += 1
        obj.metadata.resource_version = str(self.rv)
        self.objs[type(obj)] = _copy(obj)
        return _copy(obj)

    async def get(self, cls: type[Message], name: str, namespace: str = "") -> Any:
        self.calls[f"get {cls.__name__}"] += 1
        if cls not in self.objs:
            raise errors.NotFound(f"{cls.__name__} {name}")
        return _copy(self.objs[cls])

    async def create(self, obj: Any) -> Any:
        self.calls[f"create {type(obj).__name__}"] += 1
        return self._stored(obj)

    async def update(self, obj: Any) -> Any:
        self.calls[f"update {type(obj).__name__}"] += 1
        if obj.metadata.resource_version != self.objs[type(obj)].metadata.resource_version:
            raise errors.Conflict("the object has been modified")
        return self._stored(obj)


def _copy(m: Any) -> Any:
    out = type(m)()
    out.CopyFrom(m)
    return out


async def healthy() -> None:
    return None


async def test_renewals_write_from_the_last_copy_and_read_again_after_a_conflict() -> None:
    client = FakeClient()
    beat = ProxyLease(cast(Any, client), "node-1", healthy)  # FakeClient has the Client surface used
    await beat.renew()  # none yet: read, then created owned by the Node
    lease = client.objs[coordination.Lease]
    assert lease.spec.holder_identity == "node-1" and [r.uid for r in lease.metadata.owner_references] == ["uid-1"]
    assert client.calls == Counter({"get Lease": 1, "get Node": 1, "create Lease": 1})
    await beat.renew()
    await beat.renew()
    assert client.calls["update Lease"] == 2 and client.calls["get Lease"] == 1  # no read per renewal
    # another writer moves the Lease on: the stale copy's write is refused, and the next renewal reads first
    client._stored(_copy(client.objs[coordination.Lease]))
    with pytest.raises(errors.Conflict):
        await beat.renew()
    await beat.renew()
    assert client.calls["get Lease"] == 2 and client.calls["update Lease"] == 4
    assert client.objs[coordination.Lease].metadata.resource_version == str(client.rv)
