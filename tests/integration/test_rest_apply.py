"""Real kubectl v1.33 and the official Python client against a real apiserver and etcd: OpenAPI (`explain`,
server-side field validation), server-side apply with managedFields and conflicts, deletecollection,
resourceVersionMatch and 410 Expired at watch start."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pybernetes import errors
from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.core.v1 import core_pb2 as core
from tests.integration.conftest import ApiServer
from tests.integration.test_rest_kubectl import DEPLOYMENT, POD, Kubectl

kubernetes = pytest.importorskip("kubernetes")
from kubernetes import client as k8s  # noqa: E402
from kubernetes import config as k8s_config  # noqa: E402

pytestmark = pytest.mark.integration


@pytest.fixture
def kc(https_apiserver: ApiServer, tmp_path: Path) -> Kubectl:
    return Kubectl(https_apiserver, tmp_path / "home")


@pytest.fixture
def api(https_apiserver: ApiServer) -> Iterator[k8s.ApiClient]:
    c = k8s_config.new_client_from_config(config_file=str(https_apiserver.cfg.data_dir / "admin.conf"))
    try:
        yield c
    finally:
        c.close()


async def call(fn: Any, *args: Any, **kw: Any) -> Any:
    return await asyncio.to_thread(fn, *args, **kw)


async def test_explain_reads_the_served_openapi(kc: Kubectl) -> None:
    _, out, _ = await kc.run("explain", "pods")
    assert "KIND:       Pod" in out and "VERSION:    v1" in out
    assert "  spec\t<PodSpec>\n    Desired behavior of the pod." in out
    _, out, _ = await kc.run("explain", "deployment.spec.template.spec.containers")
    assert "GROUP:      apps" in out and "FIELD: containers <[]Container>" in out
    assert "  name\t<string> -required-\n    Name of the container" in out
    assert "  ports\t<[]ContainerPort>" in out
    _, out, _ = await kc.run("explain", "deployment.spec", "--recursive")
    assert "containerPort\t<integer> -required-" in out


async def test_apply_validates_on_the_server_strictly(kc: Kubectl, https_apiserver: ApiServer) -> None:
    unknown = kc.file("unknown.yaml", POD.replace("name: web", "name: odd") + "  foo: 1\n")
    rc, _, err = await kc.run("apply", "-f", unknown, ok=False)
    assert rc == 1
    assert 'strict decoding error: unknown field "spec.foo"' in err and "BadRequest" in err
    with pytest.raises(errors.NotFound):
        await https_apiserver.client.get(core.Pod, "odd", namespace="default")
    # Warn (what kubectl sends for --validate=warn): accepted without the field, with a warning.
    rc, out, err = await kc.run("apply", "--validate=warn", "-f", unknown)
    assert out.strip() == "pod/odd created" and 'unknown field "spec.foo"' in err
    # A patch (client-side apply of a changed manifest) is validated the same way, before anything is written.
    rc, _, err = await kc.run("apply", "-f", kc.file("unknown.yaml", POD.replace("name: web", "name: odd") +
                                                    "  bar: 2\n"), ok=False)
    assert rc == 1 and 'strict decoding error: unknown field "spec.bar"' in err


async def test_server_side_apply_owns_fields_conflicts_and_force(kc: Kubectl, https_apiserver: ApiServer) -> None:
    manifest = kc.file("deploy.yaml", DEPLOYMENT.replace("REPLICAS", "2"))
    _, out, _ = await kc.run("apply", "--server-side", "-f", manifest)
    assert out.strip() == "deployment.apps/shop serverside-applied"
    _, out, _ = await kc.run("get", "deploy", "shop", "-o", "json", "--show-managed-fields")
    entries = json.loads(out)["metadata"]["managedFields"]
    mine = next(e for e in entries if e["manager"] == "kubectl")
    assert (mine["operation"], mine["apiVersion"], mine["fieldsType"]) == ("Apply", "apps/v1", "FieldsV1")
    assert mine["fieldsV1"]["f:spec"]["f:replicas"] == {}
    assert 'k:{"name":"web"}' in mine["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
    # Re-applied with a label dropped: the label goes (nobody else owns it).
    with_label = DEPLOYMENT.replace("REPLICAS", "2").replace("labels: {app: shop}\nspec",
                                                             "labels: {app: shop, x: why}\nspec", 1)
    await kc.run("apply", "--server-side", "-f", kc.file("deploy.yaml", with_label))
    d = await https_apiserver.client.get(apps.Deployment, "shop", namespace="default")
    assert d.metadata.labels["x"] == "why"
    await kc.run("apply", "--server-side", "-f", kc.file("deploy.yaml", DEPLOYMENT.replace("REPLICAS", "2")))
    d = await https_apiserver.client.get(apps.Deployment, "shop", namespace="default")
    assert "x" not in d.metadata.labels
    # Another manager changing replicas: a conflict, as kubectl shows it.
    other = kc.file("other.yaml", DEPLOYMENT.replace("REPLICAS", "5"))
    rc, _, err = await kc.run("apply", "--server-side", "--field-manager=ci", "-f", other, ok=False)
    assert rc == 1
    assert 'Apply failed with 1 conflict: conflict with "kubectl": .spec.replicas' in err
    assert "Please review the fields above--they currently have other managers" in err
    _, out, _ = await kc.run("apply", "--server-side", "--field-manager=ci", "--force-conflicts", "-f", other)
    assert out.strip() == "deployment.apps/shop serverside-applied"
    d = await https_apiserver.client.get(apps.Deployment, "shop", namespace="default")
    assert d.spec.replicas == 5
    owners = {e.manager: json.loads(e.fields_v1.raw) for e in d.metadata.managed_fields}
    assert "f:replicas" in owners["ci"]["f:spec"] and "f:replicas" not in owners["kubectl"].get("f:spec", {})
    # An Update (kubectl scale) records its manager from the fieldManager kubectl sends.
    await kc.run("label", "deploy", "shop", "team=pay")
    d = await https_apiserver.client.get(apps.Deployment, "shop", namespace="default")
    upd = next(e for e in d.metadata.managed_fields if e.manager == "kubectl-label")
    assert upd.operation == "Update" and "f:team" in json.loads(upd.fields_v1.raw)["f:metadata"]["f:labels"]


async def test_client_side_apply_switches_a_deployment_to_recreate(kc: Kubectl, https_apiserver: ApiServer) -> None:
    # The schema's retainKeys on spec.strategy makes kubectl send $retainKeys: the defaulted rollingUpdate goes.
    await kc.run("apply", "-f", kc.file("deploy.yaml", DEPLOYMENT.replace("REPLICAS", "1")))
    recreate = DEPLOYMENT.replace("REPLICAS", "1").replace("  selector:", "  strategy: {type: Recreate}\n  selector:")
    _, out, _ = await kc.run("apply", "-f", kc.file("deploy.yaml", recreate))
    assert out.strip() == "deployment.apps/shop configured"
    d = await https_apiserver.client.get(apps.Deployment, "shop", namespace="default")
    assert d.spec.strategy.type == "Recreate" and not d.spec.strategy.HasField("rolling_update")


async def test_client_side_apply_and_create_record_update_managers(kc: Kubectl, https_apiserver: ApiServer) -> None:
    manifest = kc.file("pod.yaml", POD)
    await kc.run("apply", "-f", manifest)
    pod = await https_apiserver.client.get(core.Pod, "web", namespace="default")
    [entry] = pod.metadata.managed_fields
    assert (entry.manager, entry.operation) == ("kubectl-client-side-apply", "Update")
    fields = json.loads(entry.fields_v1.raw)
    assert "f:kubectl.kubernetes.io/last-applied-configuration" in fields["f:metadata"]["f:annotations"]
    _, out, _ = await kc.run("apply", "-f", manifest)
    assert out.strip() == "pod/web unchanged"
    again = await https_apiserver.client.get(core.Pod, "web", namespace="default")
    assert again.metadata.resource_version == pod.metadata.resource_version  # managedFields did not bump it


async def test_python_client_server_side_apply(api: k8s.ApiClient, https_apiserver: ApiServer) -> None:
    v1 = k8s.CoreV1Api(api)
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"a": "1", "b": "2"}}
    cm = await call(v1.patch_namespaced_config_map, "cfg", "default", body, field_manager="tool",
                    _content_type="application/apply-patch+yaml")
    assert cm.data == {"a": "1", "b": "2"}
    assert [(m.manager, m.operation) for m in cm.metadata.managed_fields] == [("tool", "Apply")]
    body["data"] = {"a": "1"}
    cm = await call(v1.patch_namespaced_config_map, "cfg", "default", body, field_manager="tool",
                    _content_type="application/apply-patch+yaml")
    assert cm.data == {"a": "1"}
    body["data"] = {"a": "9"}
    with pytest.raises(k8s.ApiException) as e:
        await call(v1.patch_namespaced_config_map, "cfg", "default", body, field_manager="other",
                   _content_type="application/apply-patch+yaml")
    assert e.value.status == 409
    status = json.loads(e.value.body)
    assert status["reason"] == "Conflict"
    assert status["details"]["causes"] == [{"reason": "FieldManagerConflict", "message": 'conflict with "tool"',
                                            "field": ".data.a"}]
    with pytest.raises(k8s.ApiException) as e:
        await call(v1.patch_namespaced_config_map, "cfg", "default", body,
                   _content_type="application/apply-patch+yaml")
    assert e.value.status == 400 and "fieldManager: Required value" in e.value.body
    elsewhere = {**body, "metadata": {"name": "cfg", "namespace": "kube-system"}}
    with pytest.raises(k8s.ApiException) as e:
        await call(v1.patch_namespaced_config_map, "cfg", "default", elsewhere, field_manager="tool",
                   _content_type="application/apply-patch+yaml")
    assert e.value.status == 400 and "namespace" in e.value.body
    dry = await call(v1.patch_namespaced_config_map, "cfg", "default", body, field_manager="tool", dry_run="All",
                     _content_type="application/apply-patch+yaml")
    assert dry.data == {"a": "9"}
    assert (await call(v1.read_namespaced_config_map, "cfg", "default")).data == {"a": "1"}  # nothing written


async def test_deletecollection_and_kubectl_delete_all(kc: Kubectl, api: k8s.ApiClient,
                                                       https_apiserver: ApiServer) -> None:
    for i, app in enumerate(("a", "a", "b", "c", "c")):
        await kc.run("run", f"p{i}", "--image=busybox", f"--labels=app={app}")
    v1 = k8s.CoreV1Api(api)
    st = await call(v1.delete_collection_namespaced_pod, "default", label_selector="app=a")
    assert st.kind == "PodList"  # what was deleted, as kube-apiserver answers (the client reads it as a Status)
    _, out, _ = await kc.run("get", "pods", "-o", "name")
    assert out.split() == ["pod/p2", "pod/p3", "pod/p4"]
    _, out, _ = await kc.run("delete", "pods", "-l", "app=b")
    assert out.strip() == 'pod "p2" deleted'
    _, out, _ = await kc.run("delete", "pods", "--all")
    assert out.split("\n")[:2] == ['pod "p3" deleted', 'pod "p4" deleted']
    _, out, err = await kc.run("get", "pods")
    assert "No resources found" in err


async def test_resource_version_match_and_expired_watch(kc: Kubectl, https_apiserver: ApiServer) -> None:
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: NAME}\ndata: {a: '1'}\n"
    await kc.run("create", "-f", kc.file("one.yaml", cm.replace("NAME", "one")))
    _, out, _ = await kc.run("get", "--raw", "/api/v1/namespaces/default/configmaps")
    rv = json.loads(out)["metadata"]["resourceVersion"]
    await kc.run("create", "-f", kc.file("two.yaml", cm.replace("NAME", "two")))
    _, out, _ = await kc.run("get", "--raw", f"/api/v1/namespaces/default/configmaps?resourceVersion={rv}"
                             "&resourceVersionMatch=Exact")
    doc = json.loads(out)
    assert [i["metadata"]["name"] for i in doc["items"]] == ["one"] and doc["metadata"]["resourceVersion"] == rv
    _, out, _ = await kc.run("get", "--raw", f"/api/v1/namespaces/default/configmaps?resourceVersion={rv}"
                             "&resourceVersionMatch=NotOlderThan")
    assert [i["metadata"]["name"] for i in json.loads(out)["items"]] == ["one", "two"]
    rc, _, err = await kc.run("get", "--raw", "/api/v1/namespaces/default/configmaps?resourceVersionMatch=Exact",
                              ok=False)
    assert rc == 1 and "resourceVersionMatch is forbidden unless resourceVersion is provided" in err
    # A watch from a version the cache no longer holds (its window starts after a restart): 410 Expired in
    # the stream, then the end.
    await https_apiserver.restart()
    _, out, _ = await kc.run("get", "--raw", f"/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}")
    event = json.loads(out.splitlines()[0])
    assert event["type"] == "ERROR"
    assert (event["object"]["code"], event["object"]["reason"]) == (410, "Expired")


async def test_openapi_v2_and_v3_documents(kc: Kubectl) -> None:
    _, out, _ = await kc.run("get", "--raw", "/openapi/v2")
    v2 = json.loads(out)
    assert v2["swagger"] == "2.0"
    pod = v2["definitions"]["io.k8s.api.core.v1.Pod"]
    assert pod["x-kubernetes-group-version-kind"] == [{"group": "", "kind": "Pod", "version": "v1"}]
    _, out, _ = await kc.run("get", "--raw", "/openapi/v3")
    url = json.loads(out)["paths"]["apis/apps/v1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/apis/apps/v1?hash=")
    _, out, _ = await kc.run("get", "--raw", url)
    schemas = yaml.safe_load(out)["components"]["schemas"]
    assert "io.k8s.api.apps.v1.Deployment" in schemas
