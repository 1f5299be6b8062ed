"""The scale and eviction subresources through real kubectl v1.33 and the official Python client, against a real
apiserver and etcd (no kubelet: neither needs one)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pybernetes import errors
from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.core.v1 import core_pb2 as core
from tests.integration.conftest import ApiServer
from tests.integration.test_rest_kubectl import DEPLOYMENT, POD, Kubectl

kubernetes = pytest.importorskip("kubernetes")
from kubernetes import client as k8s  # noqa: E402
from kubernetes import config as k8s_config  # noqa: E402

pytestmark = pytest.mark.integration

STATEFULSET = """\
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 1
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: busybox}]}
"""

RC = """\
apiVersion: v1
kind: ReplicationController
metadata: {name: old}
spec:
  replicas: 2
  selector: {app: old}
  template:
    metadata: {labels: {app: old}}
    spec: {containers: [{name: c, image: busybox}]}
"""


@pytest.fixture
def kubectl(https_apiserver: ApiServer, tmp_path: Path) -> Kubectl:
    return Kubectl(https_apiserver, tmp_path / "home")


@pytest.fixture
def api(https_apiserver: ApiServer) -> Iterator[k8s.ApiClient]:
    c = k8s_config.new_client_from_config(config_file=str(https_apiserver.admin_conf))
    try:
        yield c
    finally:
        c.close()


async def call(fn: Any, *args: Any, **kw: Any) -> Any:
    return await asyncio.to_thread(fn, *args, **kw)  # the client blocks; the apiserver runs on this loop


async def test_kubectl_scale_every_scalable_kind(kubectl: Kubectl, https_apiserver: ApiServer) -> None:
    await kubectl.run("create", "-f", kubectl.file("d.yaml", DEPLOYMENT.replace("REPLICAS", "1")))
    await kubectl.run("create", "-f", kubectl.file("s.yaml", STATEFULSET))
    await kubectl.run("create", "-f", kubectl.file("rc.yaml", RC))
    _, out, _ = await kubectl.run("scale", "deployment", "shop", "--replicas=3")
    assert out.strip() == "deployment.apps/shop scaled"
    d = await https_apiserver.client.get(apps.Deployment, "shop", namespace="default")
    assert d.spec.replicas == 3
    _, out, _ = await kubectl.run("scale", "statefulset/db", "rc/old", "--replicas=0")
    assert out.split("\n")[:2] == ["statefulset.apps/db scaled", "replicationcontroller/old scaled"]
    sts = await https_apiserver.client.get(apps.StatefulSet, "db", namespace="default")
    rc = await https_apiserver.client.get(core.ReplicationController, "old", namespace="default")
    assert (sts.spec.replicas, rc.spec.replicas) == (0, 0)
    # --current-replicas is a precondition kubectl checks against the Scale it reads.
    rc_, _, err = await kubectl.run("scale", "deployment", "shop", "--current-replicas=2", "--replicas=5", ok=False)
    assert rc_ != 0 and "Expected replicas to be 2, was 3" in err
    _, out, _ = await kubectl.run("get", "--raw", "/apis/apps/v1/namespaces/default/deployments/shop/scale")
    scale = json.loads(out)
    assert (scale["apiVersion"], scale["kind"], scale["spec"], scale["status"]["selector"]) == \
        ("autoscaling/v1", "Scale", {"replicas": 3}, "app=shop")
    _, out, _ = await kubectl.run("get", "--raw", "/api/v1/namespaces/default/replicationcontrollers/old/scale")
    assert json.loads(out)["status"]["selector"] == "app=old"
    rc_, _, err = await kubectl.run("scale", "deployment", "shop", "--replicas=-1", ok=False)
    assert rc_ != 0 and "replicas" in err
    rc_, _, err = await kubectl.run("scale", "deployment", "nope", "--replicas=1", ok=False)
    assert 'deployments.apps "nope" not found' in err
    _, out, _ = await kubectl.run("get", "--raw", "/apis/apps/v1")
    subs = {r["name"]: r for r in json.loads(out)["resources"]}
    assert (subs["deployments/scale"]["kind"], subs["deployments/scale"]["group"],
            subs["deployments/scale"]["version"]) == ("Scale", "autoscaling", "v1")


async def test_python_client_reads_patches_and_replaces_scale(api: k8s.ApiClient,
                                                              https_apiserver: ApiServer) -> None:
    apps_api = k8s.AppsV1Api(api)
    body = k8s.V1Deployment(
        metadata=k8s.V1ObjectMeta(name="web"),
        spec=k8s.V1DeploymentSpec(replicas=1, selector=k8s.V1LabelSelector(match_labels={"app": "web"}),
                                  template=k8s.V1PodTemplateSpec(
                                      metadata=k8s.V1ObjectMeta(labels={"app": "web"}),
                                      spec=k8s.V1PodSpec(containers=[k8s.V1Container(name="c", image="nginx")]))))
    await call(apps_api.create_namespaced_deployment, "default", body)
    scale = await call(apps_api.read_namespaced_deployment_scale, "web", "default")
    assert isinstance(scale, k8s.V1Scale) and scale.spec.replicas == 1 and scale.status.selector == "app=web"
    scale = await call(apps_api.patch_namespaced_deployment_scale, "web", "default", {"spec": {"replicas": 4}})
    assert scale.spec.replicas == 4
    scale.spec.replicas = 2
    scale = await call(apps_api.replace_namespaced_deployment_scale, "web", "default", scale)
    assert scale.spec.replicas == 2
    d = await https_apiserver.client.get(apps.Deployment, "web", namespace="default")
    assert d.spec.replicas == 2
    # A stale resourceVersion in a replace is a Conflict, as for the object itself.
    stale = k8s.V1Scale(metadata=k8s.V1ObjectMeta(name="web", resource_version="1"),
                        spec=k8s.V1ScaleSpec(replicas=7))
    with pytest.raises(k8s.ApiException) as e:
        await call(apps_api.replace_namespaced_deployment_scale, "web", "default", stale)
    assert e.value.status == 409


async def test_eviction_deletes_the_pod(kubectl: Kubectl, api: k8s.ApiClient,
                                        https_apiserver: ApiServer) -> None:
    """No PodDisruptionBudgets exist here: every eviction is allowed (201, a Success Status)."""
    v1 = k8s.CoreV1Api(api)
    await kubectl.run("create", "-f", kubectl.file("pod.yaml", POD))
    ev = k8s.V1Eviction(metadata=k8s.V1ObjectMeta(name="web", namespace="default"),
                        delete_options=k8s.V1DeleteOptions(grace_period_seconds=0))
    out = await call(v1.create_namespaced_pod_eviction, "web", "default", ev)
    assert out is not None
    with pytest.raises(errors.NotFound):
        await https_apiserver.client.get(core.Pod, "web", namespace="default")
    with pytest.raises(k8s.ApiException) as e:
        await call(v1.create_namespaced_pod_eviction, "web", "default", ev)
    assert e.value.status == 404
    # A pod on no node goes at once; kubectl drain's path (raw eviction POST) answers 201 too.
    await kubectl.run("create", "-f", kubectl.file("pod.yaml", POD))
    doc = json.dumps({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "web"}})
    _, out, _ = await kubectl.run("create", "--raw", "/api/v1/namespaces/default/pods/web/eviction",
                                  "-f", kubectl.file("ev.json", doc))
    assert json.loads(out)["status"] == "Success"
    with pytest.raises(errors.NotFound):
        await https_apiserver.client.get(core.Pod, "web", namespace="default")
