"""The pure parts of the apiserver's Kubernetes REST front door: URL routing, errors as Status, discovery
documents, server-side tables, DeleteOptions, and the kubeconfig pbctl reads its gRPC address from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from multidict import MultiDict

from pybernetes import errors
from pybernetes.api import kinds
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.client import config as client_config
from services.apiserver.http import discovery, openapi, routing, status, tables
from services.apiserver.http.resources import delete_options


def test_routing_reads_urls_as_kube_apiserver_does() -> None:
    t = routing.parse("", "v1", "namespaces/ns1/pods/web/status")
    assert (t.info.plural, t.namespace, t.name, t.subresource) == ("pods", "ns1", "web", "status")
    t = routing.parse("", "v1", "namespaces/ns1")
    assert (t.info.plural, t.namespace, t.name) == ("namespaces", "", "ns1")
    t = routing.parse("", "v1", "namespaces/ns1/status")
    assert (t.info.plural, t.name, t.subresource) == ("namespaces", "ns1", "status")
    t = routing.parse("apps", "v1", "namespaces/ns1/deployments")
    assert (t.info.plural, t.namespace, t.name) == ("deployments", "ns1", "")
    assert routing.parse("", "v1", "nodes/n1").name == "n1"
    for group, version, tail in (("", "v1", "deployments"), ("apps", "v1", "pods"), ("", "v1", "nosuch"),
                                 ("", "v1", "namespaces/ns1/nodes/n1"), ("", "v1", "pods/a/b/c")):
        with pytest.raises(errors.NotFound):
            routing.parse(group, version, tail)


def test_errors_become_status_with_reason_code_and_causes() -> None:
    e = errors.Invalid('Pod "p" is invalid: spec.containers[0].image: Required value', kind="Pod", name="p",
                       causes=[errors.FieldError("spec.containers[0].image", "Required value", "FieldValueRequired")])
    st = status.failure(e)
    assert st["kind"] == "Status" and st["status"] == "Failure" and st["code"] == 422 and st["reason"] == "Invalid"
    assert st["details"]["causes"] == [{"reason": "FieldValueRequired", "message": "Required value",
                                        "field": "spec.containers[0].image"}]
    nf = status.failure(errors.NotFound('pods "x" not found'), kind="pods", name="x")
    assert (nf["code"], nf["reason"], nf["details"]) == (404, "NotFound", {"name": "x", "kind": "pods"})
    assert status.failure(errors.AlreadyExists("x"))["code"] == 409
    assert status.failure(errors.Unauthorized("x"))["reason"] == "Unauthorized"
    ok = status.success(kind="configmaps", name="c", uid="u")
    assert ok["status"] == "Success" and ok["details"] == {"name": "c", "kind": "configmaps", "uid": "u"}


def test_legacy_discovery_lists_every_kind_with_short_names_and_subresources() -> None:
    assert discovery.api_versions("127.0.0.1:1")["versions"] == ["v1"]
    groups = {g["name"] for g in discovery.api_group_list()["groups"]}
    assert {"apps", "coordination.k8s.io"} <= groups
    core_list = discovery.api_resource_list("", "v1")
    assert core_list is not None
    by_name = {r["name"]: r for r in core_list["resources"]}
    assert by_name["pods"]["shortNames"] == ["po"] and by_name["pods"]["categories"] == ["all"]
    assert by_name["pods/status"]["verbs"] == ["get", "patch", "update"]
    assert by_name["pods/binding"]["kind"] == "Binding"
    assert by_name["nodes"]["namespaced"] is False
    assert discovery.api_resource_list("nosuch", "v1") is None


def test_aggregated_discovery_as_kubectl_asks_for_it() -> None:
    accept = ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
              "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json")
    assert discovery.aggregated_version(accept) == "v2"
    assert discovery.aggregated_version("application/json") is None
    apis = discovery.aggregated(False, "v2")
    assert apis["kind"] == "APIGroupDiscoveryList" and apis["apiVersion"] == "apidiscovery.k8s.io/v2"
    apps = next(i for i in apis["items"] if i["metadata"].get("name") == "apps")
    deploy = next(r for r in apps["versions"][0]["resources"] if r["resource"] == "deployments")
    assert deploy["scope"] == "Namespaced" and deploy["shortNames"] == ["deploy"]
    assert deploy["responseKind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}
    core_items = discovery.aggregated(True, "v2")["items"]
    assert len(core_items) == 1 and "name" not in core_items[0]["metadata"]


def test_openapi_v3_index_links_each_group_version_with_the_hash_of_its_document() -> None:
    root = openapi.v3_index()["paths"]
    assert set(root) >= {"api/v1", "apis/apps/v1"}
    body = openapi.group_version_document("", "v1")
    assert body is not None
    assert root["api/v1"]["serverRelativeURL"] == f"/openapi/v3/api/v1?hash={openapi.document_hash(body)}"
    assert len(openapi.document_hash(body)) == 128  # sha512, upper-case hex, as kube-apiserver
    doc = json.loads(body)
    op = doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"]
    assert op["x-kubernetes-group-version-kind"] == {"group": "", "version": "v1", "kind": "Pod"}
    assert any(p["name"] == "fieldValidation" and p["in"] == "query" for p in op["parameters"])


def test_pod_table_has_kubectl_columns_and_wide_ones_at_priority_one() -> None:
    pod = core.Pod()
    pod.metadata.name = "web"
    pod.metadata.creation_timestamp.seconds = 1000
    pod.spec.containers.add(name="c", image="nginx")
    pod.spec.node_name = "n1"
    pod.status.phase = "Running"
    pod.status.pod_ip = "10.0.0.9"
    cs = pod.status.container_statuses.add(name="c", ready=True, restart_count=0)
    cs.state.running.SetInParent()
    t = tables.table(kinds.for_class(core.Pod), [pod], resource_version="7", now=1000 + 300)
    names = [(c["name"], c["priority"]) for c in t["columnDefinitions"]]
    assert names[:5] == [("Name", 0), ("Ready", 0), ("Status", 0), ("Restarts", 0), ("Age", 0)]
    assert [n for n, p in names if p == 1] == ["IP", "Node", "Nominated Node", "Readiness Gates"]
    row = t["rows"][0]
    assert row["cells"] == ["web", "1/1", "Running", "0", "5m", "10.0.0.9", "n1", "<none>", "<none>"]
    assert row["object"]["kind"] == "PartialObjectMetadata" and row["object"]["metadata"]["name"] == "web"
    assert t["metadata"] == {"resourceVersion": "7"}


def test_other_kinds_get_their_kubectl_columns_and_unknown_kinds_name_and_age() -> None:
    cm = core.ConfigMap()
    cm.metadata.name = "c"
    t = tables.table(kinds.for_class(core.ConfigMap), [cm], include="None", now=0)
    assert [c["name"] for c in t["columnDefinitions"]] == ["Name", "Data", "Age"]
    assert t["rows"] == [{"cells": ["c", "0", "<unknown>"]}]
    binding = kinds.for_class(core.Binding)  # the one kind without kubectl columns
    assert [c["name"] for c in tables.columns(binding)] == ["Name", "Age"]
    assert tables.wants_table("application/json;as=Table;v=v1;g=meta.k8s.io,application/json")
    assert not tables.wants_table("application/json")


def test_delete_options_from_body_and_query() -> None:
    opts = delete_options(b'{"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Foreground",'
                          b'"preconditions":{"uid":"u1"}}', MultiDict())
    assert opts.propagation_policy == "Foreground" and opts.preconditions.uid == "u1"
    opts = delete_options(b"", MultiDict([("gracePeriodSeconds", "0"), ("dryRun", "All")]))
    assert opts.HasField("grace_period_seconds") and opts.grace_period_seconds == 0 and list(opts.dry_run) == ["All"]
    with pytest.raises(errors.BadRequest):
        delete_options(b'{"propagationPolicy":"Sideways"}', MultiDict())


def test_kubeconfig_is_standard_and_names_the_grpc_address(tmp_path: Path) -> None:
    path = tmp_path / "admin.conf"
    client_config.write_kubeconfig(path, "https://127.0.0.1:6443", "127.0.0.1:7443", "tok", b"PEM")
    cfg = client_config.load(str(path))
    assert (cfg.server, cfg.token) == ("127.0.0.1:7443", "tok")
    assert path.stat().st_mode & 0o077 == 0
    assert cfg.https_server == "https://127.0.0.1:6443" and cfg.ca_pem == b"PEM"
    old = tmp_path / "old.conf"  # the older gRPC-only shape: a bare host:port server
    old.write_text("clusters: [{name: d, cluster: {server: '10.0.0.1:6443'}}]\n"
                   "users: [{name: d, user: {token: tok}}]\n"
                   "contexts: [{name: d, context: {cluster: d, user: d}}]\ncurrent-context: d\n")
    assert client_config.load(str(old)).server == "10.0.0.1:6443"
    # no pybernetes.io/grpc extension: the server's host on the gRPC port
    assert client_config.grpc_address({"server": "https://h:1/"}) == "h:6442"
