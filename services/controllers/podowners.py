"""What the controllers that own pods share: pod event handlers (each pod change enqueues its controller
owner and settles the owner's expectations; an owner's deletion drops them), pod creation and deletion that
keep expectations honest, and the revision hash label.

Callers: services/controllers/daemonset.py and statefulset.py (all of it); job.py (the handlers, its own pod
update, and `delete_pods`); replicaset.py (`delete_pods`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from pybernetes import errors
from pybernetes.api import objects, selectors
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.objects import being_deleted, controller_ref
from pybernetes.cache import DeletedFinalStateUnknown, Lister
from pybernetes.client.client import Client
from pybernetes.controller import key_of, owner_of, unwrap
from pybernetes.events import EventRecorder
from pybernetes.workqueue import RateLimitingQueue

from .controller_utils import ControllerExpectations, is_pod_ready

log = logging.getLogger("pybernetes.controllers")

# The label carrying the revision (template hash) a pod was created from (apps/v1 ControllerRevisionHashLabelKey).
REVISION_LABEL = "controller-revision-hash"


class PodOwnerHandlers:
    """Pod event handlers for a controller of `kind` whose pods carry its controller reference; an orphan
    pod enqueues every set of its namespace whose spec.selector matches it, so one of them adopts it."""

    def __init__(self, kind: str, lister: Lister[Any], queue: RateLimitingQueue[str],
                 expectations: ControllerExpectations) -> None:
        self.kind = kind
        self.lister = lister
        self.queue = queue
        self.expectations = expectations

    def owner_deleted(self, obj: Any) -> None:
        """The owner itself went away: its expectations go, and one more sync lets it finish."""
        key = key_of(obj)
        self.expectations.delete(key)
        self.queue.add(key)

    def owner(self, pod: core.Pod) -> Any | None:
        return owner_of(pod, self.kind, self.lister)

    def enqueue_matching(self, pod: core.Pod) -> None:
        for owner in self.lister.list(pod.metadata.namespace):
            try:
                sel = selectors.from_message(owner.spec.selector)
            except errors.BadRequest:
                continue
            if not sel.empty() and sel.matches(pod.metadata.labels):
                self.queue.add(key_of(owner))

    def added(self, pod: core.Pod) -> None:
        if being_deleted(pod):
            self.deleted(pod)
            return
        owner = self.owner(pod)
        if owner is not None:
            self.expectations.creation_observed(key_of(owner))
            self.queue.add(key_of(owner))
        elif controller_ref(pod) is None:
            self.enqueue_matching(pod)

    def updated(self, old: core.Pod, new: core.Pod) -> None:
        if old.metadata.resource_version == new.metadata.resource_version:
            return
        if being_deleted(new) and not being_deleted(old):
            self.deleted(new)
            return
        old_owner = self.owner(old)
        if old_owner is not None and (controller_ref(new) is None or controller_ref(new) != controller_ref(old)):
            self.queue.add(key_of(old_owner))  # released or taken over: the old owner recounts
        owner = self.owner(new)
        if owner is None:
            if controller_ref(new) is None and dict(old.metadata.labels) != dict(new.metadata.labels):
                self.enqueue_matching(new)
            return
        self.queue.add(key_of(owner))
        min_ready = owner.spec.min_ready_seconds
        if min_ready > 0 and not is_pod_ready(old) and is_pod_ready(new):
            self.queue.add_after(key_of(owner), float(min_ready) + 0.5)

    def deleted(self, obj: core.Pod | DeletedFinalStateUnknown[core.Pod]) -> None:
        pod = unwrap(obj)
        owner = self.owner(pod)
        if owner is None:
            return
        key = key_of(owner)
        self.expectations.deletion_observed(key, key_of(pod))
        self.queue.add(key)


async def create_pod(client: Client, recorder: EventRecorder, expectations: ControllerExpectations, key: str,
                     owner: Any, pod: core.Pod, field_manager: str) -> bool:
    """Create `pod` for `owner`, already counted in expectations; a failure lowers them again.
    False when the pod exists already or the namespace is going away."""
    try:
        created = await client.create(pod, field_manager=field_manager)
    except errors.AlreadyExists:
        expectations.creation_observed(key)
        return False
    except errors.Forbidden as e:
        expectations.creation_observed(key)
        if "terminated" in e.message:  # the namespace is going away: nothing to create
            return False
        recorder.event(owner, "Warning", "FailedCreate", f"Error creating: {e}")
        raise
    except Exception as e:
        expectations.creation_observed(key)
        recorder.event(owner, "Warning", "FailedCreate", f"Error creating: {e}")
        raise
    recorder.event(owner, "Normal", "SuccessfulCreate", f"Created pod: {created.metadata.name}")
    return True


async def delete_pod(client: Client, recorder: EventRecorder, expectations: ControllerExpectations, key: str,
                     owner: Any, pod: core.Pod) -> None:
    """Delete `pod` (by uid), already expected; a pod already gone settles its expectation."""
    try:
        await client.delete(core.Pod, pod.metadata.name, namespace=pod.metadata.namespace, uid=pod.metadata.uid)
    except (errors.NotFound, errors.Conflict):
        expectations.deletion_observed(key, objects.key(pod))
        return
    except Exception as e:
        expectations.deletion_observed(key, objects.key(pod))
        recorder.event(owner, "Warning", "FailedDelete", f"Error deleting: {e}")
        raise
    recorder.event(owner, "Normal", "SuccessfulDelete", f"Deleted pod: {pod.metadata.name}")



async def delete_pods(client: Client, recorder: EventRecorder, expectations: ControllerExpectations, key: str,
                      owner: Any, pods: Sequence[core.Pod]) -> None:
    """Expect and delete `pods` of `owner` concurrently; every deletion is tried, then the first failure raised."""
    if not pods:
        return
    expectations.expect_deletions(key, [objects.key(p) for p in pods])
    results = await asyncio.gather(*(delete_pod(client, recorder, expectations, key, owner, p) for p in pods),
                                   return_exceptions=True)
    for r in results:
        if isinstance(r, BaseException):
            raise r
