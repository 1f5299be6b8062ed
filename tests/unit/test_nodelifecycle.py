"""Node lifecycle decisions (FakeClock, fake client over the informers' stores) and node IPAM allocation."""

from __future__ import annotations

from typing import Any, cast

import pytest

from pybernetes import errors
from pybernetes.api.coordination.v1 import coordination_pb2 as coordination
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.taints import tolerates
from pybernetes.cache import InformerFactory
from pybernetes.clock import FakeClock
from pybernetes.events import EventRecorder
from services.controllers.nodeipam import CIDRExhausted, CidrSet, NodeIpamController
from services.controllers.nodelifecycle import (
    FULL,
    NORMAL,
    PARTIAL,
    TAINT_NOT_READY,
    TAINT_UNREACHABLE,
    NodeLifecycleController,
    TokenBucket,
    min_toleration_seconds,
    zone_state,
)


class FakeRecorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def event(self, obj: Any, type_: str, reason: str, message: str) -> None:
        self.events.append((obj.metadata.name, reason, message))


class FakeClient:
    """Writes go straight into the informers' stores (as if the watch delivered them at once)."""

    def __init__(self) -> None:
        self.stores: dict[type[Any], Any] = {}
        self.rv = 0
        self.deleted: list[str] = []
        self.writes: list[str] = []
        self.gets = 0

    def _store(self, obj: Any) -> Any:
        self.rv += 1
        new = type(obj)()
        new.CopyFrom(obj)
        new.metadata.resource_version = str(self.rv)
        self.stores[type(obj)].add(new)
        return new

    async def get(self, cls: type[Any], name: str, *, namespace: str = "") -> Any:
        self.gets += 1
        obj = self.stores[cls].get_by_key(f"{namespace}/{name}" if namespace else name)
        if obj is None:
            raise errors.NotFound(name)
        out = cls()
        out.CopyFrom(obj)
        return out

    async def update(self, obj: Any) -> Any:
        self.writes.append(f"update {type(obj).__name__} {obj.metadata.name}")
        return self._store(obj)

    async def update_status(self, obj: Any) -> Any:
        self.writes.append(f"status {type(obj).__name__} {obj.metadata.name}")
        return self._store(obj)

    async def delete(self, cls: type[Any], name: str, *, namespace: str = "", uid: str | None = None) -> Any:
        key = f"{namespace}/{name}"
        obj = self.stores[cls].get_by_key(key)
        if obj is None:
            raise errors.NotFound(name)
        self.stores[cls].delete(obj)
        self.deleted.append(key)
        return obj, True


def make_node(name: str, ready: str = "True", hb: int = 1, zone: str = "") -> core.Node:
    n = core.Node()
    n.metadata.name = name
    if zone:
        n.metadata.labels["topology.kubernetes.io/zone"] = zone
    for t in ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure"):
        c = n.status.conditions.add(type=t, status=ready if t == "Ready" else "False")
        c.last_heartbeat_time.seconds = hb
    return n


def make_lease(name: str, renew: int) -> coordination.Lease:
    lease = coordination.Lease()
    lease.metadata.name, lease.metadata.namespace = name, "kube-node-lease"
    lease.spec.holder_identity = name
    lease.spec.renew_time.seconds = renew
    return lease


def make_pod(name: str, node: str, tolerations: list[tuple[str, int | None]] | None = None) -> core.Pod:
    p = core.Pod()
    p.metadata.name, p.metadata.namespace, p.metadata.uid = name, "default", f"uid-{name}"
    p.spec.node_name = node
    for key, secs in tolerations or []:
        t = p.spec.tolerations.add(key=key, operator="Exists", effect="NoExecute")
        if secs is not None:
            t.toleration_seconds = secs
    p.status.conditions.add(type="Ready", status="True")
    p.status.pod_ip = "10.244.1.5"
    return p


def setup(**kw: Any) -> tuple[NodeLifecycleController, FakeClient, FakeRecorder, FakeClock]:
    clock, client, rec = FakeClock(), FakeClient(), FakeRecorder()
    factory = InformerFactory(cast(Any, client))
    ctl = NodeLifecycleController(cast(Any, client), factory, cast(EventRecorder, rec), clock=clock,
                                  node_monitor_grace_period=40, node_monitor_period=5, **kw)
    client.stores[core.Node] = ctl.nodes.store
    client.stores[core.Pod] = ctl.pods.store
    client.stores[coordination.Lease] = ctl.leases.store
    return ctl, client, rec, clock


def taints(ctl: NodeLifecycleController, name: str) -> set[str]:
    node = ctl.node_lister.get("", name)
    assert node is not None
    return {f"{t.key}:{t.effect}" for t in node.spec.taints}


def ready(ctl: NodeLifecycleController, name: str) -> core.NodeCondition:
    node = ctl.node_lister.get("", name)
    assert node is not None
    return next(c for c in node.status.conditions if c.type == "Ready")


async def test_grace_expiry_marks_unknown_and_taints() -> None:
    ctl, client, rec, clock = setup()
    for n in ("a", "b"):
        ctl.nodes.store.add(make_node(n))
        ctl.leases.store.add(make_lease(n, 100))
    ctl.pods.store.add(make_pod("p1", "a"))
    await ctl.monitor_node_health()
    assert client.writes == [] and taints(ctl, "a") == set()
    renew = 100
    for _ in range(12):  # 60 s: only b's lease keeps being renewed
        clock.advance(5)
        renew += 5
        ctl.leases.store.add(make_lease("b", renew))
        await ctl.monitor_node_health()
    c = ready(ctl, "a")
    assert c.status == "Unknown" and c.reason == "NodeStatusUnknown"
    assert c.message == "Kubelet stopped posting node status."
    node_a = ctl.node_lister.get("", "a")
    assert node_a is not None and all(x.status == "Unknown" for x in node_a.status.conditions)
    assert taints(ctl, "a") == {f"{TAINT_UNREACHABLE}:NoSchedule", f"{TAINT_UNREACHABLE}:NoExecute"}
    assert ready(ctl, "b").status == "True" and taints(ctl, "b") == set()
    assert ("a", "NodeNotReady", "Node a status is now: NodeNotReady") in rec.events
    pod = ctl.pod_lister.get("default", "p1")
    assert pod is not None and pod.status.conditions[0].status == "False"  # MarkPodsNotReady
    # idempotent: another pass writes nothing, and reads no node from the API (the informer's say they are in line)
    n_writes, n_gets = len(client.writes), client.gets
    clock.advance(5)
    ctl.leases.store.add(make_lease("b", renew + 5))
    await ctl.monitor_node_health()
    assert len(client.writes) == n_writes
    assert client.gets == n_gets
    # kubelet is back: Ready posted with a new heartbeat -> taints removed at once
    ctl.nodes.store.add(make_node("a", "True", hb=999))
    await ctl.monitor_node_health()
    assert taints(ctl, "a") == set()


async def test_lease_renewal_alone_keeps_node_healthy_and_not_ready_taint() -> None:
    ctl, _client, _rec, clock = setup()
    ctl.nodes.store.add(make_node("a", "False"))
    ctl.nodes.store.add(make_node("b"))
    ctl.nodes.store.add(make_node("c"))
    for i in range(10):
        for n in ("a", "b", "c"):
            ctl.leases.store.add(make_lease(n, 100 + i))
        await ctl.monitor_node_health()
        clock.advance(10)
    assert ready(ctl, "a").status == "False"  # not overridden: lease renewed
    assert taints(ctl, "a") == {f"{TAINT_NOT_READY}:NoSchedule", f"{TAINT_NOT_READY}:NoExecute"}
    assert taints(ctl, "b") == set()


async def test_noexecute_tainting_is_rate_limited_per_zone() -> None:
    ctl, _client, _rec, clock = setup(node_eviction_rate=0.1)
    for i in range(10):
        ctl.nodes.store.add(make_node(f"n{i}", "False" if i < 2 else "True"))
    await ctl.monitor_node_health()
    tainted = [i for i in range(10) if f"{TAINT_NOT_READY}:NoExecute" in taints(ctl, f"n{i}")]
    assert len(tainted) == 1  # one token: the second node waits 10 s
    assert all(f"{TAINT_NOT_READY}:NoSchedule" in taints(ctl, f"n{i}") for i in range(2))
    clock.advance(5)
    await ctl.process_taint_queues()
    assert sum(f"{TAINT_NOT_READY}:NoExecute" in taints(ctl, f"n{i}") for i in range(10)) == 1
    clock.advance(5)
    await ctl.process_taint_queues()
    assert sum(f"{TAINT_NOT_READY}:NoExecute" in taints(ctl, f"n{i}") for i in range(10)) == 2


async def test_partial_disruption_in_small_cluster_stops_tainting() -> None:
    ctl, _client, _rec, _clock = setup()
    for i in range(5):
        ctl.nodes.store.add(make_node(f"n{i}", "False" if i < 3 else "True"))
    await ctl.monitor_node_health()
    assert ctl.zones[next(iter(ctl.zones))].state == PARTIAL
    assert not any("NoExecute" in t for i in range(5) for t in taints(ctl, f"n{i}"))


async def test_full_disruption_everywhere_is_master_disruption() -> None:
    ctl, _client, _rec, _clock = setup()
    for i in range(2):
        ctl.nodes.store.add(make_node(f"n{i}", "False"))
    await ctl.monitor_node_health()
    assert ctl.master_disruption
    assert not any("NoExecute" in t for i in range(2) for t in taints(ctl, f"n{i}"))


def test_zone_state_and_token_bucket() -> None:
    assert zone_state([True, True, False], 0.55) == NORMAL
    assert zone_state([False, False, False, True], 0.55) == PARTIAL
    assert zone_state([False, False, True, True], 0.55) == NORMAL  # fewer than 3 unhealthy
    assert zone_state([False], 0.55) == FULL
    clock = FakeClock()
    b = TokenBucket(0.5, 1, clock=clock)
    assert b.try_accept() and not b.try_accept()
    clock.advance(1.9)
    assert not b.try_accept()
    clock.advance(0.2)
    assert b.try_accept()
    b.set_rate(0)
    clock.advance(100)
    assert not b.try_accept()


def test_toleration_matching() -> None:
    taint = core.Taint(key=TAINT_UNREACHABLE, effect="NoExecute")
    assert tolerates(core.Toleration(operator="Exists"), taint)
    assert tolerates(core.Toleration(key=TAINT_UNREACHABLE, operator="Exists", effect="NoExecute"), taint)
    assert not tolerates(core.Toleration(key=TAINT_NOT_READY, operator="Exists"), taint)
    assert not tolerates(core.Toleration(key=TAINT_UNREACHABLE, operator="Exists", effect="NoSchedule"), taint)
    assert tolerates(core.Toleration(key=TAINT_UNREACHABLE, value=""), taint)
    pod = make_pod("p", "a", [(TAINT_UNREACHABLE, 300), (TAINT_UNREACHABLE, 30)])
    assert min_toleration_seconds(pod, [taint]) == (True, 30.0)
    assert min_toleration_seconds(make_pod("p", "a", [(TAINT_UNREACHABLE, None)]), [taint]) == (True, None)
    assert min_toleration_seconds(make_pod("p", "a"), [taint])[0] is False


async def test_taint_manager_evicts_by_toleration_seconds() -> None:
    ctl, client, rec, clock = setup()
    node = make_node("a", "Unknown")
    node.spec.taints.add(key=TAINT_UNREACHABLE, effect="NoExecute")
    ctl.nodes.store.add(node)
    ctl.pods.store.add(make_pod("none", "a"))
    ctl.pods.store.add(make_pod("short", "a", [(TAINT_UNREACHABLE, 30)]))
    ctl.pods.store.add(make_pod("forever", "a", [(TAINT_UNREACHABLE, None)]))
    ctl.pods.store.add(make_pod("elsewhere", "b"))
    for key in ("default/none", "default/short", "default/forever", "default/elsewhere"):
        await ctl.sync_pod(key)
    assert client.deleted == ["default/none"]
    assert ("none", "TaintManagerEviction", "Marking for deletion Pod default/none") in rec.events
    assert ctl.pod_queue.waiting() == 1  # "short" scheduled for 30 s
    clock.advance(29)
    await ctl.sync_pod("default/short")  # an early re-sync does not restart the timer
    assert client.deleted == ["default/none"]
    clock.advance(1)
    await ctl.sync_pod("default/short")
    assert client.deleted == ["default/none", "default/short"]
    # taint removed before expiry: the timer is forgotten
    ctl.pods.store.add(make_pod("short2", "a", [(TAINT_UNREACHABLE, 30)]))
    await ctl.sync_pod("default/short2")
    assert "default/short2" in ctl.taint_seen
    healthy = make_node("a")
    ctl.nodes.store.add(healthy)
    await ctl.sync_pod("default/short2")
    assert "default/short2" not in ctl.taint_seen and "default/short2" not in client.deleted


# -- node IPAM ---------------------------------------------------------------------------------


def test_cidrset_allocates_distinct_and_reuses_released() -> None:
    s = CidrSet("10.244.0.0/16", 24)
    got = [s.allocate() for _ in range(3)]
    assert got == ["10.244.0.0/24", "10.244.1.0/24", "10.244.2.0/24"]
    s.release("10.244.1.0/24")
    nxt = [s.allocate() for _ in range(254)]
    assert "10.244.1.0/24" in nxt and len(set(nxt + got)) == 256
    with pytest.raises(CIDRExhausted):
        s.allocate()
    assert not s.occupy("10.0.0.0/24") and not s.occupy("10.244.0.0/25")
    with pytest.raises(ValueError):
        CidrSet("10.244.0.0/16", 8)


async def test_ipam_relearns_existing_and_releases_on_delete() -> None:
    client = FakeClient()
    factory = InformerFactory(cast(Any, client))
    ipam = NodeIpamController(cast(Any, client), factory, cast(EventRecorder, FakeRecorder()),
                              cluster_cidr="10.244.0.0/16", node_cidr_mask_size=24)
    client.stores[core.Node] = ipam.nodes.store
    old = make_node("old")
    old.spec.pod_cidr = "10.244.0.0/24"
    old.spec.pod_cidrs.append("10.244.0.0/24")
    ipam.nodes.store.add(old)
    ipam._learn(old)
    ipam.nodes.store.add(make_node("new"))
    await ipam.sync("new")
    await ipam.sync("new")  # second sync: no second allocation
    new = ipam.node_lister.get("", "new")
    assert new is not None and new.spec.pod_cidr == "10.244.1.0/24" and list(new.spec.pod_cidrs) == [
        "10.244.1.0/24"]
    assert client.writes == ["update Node new"]
    ipam._on_delete(new)
    assert "10.244.1.0/24" not in [ipam.cidrs._cidr(i) for i in ipam.cidrs.used]
    assert ipam.cidrs._cidr(0) == "10.244.0.0/24" and 0 in ipam.cidrs.used


# -- controller-manager flags --------------------------------------------------------------------


def test_manager_flags() -> None:
    from services.controllers.main import CONTROLLERS, enabled_controllers, parse_args

    assert enabled_controllers(["*"]) == list(CONTROLLERS)
    assert "nodeipam" not in enabled_controllers(["*,-nodeipam"])
    assert enabled_controllers(["endpoint", "serviceaccount"]) == ["endpoint", "serviceaccount"]
    with pytest.raises(ValueError):
        enabled_controllers(["bogus"])
    cfg = parse_args(["--server", "127.0.0.1:1", "--leader-elect=false", "--node-monitor-grace-period=20s",
                      "--concurrent-endpoint-syncs=3", "--controllers=*,-nodeipam", "--allocate-node-cidrs=false"])
    assert cfg.server == "127.0.0.1:1" and not cfg.leader_elect and cfg.node_monitor_grace_period == 20
    assert cfg.concurrency["endpoint"] == 3 and cfg.concurrency["garbagecollector"] == 20
    assert not cfg.allocate_node_cidrs and cfg.health_port == 10257 and cfg.cluster_cidr == "10.244.0.0/16"
    d = parse_args([])
    assert d.leader_elect and d.node_eviction_rate == 0.1 and d.secondary_node_eviction_rate == 0.01
    assert d.unhealthy_zone_threshold == 0.55 and d.large_cluster_size_threshold == 50
    assert d.node_cidr_mask_size == 24 and d.node_monitor_period == 5


async def test_a_node_event_brings_its_noschedule_taints_in_line_without_a_health_pass() -> None:
    """Kubernetes' doNoScheduleTaintingPass on the node update queue: a node that posts Ready is schedulable then,
    not up to a node-monitor-period later (lab up waited for that pass)."""
    ctl, client, _rec, _clock = setup()
    old = make_node("a", "False")
    ctl.nodes.store.add(old)
    ctl._on_node(old)
    assert len(ctl.node_queue) == 1
    key = await ctl.node_queue.get()
    await ctl.sync_no_schedule(key)
    ctl.node_queue.done(key)
    assert taints(ctl, "a") == {f"{TAINT_NOT_READY}:NoSchedule"}  # NoExecute stays the health pass's business
    new = make_node("a", "True", hb=2)
    cur = ctl.node_lister.get("", "a")
    assert cur is not None
    new.spec.taints.extend(cur.spec.taints)  # as the kubelet's status write leaves them
    ctl.nodes.store.add(new)
    ctl._on_node_update(old, new)
    key = await ctl.node_queue.get()
    await ctl.sync_no_schedule(key)
    ctl.node_queue.done(key)
    assert taints(ctl, "a") == set()
    now = ctl.node_lister.get("", "a")
    assert now is not None
    beat = core.Node()
    beat.CopyFrom(now)
    beat.status.conditions[0].last_heartbeat_time.seconds = 3  # nothing the taints follow: not queued
    ctl._on_node_update(now, beat)
    assert len(ctl.node_queue) == 0
    writes = len(client.writes)
    await ctl.sync_no_schedule("a")  # already in line: no API call
    await ctl.sync_no_schedule("gone")  # deleted since: nothing
    assert len(client.writes) == writes


async def test_a_node_that_never_posted_ready_gets_noexecute_only_after_the_grace() -> None:
    ctl, _client, _rec, clock = setup()
    n = core.Node()
    n.metadata.name = "fresh"  # registered, its kubelet not started yet; two healthy nodes keep the zone Normal
    ctl.nodes.store.add(n)
    for name in ("b", "c"):
        ctl.nodes.store.add(make_node(name))
    for i in range(11):  # 50 s: past the 40 s grace it is marked NodeStatusNeverUpdated, then tainted
        for name in ("b", "c"):
            ctl.leases.store.add(make_lease(name, 100 + i))
        await ctl.monitor_node_health()
        if i == 5:
            assert taints(ctl, "fresh") == {f"{TAINT_UNREACHABLE}:NoSchedule"}
        clock.advance(5)
    assert ready(ctl, "fresh").reason == "NodeStatusNeverUpdated"
    assert taints(ctl, "fresh") == {f"{TAINT_UNREACHABLE}:NoSchedule", f"{TAINT_UNREACHABLE}:NoExecute"}
