"""The in-flight limits against a real apiserver (real etcd) started with budgets of one request each, over REST
(HTTPS) and gRPC, which share the budgets.

A slot is held deterministically: a REST create whose body the test sends in two parts holds a mutating slot
until the test lets the second part go (the handler waits for the body inside its slot); a read-only slot is
held by an etcd status call while etcd is stopped (SIGSTOP; the call waits up to the apiserver's 5 s etcd
timeout, so the checks made meanwhile are quick ones). The holder's slot shows in
apiserver_current_inflight_requests before anything is asserted; no timing is asserted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client import REGISTRY

from pybernetes import errors
from pybernetes.api.coordination.v1 import coordination_pb2 as coordination
from pybernetes.api.core.v1 import core_pb2 as core
from services.apiserver.storage.embedded import EmbeddedEtcd
from tests.integration.conftest import ApiServer

pytestmark = pytest.mark.integration

USER = "system:kube-controller-manager"  # not in system:masters: limited (RBAC lets it create and read pods)
NODE = "system:node:n1"


@pytest.fixture
async def tiny(etcd: EmbeddedEtcd, tmp_path: Path) -> AsyncIterator[ApiServer]:
    srv = ApiServer(etcd, tmp_path / "apiserver")
    srv.cfg.max_requests_inflight = srv.cfg.max_mutating_requests_inflight = 1
    srv.add_user(NODE, ("system:nodes", "system:authenticated"))
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


def gauge(kind: str) -> float:
    return REGISTRY.get_sample_value("apiserver_current_inflight_requests", {"request_kind": kind}) or 0.0


def dropped(kind: str) -> float:
    return REGISTRY.get_sample_value("apiserver_dropped_requests_total", {"request_kind": kind}) or 0.0


async def until(ok: Callable[[], bool], what: str) -> None:
    for _ in range(600):  # a bound for a stuck test, not a timing assertion
        if ok():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never: {what}")


def pod(name: str) -> core.Pod:
    p = core.Pod()
    p.metadata.name, p.metadata.namespace = name, "default"
    p.spec.containers.add(name="c", image="busybox")
    return p


def pod_json(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


@pytest.fixture
async def http(tiny: ApiServer) -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    ctx = ssl.create_default_context(cafile=str(tiny.pki / "ca.crt"))
    headers = {"Authorization": f"Bearer {tiny.tokens[USER]}"}
    async with aiohttp.ClientSession(headers=headers, connector=aiohttp.TCPConnector(ssl=ctx)) as s:
        yield s, f"https://localhost:{tiny.cfg.secure_port}"


@contextlib.asynccontextmanager
async def mutating_slot_held(http: tuple[aiohttp.ClientSession, str], name: str) -> AsyncIterator[None]:
    """A REST create of pod `name` in flight (its slot taken) until the block ends; then it completes (201)."""
    s, base = http
    release = asyncio.Event()
    body = json.dumps(pod_json(name)).encode()

    async def slow_body() -> AsyncIterator[bytes]:
        yield body[:10]
        await release.wait()
        yield body[10:]

    async def create() -> int:
        async with s.post(f"{base}/api/v1/namespaces/default/pods", data=slow_body(),
                          headers={"Content-Type": "application/json"}) as r:
            return r.status

    before = gauge("mutating")
    holder = asyncio.create_task(create())
    try:
        await until(lambda: gauge("mutating") == before + 1, "the slow create holds a mutating slot")
        yield
    finally:
        release.set()
        assert await holder == 201
    assert gauge("mutating") == before


async def test_over_budget_is_refused_on_both_front_ends_and_exempt_requests_are_served(
        tiny: ApiServer, http: tuple[aiohttp.ClientSession, str]) -> None:
    s, base = http
    admin = tiny.client
    await admin.create(pod("existing"))
    lease = coordination.Lease()
    lease.metadata.name, lease.metadata.namespace = "n1", "kube-node-lease"
    lease.spec.holder_identity = "n1"
    await admin.create(lease)
    async with tiny.new_client(USER, throttle_retries=0) as limited, \
            tiny.new_client(NODE, throttle_retries=0) as node, tiny.new_client(throttle_retries=0) as admin0:
        refused = dropped("mutating")
        async with mutating_slot_held(http, "held"):
            with pytest.raises(errors.TooManyRequests) as grpc_refusal:  # RESOURCE_EXHAUSTED + its Status
                await limited.create(pod("grpc-refused"))
            assert (grpc_refusal.value.code, grpc_refusal.value.retry_after_seconds) == (429, 1)
            async with s.post(f"{base}/api/v1/namespaces/default/pods", json=pod_json("rest-refused")) as r:
                st = await r.json()
                assert r.status == 429 and r.headers["Retry-After"] == "1"
                assert (st["kind"], st["reason"], st["code"]) == ("Status", "TooManyRequests", 429)
                assert st["details"]["retryAfterSeconds"] == 1
            assert dropped("mutating") == refused + 2
            # Exempt over budget: system:masters, a node's Lease renewal and its status.
            await admin0.create(pod("by-admin"))
            mine = await node.get(coordination.Lease, "n1", namespace="kube-node-lease")
            mine.spec.lease_duration_seconds = 40
            await node.update(mine)
            # The read-only budget is its own: reads go on.
            assert (await limited.get(core.Pod, "existing", namespace="default")).metadata.name == "existing"
        for name in ("grpc-refused", "rest-refused"):  # refused before anything was done
            with pytest.raises(errors.NotFound):
                await admin.get(core.Pod, name, namespace="default")
        assert {p.metadata.name for p in (await admin.list(core.Pod, namespace="default")).items} == {
            "existing", "held", "by-admin"}


async def test_a_full_read_only_budget_refuses_reads_but_not_watches(
        tiny: ApiServer, etcd: EmbeddedEtcd, http: tuple[aiohttp.ClientSession, str]) -> None:
    s, base = http
    await tiny.client.create(pod("existing"))
    async with tiny.new_client(USER, throttle_retries=0, read_retries=0) as limited, \
            tiny.new_client(throttle_retries=0, read_retries=0) as admin0:
        stream = limited.watch(core.Pod, namespace="default")  # opened before: long-running, never counted
        assert (await anext(stream)).object.metadata.name == "existing"
        pid = etcd.pid
        assert pid is not None
        before = gauge("readOnly")
        os.kill(pid, signal.SIGSTOP)
        try:
            holder = asyncio.create_task(limited.etcd_status())  # waits on the stopped etcd, in its slot
            await until(lambda: gauge("readOnly") == before + 1, "the etcd status call holds a read-only slot")
            with pytest.raises(errors.TooManyRequests):
                await limited.list(core.Pod, namespace="default", resource_version="0")
            async with s.get(f"{base}/api/v1/namespaces/default/pods?resourceVersion=0") as r:
                assert r.status == 429 and r.headers["Retry-After"] == "1"
                assert (await r.json())["reason"] == "TooManyRequests"
            # Watches are not counted: a new one opens and lists from the watch cache, over both front ends.
            fresh = limited.watch(core.Pod, namespace="default")
            assert (await anext(fresh)).object.metadata.name == "existing"
            await fresh.aclose()
            async with s.get(f"{base}/api/v1/namespaces/default/pods?watch=1&timeoutSeconds=1") as r:
                assert r.status == 200
                first = json.loads(await r.content.readline())
                assert (first["type"], first["object"]["metadata"]["name"]) == ("ADDED", "existing")
            async with s.get(f"{base}/healthz") as r:  # probes are never limited
                assert r.status == 200
            # system:masters reads over budget (from the watch cache: etcd is stopped).
            listed = await admin0.list(core.Pod, namespace="default", resource_version="0")
            assert [p.metadata.name for p in listed.items] == ["existing"]
            assert not holder.done(), "the etcd status call ended early (etcd's timeout): the checks ran too slowly"
        finally:
            os.kill(pid, signal.SIGCONT)
        with contextlib.suppress(errors.ApiError):
            await holder
        await stream.aclose()
    await until(lambda: gauge("readOnly") == before, "the slot is free again")


async def test_clients_retry_too_many_requests_until_every_create_lands(
        tiny: ApiServer, http: tuple[aiohttp.ClientSession, str]) -> None:
    n = 20
    async with tiny.new_client(USER, throttle_retries=30) as retrying:
        refused = dropped("mutating")
        async with mutating_slot_held(http, "held"):
            creates = [asyncio.create_task(retrying.create(pod(f"p-{i}"))) for i in range(n)]
            # Every one is refused at least once while the slot is held (each then waits its Retry-After).
            await until(lambda: dropped("mutating") >= refused + n, "every create was refused once")
            assert not any(t.done() for t in creates)
        made = await asyncio.gather(*creates)
    assert sorted(p.metadata.name for p in made) == sorted(f"p-{i}" for i in range(n))
    listed = await tiny.client.list(core.Pod, namespace="default")
    assert len(listed.items) == n + 1
