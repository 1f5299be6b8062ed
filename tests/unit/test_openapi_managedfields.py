"""OpenAPI generated from the proto descriptors, the managedFields sets (FieldsV1), and server-side apply's
merge: ownership, removal of fields the applier let go of, conflicts with Kubernetes' wording, force."""

from __future__ import annotations

from typing import Any

import pytest

from pybernetes import errors
from pybernetes.api import kinds, managedfields, openapi
from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.core.v1 import core_pb2 as core
from services.apiserver import apply

DEPLOY = kinds.for_class(apps.Deployment)


def test_definitions_carry_kubernetes_names_gvk_docs_required_and_patch_metadata() -> None:
    v2 = openapi.definitions([kinds.for_class(core.Pod), DEPLOY], v3=False)
    pod = v2["io.k8s.api.core.v1.Pod"]
    assert pod["x-kubernetes-group-version-kind"] == [{"group": "", "kind": "Pod", "version": "v1"}]
    assert pod["properties"]["spec"]["$ref"] == "#/definitions/io.k8s.api.core.v1.PodSpec"
    assert v2["io.k8s.api.apps.v1.Deployment"]["x-kubernetes-group-version-kind"][0]["group"] == "apps"
    containers = v2["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["type"] == "array"
    assert (containers["x-kubernetes-patch-merge-key"], containers["x-kubernetes-patch-strategy"]) == ("name", "merge")
    assert (containers["x-kubernetes-list-type"], containers["x-kubernetes-list-map-keys"]) == ("map", ["name"])
    assert "name" in v2["io.k8s.api.core.v1.Container"]["required"]
    assert v2["io.k8s.api.core.v1.Container"]["properties"]["image"]["description"]
    finalizers = v2["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"]["finalizers"]
    assert (finalizers["x-kubernetes-list-type"], finalizers["x-kubernetes-patch-strategy"]) == ("set", "merge")
    assert v2["io.k8s.apimachinery.pkg.apis.meta.v1.Time"] == {"type": "string", "format": "date-time"}
    labels = v2["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"]["labels"]
    assert labels["additionalProperties"] == {"type": "string"}
    assert v2["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["strategy"]["x-kubernetes-patch-strategy"] == \
        "retainKeys"
    assert v2["io.k8s.api.core.v1.PodSpec"]["properties"]["volumes"]["x-kubernetes-patch-strategy"] == \
        "merge,retainKeys"
    v3 = openapi.definitions([kinds.for_class(core.Pod)], v3=True)
    spec = v3["io.k8s.api.core.v1.Pod"]["properties"]["spec"]
    assert spec["allOf"] == [{"$ref": "#/components/schemas/io.k8s.api.core.v1.PodSpec"}] and spec["description"]


POD = {"metadata": {"name": "web", "labels": {"app": "web"}, "finalizers": ["x"], "uid": "u"},
       "spec": {"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}]}],
                "restartPolicy": "Always"},
       "status": {"phase": "Running"}}


def test_field_set_and_fields_v1_round_trip() -> None:
    s = managedfields.field_set(POD, core.Pod.DESCRIPTOR)
    c = 'k:{"name":"c"}'
    assert s == {("f:metadata", "f:labels", "f:app"), ("f:metadata", "f:finalizers", 'v:"x"'),
                 ("f:spec", "f:containers", c), ("f:spec", "f:containers", c, "f:name"),
                 ("f:spec", "f:containers", c, "f:image"), ("f:spec", "f:containers", c, "f:ports",
                                                            'k:{"containerPort":80}'),
                 ("f:spec", "f:containers", c, "f:ports", 'k:{"containerPort":80}', "f:containerPort"),
                 ("f:spec", "f:restartPolicy")}  # no status, no server-owned metadata
    v1 = managedfields.to_fields_v1(s)
    assert v1["f:spec"]["f:containers"][c]["."] == {} and v1["f:spec"]["f:restartPolicy"] == {}
    assert "." not in v1["f:spec"]
    assert managedfields.from_fields_v1(v1) == s
    assert managedfields.field_set(POD, core.Pod.DESCRIPTOR, subresource="status") == {("f:status", "f:phase")}
    assert managedfields.path_string(("f:spec", "f:containers", c, "f:image")) == '.spec.containers[name="c"].image'
    assert managedfields.value_at(POD, ("f:spec", "f:containers", c, "f:image")) == "nginx"


def test_record_update_gives_changed_fields_to_the_writer() -> None:
    entries = [managedfields.make_entry("a", "Update", "v1", "t", {("f:spec", "f:restartPolicy"),
                                                                    ("f:spec", "f:nodeName")})]
    changed = {("f:spec", "f:restartPolicy")}
    out = managedfields.record_update(entries, "b", "v1", "t2", changed, {("f:spec", "f:nodeName")})
    assert [(e["manager"], managedfields.entry_set(e)) for e in out] == [("b", changed)]


def _deploy(replicas: int, image: str = "nginx", labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "labels": labels or {"app": "d"}},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "c", "image": image}]}}}}


def _apply(live: dict[str, Any], applied: dict[str, Any], entries: list[dict[str, Any]], manager: str,
           force: bool = False) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    return apply.merge(live, applied, entries, manager, "apps/v1", DEPLOY, force=force, time="t")


def test_apply_owns_what_it_sends_removes_what_it_drops_and_conflicts_with_other_managers() -> None:
    obj, entries = _apply({}, _deploy(2, labels={"app": "d", "tier": "x"}), [], "alice")
    assert obj["spec"]["replicas"] == 2 and [e["operation"] for e in entries] == ["Apply"]
    # alice stops sending the tier label: nobody else owns it, so it goes.
    obj, entries = _apply(obj, _deploy(2), entries, "alice")
    assert obj["metadata"]["labels"] == {"app": "d"}
    # bob sets replicas to another value: a conflict, worded as Kubernetes does.
    with pytest.raises(errors.Conflict) as e:
        _apply(obj, _deploy(3), entries, "bob")
    assert e.value.message == 'Apply failed with 1 conflict: conflict with "alice": .spec.replicas'
    assert e.value.causes[0].reason == "FieldManagerConflict"
    # The same value is shared ownership, no conflict.
    _, shared = _apply(obj, _deploy(2), entries, "bob")
    assert [e["manager"] for e in shared] == ["alice", "bob"]
    # force takes it over: alice loses replicas, bob owns it.
    obj, entries = _apply(obj, _deploy(5, image="other"), entries, "bob", force=True)
    assert obj["spec"]["replicas"] == 5
    by = {e["manager"]: managedfields.entry_set(e) for e in entries}
    assert ("f:spec", "f:replicas") in by["bob"] and ("f:spec", "f:replicas") not in by["alice"]
    # An Update manager's fields conflict too, printed with its apiVersion and time.
    upd = [managedfields.make_entry("kubectl-edit", "Update", "apps/v1", "2026-01-01T00:00:00Z",
                                    {("f:spec", "f:replicas"), ("f:metadata", "f:labels", "f:app")})]
    with pytest.raises(errors.Conflict) as e:
        _apply(obj, _deploy(7, labels={"app": "z"}), upd, "carol")
    assert e.value.message.startswith("Apply failed with 2 conflicts: conflicts with \"kubectl-edit\" using "
                                      "apps/v1 at 2026-01-01T00:00:00Z:\n- .metadata.labels.app\n- .spec.replicas")


def test_a_reapply_that_changes_nothing_keeps_the_entries_as_they_were() -> None:
    obj, entries = _apply({}, _deploy(2), [], "alice")
    again, entries2 = apply.merge(obj, _deploy(2), entries, "alice", "apps/v1", DEPLOY, force=False, time="later")
    assert entries2 == entries and again == obj


def test_resource_version_match_is_validated_as_kubernetes_validates_list_options() -> None:
    from services.apiserver.rest import _list_revision

    assert _list_revision("", "", "") == 0 and _list_revision("12", "NotOlderThan", "") == 0
    assert _list_revision("12", "Exact", "") == 12
    for rv, match, cont, words in (("", "Exact", "", "forbidden unless resourceVersion is provided"),
                                   ("0", "Exact", "", 'resourceVersionMatch "exact" is forbidden'),
                                   ("5", "Exact", "tok", "forbidden when continue is provided"),
                                   ("5", "Newest", "", 'Unsupported value: "Newest"')):
        with pytest.raises(errors.Invalid) as e:
            _list_revision(rv, match, cont)
        assert words in e.value.message and e.value.code == 422


def test_field_validation_reads_duplicate_json_keys() -> None:
    from services.apiserver.http import fieldvalidation

    dups: list[str] = []
    assert fieldvalidation.load(b'{"a": 1, "b": {"c": 1, "c": 2}}', "application/json", dups) == \
        {"a": 1, "b": {"c": 2}}
    assert dups == ["c"]
    assert fieldvalidation.load(b"metadata: {creationTimestamp: 2026-01-01T00:00:00Z}", "yaml", dups) == \
        {"metadata": {"creationTimestamp": "2026-01-01T00:00:00Z"}}  # timestamps stay strings


def test_a_warning_is_sent_once_however_often_it_is_found() -> None:
    """A PATCH retried (on a Conflict, or after a try on a stale cache copy) checks the unknown fields again."""
    from aiohttp.test_utils import make_mocked_request

    from services.apiserver.http import fieldvalidation

    request = make_mocked_request("PATCH", "/api/v1/namespaces/default/configmaps/a")
    fieldvalidation.warn(request, ['unknown field "x"', 'unknown field "x"'])
    fieldvalidation.warn(request, ['unknown field "x"', 'unknown field "y"'])
    assert fieldvalidation.headers(request) == ['299 - "unknown field \\"x\\""', '299 - "unknown field \\"y\\""']
