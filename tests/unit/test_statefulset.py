"""The StatefulSet controller's sync against a fake client: stable names and labels, OrderedReady creation
(ordinal i only after 0..i-1 are Running and Ready), Parallel, scale down from the highest ordinal, failed
pods recreated under their name, rolling update in reverse ordinal order honouring the partition, status
revisions, and idempotency. Changes reach the informers as test_garbagecollector's `deliver` feeds them.
"""

from __future__ import annotations

from typing import Any, cast

import pytest

from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.cache import InformerFactory
from pybernetes.events import EventRecorder
from services.controllers.podowners import REVISION_LABEL
from services.controllers.statefulset import POD_INDEX_LABEL, POD_NAME_LABEL, StatefulSetController
from tests.unit.apiclient_fake import FakeClient
from tests.unit.test_daemonset import Recorder
from tests.unit.test_garbagecollector import deliver

KEY = "default/web"


@pytest.fixture
def env() -> tuple[StatefulSetController, FakeClient]:
    client = FakeClient()
    factory = InformerFactory(cast(Any, client))
    ctrl = StatefulSetController(cast(Any, client), factory, cast(EventRecorder, Recorder()), clock=lambda: 1e9)
    client.watchers.append(deliver(factory))
    return ctrl, client


def statefulset(replicas: int = 3, policy: str = "OrderedReady", partition: int = 0) -> apps.StatefulSet:
    ss = apps.StatefulSet()
    ss.metadata.name, ss.metadata.namespace, ss.metadata.generation = "web", "default", 1
    ss.spec.replicas = replicas
    ss.spec.service_name = "nginx"
    ss.spec.pod_management_policy = policy
    ss.spec.selector.match_labels["app"] = "web"
    ss.spec.template.metadata.labels["app"] = "web"
    ss.spec.template.spec.containers.add(name="web", image="nginx:1")
    ss.spec.update_strategy.type = "RollingUpdate"
    ss.spec.update_strategy.rolling_update.partition = partition
    return ss


def names(client: FakeClient) -> list[str]:
    return sorted(o.metadata.name for (k, _, _), o in client.objects.items() if k == "Pod")


def pod(client: FakeClient, name: str) -> core.Pod:
    p = client.obj(core.Pod, name, "default")
    assert p is not None
    return cast(core.Pod, p)


def set_phase(client: FakeClient, name: str, phase: str = "Running", ready: bool = True) -> None:
    old = client.objects[("Pod", "default", name)]
    new = core.Pod()
    new.CopyFrom(old)
    new.status.phase = phase
    del new.status.conditions[:]
    new.status.conditions.add(type="Ready", status="True" if ready else "False")
    client._store(old, new)


async def scale(client: FakeClient, replicas: int) -> None:
    ss = client.obj(apps.StatefulSet, "web", "default")
    ss.spec.replicas = replicas
    await client.update(ss)


async def test_ordered_ready_creation(env: tuple[StatefulSetController, FakeClient]) -> None:
    ctrl, client = env
    client.add(statefulset())
    await ctrl.sync(KEY)
    assert names(client) == ["web-0"]
    p = pod(client, "web-0")
    assert (p.spec.hostname, p.spec.subdomain) == ("web-0", "nginx")
    assert (p.metadata.labels[POD_NAME_LABEL], p.metadata.labels[POD_INDEX_LABEL]) == ("web-0", "0")
    assert p.metadata.owner_references[0].kind == "StatefulSet"
    await ctrl.sync(KEY)
    assert names(client) == ["web-0"]  # web-0 is not Running and Ready yet
    set_phase(client, "web-0", ready=False)
    await ctrl.sync(KEY)
    assert names(client) == ["web-0"]
    set_phase(client, "web-0")
    await ctrl.sync(KEY)
    assert names(client) == ["web-0", "web-1"]
    set_phase(client, "web-1")
    await ctrl.sync(KEY)
    set_phase(client, "web-2")
    await ctrl.sync(KEY)
    assert names(client) == ["web-0", "web-1", "web-2"]
    ss = client.obj(apps.StatefulSet, "web", "default")
    st = ss.status
    assert (st.replicas, st.ready_replicas, st.available_replicas, st.current_replicas, st.updated_replicas) == \
        (3, 3, 3, 3, 3)
    assert st.current_revision == st.update_revision and st.update_revision.startswith("web-")
    before = len(client.actions)
    await ctrl.sync(KEY)
    assert client.actions[before:] == []


async def test_parallel_creates_all(env: tuple[StatefulSetController, FakeClient]) -> None:
    ctrl, client = env
    client.add(statefulset(policy="Parallel"))
    await ctrl.sync(KEY)
    assert names(client) == ["web-0", "web-1", "web-2"]


async def test_lagging_cache_never_over_creates(env: tuple[StatefulSetController, FakeClient]) -> None:
    ctrl, client = env
    client.add(statefulset(policy="Parallel"))
    client.watchers.clear()
    await ctrl.sync(KEY)
    await ctrl.sync(KEY)
    assert len(client.writes("create")) == 3


async def test_scale_down_from_highest_ordinal(env: tuple[StatefulSetController, FakeClient]) -> None:
    ctrl, client = env
    client.add(statefulset(policy="Parallel"))
    await ctrl.sync(KEY)
    for n in ("web-0", "web-1", "web-2"):
        set_phase(client, n)
    client.objects[("StatefulSet", "default", "web")].spec.pod_management_policy = "OrderedReady"
    await scale(client, 1)
    await ctrl.sync(KEY)
    assert names(client) == ["web-0", "web-1"]  # web-2 first, alone
    await ctrl.sync(KEY)
    assert names(client) == ["web-0"]
    assert [a[2] for a in client.writes("delete")] == ["default/web-2", "default/web-1"]


async def test_failed_pod_is_recreated(env: tuple[StatefulSetController, FakeClient]) -> None:
    ctrl, client = env
    client.add(statefulset(replicas=1))
    await ctrl.sync(KEY)
    uid = pod(client, "web-0").metadata.uid
    set_phase(client, "web-0", phase="Failed", ready=False)
    await ctrl.sync(KEY)
    assert names(client) == []
    await ctrl.sync(KEY)
    assert names(client) == ["web-0"] and pod(client, "web-0").metadata.uid != uid


async def test_rolling_update_reverse_order_with_partition(env: tuple[StatefulSetController, FakeClient]) -> None:
    ctrl, client = env
    client.add(statefulset(policy="Parallel", partition=1))
    await ctrl.sync(KEY)
    for n in ("web-0", "web-1", "web-2"):
        set_phase(client, n)
    await ctrl.sync(KEY)
    old_rev = pod(client, "web-0").metadata.labels[REVISION_LABEL]
    ss = client.obj(apps.StatefulSet, "web", "default")
    ss.spec.template.spec.containers[0].image = "nginx:2"
    await client.update(ss)
    await ctrl.sync(KEY)
    assert [a[2] for a in client.writes("delete")] == ["default/web-2"]
    await ctrl.sync(KEY)  # recreated at the new revision
    assert pod(client, "web-2").metadata.labels[REVISION_LABEL] != old_rev
    await ctrl.sync(KEY)
    assert len(client.writes("delete")) == 1  # web-2 is not ready yet: web-1 waits
    set_phase(client, "web-2")
    await ctrl.sync(KEY)
    assert [a[2] for a in client.writes("delete")] == ["default/web-2", "default/web-1"]
    await ctrl.sync(KEY)
    set_phase(client, "web-1")
    await ctrl.sync(KEY)
    assert len(client.writes("delete")) == 2  # web-0 is below the partition
    st = client.obj(apps.StatefulSet, "web", "default").status
    assert (st.current_revision, st.current_replicas, st.updated_replicas) == (old_rev, 1, 2)
    assert pod(client, "web-0").metadata.labels[REVISION_LABEL] == old_rev


async def test_orphan_pod_enqueues_matching_sets(env: tuple[StatefulSetController, FakeClient]) -> None:
    ctrl, client = env
    client.add(statefulset())
    while len(ctrl.queue):
        ctrl.queue.done(await ctrl.queue.get())
    orphan = core.Pod()
    orphan.metadata.name, orphan.metadata.namespace = "web-7", "default"
    orphan.metadata.labels["app"] = "other"
    client.add(orphan)
    assert len(ctrl.queue) == 0
    orphan = pod(client, "web-7")
    orphan.metadata.labels["app"] = "web"
    await client.update(orphan)
    assert len(ctrl.queue) == 1 and await ctrl.queue.get() == KEY
