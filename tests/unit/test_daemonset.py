"""The DaemonSet controller's sync against a fake client: one pod per eligible node (node selector, node
affinity, taints and the automatic tolerations), pods following nodes, expectations under a lagging cache,
rolling update within maxUnavailable, status counts, and idempotency (a second sync writes nothing).

Changes reach the controller's informers as their reflectors would deliver them (test_garbagecollector's
`deliver`); sync is called directly, never `run()`.
"""

from __future__ import annotations

from typing import Any, cast

import pytest

from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.cache import InformerFactory
from pybernetes.events import EventRecorder
from services.controllers.daemonset import DaemonSetController, pinned_node, should_run
from services.controllers.podowners import REVISION_LABEL
from tests.unit.apiclient_fake import FakeClient
from tests.unit.test_garbagecollector import deliver

KEY = "default/agent"


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def event(self, obj: Any, typ: str, reason: str, message: str) -> None:
        self.events.append((reason, message))


@pytest.fixture
def env() -> tuple[DaemonSetController, FakeClient]:
    client = FakeClient()
    factory = InformerFactory(cast(Any, client))
    ctrl = DaemonSetController(cast(Any, client), factory, cast(EventRecorder, Recorder()), clock=lambda: 1e9)
    client.watchers.append(deliver(factory))
    return ctrl, client


def node(name: str, labels: dict[str, str] | None = None, taints: list[core.Taint] | None = None) -> core.Node:
    n = core.Node()
    n.metadata.name = name
    n.metadata.labels.update(labels or {"kubernetes.io/hostname": name})
    n.spec.taints.extend(taints or [])
    return n


def daemonset(**spec: Any) -> apps.DaemonSet:
    ds = apps.DaemonSet()
    ds.metadata.name, ds.metadata.namespace, ds.metadata.generation = "agent", "default", 1
    ds.spec.selector.match_labels["app"] = "agent"
    ds.spec.template.metadata.labels["app"] = "agent"
    ds.spec.template.spec.containers.add(name="agent", image="agent:1")
    ds.spec.update_strategy.type = "RollingUpdate"
    ds.spec.update_strategy.rolling_update.max_unavailable.int_val = spec.pop("max_unavailable", 1)
    for k, v in spec.items():
        setattr(ds.spec, k, v)
    return ds


def pods(client: FakeClient) -> list[core.Pod]:
    return [o for (k, _, _), o in sorted(client.objects.items()) if k == "Pod"]


def pods_by_node(client: FakeClient) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for p in pods(client):
        if not p.metadata.HasField("deletion_timestamp"):
            out.setdefault(pinned_node(p), []).append(p.metadata.name)
    return out


def make_ready(client: FakeClient) -> None:
    """What the scheduler and kubelets would do: bind each pod to its pinned node and report it Ready."""
    for p in pods(client):
        if p.status.phase == "Running":
            continue
        new = core.Pod()
        new.CopyFrom(p)
        new.spec.node_name = pinned_node(p)
        new.status.phase = "Running"
        new.status.conditions.add(type="Ready", status="True")
        client.objects[("Pod", "default", p.metadata.name)] = new
        client._store(p, new)


async def test_one_pod_per_node_pinned_by_affinity(env: tuple[DaemonSetController, FakeClient]) -> None:
    ctrl, client = env
    for n in ("n1", "n2", "n3"):
        client.add(node(n))
    client.add(daemonset())
    await ctrl.sync(KEY)
    assert {n: len(v) for n, v in pods_by_node(client).items()} == {"n1": 1, "n2": 1, "n3": 1}
    pod = pods(client)[0]
    term = pod.spec.affinity.node_affinity.required_during_scheduling_ignored_during_execution.node_selector_terms
    assert [(r.key, r.operator) for r in term[0].match_fields] == [("metadata.name", "In")]
    assert not pod.spec.node_name  # the scheduler binds it
    assert {t.key for t in pod.spec.tolerations} >= {"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable",
                                                       "node.kubernetes.io/unschedulable"}
    assert pod.metadata.owner_references[0].kind == "DaemonSet"
    assert pod.metadata.labels[REVISION_LABEL]
    before = len(client.actions)
    await ctrl.sync(KEY)
    assert [a for a in client.actions[before:] if a[1] == "Pod"] == []  # idempotent
    ds = client.obj(apps.DaemonSet, "agent", "default")
    assert (ds.status.desired_number_scheduled, ds.status.current_number_scheduled, ds.status.number_ready) == (3, 3, 0)
    make_ready(client)
    await ctrl.sync(KEY)
    ds = client.obj(apps.DaemonSet, "agent", "default")
    assert (ds.status.number_ready, ds.status.number_available, ds.status.updated_number_scheduled,
            ds.status.number_unavailable, ds.status.observed_generation) == (3, 3, 3, 0, 1)
    before = len(client.actions)
    await ctrl.sync(KEY)
    assert client.actions[before:] == []


async def test_lagging_cache_never_over_creates(env: tuple[DaemonSetController, FakeClient]) -> None:
    ctrl, client = env
    client.add(node("n1"))
    client.add(daemonset())
    client.watchers.clear()  # the informers see nothing more
    await ctrl.sync(KEY)
    await ctrl.sync(KEY)
    assert len(pods(client)) == 1


async def test_eligibility() -> None:
    ds = daemonset()
    ds.spec.template.spec.node_selector["disk"] = "ssd"
    assert not should_run(ds, node("a"))
    assert should_run(ds, node("a", {"disk": "ssd"}))
    gpu = core.Taint(key="gpu", value="yes", effect="NoSchedule")
    assert not should_run(ds, node("a", {"disk": "ssd"}, [gpu]))
    ds.spec.template.spec.tolerations.add(key="gpu", operator="Exists")
    assert should_run(ds, node("a", {"disk": "ssd"}, [gpu]))
    # the automatic tolerations: not-ready and unschedulable nodes still run daemons
    for key, effect in (("node.kubernetes.io/not-ready", "NoExecute"), ("node.kubernetes.io/unschedulable",
                                                                         "NoSchedule")):
        assert should_run(ds, node("a", {"disk": "ssd"}, [core.Taint(key=key, effect=effect)]))
    assert should_run(ds, node("a", {"disk": "ssd"}, [core.Taint(key="soft", effect="PreferNoSchedule")]))
    req = ds.spec.template.spec.affinity.node_affinity.required_during_scheduling_ignored_during_execution
    req.node_selector_terms.add().match_expressions.add(key="zone", operator="In", values=["a"])
    assert not should_run(ds, node("a", {"disk": "ssd"}))
    assert should_run(ds, node("a", {"disk": "ssd", "zone": "a"}))


async def test_pods_follow_nodes(env: tuple[DaemonSetController, FakeClient]) -> None:
    ctrl, client = env
    client.add(node("n1"))
    client.add(node("n2", {"role": "edge"}))
    ds = daemonset()
    ds.spec.template.spec.node_selector["role"] = "edge"
    client.add(ds)
    await ctrl.sync(KEY)
    assert set(pods_by_node(client)) == {"n2"}
    # n1 gains the label: a pod; n2 leaves the cluster: its pod goes
    n1 = client.obj(core.Node, "n1")
    n1.metadata.labels["role"] = "edge"
    await client.update(n1)
    await ctrl.sync(KEY)
    assert set(pods_by_node(client)) == {"n1", "n2"}
    client._remove(client.objects[("Node", "", "n2")])
    await ctrl.sync(KEY)
    assert set(pods_by_node(client)) == {"n1"}
    # a NoSchedule taint keeps new daemon pods away but evicts none (Kubernetes' shouldContinueRunning)
    n1 = client.obj(core.Node, "n1")
    n1.spec.taints.add(key="maintenance", effect="NoSchedule")
    await client.update(n1)
    await ctrl.sync(KEY)
    assert set(pods_by_node(client)) == {"n1"}
    ds = client.obj(apps.DaemonSet, "agent", "default")
    assert (ds.status.desired_number_scheduled, ds.status.number_misscheduled) == (0, 1)
    # ... and its pod, once gone, is not recreated there
    client._remove(client.objects[("Pod", "default", pods_by_node(client)["n1"][0])])
    await ctrl.sync(KEY)
    assert pods_by_node(client) == {}
    # a NoExecute taint it does not tolerate removes the daemon pod
    n1 = client.obj(core.Node, "n1")
    del n1.spec.taints[:]
    await client.update(n1)
    await ctrl.sync(KEY)
    assert set(pods_by_node(client)) == {"n1"}
    n1 = client.obj(core.Node, "n1")
    n1.spec.taints.add(key="maintenance", effect="NoExecute")
    await client.update(n1)
    await ctrl.sync(KEY)
    assert pods_by_node(client) == {}


async def test_rolling_update_honours_max_unavailable(env: tuple[DaemonSetController, FakeClient]) -> None:
    ctrl, client = env
    for n in ("n1", "n2", "n3", "n4"):
        client.add(node(n))
    client.add(daemonset(max_unavailable=2))
    await ctrl.sync(KEY)
    make_ready(client)
    await ctrl.sync(KEY)
    ds = client.obj(apps.DaemonSet, "agent", "default")
    old_rev = pods(client)[0].metadata.labels[REVISION_LABEL]
    ds.spec.template.spec.containers[0].image = "agent:2"
    ds.metadata.generation = 2
    await client.update(ds)
    await ctrl.sync(KEY)
    deleted = [a for a in client.writes("delete") if a[1] == "Pod"]
    assert len(deleted) == 2  # maxUnavailable 2 of 4 (the fake deletes at once: no grace period)
    await ctrl.sync(KEY)
    assert sum(len(v) for v in pods_by_node(client).values()) == 4
    await ctrl.sync(KEY)
    assert len([a for a in client.writes("delete") if a[1] == "Pod"]) == 2  # the new pods are not ready yet
    make_ready(client)
    await ctrl.sync(KEY)
    assert len([a for a in client.writes("delete") if a[1] == "Pod"]) == 4
    assert old_rev not in {p.metadata.labels[REVISION_LABEL] for p in pods(client)}
    await ctrl.sync(KEY)
    make_ready(client)
    await ctrl.sync(KEY)
    ds = client.obj(apps.DaemonSet, "agent", "default")
    assert (ds.status.updated_number_scheduled, ds.status.number_available) == (4, 4)
    assert {n: len(v) for n, v in pods_by_node(client).items()} == {"n1": 1, "n2": 1, "n3": 1, "n4": 1}


async def test_rolling_update_with_max_surge(env: tuple[DaemonSetController, FakeClient]) -> None:
    ctrl, client = env
    for n in ("n1", "n2", "n3"):
        client.add(node(n))
    ds = daemonset(max_unavailable=0)
    ds.spec.update_strategy.rolling_update.max_surge.int_val = 1
    client.add(ds)
    await ctrl.sync(KEY)
    make_ready(client)
    await ctrl.sync(KEY)
    ds = client.obj(apps.DaemonSet, "agent", "default")
    ds.spec.template.spec.containers[0].image = "agent:2"
    await client.update(ds)
    revision_counts: list[tuple[int, int]] = []
    surged = 0
    for _ in range(12):  # each round: a sync, then the kubelets make new pods ready
        await ctrl.sync(KEY)
        assert not client.writes("delete") or len(pods(client)) >= 3  # never below one pod per node
        per_node = pods_by_node(client)
        assert max(len(v) for v in per_node.values()) <= 2 and sum(len(v) > 1 for v in per_node.values()) <= 1
        surged += sum(len(v) > 1 for v in per_node.values())
        make_ready(client)
        new = client.obj(apps.DaemonSet, "agent", "default")
        revision_counts.append((new.status.updated_number_scheduled, new.status.number_available))
    assert {n: len(v) for n, v in pods_by_node(client).items()} == {"n1": 1, "n2": 1, "n3": 1}
    assert revision_counts[-1] == (3, 3)
    assert surged >= 3  # each node ran its old and its updated pod side by side for a while
    assert len([a for a in client.writes("delete") if a[1] == "Pod"]) == 3
