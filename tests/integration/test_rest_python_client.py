"""The official Python client (`kubernetes`) against a real apiserver and etcd, configured from the admin.conf
the apiserver writes: list, create, patch, delete, errors, watch.Watch().stream, utils.create_from_yaml."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.core.v1 import core_pb2 as core
from tests.integration.conftest import ApiServer

kubernetes = pytest.importorskip("kubernetes")
from kubernetes import client as k8s  # noqa: E402
from kubernetes import config as k8s_config  # noqa: E402
from kubernetes import utils as k8s_utils  # noqa: E402
from kubernetes import watch as k8s_watch  # noqa: E402

pytestmark = pytest.mark.integration

T = TypeVar("T")


async def call(fn: Callable[..., T], *args: Any, **kw: Any) -> T:
    # The client blocks; the apiserver runs on this event loop.
    return await asyncio.to_thread(fn, *args, **kw)


@pytest.fixture
def api(https_apiserver: ApiServer) -> Iterator[k8s.ApiClient]:
    c = k8s_config.new_client_from_config(config_file=str(https_apiserver.cfg.data_dir / "admin.conf"))
    try:
        yield c
    finally:
        c.close()


def _pod(name: str, image: str = "busybox") -> Any:
    return k8s.V1Pod(metadata=k8s.V1ObjectMeta(name=name, labels={"app": name}),
                     spec=k8s.V1PodSpec(containers=[k8s.V1Container(name="c", image=image,
                                                                     command=["sleep", "3600"])]))


async def test_list_create_patch_delete(api: k8s.ApiClient, https_apiserver: ApiServer) -> None:
    v1 = k8s.CoreV1Api(api)
    names = [n.metadata.name for n in (await call(v1.list_namespace)).items]
    assert names == ["default", "kube-node-lease", "kube-public", "kube-system"]
    created = await call(v1.create_namespaced_pod, "default", _pod("py"))
    assert created.metadata.uid and created.spec.containers[0].command == ["sleep", "3600"]
    assert created.spec.restart_policy == "Always"  # defaulted by the one Rest path
    patched = await call(v1.patch_namespaced_pod, "py", "default", {"metadata": {"labels": {"tier": "x"}}})
    assert patched.metadata.labels == {"app": "py", "tier": "x"}
    via_grpc = await https_apiserver.client.get(core.Pod, "py", namespace="default")
    assert dict(via_grpc.metadata.labels) == {"app": "py", "tier": "x"}
    pods = await call(v1.list_namespaced_pod, "default", label_selector="tier=x")
    assert [p.metadata.name for p in pods.items] == ["py"]
    await call(v1.create_namespaced_config_map, "default",
               k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="settings"), data={"a": "1"}))
    cm = await call(v1.read_namespaced_config_map, "settings", "default")
    assert cm.data == {"a": "1"}
    await call(v1.delete_namespaced_config_map, "settings", "default")
    deleted = await call(v1.delete_namespaced_pod, "py", "default")
    assert deleted.metadata.name == "py"
    with pytest.raises(k8s.ApiException) as e:
        await call(v1.read_namespaced_pod, "py", "default")
    assert e.value.status == 404


async def test_errors_carry_kubernetes_status(api: k8s.ApiClient, https_apiserver: ApiServer) -> None:
    v1 = k8s.CoreV1Api(api)
    await call(v1.create_namespaced_pod, "default", _pod("dup"))
    with pytest.raises(k8s.ApiException) as e:
        await call(v1.create_namespaced_pod, "default", _pod("dup"))
    assert e.value.status == 409 and '"reason":"AlreadyExists"' in e.value.body
    with pytest.raises(k8s.ApiException) as e:
        await call(v1.create_namespaced_pod, "default", _pod("bad", image=""))
    assert e.value.status == 422 and '"field":"spec.containers[0].image"' in e.value.body
    anonymous = k8s.Configuration(host=api.configuration.host)
    anonymous.ssl_ca_cert = str(https_apiserver.cfg.data_dir / "pki" / "ca.crt")
    with k8s.ApiClient(anonymous) as unauthenticated, pytest.raises(k8s.ApiException) as e:
        await call(k8s.CoreV1Api(unauthenticated).list_namespaced_pod, "default")
    assert e.value.status == 401 and '"reason":"Unauthorized"' in e.value.body


async def test_watch_stream_with_timeout(api: k8s.ApiClient) -> None:
    v1 = k8s.CoreV1Api(api)
    await call(v1.create_namespaced_pod, "default", _pod("watched"))

    def stream() -> list[tuple[str, str]]:
        w = k8s_watch.Watch()
        return [(ev["type"], ev["object"].metadata.name)
                for ev in w.stream(v1.list_namespaced_pod, "default", timeout_seconds=1)]

    # No resourceVersion: the current pods come as ADDED, then the stream ends at its timeout.
    assert await call(stream) == [("ADDED", "watched")]


MANIFESTS = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: site}
data: {index.html: hello}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: site, labels: {app: site}}
spec:
  replicas: 2
  selector: {matchLabels: {app: site}}
  template:
    metadata: {labels: {app: site}}
    spec:
      containers: [{name: web, image: "nginx:1.15.4"}]
"""


async def test_create_from_yaml(api: k8s.ApiClient, https_apiserver: ApiServer, tmp_path: Path) -> None:
    f = tmp_path / "site.yaml"
    f.write_text(MANIFESTS)
    # The client picks each document's API class from apiVersion/kind (CoreV1Api, AppsV1Api) and creates it.
    created = await call(k8s_utils.create_from_yaml, api, str(f))
    assert [[type(o).__name__ for o in doc] for doc in created] == [["V1ConfigMap"], ["V1Deployment"]]
    d = await https_apiserver.client.get(apps.Deployment, "site", namespace="default")
    assert d.spec.replicas == 2 and d.spec.template.spec.containers[0].image == "nginx:1.15.4"
    cm = await https_apiserver.client.get(core.ConfigMap, "site", namespace="default")
    assert dict(cm.data) == {"index.html": "hello"}
    # Again: every document refused as the server says (AlreadyExists), collected into one error.
    with pytest.raises(k8s_utils.FailToCreateError) as e:
        await call(k8s_utils.create_from_yaml, api, str(f))
    assert [(x.status, x.reason) for x in e.value.api_exceptions] == [(409, "Conflict")] * 2
    assert all('"reason":"AlreadyExists"' in x.body for x in e.value.api_exceptions)
    # apply=True: each document as server-side apply through the dynamic client (discovery, then the patch).
    # As in Kubernetes: replicas belongs to the creator's manager (OpenAPI-Generator), so changing it conflicts.
    f.write_text(MANIFESTS.replace("replicas: 2", "replicas: 3"))
    with pytest.raises(k8s_utils.FailToCreateError) as e:
        await call(k8s_utils.create_from_yaml, api, str(f), apply=True)
    [conflict] = e.value.api_exceptions  # the ConfigMap, unchanged, applied cleanly
    assert conflict.status == 409 and 'conflict with \\"OpenAPI-Generator\\"' in conflict.body
    assert '"field":".spec.replicas"' in conflict.body
    d = await https_apiserver.client.get(apps.Deployment, "site", namespace="default")
    assert d.spec.replicas == 2  # nothing half-written
    await call(k8s_utils.create_from_yaml, api, str(f), apply=True, force_conflicts=True)
    d = await https_apiserver.client.get(apps.Deployment, "site", namespace="default")
    assert d.spec.replicas == 3
    assert ("python-client", "Apply") in [(m.manager, m.operation) for m in d.metadata.managed_fields]
