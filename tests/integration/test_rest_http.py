"""Raw HTTP against the apiserver's REST API: watch semantics kubectl's defaults do not reach (bookmarks,
sendInitialEvents, resuming from a version), authentication, and Status bodies for refused requests."""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from pybernetes.api.core.v1 import core_pb2 as core
from tests.integration.conftest import ApiServer

pytestmark = pytest.mark.integration


@pytest.fixture
async def http(https_apiserver: ApiServer) -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    ctx = ssl.create_default_context(cafile=str(https_apiserver.cfg.data_dir / "pki" / "ca.crt"))
    headers = {"Authorization": f"Bearer {https_apiserver.token}"}
    async with aiohttp.ClientSession(headers=headers, connector=aiohttp.TCPConnector(ssl=ctx)) as s:
        yield s, f"https://localhost:{https_apiserver.cfg.secure_port}"


async def _events(s: aiohttp.ClientSession, url: str) -> list[dict[str, Any]]:
    async with s.get(url) as r:
        assert r.status == 200
        return [json.loads(line) async for line in r.content if line.strip()]


async def test_watch_initial_events_and_bookmarks(http: tuple[aiohttp.ClientSession, str],
                                                          https_apiserver: ApiServer) -> None:
    s, base = http
    pod = core.Pod()
    pod.metadata.name, pod.metadata.namespace = "w", "default"
    pod.spec.containers.add(name="c", image="busybox")
    created = await https_apiserver.client.create(pod)
    pods = f"{base}/api/v1/namespaces/default/pods"
    evs = await _events(s, f"{pods}?watch=1&timeoutSeconds=1&sendInitialEvents=true&allowWatchBookmarks=true"
                           "&resourceVersionMatch=NotOlderThan")
    assert [(e["type"], e["object"]["metadata"].get("name")) for e in evs[:2]] == [("ADDED", "w"), ("BOOKMARK", None)]
    assert evs[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert evs[0]["object"]["kind"] == "Pod" and evs[0]["object"]["apiVersion"] == "v1"
    # From the pod's own version: nothing older is replayed.
    evs = await _events(s, f"{pods}?watch=true&timeoutSeconds=1&resourceVersion={created.metadata.resource_version}")
    assert all(e["type"] == "BOOKMARK" for e in evs) and not any(e["type"] == "ADDED" for e in evs)


async def test_refusals_are_status_objects(http: tuple[aiohttp.ClientSession, str]) -> None:
    s, base = http
    async with aiohttp.ClientSession() as anon, anon.get(f"{base}/api/v1/pods", ssl=False) as r:
        assert r.status == 401 and (await r.json())["reason"] == "Unauthorized"
    async with s.get(f"{base}/version") as r:
        assert r.status == 200 and (await r.json())["minor"] == "33"
    async with s.get(f"{base}/api/v1/namespaces/default/widgets") as r:
        assert r.status == 404 and (await r.json())["kind"] == "Status"
    async with s.put(f"{base}/api/v1/namespaces/default/pods", json={}) as r:  # DELETE is deletecollection
        assert r.status == 405 and (await r.json())["reason"] == "MethodNotAllowed"
    async with s.delete(f"{base}/api/v1/bindings") as r:
        assert r.status == 405 and (await r.json())["reason"] == "MethodNotAllowed"
    async with s.patch(f"{base}/api/v1/namespaces/default/pods/x", data=b"{}",
                       headers={"Content-Type": "text/plain"}) as r:
        assert r.status == 415 and (await r.json())["reason"] == "UnsupportedMediaType"
    async with s.post(f"{base}/api/v1/namespaces/default/pods", data=b"{not json",
                      headers={"Content-Type": "application/json"}) as r:
        assert r.status == 400 and (await r.json())["reason"] == "BadRequest"
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}}
    async with s.post(f"{base}/api/v1/namespaces/default/pods", json=body) as r:
        assert r.status == 400 and "Deployment" in (await r.json())["message"]
    async with s.get(f"{base}/api/v1/namespaces/nosuch/pods/x") as r:
        st = await r.json()
        assert (r.status, st["reason"], st["details"]["name"]) == (404, "NotFound", "x")
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}}
    async with s.post(f"{base}/api/v1/namespaces/nosuch/configmaps", json=cm) as r:
        assert r.status == 404 and 'namespaces "nosuch" not found' in (await r.json())["message"]
    async with s.post(f"{base}/api/v1/namespaces/default/configmaps", json=cm) as r:
        assert r.status == 201
    async with s.delete(f"{base}/api/v1/namespaces/default/configmaps/c") as r:
        st = await r.json()
        assert (st["kind"], st["status"], st["details"]["name"]) == ("Status", "Success", "c")
