"""pb-controller-manager against the real apiserver: leader election, node lifecycle with a fake kubelet,
endpoints, endpoint slices, node IPAM, service accounts, and the manager's own `run` (alone and as two replicas)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from pybernetes import errors
from pybernetes.api import codec
from pybernetes.api.coordination.v1 import coordination_pb2 as coordination
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.discovery.v1 import discovery_pb2 as discovery
from pybernetes.client.client import Client
from pybernetes.leaderelection import run_leader_elected
from services.controllers.main import Config, ControllerManager, load_controller_class
from services.controllers.nodelifecycle import TAINT_UNREACHABLE
from services.controllers.options import CONTROLLERS
from tests.helpers import eventually
from tests.integration.conftest import ApiServer

pytestmark = pytest.mark.integration

CM_USER = "system:kube-controller-manager"  # the controllers run as themselves, under their bootstrap RBAC role


# -- helpers -----------------------------------------------------------------------------------


def manager_config(controllers: list[str], *, leader_elect: bool = False, **kw: Any) -> Config:
    return Config(controllers=controllers, leader_elect=leader_elect, health_port=0,
                  leader_elect_lease_duration=3.0, leader_elect_renew_deadline=2.0,
                  leader_elect_retry_period=0.5, node_monitor_grace_period=3.0, node_monitor_period=0.5,
                  node_eviction_rate=10.0, **kw)


@contextlib.asynccontextmanager
async def running(cm: ControllerManager) -> AsyncIterator[asyncio.Task[None]]:
    ready, stop = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(cm.run(ready, stop))
    await asyncio.wait_for(ready.wait(), 10)
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def pod(name: str, *, node: str = "", labels: dict[str, str] | None = None,
        tolerations: list[dict[str, Any]] | None = None, port: int = 8080) -> core.Pod:
    return codec.from_dict({
        "metadata": {"name": name, "namespace": "default", "labels": labels or {}},
        "spec": {"nodeName": node, "tolerations": tolerations or [],
                 "containers": [{"name": "c", "image": "localhost:5000/busybox:stable",
                                 "ports": [{"name": "http", "containerPort": port}]}]},
    }, core.Pod)


async def set_pod_status(c: Client, name: str, ip: str, ready: bool) -> None:
    p = await c.get(core.Pod, name, namespace="default")
    p.status.phase = "Running"
    p.status.pod_ip = ip
    del p.status.conditions[:]
    p.status.conditions.add(type="Ready", status="True" if ready else "False")
    await c.update_status(p)


class FakeKubelet:
    """Registers a Node, posts Ready, and renews its Lease in kube-node-lease until told to stop."""

    def __init__(self, client: Client, name: str) -> None:
        self.client, self.name = client, name
        self.task: asyncio.Task[None] | None = None

    async def register(self) -> None:
        node = core.Node()
        node.metadata.name = self.name
        node = await self.client.create(node)
        c = node.status.conditions.add(type="Ready", status="True", reason="KubeletReady")
        c.last_heartbeat_time.seconds = 1
        await self.client.update_status(node)
        lease = coordination.Lease()
        lease.metadata.name, lease.metadata.namespace = self.name, "kube-node-lease"
        lease.spec.holder_identity, lease.spec.lease_duration_seconds = self.name, 40
        await self.client.create(lease)
        self.task = asyncio.create_task(self._renew())

    async def _renew(self) -> None:
        n = 0
        while True:
            n += 1
            with contextlib.suppress(errors.ApiError):
                lease = await self.client.get(coordination.Lease, self.name, namespace="kube-node-lease")
                lease.spec.renew_time.seconds, lease.spec.renew_time.nanos = n, 0
                await self.client.update(lease)
            await asyncio.sleep(0.3)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


# -- leader election -----------------------------------------------------------------------------


async def test_two_electors_one_leader_and_failover(apiserver: ApiServer) -> None:
    clients = [apiserver.new_client(), apiserver.new_client()]
    active: set[str] = set()
    overlap: list[set[str]] = []
    led: list[str] = []

    def work_of(who: str) -> Callable[[], Awaitable[None]]:
        async def work() -> None:
            active.add(who)
            led.append(who)
            if len(active) > 1:
                overlap.append(set(active))
            try:
                await asyncio.Event().wait()
            finally:
                active.discard(who)
        return work

    tasks = {who: asyncio.create_task(run_leader_elected(
        c, name="test-lock", identity=who, work=work_of(who), lease_duration=3, renew_deadline=2,
        retry_period=0.3, release_on_cancel=False)) for who, c in zip(("a", "b"), clients, strict=True)}
    try:
        async def one_leader() -> bool:
            return len(active) == 1
        await eventually(one_leader, 10)
        first = next(iter(active))
        await asyncio.sleep(2)
        assert active == {first} and led == [first]
        lease = await apiserver.client.get(coordination.Lease, "test-lock", namespace="kube-system")
        assert lease.spec.holder_identity == first
        # the leader dies without releasing: the other takes over once the lease expires
        tasks[first].cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await tasks[first]
        other = "b" if first == "a" else "a"

        async def took_over() -> bool:
            return active == {other}
        await eventually(took_over, 15)
        lease = await apiserver.client.get(coordination.Lease, "test-lock", namespace="kube-system")
        assert lease.spec.holder_identity == other and lease.spec.lease_transitions == 1
        assert not overlap
    finally:
        for t in tasks.values():
            t.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        for c in clients:
            await c.close()


# -- node lifecycle --------------------------------------------------------------------------------


async def test_node_lifecycle_unknown_taint_and_eviction(apiserver: ApiServer) -> None:
    c = apiserver.client
    kubelets = [FakeKubelet(c, "node-a"), FakeKubelet(c, "node-b")]
    for k in kubelets:
        await k.register()
    short = [{"key": TAINT_UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 1}]
    long = [{"key": TAINT_UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 3600}]
    await c.create(pod("short", node="node-a", tolerations=short))
    await c.create(pod("patient", node="node-a", tolerations=long))
    await c.create(pod("safe", node="node-b", tolerations=short))
    for name in ("short", "patient", "safe"):
        await set_pod_status(c, name, "10.244.0.9", True)
    cm = ControllerManager(manager_config(["nodelifecycle"]), client=apiserver.new_client(CM_USER))
    try:
        async with running(cm):
            await asyncio.sleep(4)  # longer than the grace period: healthy nodes stay Ready
            a = await c.get(core.Node, "node-a")
            assert next(x for x in a.status.conditions if x.type == "Ready").status == "True"
            assert not a.spec.taints
            await kubelets[0].stop()

            async def unreachable() -> core.Node | None:
                n = await c.get(core.Node, "node-a")
                r = next(x for x in n.status.conditions if x.type == "Ready")
                keys = {(t.key, t.effect) for t in n.spec.taints}
                ok = r.status == "Unknown" and (TAINT_UNREACHABLE, "NoExecute") in keys \
                    and (TAINT_UNREACHABLE, "NoSchedule") in keys
                return n if ok else None
            node_a = await eventually(unreachable, 20, what="node-a Unknown and tainted")
            assert node_a is not None
            ready = next(x for x in node_a.status.conditions if x.type == "Ready")
            assert ready.reason == "NodeStatusUnknown" and ready.message == "Kubelet stopped posting node status."

            async def evicted() -> bool:
                try:
                    p = await c.get(core.Pod, "short", namespace="default")
                except errors.NotFound:
                    return True
                return p.metadata.HasField("deletion_timestamp")
            await eventually(evicted, 20, what="pod short evicted")
            patient = await c.get(core.Pod, "patient", namespace="default")
            assert not patient.metadata.HasField("deletion_timestamp")
            assert next(x for x in patient.status.conditions if x.type == "Ready").status == "False"
            safe = await c.get(core.Pod, "safe", namespace="default")
            assert not safe.metadata.HasField("deletion_timestamp")
            b = await c.get(core.Node, "node-b")
            assert not b.spec.taints
            events = await c.list(core.Event, namespace="default")
            assert any(e.reason == "TaintManagerEviction" and e.involved_object.name == "short"
                       for e in events.items)
            # the kubelet comes back: taints go away
            kubelets[0] = FakeKubelet(c, "node-a")
            kubelets[0].task = asyncio.create_task(kubelets[0]._renew())
            n = await c.get(core.Node, "node-a")
            for x in n.status.conditions:
                if x.type == "Ready":
                    x.status, x.reason, x.message = "True", "KubeletReady", ""
                    x.last_heartbeat_time.seconds = 99
            await c.update_status(n)

            async def untainted() -> bool:
                return not (await c.get(core.Node, "node-a")).spec.taints
            await eventually(untainted, 20, what="node-a untainted")
    finally:
        for k in kubelets:
            await k.stop()


# -- endpoints ---------------------------------------------------------------------------------------


async def test_endpoints_follow_pod_readiness(apiserver: ApiServer) -> None:
    c = apiserver.client
    svc = codec.from_dict({"metadata": {"name": "web", "namespace": "default"},
                           "spec": {"selector": {"app": "web"},
                                    "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}, core.Service)
    await c.create(svc)
    await c.create(pod("w1", node="n1", labels={"app": "web"}))
    await c.create(pod("w2", node="n1", labels={"app": "web"}, port=9090))
    await set_pod_status(c, "w1", "10.244.1.1", True)
    await set_pod_status(c, "w2", "10.244.1.2", False)
    manual = codec.from_dict({"metadata": {"name": "manual", "namespace": "default"},
                              "spec": {"ports": [{"port": 80}]}}, core.Service)
    await c.create(manual)
    ep = core.Endpoints()
    ep.metadata.name, ep.metadata.namespace = "manual", "default"
    ep.subsets.add().addresses.add(ip="192.0.2.1")
    await c.create(ep)
    cm = ControllerManager(manager_config(["endpoint"]), client=apiserver.new_client(CM_USER))

    def view(e: core.Endpoints) -> list[tuple[list[str], list[str], list[int]]]:
        return [([a.ip for a in s.addresses], [a.ip for a in s.not_ready_addresses], [p.port for p in s.ports])
                for s in e.subsets]

    async def endpoints_are(want: list[tuple[list[str], list[str], list[int]]]) -> bool:
        try:
            got = await c.get(core.Endpoints, "web", namespace="default")
        except errors.NotFound:
            return False
        return view(got) == want

    async with running(cm):
        await eventually(lambda: endpoints_are([(["10.244.1.1"], [], [8080]), ([], ["10.244.1.2"], [9090])]), 10)
        got = await c.get(core.Endpoints, "web", namespace="default")
        assert got.subsets[0].addresses[0].target_ref.name == "w1"
        assert got.subsets[0].addresses[0].node_name == "n1"
        await set_pod_status(c, "w2", "10.244.1.2", True)
        await set_pod_status(c, "w1", "10.244.1.1", False)
        await eventually(lambda: endpoints_are([([], ["10.244.1.1"], [8080]), (["10.244.1.2"], [], [9090])]), 5)
        rv = (await c.get(core.Endpoints, "web", namespace="default")).metadata.resource_version
        await asyncio.sleep(1)
        assert (await c.get(core.Endpoints, "web", namespace="default")).metadata.resource_version == rv
        m = await c.get(core.Endpoints, "manual", namespace="default")
        assert [a.ip for a in m.subsets[0].addresses] == ["192.0.2.1"]
        await c.delete(core.Service, "web", namespace="default")

        async def gone() -> bool:
            try:
                await c.get(core.Endpoints, "web", namespace="default")
            except errors.NotFound:
                return True
            return False
        await eventually(gone, 10)


async def test_endpoint_slices_follow_pod_readiness_and_go_with_the_service(apiserver: ApiServer) -> None:
    c = apiserver.client
    svc = codec.from_dict({"metadata": {"name": "web", "namespace": "default"},
                           "spec": {"selector": {"app": "web"},
                                    "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}, core.Service)
    svc = await c.create(svc)
    await c.create(pod("w1", node="n1", labels={"app": "web"}))
    await c.create(pod("w2", node="n1", labels={"app": "web"}))
    await set_pod_status(c, "w1", "10.244.1.1", True)
    await set_pod_status(c, "w2", "10.244.1.2", False)
    cm = ControllerManager(manager_config(["endpointslice", "garbagecollector"]),
                           client=apiserver.new_client(CM_USER))

    async def slices() -> list[discovery.EndpointSlice]:
        return list((await c.list(discovery.EndpointSlice, namespace="default",
                                  label_selector="kubernetes.io/service-name=web")).items)

    async def endpoints_are(want: list[tuple[str, bool, bool, bool]]) -> bool:
        got = await slices()
        return len(got) == 1 and [(e.addresses[0], e.conditions.ready, e.conditions.serving,
                                   e.conditions.terminating) for e in got[0].endpoints] == want

    async with running(cm):
        await eventually(lambda: endpoints_are([("10.244.1.1", True, True, False),
                                                ("10.244.1.2", False, False, False)]), 10)
        [s] = await slices()
        assert s.metadata.name.startswith("web-") and len(s.metadata.name) == len("web-") + 5
        assert s.address_type == "IPv4"
        assert s.metadata.labels["endpointslice.kubernetes.io/managed-by"] == "endpointslice-controller.k8s.io"
        assert [(p.name, p.port, p.protocol) for p in s.ports] == [("http", 8080, "TCP")]
        e = s.endpoints[0]
        assert (e.node_name, e.target_ref.kind, e.target_ref.name) == ("n1", "Pod", "w1")
        assert [(o.kind, o.name, o.uid, o.controller) for o in s.metadata.owner_references] == \
            [("Service", "web", svc.metadata.uid, True)]
        await set_pod_status(c, "w2", "10.244.1.2", True)
        await set_pod_status(c, "w1", "10.244.1.1", False)
        await eventually(lambda: endpoints_are([("10.244.1.1", False, False, False),
                                                ("10.244.1.2", True, True, False)]), 5)
        [s] = await slices()
        await asyncio.sleep(1)
        [again] = await slices()
        assert (again.metadata.name, again.metadata.resource_version) == (s.metadata.name,
                                                                          s.metadata.resource_version)
        # a terminating pod (graceful deletion, no kubelet to finish it) stays, serving but not ready
        await c.delete(core.Pod, "w2", namespace="default", grace_period_seconds=60)
        await eventually(lambda: endpoints_are([("10.244.1.1", False, False, False),
                                                ("10.244.1.2", False, True, True)]), 5)
        await c.delete(core.Service, "web", namespace="default")

        async def gone() -> bool:
            return not await slices()
        await eventually(gone, 15, what="the Service's slices collected with it")


# -- node IPAM and service accounts ---------------------------------------------------------------


async def test_ipam_assigns_distinct_cidrs_and_relearns(apiserver: ApiServer) -> None:
    c = apiserver.client
    pre = core.Node()
    pre.metadata.name = "pre"
    pre.spec.pod_cidr = "10.244.0.0/24"
    pre.spec.pod_cidrs.append("10.244.0.0/24")
    await c.create(pre)
    for i in range(3):
        n = core.Node()
        n.metadata.name = f"n{i}"
        await c.create(n)
    cm = ControllerManager(manager_config(["nodeipam"]), client=apiserver.new_client(CM_USER))

    async def all_assigned() -> list[str] | None:
        nodes = (await c.list(core.Node)).items
        cidrs = [n.spec.pod_cidr for n in nodes]
        return cidrs if all(cidrs) else None

    async with running(cm):
        cidrs = await eventually(all_assigned, 10)
        assert cidrs is not None and len(set(cidrs)) == 4
        assert all(x.endswith("/24") and x.startswith("10.244.") for x in cidrs)
        n0 = await c.get(core.Node, "n0")
        assert list(n0.spec.pod_cidrs) == [n0.spec.pod_cidr]
    # restart: existing allocations are re-learned, a new node gets a fresh range
    n = core.Node()
    n.metadata.name = "late"
    await c.create(n)
    cm2 = ControllerManager(manager_config(["nodeipam"]), client=apiserver.new_client(CM_USER))
    async with running(cm2):
        cidrs = await eventually(all_assigned, 10)
        assert cidrs is not None and len(set(cidrs)) == 5


async def test_default_serviceaccount_in_new_namespace(apiserver: ApiServer) -> None:
    c = apiserver.client
    cm = ControllerManager(manager_config(["serviceaccount"]), client=apiserver.new_client(CM_USER))
    async with running(cm):
        ns = core.Namespace()
        ns.metadata.name = "team-a"
        await c.create(ns)

        async def has_default() -> bool:
            try:
                await c.get(core.ServiceAccount, "default", namespace="team-a")
                return True
            except errors.NotFound:
                return False
        await eventually(has_default, 10)
        await c.get(core.ServiceAccount, "default", namespace="kube-system")
        await c.delete(core.ServiceAccount, "default", namespace="team-a")
        await eventually(has_default, 10, what="default serviceaccount recreated")


# -- the manager ---------------------------------------------------------------------------------------


def importable() -> list[str]:
    names = []
    for name in CONTROLLERS:
        try:
            load_controller_class(name)
            names.append(name)
        except Exception:
            pass
    return names


async def test_manager_runs_all_controllers(apiserver: ApiServer) -> None:
    available = importable()
    assert {"endpoint", "nodelifecycle", "nodeipam", "serviceaccount"} <= set(available)
    cm = ControllerManager(manager_config(["*"], leader_elect=True), client=apiserver.new_client(CM_USER))
    async with running(cm):
        async def started() -> bool:
            return set(cm.running) == set(available)
        await eventually(started, 15, what=f"controllers running (failed: {cm.failed})")
        assert cm.leading
        lease = await apiserver.client.get(coordination.Lease, "kube-controller-manager", namespace="kube-system")
        assert lease.spec.holder_identity == cm.identity
        # the health server answers
        reader, writer = await asyncio.open_connection("127.0.0.1", cm.cfg.health_port)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")  # then read to EOF
        body = await reader.read()
        writer.close()
        assert b"leader_election_master_status" in body


async def test_two_managers_only_one_acts(apiserver: ApiServer) -> None:
    c = apiserver.client
    a = ControllerManager(manager_config(["serviceaccount"], leader_elect=True, identity="cm-a"),
                          client=apiserver.new_client(CM_USER))
    b = ControllerManager(manager_config(["serviceaccount"], leader_elect=True, identity="cm-b"),
                          client=apiserver.new_client(CM_USER))
    ready_a, stop_a = asyncio.Event(), asyncio.Event()
    task_a = asyncio.create_task(a.run(ready_a, stop_a))
    try:
        async def a_leads() -> bool:
            return a.leading and bool(a.running)
        await eventually(a_leads, 15)
        async with running(b):
            await asyncio.sleep(2)
            assert a.leading and not b.leading and not b.running and b.terms == 0
            stop_a.set()
            await asyncio.wait_for(task_a, 30)

            async def b_leads() -> bool:
                return b.leading and bool(b.running)
            await eventually(b_leads, 15)
            ns = core.Namespace()
            ns.metadata.name = "after-failover"
            await c.create(ns)

            async def acted() -> bool:
                try:
                    await c.get(core.ServiceAccount, "default", namespace="after-failover")
                    return True
                except errors.NotFound:
                    return False
            await eventually(acted, 15)
    finally:
        stop_a.set()
        await asyncio.wait_for(task_a, 30)
