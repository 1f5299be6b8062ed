"""The root-ca-cert-publisher's sync(namespace) against a fake client: kube-root-ca.crt is created in active
namespaces, rewritten when edited, left alone when right (a second sync writes nothing) and in terminating
namespaces, and nothing is published without a CA."""

from __future__ import annotations

from typing import Any, cast

from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.cache import InformerFactory
from pybernetes.events import EventRecorder
from services.controllers.rootcacertpublisher import DESCRIPTION_ANNOTATION, KEY, NAME, RootCACertPublisher
from tests.unit.apiclient_fake import FakeClient

CA = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


class Env:
    def __init__(self, ca: bytes = CA) -> None:
        self.client = FakeClient()
        self.ctl = RootCACertPublisher(cast(Any, self.client), InformerFactory(cast(Any, self.client)),
                                       cast(EventRecorder, None), root_ca=ca)
        self.client.watchers.append(self._deliver)

    def _deliver(self, old: Any, new: Any) -> None:
        """Feed the controller's own informers, as their reflectors would."""
        obj = new if new is not None else old
        inf = self.ctl.namespaces if isinstance(obj, core.Namespace) else self.ctl.configmaps
        if isinstance(obj, core.ConfigMap) and obj.metadata.name != NAME:
            return
        if new is None:
            inf.store.delete(old)
        else:
            inf.store.add(new)

    def namespace(self, name: str = "team", terminating: bool = False) -> None:
        n = core.Namespace()
        n.metadata.name = name
        if terminating:
            n.status.phase = "Terminating"
        self.client.add(n)

    def configmap(self, ns: str = "team") -> core.ConfigMap | None:
        return cast(core.ConfigMap | None, self.client.obj(core.ConfigMap, NAME, ns))


async def test_publishes_the_ca_once_and_repairs_edits() -> None:
    env = Env()
    env.namespace()
    await env.ctl.sync("team")
    cm = env.configmap()
    assert cm is not None and dict(cm.data) == {KEY: CA.decode()}
    assert "kube-apiserver" in cm.metadata.annotations[DESCRIPTION_ANNOTATION]
    writes = len(env.client.actions)
    await env.ctl.sync("team")
    assert len(env.client.actions) == writes  # nothing new: no second write
    edited = core.ConfigMap()
    edited.CopyFrom(cm)
    edited.data[KEY] = "tampered"
    await env.client.update(edited)
    await env.ctl.sync("team")
    cm = env.configmap()
    assert cm is not None and dict(cm.data) == {KEY: CA.decode()}


async def test_terminating_namespaces_and_a_missing_ca_publish_nothing() -> None:
    env = Env()
    env.namespace("going", terminating=True)
    await env.ctl.sync("going")
    await env.ctl.sync("missing")
    assert env.configmap("going") is None
    none = Env(b"")
    none.namespace()
    await none.ctl.sync("team")
    assert none.configmap() is None and none.client.actions == []
