"""ServiceAccountController (kube-controller-manager's serviceaccount controller).

Ensures the `default` ServiceAccount exists in every active namespace: created when a namespace appears,
recreated when deleted; nothing is done in a namespace that is terminating.
"""

from __future__ import annotations

import asyncio
import logging

from pybernetes import errors
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.objects import split_key
from pybernetes.cache import DeletedFinalStateUnknown, InformerFactory
from pybernetes.client.client import Client
from pybernetes.controller import Controller, key_of
from pybernetes.events import EventRecorder

log = logging.getLogger("pybernetes.controllers.serviceaccount")

SERVICE_ACCOUNTS = ("default",)


class ServiceAccountController:
    def __init__(self, client: Client, factory: InformerFactory, recorder: EventRecorder, *,
                 workers: int = 1) -> None:
        self.client = client
        self.recorder = recorder
        self.workers = workers
        self.namespaces = factory.informer_for(core.Namespace)
        self.accounts = factory.informer_for(core.ServiceAccount)
        self.ns_lister = self.namespaces.lister()
        self.sa_lister = self.accounts.lister()
        self.controller = Controller("serviceaccount", informers=[self.namespaces, self.accounts])
        self.queue = self.controller.add_queue("serviceaccount", self.sync, workers=workers)
        self.namespaces.add_event_handler(lambda n: self.queue.add(key_of(n)),
                                          lambda _o, n: self.queue.add(key_of(n)), None)
        self.accounts.add_event_handler(None, None, self._on_sa_delete)

    def _on_sa_delete(self, obj: core.ServiceAccount | DeletedFinalStateUnknown[core.ServiceAccount]) -> None:
        ns, name = split_key(key_of(obj))
        if name in SERVICE_ACCOUNTS:
            self.queue.add(ns)

    async def sync(self, namespace: str) -> None:
        ns = self.ns_lister.get("", namespace)
        if ns is None or ns.status.phase == "Terminating" or ns.metadata.HasField("deletion_timestamp"):
            return
        for name in SERVICE_ACCOUNTS:
            if self.sa_lister.get(namespace, name) is not None:
                continue
            sa = core.ServiceAccount()
            sa.metadata.name, sa.metadata.namespace = name, namespace
            try:
                await self.client.create(sa)
                log.info("created service account serviceaccount=%s/%s", namespace, name)
            except errors.AlreadyExists:
                pass
            except errors.Forbidden as e:  # namespace terminating meanwhile
                log.info("service account not created serviceaccount=%s/%s error=%s", namespace, name, e)

    async def run(self, stop: asyncio.Event) -> None:
        await self.controller.run(stop)
