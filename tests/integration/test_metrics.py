"""Metrics exist and move when things happen; /readyz follows the apiserver's storage."""

from __future__ import annotations

import asyncio
import re
import urllib.request

import pytest

from pybernetes import errors
from pybernetes.api import codec
from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.core.v1 import core_pb2 as core
from services.controllers.main import ControllerManager
from tests.helpers import eventually
from tests.integration.conftest import ApiServer
from tests.integration.test_controller_manager import manager_config

pytestmark = pytest.mark.integration


def scrape(port: int, path: str = "/metrics") -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def value(text: str, metric: str, **labels: str) -> float:
    """The sample `metric{labels...}` (labels matched as a subset), 0 when absent."""
    for line in text.splitlines():
        if not line.startswith(metric + "{") and not line.startswith(metric + " "):
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if all(have.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def get(port: int, path: str = "/metrics") -> tuple[int, str]:
    return await asyncio.to_thread(scrape, port, path)


async def test_apiserver_request_metrics_move(apiserver: ApiServer) -> None:
    port = apiserver.cfg.health_port
    _, before = await get(port)
    cm = core.ConfigMap()
    cm.metadata.name, cm.metadata.namespace = "m", "default"
    await apiserver.client.create(cm)
    with pytest.raises(errors.AlreadyExists):
        await apiserver.client.create(cm)
    _, after = await get(port)
    for code, n in (("201", 1), ("409", 1)):
        delta = (value(after, "apiserver_request_total", verb="create", resource="configmaps", code=code)
                 - value(before, "apiserver_request_total", verb="create", resource="configmaps", code=code))
        assert delta == n, f"code {code}"
    assert value(after, "apiserver_request_duration_seconds_count", verb="create", resource="configmaps") >= 2


async def test_apiserver_readyz_follows_etcd(apiserver: ApiServer) -> None:
    port = apiserver.cfg.health_port
    assert (await get(port, "/readyz"))[0] == 200
    await apiserver.etcd.kill()
    status, body = await get(port, "/readyz")
    assert status == 500 and "etcd" in body
    assert (await get(port, "/livez"))[0] == 200  # alive, just not ready
    await apiserver.etcd.start()

    async def ready() -> bool:
        return (await get(port, "/readyz"))[0] == 200

    await eventually(ready, timeout=20, what="readyz green again")


async def test_controller_manager_state_and_workqueue_metrics(apiserver: ApiServer) -> None:
    cm = ControllerManager(manager_config(["replicaset", "deployment"], config=str(apiserver.admin_conf)))
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(cm.run(ready, stop))
    try:
        await asyncio.wait_for(ready.wait(), 10)
        port = cm.cfg.health_port
        d = codec.from_dict({"metadata": {"name": "m", "namespace": "default"},
                             "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "m"}},
                                      "template": {"metadata": {"labels": {"app": "m"}},
                                                   "spec": {"containers": [{"name": "c", "image": "x/y:1"}]}}}},
                            apps.Deployment)
        await apiserver.client.create(d)

        async def metrics_moved() -> bool:
            _, text = await get(port)
            pending = sum(value(text, "kube_pod_status_phase", namespace="default", pod=p.metadata.name,
                                phase="Pending")
                          for p in (await apiserver.client.list(core.Pod, namespace="default")).items)
            return (pending == 2 and value(text, "workqueue_adds_total", name="deployment") > 0
                    and value(text, "workqueue_adds_total", name="replicaset") > 0)

        await eventually(metrics_moved, timeout=20, what="state and workqueue metrics")
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
