"""Kubernetes JSON/YAML <-> messages: strictness, paths, special types, round trips."""

from __future__ import annotations

import pytest

from pybernetes.api import codec, objects
from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.errors import Invalid, ManifestError

DEPLOY = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 0
  selector:
    matchLabels: {app: web}
  strategy:
    rollingUpdate: {maxSurge: 1, maxUnavailable: "25%"}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: web
        image: localhost:5000/busybox:stable
        ports: [{containerPort: 8080, name: http}]
        resources:
          limits: {cpu: 1, memory: 64Mi}
          requests: {cpu: 100m}
        readinessProbe:
          httpGet: {path: /, port: http}
      volumes:
      - name: scratch
        emptyDir: {}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
"""


def test_load_multi_document_and_round_trip() -> None:
    objs = codec.load_manifests(DEPLOY, "web.yaml")
    d, s = objs
    assert isinstance(d, apps.Deployment) and isinstance(s, core.Service)
    assert d.spec.HasField("replicas") and d.spec.replicas == 0  # optional keeps an explicit 0
    assert d.spec.strategy.rolling_update.max_surge.int_val == 1
    assert d.spec.strategy.rolling_update.max_unavailable.str_val == "25%"
    c = d.spec.template.spec.containers[0]
    assert c.resources.limits["cpu"].string == "1" and c.resources.requests["cpu"].string == "100m"
    assert c.readiness_probe.http_get.port.str_val == "http"
    assert d.spec.template.spec.volumes[0].HasField("empty_dir")
    out = codec.to_dict(d)
    assert out["apiVersion"] == "apps/v1" and out["kind"] == "Deployment"
    assert out["spec"]["replicas"] == 0
    assert out["spec"]["template"]["spec"]["volumes"][0]["emptyDir"] == {}
    assert out["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 0
    assert codec.from_dict(out, apps.Deployment) == d


def test_unknown_field_and_wrong_type_name_their_paths() -> None:
    text = DEPLOY.replace("image: localhost", "imagee: localhost").replace("containerPort: 8080", 'containerPort: "x"')
    with pytest.raises(ManifestError) as ei:
        codec.load_manifests(text, "web.yaml")
    msg = str(ei.value)
    assert "web.yaml: document 1 (Deployment/web)" in msg
    paths = {e.path for e in ei.value.errors}
    assert "spec.template.spec.containers[0].imagee" in paths
    assert "spec.template.spec.containers[0].ports[0].containerPort" in paths


def test_unknown_kind_and_missing_type_meta() -> None:
    with pytest.raises(Invalid, match='no matches for kind "Deployment" in version "v1"'):
        codec.parse_object({"apiVersion": "v1", "kind": "Deployment", "metadata": {"name": "x"}})
    with pytest.raises(Invalid) as ei:
        codec.parse_object({"metadata": {"name": "x"}})
    assert {c.path for c in ei.value.causes} == {"apiVersion", "kind"}


def test_bad_quantity_and_time() -> None:
    with pytest.raises(Invalid) as ei:
        codec.from_dict({"spec": {"containers": [{"name": "a", "image": "i",
                                                  "resources": {"limits": {"cpu": "lots"}}}]}}, core.Pod)
    assert ei.value.causes[0].path == "spec.containers[0].resources.limits[cpu]"
    with pytest.raises(Invalid):
        codec.from_dict({"metadata": {"creationTimestamp": "yesterday"}}, core.Pod)
    p = codec.from_dict({"metadata": {"creationTimestamp": "2024-01-02T03:04:05Z"}}, core.Pod)
    assert codec.to_dict(p)["metadata"]["creationTimestamp"] == "2024-01-02T03:04:05Z"


def test_yaml_keeps_timestamps_and_numbers_as_kubernetes_does() -> None:
    objs = codec.load_manifests("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, annotations: "
                                "{when: 2024-01-01}}\ndata: {k: v}\n")
    cm = objs[0]
    assert isinstance(cm, core.ConfigMap)
    assert cm.metadata.annotations["when"] == "2024-01-01"
    with pytest.raises(ManifestError, match="expected string"):
        codec.load_manifests("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {port: 80}\n")


def test_secret_bytes_and_json_names() -> None:
    s = codec.from_dict({"metadata": {"name": "s"}, "data": {"pw": "aGVsbG8="}}, core.Secret)
    assert s.data["pw"] == b"hello"
    assert codec.to_dict(s)["data"] == {"pw": "aGVsbG8="}
    pod = codec.from_dict({"status": {"podIP": "10.244.1.2", "hostIP": "172.30.0.11"}}, core.Pod)
    assert pod.status.pod_ip == "10.244.1.2"
    assert codec.to_dict(pod)["status"] == {"podIP": "10.244.1.2", "hostIP": "172.30.0.11"}


def test_list_kind_expands() -> None:
    objs = codec.load_manifests('{"apiVersion": "v1", "kind": "List", "items": ['
                                '{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}},'
                                '{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "b"}}]}')
    assert [objects.meta_of(o).name for o in objs] == ["a", "b"]


def test_invalid_yaml_is_a_manifest_error() -> None:
    with pytest.raises(ManifestError, match="invalid YAML"):
        codec.load_manifests("a: [", "broken.yaml")
