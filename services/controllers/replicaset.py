"""ReplicaSet and ReplicationController controllers (Kubernetes pkg/controller/replicaset), one implementation.

Keeps the number of active pods matching a ReplicaSet's selector equal to spec.replicas: creates pods
from the template (generateName `<name>-`) in slow-start batches, deletes the least valuable pods first
(unscheduled, not ready, newest), adopts matching orphans and releases pods that stopped matching, and
reports status (replicas, fullyLabeledReplicas, readyReplicas, availableReplicas, observedGeneration).
Expectations keep it from acting twice on a lagging cache; `FreshObjects` keeps a second sync from
writing the same status or adoption twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, ClassVar

from pybernetes import errors
from pybernetes.api import objects, selectors
from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.objects import being_deleted, controller_ref
from pybernetes.cache import DeletedFinalStateUnknown, InformerFactory
from pybernetes.client.client import Client
from pybernetes.controller import Controller, key_of, owner_of, unwrap
from pybernetes.events import EventRecorder

from .controller_utils import (
    BURST_REPLICAS,
    SLOW_START_INITIAL_BATCH,
    ControllerExpectations,
    FreshObjects,
    RefManager,
    SlowStartError,
    add_controller_uid_indexer,
    filter_active_pods,
    is_pod_available,
    is_pod_ready,
    owned_or_orphaned,
    pod_from_template,
    rank_pods_for_deletion,
    slow_start_batch,
)
from .podowners import delete_pods

log = logging.getLogger("pybernetes.controllers.replicaset")


class _ReplicaSetBase:
    """The shared controller; subclasses name the kind and how its selector reads."""

    cls: ClassVar[type[Any]]
    kind: ClassVar[str]
    name: ClassVar[str]

    def __init__(self, client: Client, factory: InformerFactory, recorder: EventRecorder, *,
                 workers: int = 5, burst_replicas: int = BURST_REPLICAS,
                 clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.factory = factory
        self.recorder = recorder
        self.workers = workers
        self.burst_replicas = burst_replicas
        self.now = clock
        self.expectations = ControllerExpectations()
        self.fresh: FreshObjects[Any] = FreshObjects()
        self.fresh_pods: FreshObjects[core.Pod] = FreshObjects()
        self.informer = factory.informer_for(self.cls)
        self.pod_informer = factory.informer_for(core.Pod)
        self.lister = self.informer.lister()
        add_controller_uid_indexer(self.pod_informer)
        self.pod_lister = self.pod_informer.lister()
        self.controller = Controller(self.name, informers=[self.informer, self.pod_informer])
        self.queue = self.controller.add_queue(self.name, self.sync, workers=workers)
        self.informer.add_event_handler(self._rs_added, self._rs_updated, self._rs_deleted)
        self.pod_informer.add_event_handler(self._pod_added, self._pod_updated, self._pod_deleted)

    # -- kind specifics -------------------------------------------------------------------------

    def selector(self, rs: Any) -> selectors.LabelSelector:
        raise NotImplementedError

    replicas = staticmethod(objects.replicas)

    # -- run ------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        await self.controller.run(stop)

    def enqueue(self, rs: Any) -> None:
        self.queue.add(key_of(rs))

    # -- event handlers -------------------------------------------------------------------------

    def _rs_added(self, rs: Any) -> None:
        self.enqueue(rs)

    def _rs_updated(self, old: Any, new: Any) -> None:
        if old.metadata.uid != new.metadata.uid:
            self._rs_deleted(DeletedFinalStateUnknown(key_of(old), old))
        self.enqueue(new)

    def _rs_deleted(self, obj: Any) -> None:
        key = key_of(obj)
        self.expectations.delete(key)
        self.queue.add(key)

    def _owner_of(self, pod: core.Pod) -> Any | None:
        return owner_of(pod, self.kind, self.lister)

    def _matching(self, pod: core.Pod) -> list[Any]:
        out = []
        for rs in self.lister.list(pod.metadata.namespace):
            sel = self.selector(rs)
            if not sel.empty() and sel.matches(pod.metadata.labels):
                out.append(rs)
        return out

    def _pod_added(self, pod: core.Pod) -> None:
        if being_deleted(pod):
            self._pod_deleted(pod)
            return
        rs = self._owner_of(pod)
        if rs is not None:
            self.expectations.creation_observed(key_of(rs))
            self.enqueue(rs)
            return
        if controller_ref(pod) is None:
            for rs in self._matching(pod):
                self.enqueue(rs)

    def _pod_updated(self, old: core.Pod, new: core.Pod) -> None:
        if old.metadata.resource_version == new.metadata.resource_version:
            return  # resync: the owner gets its own resync
        labels_changed = dict(old.metadata.labels) != dict(new.metadata.labels)
        if being_deleted(new) and not being_deleted(old):
            self._pod_deleted(new)
            if labels_changed:
                self._pod_deleted(old)
            return
        old_ref, new_ref = controller_ref(old), controller_ref(new)
        if old_ref is not None and (new_ref is None or old_ref.uid != new_ref.uid):
            owner = self._owner_of(old)
            if owner is not None:
                self.enqueue(owner)
        rs = self._owner_of(new)
        if rs is not None:
            self.enqueue(rs)
            min_ready = rs.spec.min_ready_seconds
            if min_ready > 0 and not is_pod_ready(old) and is_pod_ready(new):
                self.queue.add_after(key_of(rs), float(min_ready) + 0.5)
            return
        if new_ref is None and (labels_changed or old_ref is not None):
            for rs in self._matching(new):
                self.enqueue(rs)

    def _pod_deleted(self, obj: core.Pod | DeletedFinalStateUnknown[core.Pod]) -> None:
        pod = unwrap(obj)
        rs = self._owner_of(pod)
        if rs is None:
            return
        key = key_of(rs)
        self.expectations.deletion_observed(key, key_of(pod))
        self.queue.add(key)

    # -- sync -----------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        rs = self.fresh.current(self.lister, key)
        if rs is None:
            self.expectations.delete(key)
            return
        sel = self.selector(rs)
        needs_sync = self.expectations.satisfied(key)
        all_pods = [self.fresh_pods.resolve(p) for p in owned_or_orphaned(self.pod_lister, rs)]
        active = filter_active_pods(all_pods)
        manager = RefManager(self.client, rs, lambda p: sel.matches(objects.labels(p)),
                             field_manager=self.name, fresh=self.fresh_pods)
        pods = await manager.claim(active)
        manage_err: Exception | None = None
        if needs_sync and not being_deleted(rs) and not sel.empty():
            try:
                await self.manage_replicas(key, rs, pods)
            except Exception as e:
                manage_err = e
        status = self.calculate_status(rs, pods, manage_err)
        await self.update_status(rs, status)
        if manage_err is not None:
            raise manage_err
        min_ready = rs.spec.min_ready_seconds
        if (min_ready > 0 and status.ready_replicas == self.replicas(rs)
                and status.available_replicas != self.replicas(rs)):
            self.queue.add_after(key, float(min_ready))

    async def manage_replicas(self, key: str, rs: Any, pods: list[core.Pod]) -> None:
        diff = len(pods) - self.replicas(rs)
        if diff < 0:
            n = min(-diff, self.burst_replicas)
            self.expectations.expect_creations(key, n)
            log.info("creating pods replicaset=%s want=%d have=%d creating=%d", key, self.replicas(rs),
                     len(pods), n)

            async def create() -> None:
                pod = pod_from_template(rs.spec.template, rs, f"{rs.metadata.name}-")
                try:
                    created = await self.client.create(pod, field_manager=self.name)
                except errors.Forbidden as e:
                    if "terminated" in e.message:  # the namespace is going away: nothing to create
                        return
                    self.recorder.event(rs, "Warning", "FailedCreate", f"Error creating: {e}")
                    raise
                except errors.ApiError as e:
                    self.recorder.event(rs, "Warning", "FailedCreate", f"Error creating: {e}")
                    raise
                self.recorder.event(rs, "Normal", "SuccessfulCreate", f"Created pod: {created.metadata.name}")

            try:
                ok = await slow_start_batch(n, SLOW_START_INITIAL_BATCH, create)
            except SlowStartError as e:
                for _ in range(n - e.successes):
                    self.expectations.creation_observed(key)
                raise e.first from None
            for _ in range(n - ok):
                self.expectations.creation_observed(key)
        elif diff > 0:
            n = min(diff, self.burst_replicas)
            victims = rank_pods_for_deletion(pods)[:n]
            log.info("deleting pods replicaset=%s want=%d have=%d deleting=%d", key, self.replicas(rs),
                     len(pods), n)
            await delete_pods(self.client, self.recorder, self.expectations, key, rs, victims)

    def calculate_status(self, rs: Any, pods: list[core.Pod], manage_err: Exception | None) -> Any:
        status = objects.copy(rs.status)
        template_labels = dict(rs.spec.template.metadata.labels)
        now = self.now()
        fully = ready = available = 0
        for p in pods:
            labels = p.metadata.labels
            if all(labels.get(k) == v for k, v in template_labels.items()):
                fully += 1
            if is_pod_ready(p):
                ready += 1
                if is_pod_available(p, rs.spec.min_ready_seconds, now):
                    available += 1
        status.replicas = len(pods)
        status.fully_labeled_replicas = fully
        status.ready_replicas = ready
        status.available_replicas = available
        status.observed_generation = rs.metadata.generation
        failure = [c for c in status.conditions if c.type == "ReplicaFailure"]
        if manage_err is not None and len(pods) < self.replicas(rs):
            reason = "FailedCreate"
            if not failure:
                c = status.conditions.add(type="ReplicaFailure", status="True", reason=reason,
                                          message=str(manage_err))
                c.last_transition_time.seconds = int(now)
        elif manage_err is None and failure:
            keep = [objects.copy(c) for c in status.conditions if c.type != "ReplicaFailure"]
            del status.conditions[:]
            status.conditions.extend(keep)
        return status

    async def update_status(self, rs: Any, status: Any) -> None:
        if await self.fresh.write_status(self.client, rs, status, self.name) is None:
            return
        log.debug("status updated replicaset=%s/%s replicas=%d ready=%d available=%d", rs.metadata.namespace,
                  rs.metadata.name, status.replicas, status.ready_replicas, status.available_replicas)


class ReplicaSetController(_ReplicaSetBase):
    cls = apps.ReplicaSet
    kind = "ReplicaSet"
    name = "replicaset"

    def selector(self, rs: apps.ReplicaSet) -> selectors.LabelSelector:
        try:
            return selectors.from_message(rs.spec.selector)
        except errors.BadRequest:
            return selectors.NOTHING


class ReplicationControllerController(_ReplicaSetBase):
    cls = core.ReplicationController
    kind = "ReplicationController"
    name = "replicationcontroller"

    def selector(self, rc: core.ReplicationController) -> selectors.LabelSelector:
        if not rc.spec.selector:
            return selectors.NOTHING
        return selectors.from_match_labels(dict(rc.spec.selector))
