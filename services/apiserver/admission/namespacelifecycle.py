"""NamespaceLifecycle: no new content in a namespace that is missing or being terminated, and the system
namespaces (default, kube-system, kube-public) cannot be deleted (Kubernetes' plugin of the same name).

A namespace the cache does not know yet is looked up in etcd before a create is refused (a namespace created
just before may not have reached the watch cache). Deletes of other objects are always allowed, so that a
terminating namespace can be emptied.
"""

from __future__ import annotations

from pybernetes import errors
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.objects import being_deleted

from ..storage.store import Store
from . import lookup
from .attributes import CREATE, DELETE, Attributes, Plugin, forbidden

NAME = "NamespaceLifecycle"
IMMORTAL = frozenset({"default", "kube-system", "kube-public"})


class NamespaceLifecycle(Plugin):
    name = NAME
    mutating = True

    def __init__(self, store: Store, immortal: frozenset[str] = IMMORTAL) -> None:
        self.store = store
        self.immortal = immortal

    async def admit(self, a: Attributes) -> None:
        if a.resource.cls is core.Namespace:
            if a.operation == DELETE and a.name in self.immortal:
                raise forbidden(a, "this namespace may not be deleted")
            return
        if not a.namespace or a.operation == DELETE:
            return
        ns = await lookup.get(self.store, core.Namespace, "", a.namespace)
        if ns is None:
            raise errors.NotFound(f'namespaces "{a.namespace}" not found', kind="namespaces", name=a.namespace)
        if a.operation == CREATE and (ns.status.phase == "Terminating" or being_deleted(ns)):
            err = forbidden(a, f"unable to create new content in namespace {a.namespace} because it is being "
                               "terminated")
            err.causes.append(errors.FieldError("metadata.namespace", f"namespace {a.namespace} is being terminated",
                                                "NamespaceTerminating"))
            raise err
