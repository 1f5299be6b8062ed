"""The namespace controller's sync(name) and event handler against a fake client and its lister.

A terminating namespace is emptied kind by kind, its conditions report progress, and the "kubernetes"
finalizer is removed last; content held by finalizers keeps it; failures are reported and retried; a
second sync with nothing new writes nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

import pytest

from pybernetes import errors
from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.cache import InformerFactory
from pybernetes.events import EventRecorder
from services.controllers.namespace import (
    CONTENT_FAILURE,
    CONTENT_REMAINING,
    FINALIZER,
    FINALIZERS_REMAINING,
    NamespaceController,
)
from tests.unit.apiclient_fake import FakeClient, deliver


class Env:
    def __init__(self) -> None:
        self.client = FakeClient()
        self.factory = InformerFactory(cast(Any, self.client))
        self.ctl = NamespaceController(cast(Any, self.client), self.factory, cast(EventRecorder, None),
                                       requeue_delay=3600)
        self.client.watchers.append(deliver(self.factory, only=(core.Namespace,)))

    def namespace(self, name: str = "team") -> core.Namespace:
        n = core.Namespace()
        n.metadata.name = name
        n.spec.finalizers.append(FINALIZER)
        return cast(core.Namespace, self.client.add(n))

    def conditions(self, name: str = "team") -> dict[str, tuple[str, str]]:
        n = self.client.obj(core.Namespace, name)
        assert n is not None
        return {c.type: (c.status, c.reason) for c in n.status.conditions}


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    e = Env()
    yield e
    e.ctl.queue.shutdown()  # drops the delayed requeues' timers


def content(client: FakeClient, ns: str = "team") -> None:
    for name in ("a", "b"):
        cm = core.ConfigMap()
        cm.metadata.name, cm.metadata.namespace = name, ns
        client.add(cm)
    d = apps.Deployment()
    d.metadata.name, d.metadata.namespace = "web", ns
    client.add(d)
    p = core.Pod()
    p.metadata.name, p.metadata.namespace = "p", ns
    client.add(p)


def held_pod(client: FakeClient, ns: str = "team") -> None:
    p = core.Pod()
    p.metadata.name, p.metadata.namespace = "held", ns
    p.metadata.finalizers.append("example.com/hold")
    client.add(p)


async def test_only_terminating_namespaces_are_queued_and_synced(env: Env) -> None:
    env.namespace()
    content(env.client)
    env.namespace("other")
    assert len(env.ctl.queue) == 0
    await env.ctl.sync("team")  # not being deleted: nothing to do
    await env.ctl.sync("missing")
    assert env.client.actions == []
    await env.client.delete(core.Namespace, "team")
    assert len(env.ctl.queue) == 1 and await env.ctl.queue.get() == "team"


async def test_content_is_deleted_kind_by_kind_then_the_finalizer_removed(env: Env) -> None:
    env.namespace()
    content(env.client)
    content(env.client, "other")  # another namespace's objects are never touched
    await env.client.delete(core.Namespace, "team")
    env.client.actions.clear()

    await env.ctl.sync("team")
    deletes = env.client.writes("delete")
    assert sorted(a[2] for a in deletes) == ["team/a", "team/b", "team/p", "team/web"]
    assert all(a[3] == "Background" for a in deletes)
    kinds = [a[1] for a in deletes]
    assert kinds == sorted(kinds, key=kinds.index)  # grouped: one kind after another
    # the first pass saw content: it reports it and comes back later, the finalizer stays
    assert env.conditions()[CONTENT_REMAINING] == ("True", "SomeResourcesRemain")
    assert env.conditions()[CONTENT_FAILURE] == ("False", "ContentDeleted")
    n = env.client.obj(core.Namespace, "team")
    assert n is not None and list(n.spec.finalizers) == [FINALIZER] and n.status.phase == "Terminating"

    env.client.actions.clear()
    await env.ctl.sync("team")
    assert env.client.writes() == [("update_status", "Namespace", "/team"), ("update", "Namespace", "/team")]
    assert env.client.obj(core.Namespace, "team") is None  # the finalizer removed last: the namespace went
    assert len([k for k in env.client.objects if k[1] == "other"]) == 4

    env.client.actions.clear()
    await env.ctl.sync("team")  # a stale queue entry (the lister may still have it): no write
    assert env.client.actions == []


async def test_content_held_by_finalizers_keeps_the_namespace(env: Env) -> None:
    env.namespace()
    held_pod(env.client)
    await env.client.delete(core.Namespace, "team")
    await env.ctl.sync("team")
    assert env.conditions()[FINALIZERS_REMAINING] == ("True", "SomeFinalizersRemain")
    assert env.conditions()[CONTENT_REMAINING] == ("True", "SomeResourcesRemain")

    env.client.actions.clear()
    await env.ctl.sync("team")  # nothing changed: no second delete, no status write
    assert env.client.actions == []

    pod = env.client.obj(core.Pod, "held", "team")
    pod.metadata.ClearField("finalizers")
    await env.client.update(pod)  # its finalizer done, the pod goes
    await env.ctl.sync("team")
    assert env.client.obj(core.Namespace, "team") is None
    assert env.client.writes()[-1] == ("update", "Namespace", "/team")


async def test_list_failure_is_reported_and_retried(env: Env) -> None:
    env.namespace()
    content(env.client)
    env.client.list_errors["ConfigMap"] = errors.Forbidden("configmaps is forbidden")
    await env.client.delete(core.Namespace, "team")
    with pytest.raises(RuntimeError, match="configmaps"):
        await env.ctl.sync("team")  # an error: the worker retries with backoff
    status, reason = env.conditions()[CONTENT_FAILURE]
    assert (status, reason) == ("True", "ContentDeletionFailed")
    assert env.client.obj(core.ConfigMap, "a", "team") is not None
    assert env.client.obj(core.Pod, "p", "team") is None  # the other kinds were still deleted
    with pytest.raises(RuntimeError):
        await env.ctl.sync("team")  # only what could not be listed is left: never assumed empty
    n = env.client.obj(core.Namespace, "team")
    assert n is not None and list(n.spec.finalizers) == [FINALIZER]

    del env.client.list_errors["ConfigMap"]
    await env.ctl.sync("team")
    await env.ctl.sync("team")
    assert env.client.obj(core.Namespace, "team") is None


async def test_a_namespace_recreated_meanwhile_is_left_alone(env: Env) -> None:
    env.namespace()
    content(env.client)
    await env.client.delete(core.Namespace, "team")
    terminating = env.client.obj(core.Namespace, "team")
    n = env.client.obj(core.Namespace, "team")
    n.spec.ClearField("finalizers")
    await env.client.update(n)  # finalized by someone else...
    env.namespace()  # ...and created again, live; the lister still holds the terminating copy
    env.ctl.informer.store.add(terminating)
    env.client.actions.clear()
    await env.ctl.sync("team")
    assert env.client.actions == []
