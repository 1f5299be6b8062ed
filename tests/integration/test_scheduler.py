"""pb-scheduler against the real apiserver (etcd + in-process apiserver), nodes as API objects (no kubelet):
binding and spreading, unschedulable pods (PodScheduled=False + FailedScheduling event) and their requeue on
node add, nodeSelector and taints, two replicas with leader election binding each pod exactly once."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest

from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.client.client import Client
from services.scheduler.main import Config, run
from services.scheduler.testing import make_node, make_pod
from tests.helpers import eventually
from tests.integration.conftest import ApiServer

pytestmark = pytest.mark.integration


def scheduler_config(api: ApiServer, **kw: Any) -> Config:
    # the scheduler runs as itself, under its bootstrap RBAC role
    base: dict[str, Any] = {"kubeconfig": str(api.kubeconfig_for("system:kube-scheduler")), "leader_elect": False,
                            "health_port": 0,
                            "lease_duration": 2.0, "renew_deadline": 1.5, "retry_period": 0.3}
    base.update(kw)
    return Config(**base)


@contextlib.asynccontextmanager
async def running(cfg: Config) -> AsyncIterator[asyncio.Event]:
    """Run a scheduler; yields its stop event (set it to stop the scheduler early)."""
    ready, stop = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run(cfg, ready, stop))
    waiter = asyncio.create_task(ready.wait())
    await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED, timeout=30)
    if task.done():
        waiter.cancel()
        task.result()
    assert ready.is_set()
    try:
        yield stop
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def pod_scheduled(pod: core.Pod) -> core.PodCondition | None:
    return next((c for c in pod.status.conditions if c.type == "PodScheduled"), None)


async def events_for(client: Client, name: str, reason: str) -> list[core.Event]:
    evs = await client.list(core.Event, namespace="default", field_selector=f"involvedObject.name={name}")
    return [e for e in evs.items if e.reason == reason]


async def bound_nodes(client: Client, names: list[str]) -> dict[str, str]:
    pods = await client.list(core.Pod, namespace="default")
    return {p.metadata.name: p.spec.node_name for p in pods.items if p.metadata.name in names and p.spec.node_name}


async def test_pods_bound_and_spread(apiserver: ApiServer) -> None:
    c = apiserver.client
    for i in range(3):
        await c.create(make_node(f"node-{i}", cpu="4", memory="8Gi"))
    async with running(scheduler_config(apiserver)):
        names = [f"web-{i}" for i in range(6)]
        for n in names:
            await c.create(make_pod(n, cpu="1", memory="256Mi", labels={"app": "web"}, owner_uid="rs-web"))

        async def all_bound() -> dict[str, str] | None:
            b = await bound_nodes(c, names)
            return b if len(b) == len(names) else None

        bound = await eventually(all_bound, 30, what="all pods bound")
        assert bound is not None
        assert Counter(bound.values()) == {"node-0": 2, "node-1": 2, "node-2": 2}
        pod = await c.get(core.Pod, "web-0", namespace="default")
        cond = pod_scheduled(pod)
        assert cond is not None and cond.status == "True"

        async def scheduled_event() -> list[core.Event]:
            return await events_for(c, "web-0", "Scheduled")

        ev = (await eventually(scheduled_event, 20, what="Scheduled event"))[0]
        assert ev.message.startswith(f"Successfully assigned default/web-0 to {bound['web-0']}")
        assert ev.source.component == "default-scheduler"


async def test_unschedulable_pod_then_big_node_added(apiserver: ApiServer) -> None:
    c = apiserver.client
    for i in range(3):
        await c.create(make_node(f"node-{i}", cpu="2", memory="4Gi"))
    async with running(scheduler_config(apiserver)):
        await c.create(make_pod("hungry", cpu="8"))

        async def unschedulable() -> core.PodCondition | None:
            cond = pod_scheduled(await c.get(core.Pod, "hungry", namespace="default"))
            return cond if cond is not None and cond.status == "False" else None

        cond = await eventually(unschedulable, 30, what="PodScheduled=False")
        assert cond is not None
        assert cond.reason == "Unschedulable"
        assert cond.message.startswith("0/3 nodes are available: 3 Insufficient cpu.")

        async def failed_event() -> list[core.Event]:
            return await events_for(c, "hungry", "FailedScheduling")

        ev = (await eventually(failed_event, 20, what="FailedScheduling event"))[0]
        assert ev.type == "Warning" and ev.message.startswith("0/3 nodes are available: 3 Insufficient cpu.")

        await c.create(make_node("big", cpu="16", memory="32Gi"))

        async def bound() -> str:
            return (await c.get(core.Pod, "hungry", namespace="default")).spec.node_name

        assert await eventually(bound, 30, what="bound after node add") == "big"


async def test_node_selector_and_taints(apiserver: ApiServer) -> None:
    c = apiserver.client
    await c.create(make_node("plain-1"))
    await c.create(make_node("plain-2"))
    await c.create(make_node("ssd", labels={"disk": "ssd"}))
    await c.create(make_node("gpu", labels={"role": "gpu"}, taints=[("dedicated", "gpu", "NoSchedule")]))
    async with running(scheduler_config(apiserver)):
        await c.create(make_pod("wants-ssd", node_selector={"disk": "ssd"}))
        await c.create(make_pod("gpu-no-toleration", node_selector={"role": "gpu"}))
        await c.create(make_pod("gpu-tolerating", node_selector={"role": "gpu"},
                                tolerations=[("dedicated", "Equal", "gpu", "NoSchedule")]))
        for i in range(6):
            await c.create(make_pod(f"any-{i}", cpu="100m"))

        async def settled() -> dict[str, str] | None:
            b = await bound_nodes(c, ["wants-ssd", "gpu-tolerating", *(f"any-{i}" for i in range(6))])
            return b if len(b) == 8 else None

        b = await eventually(settled, 30, what="pods bound")
        assert b is not None
        assert b["wants-ssd"] == "ssd" and b["gpu-tolerating"] == "gpu"
        assert all(b[f"any-{i}"] != "gpu" for i in range(6))

        async def rejected() -> core.PodCondition | None:
            cond = pod_scheduled(await c.get(core.Pod, "gpu-no-toleration", namespace="default"))
            return cond if cond is not None and cond.status == "False" else None

        cond = await eventually(rejected, 30, what="untolerated pod unschedulable")
        assert cond is not None
        assert cond.message.startswith("0/4 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, "
                                       "3 node(s) didn't match Pod's node affinity/selector.")


async def test_other_scheduler_name_ignored(apiserver: ApiServer) -> None:
    c = apiserver.client
    await c.create(make_node("node-0"))
    async with running(scheduler_config(apiserver)):
        await c.create(make_pod("theirs", scheduler_name="someone-else"))
        await c.create(make_pod("ours"))

        async def ours_bound() -> str:
            return (await c.get(core.Pod, "ours", namespace="default")).spec.node_name

        await eventually(ours_bound, 30, what="ours bound")
        assert not (await c.get(core.Pod, "theirs", namespace="default")).spec.node_name


async def test_two_schedulers_leader_election_bind_each_pod_once(apiserver: ApiServer) -> None:
    c = apiserver.client
    for i in range(3):
        await c.create(make_node(f"node-{i}", cpu="8", memory="16Gi"))
    cfg_a = scheduler_config(apiserver, leader_elect=True, identity="sched-a")
    cfg_b = scheduler_config(apiserver, leader_elect=True, identity="sched-b")
    async with running(cfg_a) as stop_a, running(cfg_b) as stop_b:
        names = [f"p-{i}" for i in range(20)]
        await asyncio.gather(*(c.create(make_pod(n, cpu="100m")) for n in names))

        async def all_bound() -> dict[str, str] | None:
            b = await bound_nodes(c, names)
            return b if len(b) == len(names) else None

        await eventually(all_bound, 30, what="all pods bound")

        async def scheduled_events() -> list[core.Event] | None:
            evs = await c.list(core.Event, namespace="default")
            got = [e for e in evs.items if e.reason == "Scheduled"]
            return got if len({e.involved_object.name for e in got}) == len(names) else None

        evs = await eventually(scheduled_events, 20, what="Scheduled events")
        assert evs is not None
        per_pod = Counter(e.involved_object.name for e in evs)
        assert all(per_pod[n] == 1 and next(e for e in evs if e.involved_object.name == n).count == 1
                   for n in names), per_pod
        assert len({e.source.host for e in evs}) == 1  # only the leader scheduled
        leader = evs[0].source.host

        # the leader goes away: the other replica takes over
        (stop_a if leader == "sched-a" else stop_b).set()
        more = [f"q-{i}" for i in range(5)]
        for n in more:
            await c.create(make_pod(n, cpu="100m"))

        async def taken_over() -> dict[str, str] | None:
            b = await bound_nodes(c, more)
            return b if len(b) == len(more) else None

        await eventually(taken_over, 30, what="pods bound by the new leader")
