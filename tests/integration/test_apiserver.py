"""The apiserver against a real etcd: CRUD, concurrency, watch, compaction, pagination, restarts."""

from __future__ import annotations

import asyncio

import pytest

from pybernetes import errors
from pybernetes.api import codec
from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.client.client import Client
from pybernetes.rpc import ChannelTLS
from tests.helpers import eventually
from tests.integration.conftest import ApiServer

pytestmark = pytest.mark.integration


def pod(name: str, ns: str = "default", labels: dict[str, str] | None = None, node: str = "") -> core.Pod:
    p = codec.from_dict({"metadata": {"name": name, "namespace": ns, "labels": labels or {}},
                         "spec": {"containers": [{"name": "c", "image": "localhost:5000/busybox:stable"}]}},
                        core.Pod)
    if node:
        p.spec.node_name = node
    return p


def deployment(name: str, replicas: int = 2) -> apps.Deployment:
    return codec.from_dict({
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "web", "image": "localhost:5000/busybox:stable"}]}}},
    }, apps.Deployment)


async def test_crud_defaults_and_conflict(apiserver: ApiServer) -> None:
    c = apiserver.client
    created = await c.create(pod("a"))
    assert created.metadata.uid and created.metadata.resource_version
    assert created.metadata.creation_timestamp.seconds > 0
    assert created.spec.restart_policy == "Always"  # defaulted
    assert created.spec.containers[0].image_pull_policy == "IfNotPresent"
    assert created.status.phase == "Pending"
    with pytest.raises(errors.AlreadyExists):
        await c.create(pod("a"))
    got = await c.get(core.Pod, "a", namespace="default")
    assert got == created

    # Optimistic concurrency: a stale resourceVersion is refused and changes nothing.
    fresh = await c.get(core.Pod, "a", namespace="default")
    fresh.metadata.labels["v"] = "1"
    updated = await c.update(fresh)
    assert int(updated.metadata.resource_version) > int(created.metadata.resource_version)
    stale = core.Pod()
    stale.CopyFrom(created)
    stale.metadata.labels["v"] = "stale"
    with pytest.raises(errors.Conflict):
        await c.update(stale)
    assert (await c.get(core.Pod, "a", namespace="default")).metadata.labels["v"] == "1"

    _, gone = await c.delete(core.Pod, "a", namespace="default")
    assert gone  # unscheduled pods go at once
    with pytest.raises(errors.NotFound):
        await c.get(core.Pod, "a", namespace="default")


async def test_validation_errors_name_the_field(apiserver: ApiServer) -> None:
    bad = pod("Bad_Name")
    bad.spec.containers[0].image = ""
    with pytest.raises(errors.Invalid) as ei:
        await apiserver.client.create(bad)
    paths = {c.path for c in ei.value.causes}
    assert "metadata.name" in paths
    assert "spec.containers[0].image" in paths
    d = deployment("web")
    d.spec.template.metadata.labels["app"] = "other"
    with pytest.raises(errors.Invalid) as ei2:
        await apiserver.client.create(d)
    assert any(c.path == "spec.template.metadata.labels" for c in ei2.value.causes)


async def test_missing_namespace_and_generate_name(apiserver: ApiServer) -> None:
    with pytest.raises(errors.NotFound) as ei:
        await apiserver.client.create(pod("x", ns="nope"))
    assert 'namespaces "nope" not found' in ei.value.message
    p = pod("")
    p.metadata.generate_name = "web-"
    made = await apiserver.client.create(p)
    assert made.metadata.name.startswith("web-") and len(made.metadata.name) == 9


async def test_generation_status_subresource_and_dry_run(apiserver: ApiServer) -> None:
    c = apiserver.client
    d = await c.create(deployment("web"))
    assert d.metadata.generation == 1
    d.spec.replicas = 3
    d.status.replicas = 99  # ignored on the main resource
    d2 = await c.update(d)
    assert d2.metadata.generation == 2 and d2.status.replicas == 0
    d2.metadata.labels["x"] = "y"
    d3 = await c.update(d2)
    assert d3.metadata.generation == 2  # metadata changes do not bump generation
    d3.status.replicas = 3
    d3.spec.replicas = 7  # ignored on the status subresource
    d4 = await c.update_status(d3)
    assert d4.status.replicas == 3 and d4.spec.replicas == 3
    # No-op update: no write, same version.
    d5 = await c.update(d4)
    assert d5.metadata.resource_version == d4.metadata.resource_version
    dry = await c.create(deployment("dry"), dry_run=True)
    assert dry.metadata.name == "dry"
    with pytest.raises(errors.NotFound):
        await c.get(apps.Deployment, "dry", namespace="default")


async def test_patch_kinds(apiserver: ApiServer) -> None:
    c = apiserver.client
    await c.create(deployment("web"))
    p = await c.patch(apps.Deployment, "web", {"metadata": {"labels": {"a": "1"}}, "spec": {"replicas": 4}},
                      namespace="default", patch_type="merge")
    assert p.metadata.labels["a"] == "1" and p.spec.replicas == 4
    p = await c.patch(apps.Deployment, "web", {"spec": {"template": {"spec": {"containers": [
        {"name": "web", "image": "localhost:5000/busybox:v2"}]}}}}, namespace="default")
    assert p.spec.template.spec.containers[0].image == "localhost:5000/busybox:v2"
    assert p.metadata.generation == 3
    p = await c.patch(apps.Deployment, "web", [{"op": "replace", "path": "/spec/replicas", "value": 1}],
                      namespace="default", patch_type="json")
    assert p.spec.replicas == 1
    with pytest.raises(errors.Invalid) as ei:
        await c.patch(apps.Deployment, "web", {"spec": {"replicass": 2}}, namespace="default", patch_type="merge")
    assert any(cause.path == "spec.replicass" for cause in ei.value.causes)


async def test_binding_and_graceful_pod_delete(apiserver: ApiServer) -> None:
    c = apiserver.client
    made = await c.create(pod("g"))
    await c.bind("default", "g", "node-1", uid=made.metadata.uid)
    bound = await c.get(core.Pod, "g", namespace="default")
    assert bound.spec.node_name == "node-1"
    assert any(x.type == "PodScheduled" and x.status == "True" for x in bound.status.conditions)
    with pytest.raises(errors.Conflict):
        await c.bind("default", "g", "node-2")
    obj, gone = await c.delete(core.Pod, "g", namespace="default")
    assert not gone and obj.metadata.HasField("deletion_timestamp")
    assert obj.metadata.deletion_grace_period_seconds == 30
    # The kubelet's final delete (grace 0) removes it.
    _, gone = await c.delete(core.Pod, "g", namespace="default", grace_period_seconds=0, uid=made.metadata.uid)
    assert gone


async def test_finalizers_hold_deletion(apiserver: ApiServer) -> None:
    c = apiserver.client
    cm = core.ConfigMap()
    cm.metadata.name, cm.metadata.namespace = "cm", "default"
    cm.metadata.finalizers.append("example.com/hold")
    await c.create(cm)
    obj, gone = await c.delete(core.ConfigMap, "cm", namespace="default")
    assert not gone and obj.metadata.HasField("deletion_timestamp")
    cur = await c.get(core.ConfigMap, "cm", namespace="default")
    del cur.metadata.finalizers[:]
    await c.update(cur)
    with pytest.raises(errors.NotFound):
        await c.get(core.ConfigMap, "cm", namespace="default")


async def test_selectors_and_pagination(apiserver: ApiServer) -> None:
    c = apiserver.client
    for i in range(7):
        await c.create(pod(f"p{i}", labels={"app": "web" if i % 2 else "db", "i": str(i)}, node=f"n{i % 3}"))
    web = await c.list(core.Pod, namespace="default", label_selector="app=web")
    assert sorted(p.metadata.name for p in web.items) == ["p1", "p3", "p5"]
    notin = await c.list(core.Pod, namespace="default", label_selector="app notin (web),i in (0,2)")
    assert sorted(p.metadata.name for p in notin.items) == ["p0", "p2"]
    on_n1 = await c.list(core.Pod, namespace="default", field_selector="spec.nodeName=n1")
    assert sorted(p.metadata.name for p in on_n1.items) == ["p1", "p4"]
    with pytest.raises(errors.BadRequest):
        await c.list(core.Pod, field_selector="spec.bogus=1")
    page1 = await c.list(core.Pod, namespace="default", limit=3)
    assert len(page1.items) == 3 and page1.continue_ and page1.remaining_item_count == 4
    page2 = await c.list(core.Pod, namespace="default", limit=3, continue_=page1.continue_)
    page3 = await c.list(core.Pod, namespace="default", limit=3, continue_=page2.continue_)
    names = [p.metadata.name for p in page1.items + page2.items + page3.items]
    assert names == [f"p{i}" for i in range(7)] and not page3.continue_
    # Every page reflects the first page's revision.
    assert page1.resource_version == page2.resource_version == page3.resource_version


async def test_watch_from_version_and_filters(apiserver: ApiServer) -> None:
    c = apiserver.client
    first = await c.create(pod("w1", labels={"app": "web"}))
    rv = first.metadata.resource_version
    await c.create(pod("w2", labels={"app": "db"}))
    await c.patch(core.Pod, "w1", {"metadata": {"labels": {"x": "1"}}}, namespace="default")
    await c.delete(core.Pod, "w1", namespace="default")
    seen: list[tuple[str, str]] = []

    async def collect() -> None:
        async for ev in c.watch(core.Pod, namespace="default", resource_version=rv, label_selector="app=web"):
            if ev.type != "BOOKMARK":
                seen.append((ev.type, ev.object.metadata.name))
            if ev.type == "DELETED":
                return

    await asyncio.wait_for(collect(), 10)
    assert seen == [("MODIFIED", "w1"), ("DELETED", "w1")]


async def test_watch_initial_state_and_bookmarks(apiserver: ApiServer) -> None:
    c = apiserver.client
    await c.create(pod("s1"))
    types: list[str] = []
    async for ev in c.watch(core.Pod, namespace="default", resource_version="", allow_bookmarks=True):
        types.append(ev.type)
        if ev.type == "BOOKMARK":
            assert int(ev.object.metadata.resource_version) > 0
            break
    assert types[0] == "ADDED" and types[-1] == "BOOKMARK"


async def test_compaction_expires_old_versions(apiserver: ApiServer) -> None:
    c = apiserver.client
    old = await c.create(pod("c1"))
    for i in range(5):
        await c.patch(core.Pod, "c1", {"metadata": {"labels": {"i": str(i)}}}, namespace="default")
    # Restart so the watch cache window starts after the old version, then compact etcd past it.
    await apiserver.restart()
    c = apiserver.client
    from services.apiserver.storage.etcd import EtcdClient

    raw = EtcdClient([apiserver.etcd.endpoint])
    await raw.compact(await raw.current_revision())
    await raw.close()
    with pytest.raises(errors.Expired):
        async for _ in c.watch(core.Pod, namespace="default", resource_version=old.metadata.resource_version):
            pass
    first = await c.list(core.Pod, namespace="default", limit=1)
    assert first.continue_ == ""  # only one pod
    # Re-list then watch from the list's version works.
    lst = await c.list(core.Pod, namespace="default")
    assert [p.metadata.name for p in lst.items] == ["c1"]


async def test_namespace_listing_and_restart_keeps_state(apiserver: ApiServer) -> None:
    c = apiserver.client
    nss = await c.list(core.Namespace)
    names = {n.metadata.name for n in nss.items}
    assert {"default", "kube-system"} <= names
    await c.create(deployment("keep"))
    await apiserver.restart()
    again = await apiserver.client.get(apps.Deployment, "keep", namespace="default")
    assert again.spec.replicas == 2


async def test_namespace_delete_marks_terminating_and_blocks_new_content(apiserver: ApiServer) -> None:
    c = apiserver.client
    ns = core.Namespace()
    ns.metadata.name = "team"
    await c.create(ns)
    await c.create(pod("in-team", ns="team"))
    obj, gone = await c.delete(core.Namespace, "team")
    assert not gone and obj.status.phase == "Terminating"
    with pytest.raises(errors.Forbidden):
        await c.create(pod("late", ns="team"))
    # The namespace controller's job, done by hand here: delete contents, drop the finalizer.
    await c.delete(core.Pod, "in-team", namespace="team")
    cur = await c.get(core.Namespace, "team")
    del cur.spec.finalizers[:]
    await c.update(cur)
    with pytest.raises(errors.NotFound):
        await c.get(core.Namespace, "team")


async def test_etcd_outage_fails_fast_then_recovers(apiserver: ApiServer) -> None:
    c = apiserver.client
    await c.create(pod("before"))
    events: list[str] = []

    async def watch() -> None:
        async for ev in c.watch(core.Pod, namespace="default", resource_version="0"):
            events.append(ev.type)

    task = asyncio.create_task(watch())
    await eventually(lambda: _async(bool(events)), what="initial ADDED")
    await apiserver.etcd.kill()
    with pytest.raises(errors.Unavailable):
        await c.create(pod("during"))
    # The watch is not left hanging: it ends with an error the client can act on.
    with pytest.raises(errors.ApiError):
        await asyncio.wait_for(task, 15)
    await apiserver.etcd.start()

    async def works() -> bool:
        await c.create(pod("after"))
        return True

    await eventually(works, timeout=20, what="apiserver recovered")
    names = {p.metadata.name for p in (await c.list(core.Pod, namespace="default")).items}
    assert {"before", "after"} <= names and "during" not in names


async def test_request_too_large(apiserver: ApiServer) -> None:
    cm = core.ConfigMap()
    cm.metadata.name, cm.metadata.namespace = "big", "default"
    cm.data["blob"] = "x" * (2 * 1024 * 1024)
    with pytest.raises((errors.TooLarge, errors.Invalid)):
        await apiserver.client.create(cm)


async def test_unauthenticated_is_refused(apiserver: ApiServer) -> None:
    # gRPC requires a client certificate (pybernetes.rpc): without one the handshake fails, even with the CA...
    anon = Client(apiserver.address, tls=ChannelTLS(apiserver.tls.ca_pem), timeout=5)
    try:
        with pytest.raises(errors.Unavailable):
            await anon.list(core.Pod)
    finally:
        await anon.close()
    # ...and over plaintext nothing answers.
    plain = Client(apiserver.address, timeout=5)
    try:
        with pytest.raises(errors.Unavailable):
            await plain.list(core.Pod)
    finally:
        await plain.close()


async def _async(v: bool) -> bool:
    return v
