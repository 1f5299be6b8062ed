"""The apiserver's server-side Tables and pbctl's `get` print from one table (pybernetes/api/printing.py):
for the same objects, kubectl (upper-casing the server's column names) and pbctl show the same columns and cells."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf.message import Message

from pbctl import printers
from pybernetes.api import codec, kinds
from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.core.v1 import core_pb2 as core
from services.apiserver.http import tables

NOW = 1_700_000_000.0
CREATED = {"creationTimestamp": "2023-11-14T22:00:00Z"}

DEPLOYMENT = codec.from_dict({"metadata": {"name": "web", "namespace": "default", **CREATED}, "spec": {
    "replicas": 3, "selector": {"matchLabels": {"app": "web"}},
    "template": {"spec": {"containers": [{"name": "c", "image": "nginx"}, {"name": "s", "image": "envoy"}]}}},
    "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}}, apps.Deployment)
SERVICE = codec.from_dict({"metadata": {"name": "svc", "namespace": "default", **CREATED}, "spec": {
    "type": "NodePort", "clusterIP": "10.96.0.10", "selector": {"app": "web"},
    "ports": [{"port": 80, "nodePort": 30080}, {"port": 53, "protocol": "UDP"}]}}, core.Service)
NODE = codec.from_dict({"metadata": {"name": "n1", "labels": {"node-role.kubernetes.io/control-plane": ""},
                                     **CREATED},
                        "status": {"conditions": [{"type": "Ready", "status": "True"}],
                                   "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
                                   "nodeInfo": {"kubeletVersion": "v1.0", "osImage": "Debian",
                                                "kernelVersion": "6.1", "containerRuntimeVersion": "containerd://2"}}},
                       core.Node)


@pytest.mark.parametrize("obj", [DEPLOYMENT, SERVICE, NODE], ids=["deployments", "services", "nodes"])
@pytest.mark.parametrize("wide", [False, True])
def test_server_table_matches_pbctl_get(obj: Message, wide: bool) -> None:
    info = kinds.for_message(obj)
    t = tables.table(info, [obj], now=NOW)
    # kubectl prints priority-0 columns unless -o wide, with the names upper-cased
    shown = [i for i, c in enumerate(t["columnDefinitions"]) if wide or c["priority"] == 0]
    server_headers = [t["columnDefinitions"][i]["name"].upper() for i in shown]
    server_cells: list[Any] = [t["rows"][0]["cells"][i] for i in shown]
    assert server_headers == printers.headers_for(info, wide=wide)
    assert server_cells == printers.row_for(info, obj, NOW, wide=wide)


def test_server_table_has_kubernetes_columns_for_workloads() -> None:
    t = tables.table(kinds.for_class(apps.Deployment), [DEPLOYMENT], now=NOW)
    assert [c["name"] for c in t["columnDefinitions"]] == [
        "Name", "Ready", "Up-to-date", "Available", "Age", "Containers", "Images", "Selector"]
    assert t["rows"][0]["cells"] == ["web", "2/3", "3", "2", "13m", "c,s", "nginx,envoy", "app=web"]


def test_resourcequota_and_limitrange_rows_as_kubectl_prints_them() -> None:
    from pybernetes.api import printing
    from pybernetes.api.core.v1 import core_pb2 as core

    q = core.ResourceQuota()
    q.metadata.name = "compute"
    q.metadata.creation_timestamp.seconds = 1_000
    for k, v in {"pods": "10", "requests.cpu": "2", "limits.memory": "1Gi"}.items():
        q.spec.hard[k].string = v
        q.status.hard[k].string = v
    q.status.used["pods"].string = "3"
    q.status.used["requests.cpu"].string = "500m"
    assert [c.name for c in printing.columns("resourcequotas")] == ["Name", "Age", "Request", "Limit"]
    assert printing.cells("resourcequotas", q, 1_060) == ["compute", "60s", "pods: 3/10, requests.cpu: 500m/2",
                                                          "limits.memory: 0/1Gi"]
    lr = core.LimitRange()
    lr.metadata.name = "limits"
    lr.metadata.creation_timestamp.seconds = 86_400
    assert [c.name for c in printing.columns("limitranges")] == ["Name", "Created At"]
    assert printing.cells("limitranges", lr, 90_000) == ["limits", "1970-01-02T00:00:00Z"]
