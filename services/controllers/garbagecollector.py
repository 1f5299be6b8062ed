"""Garbage collector (Kubernetes pkg/controller/garbagecollector): cascading deletion by ownerReferences.

A graph of every watched object (uid -> node: identity, owners, dependents) is kept from informers on
the kinds that can own or be owned. Two keyed queues (by uid) act on it:
  * attempt-to-delete: a node whose owner went away, or whose owner waits for its dependents
    (foreground). The owners are checked with live GETs (absence is verified by uid, never assumed
    from the cache); a node with no remaining owner is deleted with a uid precondition, with the
    propagation its own finalizers ask for. A node that is deleting its dependents (finalizer
    "foregroundDeletion") loses that finalizer once no blocking dependent is left.
  * attempt-to-orphan: an owner with the "orphan" finalizer; its ownerReference is removed from
    every dependent, then the finalizer.
Owners seen only through references are "virtual" nodes, verified with a live GET.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from google.protobuf.message import Message

from pybernetes import errors
from pybernetes.api import kinds as api_kinds
from pybernetes.api import objects
from pybernetes.api.meta.v1 import meta_pb2 as meta
from pybernetes.api.objects import KubeObject, being_deleted, meta_of
from pybernetes.cache import InformerFactory, SharedInformer
from pybernetes.client.client import Client
from pybernetes.controller import Controller, unwrap
from pybernetes.events import EventRecorder

log = logging.getLogger("pybernetes.controllers.garbagecollector")

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
NAME = "garbagecollector"
# Kinds that are never owners nor dependents worth tracking.
IGNORED = {"Event", "Binding", "Namespace"}


@dataclass(frozen=True)
class Identity:
    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name} uid={self.uid}"


@dataclass
class Node:
    identity: Identity
    owners: list[meta.OwnerReference] = field(default_factory=list)
    dependents: set[str] = field(default_factory=set)  # uids
    virtual: bool = False
    being_deleted: bool = False
    deleting_dependents: bool = False


def _identity(obj: Message) -> Identity:
    info = api_kinds.for_message(obj)
    md = meta_of(obj)
    return Identity(info.api_version, info.kind, md.namespace, md.name, md.uid)


def _owner_identity(ref: meta.OwnerReference, namespace: str) -> Identity:
    info = api_kinds.for_kind(ref.api_version, ref.kind)
    ns = namespace if info is None or info.namespaced else ""
    return Identity(ref.api_version, ref.kind, ns, ref.name, ref.uid)


class GarbageCollector:
    def __init__(self, client: Client, factory: InformerFactory, recorder: EventRecorder, *,
                 workers: int = 10, kinds: list[type[Message]] | None = None) -> None:
        self.client = client
        self.factory = factory
        self.recorder = recorder
        self.workers = workers
        self.graph: dict[str, Node] = {}
        if kinds is None:
            kinds = [r.cls for r in api_kinds.RESOURCES
                     if r.kind not in IGNORED and "list" in r.verbs and "watch" in r.verbs and "delete" in r.verbs]
        # the kind table types its classes as plain Messages; every one of them has ObjectMeta
        self.informers: list[SharedInformer[Any]] = [factory.informer_for(cast(type[KubeObject], cls))
                                                     for cls in kinds]
        self.controller = Controller(NAME, informers=self.informers, on_synced=lambda: log.info(
            "garbage collector graph built kinds=%d nodes=%d", len(self.informers), len(self.graph)))
        self.delete_queue = self.controller.add_queue("garbage_collector_attempt_to_delete", self.attempt_to_delete,
                                                      workers=workers)
        self.orphan_queue = self.controller.add_queue("garbage_collector_attempt_to_orphan", self.attempt_to_orphan,
                                                      workers=max(1, workers // 2))
        for inf in self.informers:
            inf.add_event_handler(self._added, self._updated, self._deleted)

    # -- graph ----------------------------------------------------------------------------------

    def _added(self, obj: Any) -> None:
        self._observe(obj)

    def _updated(self, old: Any, new: Any) -> None:
        if old.metadata.uid != new.metadata.uid:
            self._deleted(old)
        self._observe(new)

    def _observe(self, obj: Message) -> None:
        ident = _identity(obj)
        md = meta_of(obj)
        node = self.graph.get(ident.uid)
        if node is None:
            node = Node(ident)
            self.graph[ident.uid] = node
            old_owners: list[meta.OwnerReference] = []
        else:
            old_owners = node.owners
            if node.virtual:
                node.virtual = False
                node.identity = ident
        new_owners = [objects.copy(r) for r in md.owner_references]
        node.owners = new_owners
        old_uids = {r.uid: r for r in old_owners}
        new_uids = {r.uid: r for r in new_owners}
        for uid, ref in new_uids.items():
            if uid not in old_uids:
                owner = self.graph.get(uid)
                if owner is None:
                    owner = Node(_owner_identity(ref, ident.namespace), virtual=True)
                    self.graph[uid] = owner
                    self.delete_queue.add(uid)  # verify that the owner exists
                elif owner.virtual:
                    self.delete_queue.add(uid)
                owner.dependents.add(ident.uid)
                if owner.deleting_dependents:
                    self.delete_queue.add(ident.uid)
        for uid, ref in old_uids.items():
            changed = uid not in new_uids or (
                new_uids[uid].block_owner_deletion != ref.block_owner_deletion)
            if uid not in new_uids:
                owner = self.graph.get(uid)
                if owner is not None:
                    owner.dependents.discard(ident.uid)
            if changed:
                owner = self.graph.get(uid)
                if owner is not None and owner.deleting_dependents:
                    self.delete_queue.add(uid)  # one blocking dependent fewer
        node.being_deleted = being_deleted(obj)
        was_deleting_dependents = node.deleting_dependents
        node.deleting_dependents = node.being_deleted and FOREGROUND in md.finalizers
        if node.deleting_dependents and not was_deleting_dependents:
            for dep in node.dependents:
                self.delete_queue.add(dep)
        if node.deleting_dependents:
            self.delete_queue.add(ident.uid)
        if node.being_deleted and ORPHAN in md.finalizers:
            self.orphan_queue.add(ident.uid)
        # A dependent whose owners are all known and gone is handled through the owners' deletion;
        # one observed with an owner that is being deleted in the foreground is handled above.

    def _deleted(self, obj: Any) -> None:
        o = unwrap(obj)
        uid = o.metadata.uid
        node = self.graph.get(uid)
        if node is None:
            return
        self._remove_node(node)

    def _remove_node(self, node: Node) -> None:
        uid = node.identity.uid
        self.graph.pop(uid, None)
        for ref in node.owners:
            owner = self.graph.get(ref.uid)
            if owner is not None:
                owner.dependents.discard(uid)
                if owner.deleting_dependents:
                    self.delete_queue.add(ref.uid)
                if owner.virtual and not owner.dependents:
                    self.graph.pop(ref.uid, None)
        if node.dependents:
            # The dependents keep their references; a virtual node stands for the gone owner until
            # they are all processed.
            ghost = Node(node.identity, virtual=True, dependents=set(node.dependents))
            self.graph[uid] = ghost
            for dep in node.dependents:
                self.delete_queue.add(dep)

    # -- run ------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        await self.controller.run(stop)

    # -- live reads -----------------------------------------------------------------------------

    async def _get_live(self, ident: Identity) -> Message | None:
        """The object as stored now, or None when absent (or replaced by one with another uid)."""
        info = api_kinds.for_kind(ident.api_version, ident.kind)
        if info is None:
            raise errors.BadRequest(f"unknown kind {ident.api_version}/{ident.kind}")
        try:
            obj = await self.client.get(info.cls, ident.name, namespace=ident.namespace if info.namespaced else "")
        except errors.NotFound:
            return None
        if meta_of(obj).uid != ident.uid:
            return None
        return obj

    # -- attempt to delete ----------------------------------------------------------------------

    async def attempt_to_delete(self, uid: str) -> None:
        node = self.graph.get(uid)
        if node is None:
            return
        if node.virtual:
            await self._verify_virtual(node)
            return
        if node.being_deleted and not node.deleting_dependents:
            return
        latest = await self._get_live(node.identity)
        if latest is None:
            # Gone without us seeing the event yet: treat as deleted.
            if self.graph.get(uid) is node:
                self._remove_node(node)
            return
        if node.deleting_dependents:
            await self._process_deleting_dependents(node)
            return
        refs = list(meta_of(latest).owner_references)
        if not refs:
            return
        solid: list[meta.OwnerReference] = []
        dangling: list[meta.OwnerReference] = []
        waiting: list[meta.OwnerReference] = []
        for ref in refs:
            try:
                owner = await self._get_live(_owner_identity(ref, node.identity.namespace))
            except errors.BadRequest:
                solid.append(ref)  # an owner kind we cannot resolve is never assumed gone
                continue
            if owner is None:
                dangling.append(ref)
            elif being_deleted(owner) and FOREGROUND in meta_of(owner).finalizers:
                waiting.append(ref)
            else:
                solid.append(ref)
        ident = node.identity
        if solid:
            if not dangling and not waiting:
                return
            gone = {r.uid for r in dangling} | {r.uid for r in waiting}
            log.info("removing dangling owner references object=%s owners=%s", ident, sorted(gone))
            await self._remove_owner_refs(ident, gone)
            return
        if waiting and node.dependents:
            policy = "Foreground"
        elif ORPHAN in meta_of(latest).finalizers:
            policy = "Orphan"
        elif FOREGROUND in meta_of(latest).finalizers:
            policy = "Foreground"
        else:
            policy = "Background"
        log.info("deleting object=%s propagation=%s reason=owners-gone", ident, policy)
        await self._delete(ident, policy)

    async def _verify_virtual(self, node: Node) -> None:
        try:
            live = await self._get_live(node.identity)
        except errors.BadRequest:
            return  # unknown owner kind: leave its dependents alone
        if live is not None:
            if api_kinds.for_kind(node.identity.api_version, node.identity.kind) is not None:
                # It exists; its informer will (or did) fill in the real node. Dependents stay.
                return
        if self.graph.get(node.identity.uid) is node:
            self.graph.pop(node.identity.uid, None)
        for dep in node.dependents:
            self.delete_queue.add(dep)

    async def _process_deleting_dependents(self, node: Node) -> None:
        blocking = []
        for dep_uid in node.dependents:
            dep = self.graph.get(dep_uid)
            if dep is None:
                continue
            for ref in dep.owners:
                if ref.uid == node.identity.uid and ref.HasField("block_owner_deletion") and ref.block_owner_deletion:
                    blocking.append(dep)
                    break
        if not blocking:
            log.info("dependents gone, removing finalizer object=%s finalizer=%s", node.identity, FOREGROUND)
            await self._remove_finalizer(node.identity, FOREGROUND)
            return
        for dep in blocking:
            if not dep.deleting_dependents:
                self.delete_queue.add(dep.identity.uid)

    async def _delete(self, ident: Identity, policy: str) -> None:
        info = api_kinds.for_kind(ident.api_version, ident.kind)
        if info is None:
            return
        try:
            await self.client.delete(info.cls, ident.name, namespace=ident.namespace, uid=ident.uid,
                                     propagation_policy=policy)
        except (errors.NotFound, errors.Conflict):
            pass  # already gone, or a namesake with another uid: not ours to delete

    # -- attempt to orphan ----------------------------------------------------------------------

    async def attempt_to_orphan(self, uid: str) -> None:
        node = self.graph.get(uid)
        if node is None:
            return
        for dep_uid in list(node.dependents):
            dep = self.graph.get(dep_uid)
            if dep is None or dep.virtual:
                continue
            await self._remove_owner_refs(dep.identity, {uid})
        log.info("dependents orphaned, removing finalizer object=%s finalizer=%s", node.identity, ORPHAN)
        await self._remove_finalizer(node.identity, ORPHAN)

    # -- writes (read-modify-write with resourceVersion; conflicts retried) ----------------------

    async def _edit_live(self, ident: Identity, edit: Callable[[meta.ObjectMeta], bool], what: str) -> None:
        """Read `ident` live, `edit` its metadata (False: nothing to change) and write it back; a conflict reads
        again, an object gone is done."""
        for _ in range(5):
            obj = await self._get_live(ident)
            if obj is None or not edit(meta_of(obj)):
                return
            try:
                await self.client.update(obj, field_manager=NAME)
                return
            except errors.Conflict:
                continue
            except errors.NotFound:
                return
        raise errors.Conflict(f"too many conflicts {what} {ident}")

    async def _remove_owner_refs(self, ident: Identity, owner_uids: set[str]) -> None:
        if api_kinds.for_kind(ident.api_version, ident.kind) is None:
            return

        def edit(md: meta.ObjectMeta) -> bool:
            keep = [objects.copy(r) for r in md.owner_references if r.uid not in owner_uids]
            if len(keep) == len(md.owner_references):
                return False
            del md.owner_references[:]
            md.owner_references.extend(keep)
            return True
        await self._edit_live(ident, edit, "removing owner references from")

    async def _remove_finalizer(self, ident: Identity, finalizer: str) -> None:
        def edit(md: meta.ObjectMeta) -> bool:
            if finalizer not in md.finalizers:
                return False
            keep = [f for f in md.finalizers if f != finalizer]
            del md.finalizers[:]
            md.finalizers.extend(keep)
            return True
        await self._edit_live(ident, edit, f"removing finalizer {finalizer} from")
