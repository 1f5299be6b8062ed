"""RootCACertPublisher (kube-controller-manager's root-ca-cert-publisher).

Keeps the ConfigMap `kube-root-ca.crt` in every active namespace with `ca.crt`: the CA that signs the
apiserver's serving certificate, so pods verify https://kubernetes.default.svc with the ServiceAccount token
volume's ca.crt. Created when a namespace appears, recreated when deleted, rewritten when edited. The CA comes
from --root-ca-file, else from the controller manager's kubeconfig (as kube-controller-manager falls back to
its client's CAData); without one the controller has nothing to publish and says so once.
"""

from __future__ import annotations

import asyncio
import logging

from pybernetes import errors
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.objects import copy, split_key
from pybernetes.cache import DeletedFinalStateUnknown, InformerFactory
from pybernetes.client.client import Client
from pybernetes.controller import Controller, key_of
from pybernetes.events import EventRecorder

log = logging.getLogger("pybernetes.controllers.rootcacertpublisher")

NAME = "kube-root-ca.crt"
KEY = "ca.crt"
DESCRIPTION_ANNOTATION = "kubernetes.io/description"
DESCRIPTION = ("Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints "
               "such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across "
               "distributions of Kubernetes clusters.")


class RootCACertPublisher:
    def __init__(self, client: Client, factory: InformerFactory, recorder: EventRecorder, *,
                 root_ca: bytes = b"", workers: int = 1) -> None:
        self.client = client
        self.root_ca = root_ca.decode()
        self.namespaces = factory.informer_for(core.Namespace)
        self.configmaps = factory.informer_for(core.ConfigMap, field_selector=f"metadata.name={NAME}")
        self.ns_lister = self.namespaces.lister()
        self.cm_lister = self.configmaps.lister()
        self.controller = Controller("root_ca_cert_publisher", informers=[self.namespaces, self.configmaps])
        self.queue = self.controller.add_queue("root_ca_cert_publisher", self.sync, workers=workers)
        self.namespaces.add_event_handler(lambda n: self.queue.add(key_of(n)),
                                          lambda _o, n: self.queue.add(key_of(n)), None)
        self.configmaps.add_event_handler(None, self._on_cm_update, self._on_cm_delete)

    def _on_cm_update(self, old: core.ConfigMap, new: core.ConfigMap) -> None:
        if new.data.get(KEY) != self.root_ca:
            self.queue.add(new.metadata.namespace)

    def _on_cm_delete(self, obj: core.ConfigMap | DeletedFinalStateUnknown[core.ConfigMap]) -> None:
        self.queue.add(split_key(key_of(obj))[0])

    async def sync(self, namespace: str) -> None:
        if not self.root_ca:
            return
        ns = self.ns_lister.get("", namespace)
        if ns is None or ns.status.phase == "Terminating" or ns.metadata.HasField("deletion_timestamp"):
            return
        cur = self.cm_lister.get(namespace, NAME)
        try:
            if cur is None:
                cm = core.ConfigMap()
                cm.metadata.name, cm.metadata.namespace = NAME, namespace
                cm.metadata.annotations[DESCRIPTION_ANNOTATION] = DESCRIPTION
                cm.data[KEY] = self.root_ca
                await self.client.create(cm)
                log.info("published root CA configmap=%s/%s", namespace, NAME)
            elif dict(cur.data) != {KEY: self.root_ca} or DESCRIPTION_ANNOTATION not in cur.metadata.annotations:
                cm = copy(cur)
                cm.data.clear()
                cm.data[KEY] = self.root_ca
                cm.binary_data.clear()
                cm.metadata.annotations[DESCRIPTION_ANNOTATION] = DESCRIPTION
                await self.client.update(cm)
                log.info("updated root CA configmap=%s/%s", namespace, NAME)
        except errors.AlreadyExists:
            pass  # the informer has not seen it yet: its add event does not requeue, an edit would
        except errors.Forbidden as e:  # namespace terminating meanwhile
            log.info("root CA not published configmap=%s/%s error=%s", namespace, NAME, e)

    async def run(self, stop: asyncio.Event) -> None:
        if not self.root_ca:
            log.warning("no root CA to publish (--root-ca-file, or a kubeconfig with certificate-authority-data)")
        await self.controller.run(stop)
