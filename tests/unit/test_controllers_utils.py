"""controller_utils: expectations, pod deletion ranking, readiness/availability, slow start, freshness,
and the ReplicaSet / Deployment controllers' sync against a fake client (no server)."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from pybernetes import errors
from pybernetes.api import objects
from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.meta.v1 import meta_pb2 as meta
from pybernetes.cache import InformerFactory
from services.controllers import deployment_util as du
from services.controllers.controller_utils import (
    ControllerExpectations,
    FreshObjects,
    SlowStartError,
    is_pod_available,
    is_pod_ready,
    rank_pods_for_deletion,
    slow_start_batch,
)
from services.controllers.deployment import DeploymentController
from services.controllers.replicaset import ReplicaSetController


def pod(name: str, *, node: str = "n1", phase: str = "Running", ready: bool = True, ready_since: int = 100,
        created: int = 50, restarts: int = 0, labels: dict[str, str] | None = None) -> core.Pod:
    p = core.Pod()
    p.metadata.name, p.metadata.namespace, p.metadata.uid = name, "default", f"uid-{name}"
    p.metadata.resource_version = "1"
    p.metadata.creation_timestamp.seconds = created
    p.metadata.labels.update(labels or {"app": "web"})
    p.spec.node_name = node
    p.status.phase = phase
    c = p.status.conditions.add(type="Ready", status="True" if ready else "False")
    c.last_transition_time.seconds = ready_since
    p.status.container_statuses.add(name="main", restart_count=restarts)
    return p


def test_expectations() -> None:
    now = [0.0]
    e = ControllerExpectations(timeout=10, clock=lambda: now[0])
    assert e.satisfied("ns/rs")
    e.expect_creations("ns/rs", 2)
    assert not e.satisfied("ns/rs")
    e.creation_observed("ns/rs")
    assert not e.satisfied("ns/rs")
    e.creation_observed("ns/rs")
    assert e.satisfied("ns/rs")
    e.expect_deletions("ns/rs", ["ns/a", "ns/b"])
    e.deletion_observed("ns/rs", "ns/a")
    e.deletion_observed("ns/rs", "ns/a")  # counted once
    assert e.pending("ns/rs") == (0, 1) and not e.satisfied("ns/rs")
    now[0] = 11
    assert e.satisfied("ns/rs")  # expired: a lost event never blocks forever
    e.delete("ns/rs")
    assert e.pending("ns/rs") == (0, 0)


def test_deletion_ranking() -> None:
    pods = [
        pod("old-ready", created=10, ready_since=20),
        pod("new-ready", created=40, ready_since=60),
        pod("not-ready", ready=False),
        pod("unscheduled", node="", phase="Pending", ready=False),
        pod("pending", phase="Pending", ready=False),
        pod("restarty", created=10, ready_since=20, restarts=5),
    ]
    order = [p.metadata.name for p in rank_pods_for_deletion(pods)]
    assert order == ["unscheduled", "pending", "not-ready", "new-ready", "restarty", "old-ready"]


def test_ready_and_available() -> None:
    p = pod("a", ready_since=100)
    assert is_pod_ready(p)
    assert is_pod_available(p, 0, 0)
    assert not is_pod_available(p, 10, 105)
    assert is_pod_available(p, 10, 111)
    assert not is_pod_ready(pod("b", ready=False))


async def test_slow_start_batches() -> None:
    sizes: list[int] = []
    inflight = 0

    async def ok() -> None:
        nonlocal inflight
        inflight += 1
        await asyncio.sleep(0)
        sizes.append(inflight)
        await asyncio.sleep(0)
        inflight -= 1

    assert await slow_start_batch(10, 1, ok) == 10
    assert max(sizes) == 4  # batches 1, 2, 4, 3
    calls = itertools.count()

    async def fail_second() -> None:
        if next(calls) == 1:
            raise errors.Forbidden("no")

    with pytest.raises(SlowStartError) as ei:
        await slow_start_batch(10, 1, fail_second)
    assert ei.value.successes == 2  # batch of 1, then a batch of 2 with one failure; no more batches
    assert isinstance(ei.value.first, errors.Forbidden)


def test_fresh_objects() -> None:
    f: FreshObjects[core.Pod] = FreshObjects()
    cached = pod("a")
    mine = objects.copy(cached)
    mine.metadata.resource_version = "5"
    f.record(mine)
    assert f.resolve(cached) is mine
    newer = objects.copy(cached)
    newer.metadata.resource_version = "6"
    assert f.resolve(newer) is newer
    assert f.resolve(cached) is cached  # forgotten once the cache caught up


# -- controllers on a fake client -----------------------------------------------------------------


class FakeClient:
    """Enough of Client for sync(): writes are recorded and answered like the apiserver would."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, str]] = []
        self.objects: dict[tuple[str, str, str], Any] = {}
        self._rv = itertools.count(100)
        self._names = itertools.count()

    def _key(self, obj: Any) -> tuple[str, str, str]:
        return (type(obj).__name__, obj.metadata.namespace, obj.metadata.name)

    def _stamp(self, obj: Any) -> Any:
        out = objects.copy(obj)
        out.metadata.resource_version = str(next(self._rv))
        return out

    async def create(self, obj: Any, **_: Any) -> Any:
        out = self._stamp(obj)
        if not out.metadata.name:
            out.metadata.name = f"{out.metadata.generate_name}{next(self._names)}"
        if self._key(out) in self.objects:
            raise errors.AlreadyExists("exists")
        out.metadata.uid = f"uid-{out.metadata.name}"
        self.objects[self._key(out)] = out
        self.writes.append(("create", f"{type(obj).__name__}/{out.metadata.name}"))
        return out

    async def update(self, obj: Any, **_: Any) -> Any:
        self.writes.append(("update", f"{type(obj).__name__}/{obj.metadata.name}"))
        out = self._stamp(obj)
        self.objects[self._key(out)] = out
        return out

    async def update_status(self, obj: Any, **_: Any) -> Any:
        self.writes.append(("update_status", f"{type(obj).__name__}/{obj.metadata.name}"))
        out = self._stamp(obj)
        self.objects[self._key(out)] = out
        return out

    async def delete(self, cls: type[Any], name: str, **_: Any) -> tuple[Any, bool]:
        self.writes.append(("delete", f"{cls.__name__}/{name}"))
        return cls(), True

    async def get(self, cls: type[Any], name: str, namespace: str = "") -> Any:
        obj = self.objects.get((cls.__name__, namespace, name))
        if obj is None:
            raise errors.NotFound("nope")
        return obj

    async def patch(self, cls: type[Any], name: str, patch: Any, **_: Any) -> Any:
        self.writes.append(("patch", f"{cls.__name__}/{name}"))
        raise errors.NotFound("nope")


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def event(self, obj: Any, type_: str, reason: str, message: str) -> None:
        self.events.append((type_, reason, message))


def make_rs(replicas: int) -> apps.ReplicaSet:
    rs = apps.ReplicaSet()
    rs.metadata.name, rs.metadata.namespace, rs.metadata.uid = "web", "default", "uid-web"
    rs.metadata.resource_version, rs.metadata.generation = "10", 1
    rs.spec.replicas = replicas
    rs.spec.selector.match_labels["app"] = "web"
    rs.spec.template.metadata.labels["app"] = "web"
    rs.spec.template.spec.containers.add(name="main", image="nginx")
    return rs


def owned(p: core.Pod, rs: apps.ReplicaSet) -> core.Pod:
    ref = p.metadata.owner_references.add(api_version="apps/v1", kind="ReplicaSet", name=rs.metadata.name,
                                          uid=rs.metadata.uid)
    ref.controller = True
    ref.block_owner_deletion = True
    return p


async def test_replicaset_sync_twice_creates_once() -> None:
    client, rec = FakeClient(), Recorder()
    factory = InformerFactory(client)  # type: ignore[arg-type]
    ctrl = ReplicaSetController(client, factory, rec, burst_replicas=500)  # type: ignore[arg-type]
    rs = make_rs(5)
    client.objects[("ReplicaSet", "default", "web")] = rs
    ctrl.informer.store.add(rs)
    await ctrl.sync("default/web")
    creates = [w for w in client.writes if w[0] == "create"]
    assert len(creates) == 5
    assert sum(1 for e in rec.events if e[1] == "SuccessfulCreate") == 5
    client.writes.clear()
    await ctrl.sync("default/web")  # the pod cache has not seen them: expectations say wait
    assert client.writes == []
    # The informer delivers them: expectations drop to zero; status then converges, once.
    for (kind, _, _), obj in list(client.objects.items()):
        if kind == "Pod":
            ctrl.pod_informer.store.add(obj)
            ctrl._pod_added(obj)
    assert ctrl.expectations.satisfied("default/web")
    await ctrl.sync("default/web")
    assert [w[0] for w in client.writes] == ["update_status"]
    client.writes.clear()
    await ctrl.sync("default/web")
    assert client.writes == []


async def test_replicaset_deletes_least_valuable_first() -> None:
    client, rec = FakeClient(), Recorder()
    factory = InformerFactory(client)  # type: ignore[arg-type]
    ctrl = ReplicaSetController(client, factory, rec)  # type: ignore[arg-type]
    rs = make_rs(2)
    ctrl.informer.store.add(rs)
    for p in (pod("good1", created=1), pod("good2", created=2), pod("unready", ready=False),
              pod("unsched", node="", phase="Pending", ready=False)):
        ctrl.pod_informer.store.add(owned(p, rs))
    await ctrl.sync("default/web")
    deleted = sorted(w[1] for w in client.writes if w[0] == "delete")
    assert deleted == ["Pod/unready", "Pod/unsched"]
    client.writes.clear()
    await ctrl.sync("default/web")  # deletions not observed yet: nothing more
    assert [w for w in client.writes if w[0] == "delete"] == []


def make_deploy(image: str = "nginx:1") -> apps.Deployment:
    d = apps.Deployment()
    d.metadata.name, d.metadata.namespace, d.metadata.uid = "web", "default", "uid-d"
    d.metadata.resource_version, d.metadata.generation = "5", 1
    d.spec.replicas = 4
    d.spec.selector.match_labels["app"] = "web"
    d.spec.template.metadata.labels["app"] = "web"
    d.spec.template.spec.containers.add(name="main", image=image)
    d.spec.strategy.type = "RollingUpdate"
    d.spec.strategy.rolling_update.max_surge.CopyFrom(meta.IntOrString(type=0, int_val=1))
    d.spec.strategy.rolling_update.max_unavailable.CopyFrom(meta.IntOrString(type=0, int_val=1))
    d.spec.revision_history_limit = 10
    d.spec.progress_deadline_seconds = 600
    return d


async def test_deployment_creates_hashed_rs_once() -> None:
    client, rec = FakeClient(), Recorder()
    factory = InformerFactory(client)  # type: ignore[arg-type]
    ctrl = DeploymentController(client, factory, rec)  # type: ignore[arg-type]
    d = make_deploy()
    ctrl.informer.store.add(d)
    await ctrl.sync("default/web")
    h = du.compute_hash(d.spec.template)
    assert ("create", f"ReplicaSet/web-{h}") in client.writes
    rs = client.objects[("ReplicaSet", "default", f"web-{h}")]
    assert rs.spec.replicas == 4
    assert rs.spec.selector.match_labels[du.POD_TEMPLATE_HASH] == h
    assert rs.spec.template.metadata.labels[du.POD_TEMPLATE_HASH] == h
    assert rs.metadata.annotations[du.REVISION] == "1"
    assert rs.metadata.owner_references[0].uid == "uid-d"
    assert ("Normal", "ScalingReplicaSet", f"Scaled up replica set web-{h} to 4 from 0") in rec.events
    stored = client.objects[("Deployment", "default", "web")]
    assert stored.metadata.annotations[du.REVISION] == "1"
    cond = du.get_condition(stored.status, du.PROGRESSING)
    assert cond is not None and cond.reason == du.NEW_RS_CREATED
    client.writes.clear()
    await ctrl.sync("default/web")  # caches lag: our own writes are remembered, nothing written again
    assert client.writes == []
    # A restarted controller (fresh memory) whose RS cache lags hits AlreadyExists and reuses it.
    ctrl2 = DeploymentController(client, InformerFactory(client), rec)  # type: ignore[arg-type]
    ctrl2.informer.store.add(stored)
    await ctrl2.sync("default/web")
    assert [w for w in client.writes if w[0] == "create"] == []  # AlreadyExists: reused
    assert [k for k in client.objects if k[0] == "ReplicaSet"] == [("ReplicaSet", "default", f"web-{h}")]


async def test_deployment_rolling_step_respects_surge() -> None:
    client, rec = FakeClient(), Recorder()
    factory = InformerFactory(client)  # type: ignore[arg-type]
    ctrl = DeploymentController(client, factory, rec)  # type: ignore[arg-type]
    d = make_deploy("nginx:2")
    d.metadata.annotations[du.REVISION] = "1"
    old = apps.ReplicaSet()
    old.metadata.name, old.metadata.namespace, old.metadata.uid = "web-old", "default", "uid-old"
    old.metadata.resource_version = "3"
    old.metadata.annotations.update({du.REVISION: "1", du.DESIRED_REPLICAS: "4", du.MAX_REPLICAS: "5"})
    old.metadata.labels["app"] = "web"
    ref = old.metadata.owner_references.add(api_version="apps/v1", kind="Deployment", name="web", uid="uid-d")
    ref.controller = True
    old.spec.replicas = 4
    old.spec.template.CopyFrom(make_deploy("nginx:1").spec.template)
    old.status.replicas = old.status.available_replicas = old.status.ready_replicas = 4
    ctrl.informer.store.add(d)
    ctrl.rs_informer.store.add(old)
    await ctrl.sync("default/web")
    h = du.compute_hash(d.spec.template)
    new = client.objects[("ReplicaSet", "default", f"web-{h}")]
    assert new.spec.replicas == 1  # surge 1 above 4
    assert new.metadata.annotations[du.REVISION] == "2"
    # maxUnavailable 1: one old replica may go at once (5 pods, 3 must stay available, 1 new unavailable)
    assert client.objects[("ReplicaSet", "default", "web-old")].spec.replicas == 3
