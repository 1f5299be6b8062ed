"""DaemonSet and StatefulSet end to end: the real apiserver, the controller manager (daemonset, statefulset,
garbagecollector), the real scheduler binding the pods, and test_controllers' hollow kubelet reporting
bound pods Running and Ready (and finishing their deletion).

A DaemonSet lands one pod on each of three nodes and follows a node added and one removed, and rolls a new
template out with never more than maxUnavailable nodes lacking an available pod in its pods' watch; a StatefulSet
creates web-0 before web-1 (web-1 appears only after web-0 is Ready, as the watch stream orders them) and
scales down from the highest ordinal; a change of its template rolls out in reverse ordinal order, one pod at a
time, each replaced pod Ready before the next goes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from pybernetes import errors
from pybernetes.api import codec
from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.client.client import Client
from services.controllers.controller_utils import is_pod_ready
from services.controllers.main import ControllerManager
from services.scheduler.testing import make_node
from tests.helpers import eventually
from tests.integration.conftest import ApiServer
from tests.integration.test_controller_manager import manager_config
from tests.integration.test_controller_manager import running as manager_running
from tests.integration.test_controllers import HollowKubelet, template
from tests.integration.test_scheduler import running as scheduler_running
from tests.integration.test_scheduler import scheduler_config

pytestmark = pytest.mark.integration


@contextlib.asynccontextmanager
async def cluster(api: ApiServer, nodes: list[str]) -> AsyncIterator[Client]:
    c = api.client
    for n in nodes:
        await c.create(make_node(n))
    kubelet = HollowKubelet(api.new_client(timeout=10), nodes=0, bind=False)
    await kubelet.start()
    cm = ControllerManager(manager_config(["daemonset", "statefulset", "garbagecollector"]),
                           client=api.new_client("system:kube-controller-manager"))
    try:
        async with scheduler_running(scheduler_config(api)), manager_running(cm):
            yield c
    finally:
        await kubelet.stop()


async def pods_of(c: Client, app: str) -> list[core.Pod]:
    res = await c.list(core.Pod, namespace="default", label_selector=f"app={app}")
    return [p for p in res.items if not p.metadata.HasField("deletion_timestamp")]


def agent_daemonset() -> apps.DaemonSet:
    """The DaemonSet `agent` in default: template("agent") on every node."""
    ds = apps.DaemonSet()
    ds.metadata.name, ds.metadata.namespace = "agent", "default"
    ds.spec.selector.match_labels["app"] = "agent"
    ds.spec.template.CopyFrom(template("agent"))
    return ds


async def agent_on(c: Client, nodes: list[str], image: str = "") -> bool:
    """Exactly one Ready `agent` pod on each of `nodes` (and none elsewhere), each running `image` if given."""
    pods = await pods_of(c, "agent")
    return (sorted(p.spec.node_name for p in pods) == sorted(nodes) and all(is_pod_ready(p) for p in pods)
            and all(p.spec.containers[0].image == image for p in pods if image))


def web_statefulset() -> apps.StatefulSet:
    """The StatefulSet `web` in default: three replicas of template("web"), governing Service `web`."""
    ss = apps.StatefulSet()
    ss.metadata.name, ss.metadata.namespace = "web", "default"
    ss.spec.replicas = 3
    ss.spec.service_name = "web"
    ss.spec.selector.match_labels["app"] = "web"
    ss.spec.template.CopyFrom(template("web"))
    return ss


async def test_daemonset_one_pod_per_node_follows_nodes(apiserver: ApiServer) -> None:
    async with cluster(apiserver, ["n-0", "n-1", "n-2"]) as c:
        await c.create(agent_daemonset())

        async def status_is(desired: int) -> bool:
            st = (await c.get(apps.DaemonSet, "agent", namespace="default")).status
            return (st.desired_number_scheduled, st.current_number_scheduled, st.number_ready,
                    st.number_available, st.updated_number_scheduled) == (desired,) * 5

        await eventually(lambda: agent_on(c, ["n-0", "n-1", "n-2"]), 30, what="one ready pod on each node")
        await eventually(lambda: status_is(3), 20, what="status 3/3")
        await c.create(make_node("n-3"))
        await eventually(lambda: agent_on(c, ["n-0", "n-1", "n-2", "n-3"]), 30, what="a pod on the new node")
        await c.delete(core.Node, "n-1")
        await eventually(lambda: agent_on(c, ["n-0", "n-2", "n-3"]), 30, what="the removed node's pod gone")
        await eventually(lambda: status_is(3), 20, what="status 3/3 again")
        # the garbage collector removes the pods with their DaemonSet
        await c.delete(apps.DaemonSet, "agent", namespace="default")

        async def no_pods() -> bool:
            return not (await c.list(core.Pod, namespace="default", label_selector="app=agent")).items
        await eventually(no_pods, 30, what="pods collected")


async def test_daemonset_rolling_update_honours_max_unavailable(apiserver: ApiServer) -> None:
    nodes = ["n-0", "n-1", "n-2", "n-3"]
    async with cluster(apiserver, nodes) as c:
        ds = agent_daemonset()
        ds.spec.update_strategy.type = "RollingUpdate"
        ds.spec.update_strategy.rolling_update.max_unavailable.int_val = 2
        await c.create(ds)

        def unavailable(pods: dict[str, core.Pod]) -> set[str]:
            """Nodes without a Ready pod that is not being deleted (minReadySeconds 0)."""
            return set(nodes) - {p.spec.node_name for p in pods.values()
                                 if not p.metadata.HasField("deletion_timestamp") and is_pod_ready(p)}

        await eventually(lambda: agent_on(c, nodes, "registry.local/nginx:1.25"), 30, what="one ready pod on each node")
        listed = await c.list(core.Pod, namespace="default", label_selector="app=agent")
        state = {p.metadata.uid: p for p in listed.items}
        assert not unavailable(state)
        seen: list[set[str]] = []

        async def follow() -> None:
            async for ev in c.watch(core.Pod, namespace="default", label_selector="app=agent",
                                    resource_version=listed.resource_version):
                if ev.type == "DELETED":
                    state.pop(ev.object.metadata.uid, None)
                elif ev.type in ("ADDED", "MODIFIED"):
                    state[ev.object.metadata.uid] = ev.object
                seen.append(unavailable(state))

        watch = asyncio.create_task(follow())
        try:
            await c.patch(apps.DaemonSet, "agent", {"spec": {"template": {"spec": {"containers": [
                {"name": "main", "image": "registry.local/nginx:1.26"}]}}}}, namespace="default", patch_type="merge")
            await eventually(lambda: agent_on(c, nodes, "registry.local/nginx:1.26"), 60,
                             what="every node's pod replaced")
            await eventually(lambda: asyncio.sleep(0, result=not unavailable(state)), 10, what="the watch caught up")
        finally:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
        assert max(len(s) for s in seen) <= 2, seen
        assert set().union(*seen) == set(nodes), seen  # each node had its turn

        async def status_rolled() -> bool:
            st = (await c.get(apps.DaemonSet, "agent", namespace="default")).status
            return (st.updated_number_scheduled, st.number_available, st.number_unavailable) == (4, 4, 0)
        await eventually(status_rolled, 20, what="status: 4 updated, 4 available")


class PodLog:
    """Pod changes in watch order: ("added"|"ready"|"terminating", name), each once per pod incarnation."""

    def __init__(self, c: Client) -> None:
        self.c = c
        self.entries: list[tuple[str, str]] = []
        self._seen: set[tuple[str, str]] = set()
        self._order: list[tuple[str, str]] = []  # (what, uid), as entries
        self.task: asyncio.Task[None] | None = None

    def _note(self, what: str, pod: core.Pod) -> None:
        k = (what, pod.metadata.uid)
        if k not in self._seen:
            self._seen.add(k)
            self.entries.append((what, pod.metadata.name))
            self._order.append(k)

    async def _run(self, resource_version: str) -> None:
        async for ev in self.c.watch(core.Pod, namespace="default", label_selector="app=web",
                                     resource_version=resource_version):
            pod: Any = ev.object
            if not isinstance(pod, core.Pod):
                continue
            self._note("added", pod)
            if is_pod_ready(pod):
                self._note("ready", pod)
            if pod.metadata.HasField("deletion_timestamp") or ev.type == "DELETED":
                self._note("terminating", pod)

    async def __aenter__(self) -> PodLog:
        # From the list's version: every later change arrives, in order, however late the watch starts.
        rv = (await self.c.list(core.Pod, namespace="default")).resource_version
        self.task = asyncio.create_task(self._run(rv))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task

    def index(self, what: str, name: str) -> int:
        return self.entries.index((what, name))

    def index_of(self, what: str, uid: str) -> int:
        """Where the pod `uid` (one incarnation of its name) did `what`."""
        return self._order.index((what, uid))


async def test_statefulset_ordered_creation_and_scale_down(apiserver: ApiServer) -> None:
    async with cluster(apiserver, ["n-0", "n-1"]) as c, PodLog(c) as log:
        await c.create(web_statefulset())

        async def ready(n: int) -> bool:
            st = (await c.get(apps.StatefulSet, "web", namespace="default")).status
            return st.ready_replicas == n and st.replicas == n

        await eventually(lambda: ready(3), 40, what="3 ready replicas")
        assert log.index("ready", "web-0") < log.index("added", "web-1")
        assert log.index("ready", "web-1") < log.index("added", "web-2")
        pod = await c.get(core.Pod, "web-1", namespace="default")
        assert (pod.spec.hostname, pod.spec.subdomain) == ("web-1", "web")
        assert pod.metadata.labels["statefulset.kubernetes.io/pod-name"] == "web-1"
        assert pod.metadata.labels["apps.kubernetes.io/pod-index"] == "1"

        await c.patch(apps.StatefulSet, "web", {"spec": {"replicas": 1}}, namespace="default", patch_type="merge")

        async def only_web0() -> bool:
            return [p.metadata.name for p in await pods_of(c, "web")] == ["web-0"] and await ready(1)

        await eventually(only_web0, 40, what="scaled down to web-0")
        assert log.index("terminating", "web-2") < log.index("terminating", "web-1")
        assert ("terminating", "web-0") not in log.entries


async def test_apiserver_defaults_and_refusals(apiserver: ApiServer) -> None:
    c = apiserver.client
    doc = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": "default"},
           "spec": {"selector": {"matchLabels": {"app": "db"}},
                    "template": {"metadata": {"labels": {"app": "db"}},
                                 "spec": {"containers": [{"name": "db", "image": "postgres:16"}]}},
                    "volumeClaimTemplates": [{"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                              "metadata": {"name": "data"},
                                              "spec": {"accessModes": ["ReadWriteOnce"],
                                                       "resources": {"requests": {"storage": "1Gi"}}},
                                              "status": {"phase": "Pending"}}]}}
    with pytest.raises(errors.Invalid) as ei:
        await c.create(codec.from_dict(doc, apps.StatefulSet))
    assert [cause.path for cause in ei.value.causes] == ["spec.volumeClaimTemplates"]
    assert "persistent volumes" in str(ei.value)
    del doc["spec"]["volumeClaimTemplates"]
    created = await c.create(codec.from_dict(doc, apps.StatefulSet))
    assert isinstance(created, apps.StatefulSet)
    assert (created.spec.replicas, created.spec.pod_management_policy, created.spec.update_strategy.type,
            created.spec.revision_history_limit) == (1, "OrderedReady", "RollingUpdate", 10)
    assert codec.to_dict(created)["spec"]["updateStrategy"] == {"type": "RollingUpdate",
                                                               "rollingUpdate": {"partition": 0, "maxUnavailable": 1}}
    # the scale subresource's effect through a merge patch, as `pbctl scale statefulset` sends it
    scaled = await c.patch(apps.StatefulSet, "db", {"spec": {"replicas": 4}}, namespace="default", patch_type="merge")
    assert scaled.spec.replicas == 4 and scaled.metadata.generation == 2
    with pytest.raises(errors.Invalid) as ei:
        await c.patch(apps.StatefulSet, "db", {"spec": {"serviceName": "other"}}, namespace="default",
                      patch_type="merge")
    assert [cause.path for cause in ei.value.causes] == ["spec"]
    ds = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent", "namespace": "default"},
          "spec": {"selector": {"matchLabels": {"app": "agent"}},
                   "template": {"metadata": {"labels": {"app": "other"}},
                                "spec": {"containers": [{"name": "a", "image": "agent:1"}]}}}}
    with pytest.raises(errors.Invalid) as ei:
        await c.create(codec.from_dict(ds, apps.DaemonSet))
    assert [cause.path for cause in ei.value.causes] == ["spec.template.metadata.labels"]


async def test_statefulset_rolling_update_in_reverse_order(apiserver: ApiServer) -> None:
    async with cluster(apiserver, ["n-0", "n-1"]) as c:
        await c.create(web_statefulset())

        async def rolled(image: str) -> bool:
            got = await c.get(apps.StatefulSet, "web", namespace="default")
            st = got.status
            pods = await pods_of(c, "web")
            return (st.ready_replicas == st.updated_replicas == 3 and st.current_revision == st.update_revision
                    and st.observed_generation == got.metadata.generation and len(pods) == 3
                    and all(p.spec.containers[0].image == image and is_pod_ready(p) for p in pods))

        await eventually(lambda: rolled("registry.local/nginx:1.25"), 40, what="3 ready replicas")
        before = {p.metadata.name: p.metadata.uid for p in await pods_of(c, "web")}
        async with PodLog(c) as log:
            await c.patch(apps.StatefulSet, "web", {"spec": {"template": {"spec": {"containers": [
                {"name": "main", "image": "registry.local/nginx:1.26"}]}}}}, namespace="default", patch_type="merge")
            await eventually(lambda: rolled("registry.local/nginx:1.26"), 60, what="all three pods updated")
        after = {p.metadata.name: p.metadata.uid for p in await pods_of(c, "web")}
        assert not set(before.values()) & set(after.values()), (before, after)
        # web-2 goes first, then web-1, then web-0, each only once its higher neighbour's replacement is Ready
        order = [log.index_of(what, uids[name]) for name in ("web-2", "web-1", "web-0")
                 for what, uids in (("terminating", before), ("ready", after))]
        assert order == sorted(order), log.entries
