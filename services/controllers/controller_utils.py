"""Shared controller machinery (Kubernetes pkg/controller/controller_utils.go, in part).

Callers: the ReplicaSet/ReplicationController, Deployment, DaemonSet, StatefulSet, Job and CronJob controllers.
The loop itself is
`pybernetes.controller.Controller`; object keys, copies and owner references are `pybernetes.api.objects`'.
Contents: expectations (never over-create/over-delete while an informer lags), owner references
(controller refs, adoption/release), pod readiness/availability, the pod deletion ranking, slow-start
batches, and `FreshObjects` (remember what we wrote so a lagging cache never triggers a second write; its
`write_status` is every pod owner's status write).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, cast

from google.protobuf.message import Message

from pybernetes import errors
from pybernetes.api import kinds, objects
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.meta.v1 import meta_pb2 as meta
from pybernetes.api.objects import being_deleted, controller_ref
from pybernetes.cache import Lister, SharedInformer
from pybernetes.client.client import Client

log = logging.getLogger("pybernetes.controllers")

T = TypeVar("T")
M = TypeVar("M", bound=Message)

# Expectations older than this are considered satisfied (a lost watch event must not block forever).
EXPECTATIONS_TIMEOUT = 5 * 60.0
# How many pods one sync creates or deletes at most (Kubernetes' burstReplicas).
BURST_REPLICAS = 500
SLOW_START_INITIAL_BATCH = 1


# -- expectations -----------------------------------------------------------------------------------


@dataclass
class _Expectation:
    add: int = 0
    delete_keys: set[str] = field(default_factory=set)
    timestamp: float = 0.0


class ControllerExpectations:
    """UID-tracking expectations (ControllerExpectations + UIDTrackingControllerExpectations).

    Before creating n pods a controller records `expect_creations(key, n)`; every pod add the informer
    delivers calls `creation_observed(key)`. Deletions are tracked by pod key so that a pod seen going
    away (or getting a deletionTimestamp) is counted once. A controller only acts on a key when its
    expectations are satisfied (nothing pending) or expired."""

    def __init__(self, *, timeout: float = EXPECTATIONS_TIMEOUT, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout = timeout
        self._clock = clock
        self._exp: dict[str, _Expectation] = {}

    def satisfied(self, key: str) -> bool:
        e = self._exp.get(key)
        if e is None:
            return True  # never set (new controller or after a restart): sync
        if e.add <= 0 and not e.delete_keys:
            return True
        return self._clock() - e.timestamp > self.timeout

    def expect_creations(self, key: str, n: int) -> None:
        self._exp[key] = _Expectation(add=n, timestamp=self._clock())

    def expect_deletions(self, key: str, pod_keys: Iterable[str]) -> None:
        self._exp[key] = _Expectation(delete_keys=set(pod_keys), timestamp=self._clock())

    def expect(self, key: str, creations: int, pod_keys: Iterable[str]) -> None:
        """Creations and deletions of one sync together (the DaemonSet and StatefulSet controllers do both)."""
        self._exp[key] = _Expectation(add=creations, delete_keys=set(pod_keys), timestamp=self._clock())

    def creation_observed(self, key: str) -> None:
        e = self._exp.get(key)
        if e is not None and e.add > 0:
            e.add -= 1

    lower_creations = creation_observed

    def deletion_observed(self, key: str, pod_key: str) -> None:
        e = self._exp.get(key)
        if e is not None:
            e.delete_keys.discard(pod_key)

    def pending(self, key: str) -> tuple[int, int]:
        e = self._exp.get(key)
        return (0, 0) if e is None else (max(e.add, 0), len(e.delete_keys))

    def delete(self, key: str) -> None:
        self._exp.pop(key, None)


# -- write-through freshness ------------------------------------------------------------------------


class _WithStatus(Protocol):
    @property
    def status(self) -> Message: ...


def _status(obj: Message) -> Message:
    """obj.status, for the kinds with a status subresource (a Message type says nothing of its fields)."""
    return cast(_WithStatus, obj).status


class FreshObjects(Generic[M]):
    """Objects this controller wrote, kept until the informer shows that version (or a newer one).

    `resolve(cached)` returns what we wrote when the cache still shows an older version, so a second
    sync right after a write sees its own write and makes no second one."""

    def __init__(self, max_entries: int = 10000) -> None:
        self._objs: dict[str, M] = {}
        self._max = max_entries

    def record(self, obj: M) -> None:
        if len(self._objs) >= self._max:
            self._objs.clear()
        self._objs[objects.key(obj)] = obj

    def forget(self, namespace: str, name: str) -> None:
        self._objs.pop(objects.key_for(namespace, name), None)

    def resolve(self, cached: M) -> M:
        key = objects.key(cached)
        mine = self._objs.get(key)
        if mine is None:
            return cached
        same_object = objects.meta_of(mine).uid == objects.meta_of(cached).uid
        if same_object and objects.resource_version(mine) > objects.resource_version(cached):
            return mine
        self._objs.pop(key, None)  # the cache caught up (or the object was replaced)
        return cached

    def current(self, lister: Lister[Any], key: str) -> M | None:
        """The lister's object for `key` as this controller last wrote it; None, forgotten, once it is gone."""
        namespace, name = objects.split_key(key)
        cached = lister.get(namespace, name)
        if cached is None:
            self.forget(namespace, name)
            return None
        return self.resolve(cached)

    async def write_status(self, client: Client, obj: M, status: Message, field_manager: str) -> M | None:
        """Write `status` as obj's status unless it is what obj has; remember and return what was written
        (None when nothing was)."""
        if status.SerializeToString(deterministic=True) == _status(obj).SerializeToString(deterministic=True):
            return None
        new = objects.copy(obj)
        _status(new).CopyFrom(status)
        out = await client.update_status(new, field_manager=field_manager)
        self.record(out)
        return out


# -- owner references -------------------------------------------------------------------------------


def new_controller_ref(owner: Message) -> meta.OwnerReference:
    info = kinds.for_message(owner)
    md = objects.meta_of(owner)
    return meta.OwnerReference(api_version=info.api_version, kind=info.kind, name=md.name, uid=md.uid,
                               controller=True, block_owner_deletion=True)


def owner_ref_dict(ref: meta.OwnerReference) -> dict[str, Any]:
    return {"apiVersion": ref.api_version, "kind": ref.kind, "name": ref.name, "uid": ref.uid,
            "controller": ref.controller, "blockOwnerDeletion": ref.block_owner_deletion}


class RefManager:
    """ClaimPods/ClaimReplicaSets: adopt matching orphans, release owned objects that stopped matching.
    What it adopts is recorded in `fresh`, so the next sync sees the adoption before the informer does.

    `can_adopt` is checked lazily, once, with a live GET of the owner (RecheckDeletionTimestamp): an
    owner that is being deleted, or was replaced by a namesake, adopts nothing."""

    def __init__(self, client: Any, owner: Message, matches: Callable[[Message], bool],
                 field_manager: str, fresh: FreshObjects[Any]) -> None:
        self.client = client
        self.owner = owner
        self.matches = matches
        self.field_manager = field_manager
        self.fresh = fresh
        self._can_adopt: bool | None = None

    async def can_adopt(self) -> bool:
        if self._can_adopt is None:
            md = objects.meta_of(self.owner)
            try:
                fresh = await self.client.get(type(self.owner), md.name, namespace=md.namespace)
                self._can_adopt = objects.meta_of(fresh).uid == md.uid and not being_deleted(fresh)
            except errors.NotFound:
                self._can_adopt = False
        return self._can_adopt

    async def claim(self, objs: Iterable[M]) -> list[M]:
        owner_md = objects.meta_of(self.owner)
        claimed: list[M] = []
        for obj in objs:
            ref = controller_ref(obj)
            if ref is not None:
                if ref.uid != owner_md.uid:
                    continue  # someone else's
                if self.matches(obj):
                    claimed.append(obj)
                elif not being_deleted(self.owner):
                    await self._release(obj)
                continue
            if being_deleted(self.owner) or not self.matches(obj) or being_deleted(obj):
                continue
            if not await self.can_adopt():
                continue
            adopted = await self._adopt(obj)
            if adopted is not None:
                claimed.append(adopted)
        return claimed

    async def _adopt(self, obj: M) -> M | None:
        md = objects.meta_of(obj)
        patch = {"metadata": {"ownerReferences": [owner_ref_dict(new_controller_ref(self.owner))],
                              "uid": md.uid}}
        try:
            out: M = await self.client.patch(type(obj), md.name, patch, namespace=md.namespace,
                                             field_manager=self.field_manager)
        except errors.NotFound:
            return None
        self.fresh.record(out)
        log.info("adopted kind=%s object=%s owner=%s", type(obj).__name__, objects.key(obj),
                 objects.meta_of(self.owner).name)
        return out

    async def _release(self, obj: Message) -> None:
        md = objects.meta_of(obj)
        owner_uid = objects.meta_of(self.owner).uid
        patch = {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": owner_uid}], "uid": md.uid}}
        try:
            await self.client.patch(type(obj), md.name, patch, namespace=md.namespace,
                                    field_manager=self.field_manager)
        except (errors.NotFound, errors.Invalid):
            return
        log.info("released kind=%s object=%s owner=%s", type(obj).__name__, objects.key(obj),
                 objects.meta_of(self.owner).name)


# -- pods -------------------------------------------------------------------------------------------


def pod_condition(pod: core.Pod, typ: str) -> core.PodCondition | None:
    return objects.condition(pod.status.conditions, typ)


def is_pod_ready(pod: core.Pod) -> bool:
    c = pod_condition(pod, "Ready")
    return c is not None and c.status == "True"


def is_pod_available(pod: core.Pod, min_ready_seconds: int, now: float) -> bool:
    """Ready for at least minReadySeconds (by the Ready condition's lastTransitionTime)."""
    c = pod_condition(pod, "Ready")
    if c is None or c.status != "True":
        return False
    if min_ready_seconds <= 0:
        return True
    t = c.last_transition_time.seconds + c.last_transition_time.nanos / 1e9
    return t > 0 and t + min_ready_seconds <= now


def is_pod_active(pod: core.Pod) -> bool:
    return pod.status.phase not in ("Succeeded", "Failed") and not pod.metadata.HasField("deletion_timestamp")


def filter_active_pods(pods: Iterable[core.Pod]) -> list[core.Pod]:
    return [p for p in pods if is_pod_active(p)]


# Kubernetes' PodControllerUIDIndex: a pod informer indexed by the UID of each pod's controller, orphans under
# one key per namespace, so that an owner's sync reads its own pods and the orphans it may adopt, not every pod
# of its namespace (which made a ReplicaSet's sync cost grow with the namespace: quadratic in a big rollout).
CONTROLLER_UID_INDEX = "controllerUID"


def orphan_index_key(namespace: str) -> str:
    """The CONTROLLER_UID_INDEX value of the pods of `namespace` without a controller (not a UID: has a /)."""
    return f"orphan/{namespace}"


def controller_uid_index(pod: core.Pod) -> list[str]:
    ref = controller_ref(pod)
    return [ref.uid] if ref is not None else [orphan_index_key(pod.metadata.namespace)]


def add_controller_uid_indexer(informer: SharedInformer[core.Pod]) -> None:
    """Index the pod `informer` by CONTROLLER_UID_INDEX (once: the informer is shared between controllers)."""
    if not informer.has_indexer(CONTROLLER_UID_INDEX):
        informer.add_indexer(CONTROLLER_UID_INDEX, controller_uid_index)


def owned_or_orphaned(lister: Lister[core.Pod], owner: Message) -> list[core.Pod]:
    """The pods `owner` controls and the orphans of its namespace (the candidates RefManager.claim sorts
    out), from a lister whose informer has add_controller_uid_indexer (Kubernetes' FilterPodsByOwner)."""
    md = objects.meta_of(owner)
    return [*lister.by_index(CONTROLLER_UID_INDEX, md.uid),
            *lister.by_index(CONTROLLER_UID_INDEX, orphan_index_key(md.namespace))]


_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def _ts(t: meta.Time) -> float:
    return t.seconds + t.nanos / 1e9


def pod_deletion_cost_key(pod: core.Pod) -> tuple[Any, ...]:
    """Sort key: pods that should be deleted first sort first (ActivePods' Less, Kubernetes order).

    1. unassigned < assigned; 2. Pending < Unknown < Running; 3. not ready < ready; 4. ready for a
    shorter time first; 5. more container restarts first; 6. newer first."""
    assigned = 1 if pod.spec.node_name else 0
    phase = _PHASE_RANK.get(pod.status.phase, 0)
    ready = 1 if is_pod_ready(pod) else 0
    ready_since = 0.0
    if ready:
        c = pod_condition(pod, "Ready")
        ready_since = _ts(c.last_transition_time) if c is not None else 0.0
    restarts = max((cs.restart_count for cs in pod.status.container_statuses), default=0)
    created = _ts(pod.metadata.creation_timestamp)
    # Higher ready_since (more recent) first, more restarts first, newer creation first.
    return (assigned, phase, ready, -ready_since, -restarts, -created, pod.metadata.name)


def rank_pods_for_deletion(pods: Iterable[core.Pod]) -> list[core.Pod]:
    return sorted(pods, key=pod_deletion_cost_key)


def pod_from_template(template: core.PodTemplateSpec, owner: Message, generate_name: str) -> core.Pod:
    pod = core.Pod()
    pod.metadata.CopyFrom(template.metadata)
    pod.metadata.ClearField("name")
    pod.metadata.ClearField("uid")
    pod.metadata.ClearField("resource_version")
    pod.metadata.namespace = objects.meta_of(owner).namespace
    pod.metadata.generate_name = generate_name
    del pod.metadata.owner_references[:]
    pod.metadata.owner_references.append(new_controller_ref(owner))
    pod.spec.CopyFrom(template.spec)
    return pod


async def slow_start_batch(count: int, initial_batch_size: int, fn: Callable[[], Awaitable[None]]) -> int:
    """Call `fn` count times in batches of 1, 2, 4, ...; stop after a batch with a failure.

    Returns the number of successful calls (the caller lowers expectations for the rest). The first
    error is re-raised after the batch, as Kubernetes' slowStartBatch reports it."""
    remaining = count
    successes = 0
    batch = min(remaining, initial_batch_size)
    while batch > 0:
        results = await asyncio.gather(*(fn() for _ in range(batch)), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        successes += batch - len(failures)
        for f in failures:
            if not isinstance(f, Exception):
                raise f  # cancellation and the like are not a failed create
        errs = [f for f in failures if isinstance(f, Exception)]
        if errs:
            raise SlowStartError(successes, errs[0])
        remaining -= batch
        batch = min(2 * batch, remaining)
    return successes


class SlowStartError(Exception):
    def __init__(self, successes: int, first: Exception) -> None:
        super().__init__(str(first))
        self.successes = successes
        self.first = first
