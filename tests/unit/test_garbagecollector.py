"""The garbage collector's handlers (attempt_to_delete, attempt_to_orphan) against a fake client.

Changes reach the collector as its informers would deliver them (the fake client's writes go through
the informers' event sinks); the queues are drained by calling the handlers directly, never `run()`.
Covers owner deletion with propagation Orphan, Foreground and Background, dependents with several
owners, owners that never existed, and idempotency (a second pass writes nothing).
"""

from __future__ import annotations

from typing import Any, cast

import pytest

from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.meta.v1 import meta_pb2 as meta
from pybernetes.cache import InformerFactory
from pybernetes.events import EventRecorder
from services.controllers.garbagecollector import GarbageCollector
from tests.unit.apiclient_fake import FakeClient, deliver

KINDS: list[type[Any]] = [apps.Deployment, apps.ReplicaSet, core.Pod, core.ConfigMap]



@pytest.fixture
def env() -> tuple[GarbageCollector, FakeClient]:
    client = FakeClient()
    factory = InformerFactory(cast(Any, client))
    gc = GarbageCollector(cast(Any, client), factory, cast(EventRecorder, None), kinds=KINDS)
    client.watchers.append(deliver(factory))
    return gc, client


async def drain(gc: GarbageCollector, limit: int = 500) -> None:
    """Run the two queues' handlers until both are empty (as the workers would, one key at a time)."""
    for _ in range(limit):
        for q, handle in ((gc.delete_queue, gc.attempt_to_delete), (gc.orphan_queue, gc.attempt_to_orphan)):
            if len(q):
                key = await q.get()
                try:
                    await handle(key)
                finally:
                    q.done(key)
                break
        else:
            return
    raise AssertionError("the garbage collector's queues never emptied")


def ref(owner: Any, *, controller: bool = True, block: bool = True) -> meta.OwnerReference:
    kind = type(owner).__name__
    api_version = "apps/v1" if kind in ("Deployment", "ReplicaSet") else "v1"
    r = meta.OwnerReference(api_version=api_version, kind=kind, name=owner.metadata.name, uid=owner.metadata.uid)
    if controller:
        r.controller = True
    if block:
        r.block_owner_deletion = True
    return r


def rs(name: str = "web") -> apps.ReplicaSet:
    r = apps.ReplicaSet()
    r.metadata.name, r.metadata.namespace = name, "default"
    return r


def pod(name: str, *owners: meta.OwnerReference, finalizers: tuple[str, ...] = ()) -> core.Pod:
    p = core.Pod()
    p.metadata.name, p.metadata.namespace = name, "default"
    p.metadata.owner_references.extend(owners)
    p.metadata.finalizers.extend(finalizers)
    return p


def owners_of(client: FakeClient, name: str) -> list[str]:
    p = client.obj(core.Pod, name, "default")
    assert p is not None, name
    return [r.name for r in p.metadata.owner_references]


async def setup_rs_with_pods(gc: GarbageCollector, client: FakeClient, n: int = 2) -> apps.ReplicaSet:
    owner = client.add(rs())
    for i in range(n):
        client.add(pod(f"p{i}", ref(owner)))
    await drain(gc)
    return owner


async def second_pass_writes_nothing(gc: GarbageCollector, client: FakeClient) -> None:
    before = len(client.actions)
    for uid in list(gc.graph):
        await gc.attempt_to_delete(uid)
        await gc.attempt_to_orphan(uid)
    await drain(gc)
    assert client.actions[before:] == []


async def test_nothing_happens_while_owners_exist(env: tuple[GarbageCollector, FakeClient]) -> None:
    gc, client = env
    await setup_rs_with_pods(gc, client)
    assert client.actions == []
    for uid in list(gc.graph):
        await gc.attempt_to_delete(uid)
    assert client.actions == []


async def test_background_deletion_deletes_the_dependents(env: tuple[GarbageCollector, FakeClient]) -> None:
    gc, client = env
    await setup_rs_with_pods(gc, client)
    await client.delete(apps.ReplicaSet, "web", namespace="default", propagation_policy="Background")
    await drain(gc)
    assert sorted(client.writes("delete")[1:]) == [("delete", "Pod", "default/p0", "Background"),
                                                   ("delete", "Pod", "default/p1", "Background")]
    assert client.obj(core.Pod, "p0", "default") is None and client.obj(core.Pod, "p1", "default") is None
    assert gc.graph == {}
    before = len(client.actions)
    await drain(gc)
    assert client.actions[before:] == []


async def test_orphan_removes_owner_references_then_the_finalizer(env: tuple[GarbageCollector, FakeClient]) -> None:
    gc, client = env
    await setup_rs_with_pods(gc, client)
    _, gone = await client.delete(apps.ReplicaSet, "web", namespace="default", propagation_policy="Orphan")
    assert not gone  # held by the orphan finalizer
    await drain(gc)
    assert owners_of(client, "p0") == [] and owners_of(client, "p1") == []  # kept, no longer owned
    assert client.obj(apps.ReplicaSet, "web", "default") is None  # the finalizer went, and so did the owner
    writes = client.writes()[1:]
    assert sorted(writes[:2]) == [("update", "Pod", "default/p0"), ("update", "Pod", "default/p1")]
    assert writes[2:] == [("update", "ReplicaSet", "default/web")]  # the finalizer last
    assert client.writes("delete")[1:] == []
    await second_pass_writes_nothing(gc, client)


async def test_foreground_deletes_dependents_before_the_owner(env: tuple[GarbageCollector, FakeClient]) -> None:
    gc, client = env
    await setup_rs_with_pods(gc, client)
    # p1 has a finalizer of its own: the owner must wait until it is really gone.
    p1 = client.obj(core.Pod, "p1", "default")
    p1.metadata.finalizers.append("example.com/hold")
    await client.update(p1)
    _, gone = await client.delete(apps.ReplicaSet, "web", namespace="default", propagation_policy="Foreground")
    assert not gone
    await drain(gc)
    assert client.obj(core.Pod, "p0", "default") is None
    held = client.obj(core.Pod, "p1", "default")
    assert held is not None and held.metadata.HasField("deletion_timestamp")
    owner = client.obj(apps.ReplicaSet, "web", "default")
    assert owner is not None and list(owner.metadata.finalizers) == ["foregroundDeletion"]  # still waiting

    before = len(client.actions)
    await drain(gc)
    for uid in list(gc.graph):
        await gc.attempt_to_delete(uid)
    await drain(gc)
    assert client.actions[before:] == []  # waiting writes nothing

    held.metadata.ClearField("finalizers")
    await client.update(held)  # p1 is gone now
    await drain(gc)
    assert client.obj(apps.ReplicaSet, "web", "default") is None
    last = client.writes()[-1]
    assert last == ("update", "ReplicaSet", "default/web")  # foregroundDeletion removed after the dependents
    assert gc.graph == {}


async def test_foreground_cascades_through_levels(env: tuple[GarbageCollector, FakeClient]) -> None:
    gc, client = env
    dep = apps.Deployment()
    dep.metadata.name, dep.metadata.namespace = "web", "default"
    dep = client.add(dep)
    r = rs("web-1")
    r.metadata.owner_references.append(ref(dep))
    r = client.add(r)
    client.add(pod("p0", ref(r)))
    await drain(gc)
    await client.delete(apps.Deployment, "web", namespace="default", propagation_policy="Foreground")
    await drain(gc)
    assert client.objects == {}
    order = [(a[1], a[2]) for a in client.writes("delete")]
    assert order.index(("Pod", "default/p0")) > order.index(("ReplicaSet", "default/web-1"))
    removed = [a[1] for a in client.writes("update")]
    assert removed == ["ReplicaSet", "Deployment"]  # finalizers removed bottom-up


async def test_dependent_with_another_owner_only_loses_the_reference(env: tuple[GarbageCollector, FakeClient]) -> None:
    gc, client = env
    owner = client.add(rs())
    other = client.add(core.ConfigMap(metadata=meta.ObjectMeta(name="keeper", namespace="default")))
    client.add(pod("shared", ref(owner), ref(other, controller=False, block=False)))
    client.add(pod("only", ref(owner)))
    await drain(gc)
    await client.delete(apps.ReplicaSet, "web", namespace="default")
    await drain(gc)
    assert owners_of(client, "shared") == ["keeper"]
    assert client.obj(core.Pod, "only", "default") is None
    assert ("delete", "Pod", "default/shared", "Background") not in client.writes()
    before = len(client.actions)
    for uid in list(gc.graph):
        await gc.attempt_to_delete(uid)
    await drain(gc)
    assert client.actions[before:] == []


async def test_owner_that_never_existed_or_was_replaced(env: tuple[GarbageCollector, FakeClient]) -> None:
    gc, client = env
    live = client.add(rs())
    ghost = rs("ghost")
    ghost.metadata.uid = "never-stored"
    namesake = rs()
    namesake.metadata.uid = "an-older-web"  # same name as the live owner, another uid
    client.add(pod("orphaned", ref(ghost)))
    client.add(pod("stale", ref(namesake)))
    client.add(pod("kept", ref(live)))
    await drain(gc)
    assert client.obj(core.Pod, "orphaned", "default") is None
    assert client.obj(core.Pod, "stale", "default") is None  # absence is checked by uid, not by name
    assert owners_of(client, "kept") == ["web"]
    assert [a[2] for a in client.writes("delete")] == ["default/orphaned", "default/stale"]


async def test_a_dependent_deleted_under_the_collector_is_not_deleted_again(
        env: tuple[GarbageCollector, FakeClient]) -> None:
    gc, client = env
    owner = client.add(rs())
    client.add(pod("p0", ref(owner)))
    await drain(gc)
    client.watchers.clear()  # the informers miss what happens next
    del client.objects[("ReplicaSet", "default", "web")]
    del client.objects[("Pod", "default", "p0")]
    for uid in list(gc.graph):
        await gc.attempt_to_delete(uid)
    await drain(gc)
    assert client.actions == []


async def test_dependent_seen_before_its_owner_is_kept(env: tuple[GarbageCollector, FakeClient]) -> None:
    """Informers of different kinds sync in any order: an owner known only through a reference is
    checked with a live GET, never assumed gone because the cache lacks it."""
    gc, client = env
    watchers = list(client.watchers)
    client.watchers.clear()
    owner = client.add(rs())  # in the API, not yet delivered to the collector
    client.watchers.extend(watchers)
    client.add(pod("p0", ref(owner)))
    await drain(gc)
    assert gc.graph[owner.metadata.uid].virtual
    assert client.actions == [] and owners_of(client, "p0") == ["web"]
