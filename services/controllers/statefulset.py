"""StatefulSet controller (Kubernetes pkg/controller/statefulset): pods with stable names and order.

Pods are `<name>-<ordinal>` for ordinals start..start+replicas-1 (spec.ordinals.start, default 0), labelled
`statefulset.kubernetes.io/pod-name`, `apps.kubernetes.io/pod-index` and `controller-revision-hash`, with
`hostname` = the pod name and `subdomain` = spec.serviceName so the headless Service gives each a DNS name.
OrderedReady (default): ordinal i is created only once 0..i-1 are Running and Ready, scale down removes the
highest ordinal first, one at a time, and nothing moves while a pod is unhealthy. Parallel: all at once.
Failed pods are deleted and recreated under the same name. Rolling update (RollingUpdate): from the highest
ordinal down to spec.updateStrategy.rollingUpdate.partition, one pod at a time, each only once every pod is
healthy; OnDelete replaces pods only when the user deletes them. The revision is the template's hash
(`<name>-<hash>`, status.updateRevision); no ControllerRevision objects are kept, so a pod below the partition
that has to be recreated gets the current template.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable

from google.protobuf.message import Message

from pybernetes import errors
from pybernetes.api import objects, selectors
from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.objects import being_deleted, replicas
from pybernetes.cache import InformerFactory
from pybernetes.client.client import Client
from pybernetes.controller import Controller, key_of
from pybernetes.events import EventRecorder

from .controller_utils import (
    ControllerExpectations,
    FreshObjects,
    RefManager,
    is_pod_available,
    is_pod_ready,
    pod_from_template,
)
from .deployment_util import compute_hash
from .podowners import REVISION_LABEL, PodOwnerHandlers, create_pod, delete_pod

log = logging.getLogger("pybernetes.controllers.statefulset")

NAME = "statefulset"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
_ORDINAL = re.compile(r"^(.*)-(\d+)$")


def ordinal_of(ss: apps.StatefulSet, pod: core.Pod | Message) -> int | None:
    """The ordinal of a pod named `<set>-<n>`, None for a pod of another name (isMemberOf)."""
    m = _ORDINAL.match(objects.meta_of(pod).name)
    if m is None or m.group(1) != ss.metadata.name:
        return None
    return int(m.group(2))


def update_revision(ss: apps.StatefulSet) -> str:
    cc = ss.status.collision_count if ss.status.HasField("collision_count") else None
    return f"{ss.metadata.name}-{compute_hash(ss.spec.template, cc)}"


def running_and_ready(pod: core.Pod) -> bool:
    return pod.status.phase == "Running" and is_pod_ready(pod)


def new_pod(ss: apps.StatefulSet, ordinal: int, revision: str) -> core.Pod:
    pod = pod_from_template(ss.spec.template, ss, "")
    name = f"{ss.metadata.name}-{ordinal}"
    pod.metadata.generate_name = ""
    pod.metadata.name = name
    pod.metadata.labels[POD_NAME_LABEL] = name
    pod.metadata.labels[POD_INDEX_LABEL] = str(ordinal)
    pod.metadata.labels[REVISION_LABEL] = revision
    pod.spec.hostname = name
    if ss.spec.service_name:
        pod.spec.subdomain = ss.spec.service_name
    return pod


class StatefulSetController:
    def __init__(self, client: Client, factory: InformerFactory, recorder: EventRecorder, *,
                 workers: int = 5, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.recorder = recorder
        self.now = clock
        self.expectations = ControllerExpectations()
        self.fresh: FreshObjects[apps.StatefulSet] = FreshObjects()
        self.fresh_pods: FreshObjects[core.Pod] = FreshObjects()
        self.informer = factory.informer_for(apps.StatefulSet)
        self.pod_informer = factory.informer_for(core.Pod)
        self.lister = self.informer.lister()
        self.pod_lister = self.pod_informer.lister()
        self.controller = Controller(NAME, informers=[self.informer, self.pod_informer])
        self.queue = self.controller.add_queue(NAME, self.sync, workers=workers)
        self.pods = PodOwnerHandlers("StatefulSet", self.lister, self.queue, self.expectations)
        self.informer.add_event_handler(self._ss_changed, lambda _o, n: self._ss_changed(n), self.pods.owner_deleted)
        self.pod_informer.add_event_handler(self.pods.added, self.pods.updated, self.pods.deleted)

    async def run(self, stop: asyncio.Event) -> None:
        await self.controller.run(stop)

    def _ss_changed(self, ss: apps.StatefulSet) -> None:
        self.queue.add(key_of(ss))

    # -- sync -------------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        ss = self.fresh.current(self.lister, key)
        if ss is None:
            self.expectations.delete(key)
            return
        try:
            sel = selectors.from_message(ss.spec.selector)
        except errors.BadRequest:
            sel = selectors.NOTHING
        pods = [self.fresh_pods.resolve(p) for p in self.pod_lister.list(ss.metadata.namespace)]
        manager = RefManager(self.client, ss, lambda p: sel.matches(objects.labels(p))
                             and ordinal_of(ss, p) is not None, field_manager=NAME, fresh=self.fresh_pods)
        claimed = await manager.claim(p for p in pods if not sel.empty())
        by_ordinal: dict[int, core.Pod] = {}
        for p in claimed:
            ordinal = ordinal_of(ss, p)
            if ordinal is not None:
                by_ordinal[ordinal] = p
        revision = update_revision(ss)
        if self.expectations.satisfied(key) and not being_deleted(ss) and not sel.empty():
            await self.manage(key, ss, by_ordinal, revision)
        await self.update_status(ss, self.calculate_status(ss, by_ordinal, revision))

    async def manage(self, key: str, ss: apps.StatefulSet, by_ordinal: dict[int, core.Pod], revision: str) -> None:
        """One step of StatefulSet's updateStatefulSet: what to create and delete now."""
        start = ss.spec.ordinals.start
        wanted = range(start, start + replicas(ss))
        ordered = ss.spec.pod_management_policy != "Parallel"
        create: list[int] = []
        delete: list[core.Pod] = []
        # Failed or finished pods are deleted and, once gone, recreated under the same name.
        for p in by_ordinal.values():
            if p.status.phase in ("Failed", "Succeeded") and not being_deleted(p):
                delete.append(p)
        blocked = bool(delete) and ordered
        if not blocked:
            for i in wanted:
                pod = by_ordinal.get(i)
                if pod is None:
                    create.append(i)
                    if ordered:
                        blocked = True
                        break
                elif ordered and (being_deleted(pod) or not running_and_ready(pod)):
                    blocked = True  # OrderedReady: wait for this pod before touching the next
                    break
        condemned = sorted((i for i in by_ordinal if i not in wanted), reverse=True)
        if not blocked:
            for i in condemned:
                pod = by_ordinal[i]
                if being_deleted(pod):
                    if ordered:
                        blocked = True
                        break
                    continue
                delete.append(pod)
                if ordered:
                    blocked = True
                    break
        if not blocked and not create and not delete and ss.spec.update_strategy.type == "RollingUpdate":
            delete.extend(self._update_victims(ss, by_ordinal, revision, wanted))
        if not create and not delete:
            return
        log.info("syncing statefulset=%s creating=%s deleting=%s", key, create,
                 [p.metadata.name for p in delete])
        exp = self.expectations
        exp.expect(key, len(create), (objects.key(p) for p in delete))
        results = await asyncio.gather(
            *(create_pod(self.client, self.recorder, exp, key, ss, new_pod(ss, i, revision), NAME) for i in create),
            *(delete_pod(self.client, self.recorder, exp, key, ss, p) for p in delete), return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r

    def _update_victims(self, ss: apps.StatefulSet, by_ordinal: dict[int, core.Pod], revision: str,
                        wanted: range) -> list[core.Pod]:
        """The next pod of a rolling update: the highest ordinal at or above the partition on an old revision,
        once every pod is healthy (maxUnavailable 1, as Kubernetes without MaxUnavailableStatefulSet)."""
        if any(not running_and_ready(p) or being_deleted(p) for i, p in by_ordinal.items() if i in wanted):
            return []
        ru = ss.spec.update_strategy.rolling_update
        partition = ru.partition if ru.HasField("partition") else 0
        for i in sorted(by_ordinal, reverse=True):
            if i in wanted and i - wanted.start >= partition:
                pod = by_ordinal[i]
                if pod.metadata.labels.get(REVISION_LABEL) != revision:
                    return [pod]
        return []

    def calculate_status(self, ss: apps.StatefulSet, by_ordinal: dict[int, core.Pod],
                         revision: str) -> apps.StatefulSetStatus:
        now, min_ready = self.now(), ss.spec.min_ready_seconds
        status = objects.copy(ss.status)
        current_revision = status.current_revision or revision
        pods = [p for p in by_ordinal.values() if not being_deleted(p)]
        status.replicas = len(pods)
        status.ready_replicas = sum(1 for p in pods if is_pod_ready(p))
        status.available_replicas = sum(1 for p in pods if is_pod_available(p, min_ready, now))
        status.updated_replicas = sum(1 for p in pods if p.metadata.labels.get(REVISION_LABEL) == revision)
        status.current_replicas = sum(1 for p in pods if p.metadata.labels.get(REVISION_LABEL) == current_revision)
        status.update_revision = revision
        status.current_revision = current_revision
        # The update is complete: every wanted pod runs the update revision (completeRollingUpdate).
        if status.updated_replicas == replicas(ss) and status.ready_replicas == replicas(ss) \
                and status.replicas == replicas(ss):
            status.current_revision = revision
            status.current_replicas = status.updated_replicas
        status.observed_generation = ss.metadata.generation
        if min_ready > 0 and status.ready_replicas != status.available_replicas:
            self.queue.add_after(objects.key(ss), float(min_ready))
        return status

    async def update_status(self, ss: apps.StatefulSet, status: apps.StatefulSetStatus) -> None:
        await self.fresh.write_status(self.client, ss, status, NAME)
