"""The kubelet's node heartbeats (node_agent.nodestatus): the status is checked every status_frequency and written only
when it differs from the apiserver's copy (heartbeat times aside) or status_report_frequency passed since the last
write, as Kubernetes' kubelet with nodeStatusReportFrequency; the Lease is renewed from the copy the last renewal
returned (one write, no read), read again only after a conflict."""

from __future__ import annotations

import functools
from collections import Counter
from pathlib import Path
from typing import Any, cast

import pytest
from google.protobuf.message import Message

from node_agent import nodestatus
from node_agent.nodestatus import NodeSpecCfg, NodeStatus, status_changed
from pybernetes import errors
from pybernetes.api.coordination.v1 import coordination_pb2 as coordination
from pybernetes.api.core.v1 import core_pb2 as core


class FakeClient:
    """Holds one Node and one Lease; counts the calls by verb."""

    def __init__(self) -> None:
        self.objs: dict[type[Message], Message] = {}
        self.calls: Counter[str] = Counter()
        self.rv = 0

    def _stored(self, obj: Message) -> Any:
        self.rv += 1
        cast(Any, obj).metadata.resource_version = str(self.rv)
        self.objs[type(obj)] = _copy(obj)
        return _copy(obj)

    async def create(self, obj: Message) -> Any:
        self.calls["create"] += 1
        cast(Any, obj).metadata.uid = "uid-1"
        return self._stored(obj)

    async def get(self, cls: type[Message], name: str, namespace: str = "", resource_version: str = "") -> Any:
        self.calls[f"get {cls.__name__}"] += 1
        self.calls[f"get {cls.__name__} from the cache"] += resource_version == "0"
        if cls not in self.objs:
            raise errors.NotFound(f"{cls.__name__} {name}")
        return _copy(self.objs[cls])

    async def update(self, obj: Message) -> Any:
        self.calls[f"update {type(obj).__name__}"] += 1
        if cast(Any, obj).metadata.resource_version != cast(Any, self.objs[type(obj)]).metadata.resource_version:
            raise errors.Conflict("stale")
        return self._stored(obj)

    async def update_status(self, obj: Message) -> Any:
        self.calls["update_status"] += 1
        return self._stored(obj)

    @property
    def node(self) -> core.Node:
        return cast(core.Node, self.objs[core.Node])

    @property
    def status_writes(self) -> int:
        return self.calls["update_status"]


def _copy(m: Any) -> Any:
    out = type(m)()
    out.CopyFrom(m)
    return out


def _node_status(tmp_path: Path, client: FakeClient, ready: list[bool], report_every: float) -> NodeStatus:
    async def version() -> str:
        return "fake://1"

    async def runtime_ready() -> tuple[bool, str]:
        return ready[0], "" if ready[0] else "container runtime is down"

    cfg = NodeSpecCfg(name="n1", ip="192.0.2.1", root_dir=tmp_path, cpu="2", memory="4Gi",
                      status_report_frequency=report_every)
    return NodeStatus(cast(Any, client), cfg, version, runtime_ready)  # FakeClient has the Client surface used


async def test_an_unchanged_status_is_not_rewritten_within_the_report_period(tmp_path: Path) -> None:
    client, ready = FakeClient(), [True]
    ns = _node_status(tmp_path, client, ready, report_every=300.0)
    await ns.register()
    assert client.status_writes == 1
    reads, cached = client.calls["get Node"], client.calls["get Node from the cache"]
    await ns.update_status()
    await ns.update_status()
    assert client.status_writes == 1  # only the heartbeat times would have changed
    # each check read the Node once, from the apiserver's cache (Kubernetes' FromApiserverCache)
    assert client.calls["get Node"] - reads == client.calls["get Node from the cache"] - cached == 2
    ready[0] = False
    await ns.update_status()
    assert client.status_writes == 2  # Ready went False: written at once
    assert [c.status for c in client.node.status.conditions if c.type == "Ready"] == ["False"]


async def test_a_status_another_writer_changed_is_put_right_at_the_next_check(tmp_path: Path) -> None:
    """The node lifecycle controller marks Ready Unknown while the kubelet cannot reach the API; the kubelet's
    own view did not change, but the apiserver's copy did: it is rewritten at once, as Kubernetes compares with
    the Node it reads."""
    client = FakeClient()
    ns = _node_status(tmp_path, client, [True], report_every=300.0)
    await ns.register()
    for c in client.node.status.conditions:
        if c.type == "Ready":
            c.status, c.reason = "Unknown", "NodeStatusUnknown"
    await ns.update_status()
    assert client.status_writes == 2
    assert [c.status for c in client.node.status.conditions if c.type == "Ready"] == ["True"]


async def test_an_unchanged_status_is_rewritten_once_the_report_period_passed(tmp_path: Path) -> None:
    client = FakeClient()
    ns = _node_status(tmp_path, client, [True], report_every=0.0)
    await ns.register()
    await ns.update_status()
    assert client.status_writes == 2


async def test_the_machine_is_read_once_per_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """machine-id, boot id, os-release: read at the first status, as Kubernetes' kubelet reads cadvisor's
    MachineInfo at start, not at every check of every node (a process of hollow nodes runs a thousand)."""
    files = {"/etc/machine-id": "m-1", "/proc/sys/kernel/random/boot_id": "b-1",
             "/etc/os-release": 'ID=debian\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"'}
    reads: Counter[str] = Counter()

    def read(path: str, default: str = "") -> str:
        reads[path] += 1
        return files.get(path, default)

    monkeypatch.setattr(nodestatus, "_read", read)
    monkeypatch.setattr(nodestatus, "_machine", functools.cache(nodestatus._machine.__wrapped__))
    client = FakeClient()
    ns = _node_status(tmp_path, client, [True], report_every=0.0)
    await ns.register()
    await ns.update_status()
    await ns.update_status()
    assert client.status_writes == 3
    ni = client.node.status.node_info
    assert (ni.machine_id, ni.system_uuid, ni.boot_id, ni.os_image, ni.operating_system) == \
        ("m-1", "m-1", "b-1", "Debian GNU/Linux 12 (bookworm)", "linux")
    assert set(reads.values()) == {1}, reads


def test_status_changed_ignores_heartbeat_times_only() -> None:
    a = core.NodeStatus()
    c = a.conditions.add(type="Ready", status="True")
    c.last_heartbeat_time.seconds = 10
    b = core.NodeStatus()
    b.CopyFrom(a)
    b.conditions[0].last_heartbeat_time.seconds = 20
    assert not status_changed(a, b)
    b.conditions[0].last_transition_time.seconds = 20
    assert status_changed(a, b)
    b.CopyFrom(a)
    b.capacity["pods"].string = "110"
    assert status_changed(a, b)


async def test_the_lease_is_renewed_from_its_last_copy_and_read_again_after_a_conflict(tmp_path: Path) -> None:
    client = FakeClient()
    ns = _node_status(tmp_path, client, [True], report_every=300.0)
    await ns.register()
    await ns.renew_lease()  # none yet: read (NotFound), then created
    assert (client.calls["get Lease"], client.calls["create"]) == (1, 2)  # the Node, then the Lease
    await ns.renew_lease()
    await ns.renew_lease()
    assert (client.calls["get Lease"], client.calls["update Lease"]) == (1, 2)
    lease = _copy(client.objs[coordination.Lease])
    lease.spec.holder_identity = "someone-else"
    client._stored(lease)  # another writer: our copy is stale
    with pytest.raises(errors.Conflict):
        await ns.renew_lease()
    await ns.renew_lease()  # read again, then written
    assert client.calls["get Lease"] == 2
    assert cast(coordination.Lease, client.objs[coordination.Lease]).spec.holder_identity == "n1"
