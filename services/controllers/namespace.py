"""Namespace controller (Kubernetes pkg/controller/namespace): empty a terminating namespace, then finalize it.

A namespace being deleted has a deletionTimestamp, phase Terminating and the "kubernetes" finalizer in
spec.finalizers. This controller deletes every namespaced object in it (every registered kind that can be
listed and deleted; pods with their grace period, so it waits for their kubelets), reports progress in
the NamespaceContentRemaining / NamespaceDeletionContentFailure conditions, and once nothing is left
removes "kubernetes" from spec.finalizers with an update; the apiserver then removes the namespace.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from google.protobuf.message import Message

from pybernetes import errors
from pybernetes.api import kinds, objects
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.objects import being_deleted
from pybernetes.api.times import micro_now
from pybernetes.cache import DeletedFinalStateUnknown, InformerFactory
from pybernetes.client.client import Client
from pybernetes.controller import Controller
from pybernetes.events import EventRecorder

log = logging.getLogger("pybernetes.controllers.namespace")

NAME = "namespace"
FINALIZER = "kubernetes"
CONTENT_REMAINING = "NamespaceContentRemaining"
CONTENT_FAILURE = "NamespaceDeletionContentFailure"
FINALIZERS_REMAINING = "NamespaceFinalizersRemaining"


def namespaced_kinds() -> list[kinds.ResourceInfo]:
    return [r for r in kinds.RESOURCES
            if r.namespaced and "delete" in r.verbs and "list" in r.verbs]


class NamespaceController:
    def __init__(self, client: Client, factory: InformerFactory, recorder: EventRecorder, *,
                 workers: int = 2, requeue_delay: float = 1.0, concurrency: int = 50,
                 clock: Callable[[], float] | None = None) -> None:
        self.client = client
        self.factory = factory
        self.recorder = recorder
        self.workers = workers
        self.requeue_delay = requeue_delay
        self.concurrency = concurrency
        self.informer = factory.informer_for(core.Namespace)
        self.lister = self.informer.lister()
        self.kinds = namespaced_kinds()
        self.controller = Controller(NAME, informers=[self.informer])
        self.queue = self.controller.add_queue(NAME, self.sync, workers=workers)
        self.informer.add_event_handler(self._changed, lambda old, new: self._changed(new), None)

    def _changed(self, ns: core.Namespace | DeletedFinalStateUnknown[core.Namespace]) -> None:
        if isinstance(ns, core.Namespace) and being_deleted(ns):
            self.queue.add(ns.metadata.name)

    async def run(self, stop: asyncio.Event) -> None:
        await self.controller.run(stop)

    async def sync(self, name: str) -> None:
        cached = self.lister.get("", name)
        if cached is None or not being_deleted(cached) or FINALIZER not in cached.spec.finalizers:
            return
        try:
            ns = await self.client.get(core.Namespace, name)
        except errors.NotFound:
            return
        if not being_deleted(ns) or FINALIZER not in ns.spec.finalizers:
            return
        remaining, failures, finalizers = await self._delete_content(name)
        ns = await self._set_conditions(ns, remaining, failures, finalizers)
        if remaining:
            log.info("namespace content remaining namespace=%s remaining=%s", name,
                     ",".join(f"{k}={v}" for k, v in sorted(remaining.items())))
            self.queue.add_after(name, self.requeue_delay)
            if failures:
                raise RuntimeError(f"namespace {name}: {'; '.join(failures)}")
            return
        new = objects.copy(ns)
        keep = [f for f in new.spec.finalizers if f != FINALIZER]
        del new.spec.finalizers[:]
        new.spec.finalizers.extend(keep)
        await self.client.update(new, field_manager=NAME)
        log.info("namespace finalized namespace=%s", name)

    async def _delete_content(self, namespace: str) -> tuple[dict[str, int], list[str], set[str]]:
        """Delete what is there; (kind plural -> objects still present, failure messages, finalizers seen)."""
        remaining: dict[str, int] = {}
        failures: list[str] = []
        finalizers: set[str] = set()
        sem = asyncio.Semaphore(self.concurrency)

        async def delete(info: kinds.ResourceInfo, obj: Message) -> None:
            md = objects.meta_of(obj)
            async with sem:
                try:
                    await self.client.delete(info.cls, md.name, namespace=namespace, uid=md.uid,
                                             propagation_policy="Background")
                except (errors.NotFound, errors.Conflict):
                    pass
                except errors.ApiError as e:
                    failures.append(f"{info.plural}/{md.name}: {e}")

        for info in self.kinds:
            try:
                items: list[Any] = (await self.client.list_all(info.cls, namespace=namespace)).items
            except errors.ApiError as e:
                failures.append(f"list {info.plural}: {e}")
                remaining[info.plural] = remaining.get(info.plural, 0) + 1
                continue
            if not items:
                continue
            remaining[info.plural] = len(items)
            for obj in items:
                finalizers.update(obj.metadata.finalizers)
            await asyncio.gather(*(delete(info, o) for o in items if not being_deleted(o)))
        return remaining, failures, finalizers

    async def _set_conditions(self, ns: core.Namespace, remaining: dict[str, int], failures: list[str],
                              finalizers: set[str]) -> core.Namespace:
        new = objects.copy(ns)
        new.status.phase = "Terminating"
        if remaining:
            msg = "Some resources are remaining: " + ", ".join(
                f"{k} has {v} resource instances" for k, v in sorted(remaining.items()))
            _set_ns_condition(new, CONTENT_REMAINING, "True", "SomeResourcesRemain", msg)
        else:
            _set_ns_condition(new, CONTENT_REMAINING, "False", "ContentRemoved", "All content successfully removed")
        if failures:
            _set_ns_condition(new, CONTENT_FAILURE, "True", "ContentDeletionFailed",
                              "Failed to delete all resource types: " + "; ".join(failures[:5]))
        else:
            _set_ns_condition(new, CONTENT_FAILURE, "False", "ContentDeleted", "All content successfully deleted")
        if finalizers:
            _set_ns_condition(new, FINALIZERS_REMAINING, "True", "SomeFinalizersRemain",
                              "Some content in the namespace has finalizers remaining: "
                              + ", ".join(sorted(finalizers)))
        else:
            _set_ns_condition(new, FINALIZERS_REMAINING, "False", "ContentHasNoFinalizers",
                              "All content-preserving finalizers finished")
        if new.status.SerializeToString(deterministic=True) == ns.status.SerializeToString(deterministic=True):
            return ns
        try:
            return await self.client.update_status(new, field_manager=NAME)
        except errors.NotFound:
            return ns


def _set_ns_condition(ns: core.Namespace, typ: str, status: str, reason: str, message: str) -> None:
    objects.set_condition(ns.status.conditions, typ, status, reason, message, micro_now())
