"""DaemonSet controller (Kubernetes pkg/controller/daemon): one pod per eligible node.

A node is eligible when it matches the template's nodeSelector and required node affinity and every
NoSchedule/NoExecute taint on it is tolerated (the template's tolerations plus the ones Kubernetes adds to
every daemon pod: not-ready, unreachable, unschedulable, disk/memory/pid pressure, and network-unavailable
for host-network pods). Pods are pinned to their node with `spec.affinity.nodeAffinity` (a required
`matchFields metadata.name In [node]` term, as Kubernetes does since 1.12), so the scheduler binds them.
Pods follow nodes that join or leave; failed pods are replaced; surplus or misplaced pods are deleted (a pod
already on a node that gains a NoSchedule taint stays, as in Kubernetes: only an untolerated NoExecute taint
or a node that stops matching removes it).
Rolling update: pods carry `controller-revision-hash` (the template's hash); old pods are replaced while at
most maxUnavailable desired nodes lack an available pod, or, with maxSurge, an updated pod starts beside the
old one on at most maxSurge nodes at a time and the old one goes once the new one is available.
No ControllerRevision objects are kept (no `rollout undo` for DaemonSets).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from pybernetes import errors
from pybernetes.api import objects, selectors, taints
from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.objects import being_deleted
from pybernetes.cache import DeletedFinalStateUnknown, InformerFactory
from pybernetes.client.client import Client
from pybernetes.controller import Controller, key_of
from pybernetes.events import EventRecorder

from .controller_utils import (
    BURST_REPLICAS,
    ControllerExpectations,
    FreshObjects,
    RefManager,
    is_pod_available,
    is_pod_ready,
    pod_from_template,
)
from .deployment_util import compute_hash, scaled_value
from .podowners import REVISION_LABEL, PodOwnerHandlers, create_pod, delete_pod

log = logging.getLogger("pybernetes.controllers.daemonset")

NAME = "daemonset"
# Tolerations every daemon pod gets (pkg/controller/daemon/util AddOrUpdateDaemonPodTolerations).
AUTO_TOLERATIONS = (
    core.Toleration(key="node.kubernetes.io/not-ready", operator="Exists", effect="NoExecute"),
    core.Toleration(key="node.kubernetes.io/unreachable", operator="Exists", effect="NoExecute"),
    core.Toleration(key="node.kubernetes.io/disk-pressure", operator="Exists", effect="NoSchedule"),
    core.Toleration(key="node.kubernetes.io/memory-pressure", operator="Exists", effect="NoSchedule"),
    core.Toleration(key="node.kubernetes.io/pid-pressure", operator="Exists", effect="NoSchedule"),
    core.Toleration(key="node.kubernetes.io/unschedulable", operator="Exists", effect="NoSchedule"),
)
NETWORK_UNAVAILABLE = core.Toleration(key="node.kubernetes.io/network-unavailable", operator="Exists",
                                      effect="NoSchedule")


# -- which nodes -----------------------------------------------------------------------------------


def _requirement_matches(r: core.NodeSelectorRequirement, values: dict[str, str]) -> bool:
    has = r.key in values
    v = values.get(r.key, "")
    if r.operator == "In":
        return has and v in r.values
    if r.operator == "NotIn":
        return not has or v not in r.values
    if r.operator == "Exists":
        return has
    if r.operator == "DoesNotExist":
        return not has
    if r.operator in ("Gt", "Lt") and has and len(r.values) == 1:
        try:
            a, b = int(v), int(r.values[0])
        except ValueError:
            return False
        return a > b if r.operator == "Gt" else a < b
    return False


def node_selector_matches(sel: core.NodeSelector, node: core.Node) -> bool:
    """Any term matches: all of its matchExpressions (labels) and matchFields (metadata.name)."""
    labels, fields = dict(node.metadata.labels), {"metadata.name": node.metadata.name}
    return any((t.match_expressions or t.match_fields)
               and all(_requirement_matches(r, labels) for r in t.match_expressions)
               and all(_requirement_matches(r, fields) for r in t.match_fields)
               for t in sel.node_selector_terms)


def daemon_tolerations(spec: core.PodSpec) -> list[core.Toleration]:
    out = list(spec.tolerations)
    auto = AUTO_TOLERATIONS + ((NETWORK_UNAVAILABLE,) if spec.host_network else ())
    for t in auto:
        if not any(x.key == t.key and x.effect == t.effect for x in out):
            out.append(t)
    return out


def node_should_run(ds: apps.DaemonSet, node: core.Node) -> tuple[bool, bool]:
    """(should run, should continue running), Kubernetes' NodeShouldRunDaemonPod: a new pod goes where the node
    matches the template's node selector and affinity and every NoSchedule/NoExecute taint is tolerated; a pod
    already there stays unless the node stops matching or gains a NoExecute taint it does not tolerate (a
    NoSchedule taint keeps new pods away but evicts nothing, as for any other pod)."""
    spec = ds.spec.template.spec
    if any(node.metadata.labels.get(k) != v for k, v in spec.node_selector.items()):
        return False, False
    na = spec.affinity.node_affinity
    if na.HasField("required_during_scheduling_ignored_during_execution") and \
            not node_selector_matches(na.required_during_scheduling_ignored_during_execution, node):
        return False, False
    tols = daemon_tolerations(spec)
    untolerated = [t for t in node.spec.taints if t.effect in ("NoSchedule", "NoExecute")
                   and not taints.tolerated(tols, t)]
    return not untolerated, not any(t.effect == "NoExecute" for t in untolerated)


def should_run(ds: apps.DaemonSet, node: core.Node) -> bool:
    """The node matches the template's node selector and affinity and all its taints are tolerated."""
    return node_should_run(ds, node)[0]


def pinned_node(pod: core.Pod) -> str:
    """The node a daemon pod is for: spec.nodeName, or before binding the node of its affinity pin."""
    if pod.spec.node_name:
        return pod.spec.node_name
    req = pod.spec.affinity.node_affinity.required_during_scheduling_ignored_during_execution
    for t in req.node_selector_terms:
        for r in t.match_fields:
            if r.key == "metadata.name" and r.operator == "In" and len(r.values) == 1:
                return str(r.values[0])
    return ""


def new_pod(ds: apps.DaemonSet, node_name: str, revision: str) -> core.Pod:
    pod = pod_from_template(ds.spec.template, ds, f"{ds.metadata.name}-")
    pod.metadata.labels[REVISION_LABEL] = revision
    spec = pod.spec
    del spec.tolerations[:]
    spec.tolerations.extend(daemon_tolerations(ds.spec.template.spec))
    # ReplaceDaemonSetPodNodeNameNodeAffinity: one required term naming the node (the rest was checked here).
    req = spec.affinity.node_affinity.required_during_scheduling_ignored_during_execution
    del req.node_selector_terms[:]
    req.node_selector_terms.add().match_fields.add(key="metadata.name", operator="In", values=[node_name])
    return pod


def max_surge(ds: apps.DaemonSet, desired: int) -> int:
    """maxSurge of `desired` nodes, rounded up (0 unless a RollingUpdate asks for it)."""
    st = ds.spec.update_strategy
    if st.type != "RollingUpdate" or not st.rolling_update.HasField("max_surge"):
        return 0
    try:
        return max(scaled_value(st.rolling_update.max_surge, desired, True), 0)
    except ValueError:
        return 0


def revision_of(ds: apps.DaemonSet) -> str:
    cc = ds.status.collision_count if ds.status.HasField("collision_count") else None
    return compute_hash(ds.spec.template, cc)


def max_unavailable(ds: apps.DaemonSet, desired: int) -> int:
    """maxUnavailable of `desired` nodes, rounded up; at least 1 (a surge-only strategy is run one at a time)."""
    ru = ds.spec.update_strategy.rolling_update
    try:
        n = scaled_value(ru.max_unavailable, desired, True) if ru.HasField("max_unavailable") else 1
    except ValueError:
        n = 1
    return max(n, 1)


# -- controller ------------------------------------------------------------------------------------


class DaemonSetController:
    def __init__(self, client: Client, factory: InformerFactory, recorder: EventRecorder, *,
                 workers: int = 2, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.recorder = recorder
        self.now = clock
        self.expectations = ControllerExpectations()
        self.fresh: FreshObjects[apps.DaemonSet] = FreshObjects()
        self.fresh_pods: FreshObjects[core.Pod] = FreshObjects()
        self.informer = factory.informer_for(apps.DaemonSet)
        self.pod_informer = factory.informer_for(core.Pod)
        self.node_informer = factory.informer_for(core.Node)
        self.lister = self.informer.lister()
        self.pod_lister = self.pod_informer.lister()
        self.node_lister = self.node_informer.lister()
        self.controller = Controller(NAME, informers=[self.informer, self.pod_informer, self.node_informer])
        self.queue = self.controller.add_queue(NAME, self.sync, workers=workers)
        self.pods = PodOwnerHandlers("DaemonSet", self.lister, self.queue, self.expectations)
        self.informer.add_event_handler(self._ds_changed, lambda _o, n: self._ds_changed(n), self.pods.owner_deleted)
        self.pod_informer.add_event_handler(self.pods.added, self.pods.updated, self.pods.deleted)
        self.node_informer.add_event_handler(self._node_changed, self._node_updated, self._node_changed)

    async def run(self, stop: asyncio.Event) -> None:
        await self.controller.run(stop)

    # -- event handlers ---------------------------------------------------------------------------

    def _ds_changed(self, ds: apps.DaemonSet) -> None:
        self.queue.add(key_of(ds))

    def _node_changed(self, obj: core.Node | DeletedFinalStateUnknown[core.Node]) -> None:
        for ds in self.lister.list():  # any set may start or stop running there
            self.queue.add(key_of(ds))

    def _node_updated(self, old: core.Node, new: core.Node) -> None:
        # Only what decides eligibility matters (heartbeats change the node every few seconds).
        if (dict(old.metadata.labels) != dict(new.metadata.labels) or list(old.spec.taints) != list(new.spec.taints)
                or old.spec.unschedulable != new.spec.unschedulable):
            self._node_changed(new)

    # -- sync -------------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        ds = self.fresh.current(self.lister, key)
        if ds is None:
            self.expectations.delete(key)
            return
        try:
            sel = selectors.from_message(ds.spec.selector)
        except errors.BadRequest:
            sel = selectors.NOTHING
        pods = [self.fresh_pods.resolve(p) for p in self.pod_lister.list(ds.metadata.namespace)]
        manager = RefManager(self.client, ds, lambda p: sel.matches(objects.labels(p)),
                             field_manager=NAME, fresh=self.fresh_pods)
        claimed = await manager.claim(p for p in pods if not sel.empty())
        nodes = {n.metadata.name: n for n in self.node_lister.list()}
        by_node: dict[str, list[core.Pod]] = {}
        for p in claimed:
            by_node.setdefault(pinned_node(p), []).append(p)
        revision = revision_of(ds)
        if self.expectations.satisfied(key) and not being_deleted(ds) and not sel.empty():
            await self.manage(key, ds, nodes, by_node, revision)
        await self.update_status(ds, self.calculate_status(ds, nodes, by_node, revision))

    async def manage(self, key: str, ds: apps.DaemonSet, nodes: dict[str, core.Node],
                     by_node: dict[str, list[core.Pod]], revision: str) -> None:
        create_on: list[str] = []
        delete: list[core.Pod] = []
        surge = max_surge(ds, sum(1 for node in nodes.values() if should_run(ds, node)))
        for node_name, node in sorted(nodes.items()):
            pods = [p for p in by_node.get(node_name, []) if not being_deleted(p)]
            run, keep_running = node_should_run(ds, node)
            if not keep_running:
                delete.extend(pods)
                continue
            ended = [p for p in pods if p.status.phase in ("Failed", "Succeeded")]
            delete.extend(ended)  # replaced on a later sync (where a pod should run), once the deletion is observed
            running = sorted((p for p in pods if p not in ended),
                             key=lambda p: (p.metadata.creation_timestamp.seconds, p.metadata.name))
            if not pods and run:
                create_on.append(node_name)
            keep = running[:1]
            if surge and keep and keep[0].metadata.labels.get(REVISION_LABEL) != revision:
                # a surging node runs its old pod and one updated pod side by side
                keep += [p for p in running if p.metadata.labels.get(REVISION_LABEL) == revision][:1]
            delete.extend(p for p in running if p not in keep)  # duplicates on a node: keep the oldest
        for node_name, pods in by_node.items():
            if node_name not in nodes:  # the node left (or a pod was never pinned)
                delete.extend(p for p in pods if not being_deleted(p))
        if not create_on and not delete and ds.spec.update_strategy.type == "RollingUpdate":
            if surge:
                create_on, delete = self._surge_update(ds, nodes, by_node, revision, surge)
            else:
                delete = self._rolling_update_victims(ds, nodes, by_node, revision)
        create_on, delete = create_on[:BURST_REPLICAS], delete[:BURST_REPLICAS]
        if not create_on and not delete:
            return
        log.info("syncing daemonset=%s creating=%d deleting=%d", key, len(create_on), len(delete))
        exp = self.expectations
        exp.expect(key, len(create_on), (objects.key(p) for p in delete))
        results = await asyncio.gather(
            *(create_pod(self.client, self.recorder, exp, key, ds, new_pod(ds, n, revision), NAME) for n in create_on),
            *(delete_pod(self.client, self.recorder, exp, key, ds, p) for p in delete), return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r

    def _rolling_update_victims(self, ds: apps.DaemonSet, nodes: dict[str, core.Node],
                                by_node: dict[str, list[core.Pod]], revision: str) -> list[core.Pod]:
        """Old pods to delete now: unavailable ones freely, available ones while the budget allows."""
        now, min_ready = self.now(), ds.spec.min_ready_seconds
        desired = [n for n, node in nodes.items() if should_run(ds, node)]
        budget = max_unavailable(ds, len(desired))
        unavailable = 0
        old_available: list[core.Pod] = []
        victims: list[core.Pod] = []
        for node_name in sorted(desired):
            pods = [p for p in by_node.get(node_name, []) if not being_deleted(p)]
            if not pods or len(by_node.get(node_name, [])) != len(pods):
                unavailable += 1  # missing or still terminating
                continue
            pod = pods[0]
            available = is_pod_available(pod, min_ready, now)
            if not available:
                unavailable += 1
            if pod.metadata.labels.get(REVISION_LABEL) != revision:
                (old_available if available else victims).append(pod)
        room = max(budget - unavailable, 0)
        return victims + old_available[:room]

    def _surge_update(self, ds: apps.DaemonSet, nodes: dict[str, core.Node], by_node: dict[str, list[core.Pod]],
                      revision: str, surge: int) -> tuple[list[str], list[core.Pod]]:
        """maxSurge: start an updated pod beside the old one on up to `surge` nodes at a time (at once where the
        old pod is unavailable anyway); delete the old pod once its updated neighbour is available."""
        now, min_ready = self.now(), ds.spec.min_ready_seconds
        create_on: list[str] = []
        delete: list[core.Pod] = []
        waiting: list[str] = []
        surging = 0
        for node_name in sorted(n for n, node in nodes.items() if should_run(ds, node)):
            pods = [p for p in by_node.get(node_name, []) if not being_deleted(p)]
            new = next((p for p in pods if p.metadata.labels.get(REVISION_LABEL) == revision), None)
            old = next((p for p in pods if p.metadata.labels.get(REVISION_LABEL) != revision), None)
            if old is None:
                continue
            if new is not None:
                if is_pod_available(new, min_ready, now):
                    delete.append(old)
                else:
                    surging += 1
            elif not is_pod_available(old, min_ready, now):
                create_on.append(node_name)
            else:
                waiting.append(node_name)
        create_on += waiting[:max(surge - surging, 0)]
        return create_on, delete

    def calculate_status(self, ds: apps.DaemonSet, nodes: dict[str, core.Node],
                         by_node: dict[str, list[core.Pod]], revision: str) -> apps.DaemonSetStatus:
        now, min_ready = self.now(), ds.spec.min_ready_seconds
        desired = current = misscheduled = ready = available = updated = 0
        for node_name, node in nodes.items():
            pods = [p for p in by_node.get(node_name, []) if not being_deleted(p)]
            if not should_run(ds, node):
                misscheduled += 1 if pods else 0
                continue
            desired += 1
            if not pods:
                continue
            current += 1
            pod = next((p for p in pods if p.metadata.labels.get(REVISION_LABEL) == revision), pods[0])
            if is_pod_ready(pod):
                ready += 1
                if is_pod_available(pod, min_ready, now):
                    available += 1
            if pod.metadata.labels.get(REVISION_LABEL) == revision:
                updated += 1
        status = objects.copy(ds.status)
        status.desired_number_scheduled = desired
        status.current_number_scheduled = current
        status.number_misscheduled = misscheduled
        status.number_ready = ready
        status.number_available = available
        status.number_unavailable = desired - available
        status.updated_number_scheduled = updated
        status.observed_generation = ds.metadata.generation
        if min_ready > 0 and ready != available:
            self.queue.add_after(objects.key(ds), float(min_ready))
        return status

    async def update_status(self, ds: apps.DaemonSet, status: apps.DaemonSetStatus) -> None:
        await self.fresh.write_status(self.client, ds, status, NAME)
