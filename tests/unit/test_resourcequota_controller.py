"""The quota controller's sync(key) against a fake client and its listers: status.hard follows spec.hard,
status.used counts the namespace's pods (terminal ones only as objects) and other kinds, scopes select pods,
and a second sync with nothing new writes nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

import pytest

from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.cache import InformerFactory
from pybernetes.events import EventRecorder
from services.controllers.resourcequota import ResourceQuotaController
from tests.unit.apiclient_fake import FakeClient, deliver


class Env:
    def __init__(self) -> None:
        self.client = FakeClient()
        self.factory = InformerFactory(cast(Any, self.client))
        self.ctl = ResourceQuotaController(cast(Any, self.client), self.factory, cast(EventRecorder, None))
        self.client.watchers.append(deliver(self.factory, only=(core.ResourceQuota, core.Pod)))

    def quota(self, hard: dict[str, str], *scopes: str, name: str = "q") -> None:
        q = core.ResourceQuota()
        q.metadata.name, q.metadata.namespace = name, "team"
        for k, v in hard.items():
            q.spec.hard[k].string = v
        q.spec.scopes.extend(scopes)
        self.client.add(q)

    def pod(self, name: str, cpu: str = "", phase: str = "Running", ns: str = "team") -> None:
        p = core.Pod()
        p.metadata.name, p.metadata.namespace = name, ns
        c = p.spec.containers.add(name="c", image="nginx")
        if cpu:
            c.resources.requests["cpu"].string = cpu
            c.resources.limits["memory"].string = "64Mi"
        p.status.phase = phase
        self.client.add(p)

    def status(self, name: str = "q") -> tuple[dict[str, str], dict[str, str]]:
        q = self.client.obj(core.ResourceQuota, name, "team")
        assert q is not None
        return ({k: v.string for k, v in q.status.hard.items()}, {k: v.string for k, v in q.status.used.items()})


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    e = Env()
    yield e
    e.ctl.queue.shutdown()


async def test_used_counts_pods_and_objects(env: Env) -> None:
    env.quota({"pods": "10", "count/pods": "10", "requests.cpu": "2", "limits.memory": "1Gi",
               "count/configmaps": "5", "configmaps": "5"})
    env.pod("a", cpu="250m")
    env.pod("b", cpu="1")
    env.pod("done", cpu="1", phase="Succeeded")  # holds nothing but counts as an object
    env.pod("elsewhere", cpu="1", ns="other")
    cm = core.ConfigMap()
    cm.metadata.name, cm.metadata.namespace = "cm", "team"
    env.client.add(cm)
    await env.ctl.sync("team/q")
    hard, used = env.status()
    assert hard == {"pods": "10", "count/pods": "10", "requests.cpu": "2", "limits.memory": "1Gi",
                    "count/configmaps": "5", "configmaps": "5"}
    assert used == {"pods": "2", "count/pods": "3", "requests.cpu": "1250m", "limits.memory": "128Mi",
                    "count/configmaps": "1", "configmaps": "1"}
    env.client.actions.clear()
    await env.ctl.sync("team/q")  # nothing changed: no second write
    assert env.client.writes() == []


async def test_scopes_select_pods(env: Env) -> None:
    env.quota({"pods": "5"}, "BestEffort", name="besteffort")
    env.pod("plain")
    env.pod("sized", cpu="100m")
    await env.ctl.sync("team/besteffort")
    assert env.status("besteffort")[1] == {"pods": "1"}


async def drain(env: Env) -> list[str]:
    keys = []
    while len(env.ctl.queue):
        key = await env.ctl.queue.get()
        env.ctl.queue.done(key)
        keys.append(key)
    return keys


async def test_pods_giving_resources_back_queue_their_namespace_quotas(env: Env) -> None:
    env.quota({"pods": "5"})
    assert await drain(env) == ["team/q"]
    env.pod("new")  # admission charged it already: no recount (its cache may not show the pod yet)
    assert await drain(env) == []
    p = env.client.obj(core.Pod, "new", "team")
    p.status.phase = "Succeeded"
    await env.client.update_status(p)
    assert await drain(env) == ["team/q"]
    await env.client.delete(core.Pod, "new", namespace="team")
    assert await drain(env) == ["team/q"]


async def test_only_spec_changes_of_a_quota_queue_it(env: Env) -> None:
    env.quota({"pods": "5"})
    await drain(env)
    q = env.client.obj(core.ResourceQuota, "q", "team")
    q.status.used["pods"].string = "1"  # the admission plugin's charge
    await env.client.update_status(q)
    assert await drain(env) == []
    q = env.client.obj(core.ResourceQuota, "q", "team")
    q.spec.hard["pods"].string = "6"
    await env.client.update(q)
    assert await drain(env) == ["team/q"]
