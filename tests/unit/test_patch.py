"""Patches: RFC 7386 merge, RFC 6902 JSON patch, strategic merge and kubectl-apply's three-way patch."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from pybernetes.api import codec
from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.patch import (
    create_two_way_merge_patch,
    json_patch,
    merge_patch,
    strategic_merge_patch,
    three_way_patch,
)
from pybernetes.errors import BadRequest, Invalid

POD = core.Pod.DESCRIPTOR
DEPLOY = apps.Deployment.DESCRIPTOR


# -- RFC 7386 --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("doc", "patch", "want"), [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
])
def test_merge_patch_rfc7386_examples(doc: dict[str, Any], patch: dict[str, Any],
                                      want: dict[str, Any]) -> None:
    before = copy.deepcopy(doc)
    assert merge_patch(doc, patch) == want
    assert doc == before  # inputs are not mutated


# -- RFC 6902 --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("doc", "ops", "want"), [
    ({"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux"}], {"foo": "bar", "baz": "qux"}),
    ({"foo": ["bar", "baz"]}, [{"op": "add", "path": "/foo/1", "value": "qux"}],
     {"foo": ["bar", "qux", "baz"]}),
    ({"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}], {"foo": "bar"}),
    ({"foo": ["bar", "qux", "baz"]}, [{"op": "remove", "path": "/foo/1"}], {"foo": ["bar", "baz"]}),
    ({"baz": "qux", "foo": "bar"}, [{"op": "replace", "path": "/baz", "value": "boo"}],
     {"baz": "boo", "foo": "bar"}),
    ({"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
     [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
     {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}}),
    ({"foo": ["all", "grass", "cows", "eat"]}, [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
     {"foo": ["all", "cows", "eat", "grass"]}),
    ({"baz": "qux", "foo": ["a", 2, "c"]},
     [{"op": "test", "path": "/baz", "value": "qux"}, {"op": "test", "path": "/foo/1", "value": 2}],
     {"baz": "qux", "foo": ["a", 2, "c"]}),
    ({"foo": "bar"}, [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
     {"foo": "bar", "child": {"grandchild": {}}}),
    ({"foo": ["bar"]}, [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
     {"foo": ["bar", ["abc", "def"]]}),
    ({"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": 10}, {"op": "remove", "path": "/~1"}],
     {"~1": 10}),
    ({"a": {"b": 1}}, [{"op": "copy", "from": "/a", "path": "/c"}], {"a": {"b": 1}, "c": {"b": 1}}),
    ({"a": 1}, [{"op": "replace", "path": "", "value": [1]}], [1]),
    ({"metadata": {"labels": {"app.kubernetes.io/name": "x"}}},
     [{"op": "remove", "path": "/metadata/labels/app.kubernetes.io~1name"}], {"metadata": {"labels": {}}}),
])
def test_json_patch_rfc6902_examples(doc: Any, ops: list[dict[str, Any]], want: Any) -> None:
    before = copy.deepcopy(doc)
    assert json_patch(doc, ops) == want
    assert doc == before


@pytest.mark.parametrize(("doc", "ops", "exc", "where"), [
    ({"foo": "bar"}, [{"op": "add", "path": "/baz/bat", "value": "qux"}], Invalid, "op 0 (add /baz/bat)"),
    ({"baz": "qux"}, [{"op": "test", "path": "/baz", "value": "bar"}], Invalid, "op 0 (test /baz)"),
    ({"foo": 1}, [{"op": "test", "path": "/foo", "value": 1}, {"op": "test", "path": "/foo", "value": True}],
     Invalid, "op 1 (test /foo)"),
    ({"foo": []}, [{"op": "remove", "path": "/foo/0"}], Invalid, "out of bounds"),
    ({"foo": [1]}, [{"op": "add", "path": "/foo/01", "value": 2}], Invalid, "invalid array index"),
    ({"foo": 1}, [{"op": "replace", "path": "/bar", "value": 2}], Invalid, "op 0 (replace /bar)"),
    ({"a": {"b": 1}}, [{"op": "move", "from": "/a", "path": "/a/b/c"}], Invalid, "own children"),
    ({}, [{"op": "add", "path": "/a"}], BadRequest, "missing 'value'"),
    ({}, [{"op": "frob", "path": "/a"}], BadRequest, "unknown op"),
    ({}, [{"op": "add", "path": "a", "value": 1}], BadRequest, "JSON pointer"),
    ({}, [{"op": "copy", "path": "/a"}], BadRequest, "missing 'from'"),
])
def test_json_patch_errors_name_op_and_path(doc: Any, ops: list[dict[str, Any]], exc: type[Exception],
                                            where: str) -> None:
    with pytest.raises(exc) as info:
        json_patch(doc, ops)
    assert where in str(info.value)


def test_json_patch_error_cause_and_atomicity() -> None:
    doc = {"a": 1}
    with pytest.raises(Invalid) as info:
        json_patch(doc, [{"op": "add", "path": "/b", "value": 2}, {"op": "remove", "path": "/zz"}])
    assert info.value.code == 422
    assert info.value.causes[0].path == "/zz"
    assert doc == {"a": 1}


# -- strategic merge -------------------------------------------------------------------------------

def _pod() -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "labels": {"app": "web", "tier": "fe"}, "finalizers": ["a/x"],
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
                                          "uid": "u1"}]},
        "spec": {
            "nodeName": "n1",
            "containers": [
                {"name": "app", "image": "nginx:1.25", "env": [{"name": "A", "value": "1"}],
                 "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 443}],
                 "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                 "resources": {"limits": {"cpu": "1", "memory": "64Mi"}},
                 "command": ["nginx", "-g"]},
                {"name": "sidecar", "image": "busybox"},
            ],
            "volumes": [{"name": "data", "emptyDir": {}}],
        },
        "status": {"phase": "Running"},
    }


def _container(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in doc["spec"]["containers"] if c["name"] == name)


def test_smp_changes_one_container_image_keeps_others() -> None:
    pod = _pod()
    out = strategic_merge_patch(pod, {"spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}, POD)
    assert _container(out, "app")["image"] == "nginx:1.27"
    assert _container(out, "app")["env"] == [{"name": "A", "value": "1"}]
    assert _container(out, "sidecar") == {"name": "sidecar", "image": "busybox"}
    assert pod == _pod()
    codec.from_dict(out, core.Pod)  # still a valid Pod


def test_smp_adds_env_and_merges_ports_and_mounts() -> None:
    patch = {"spec": {"containers": [{
        "name": "app",
        "env": [{"name": "B", "value": "2"}, {"name": "A", "value": "one"}],
        "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 8080}],
        "volumeMounts": [{"mountPath": "/data", "readOnly": True}, {"name": "cache", "mountPath": "/cache"}],
    }]}}
    app = _container(strategic_merge_patch(_pod(), patch, POD), "app")
    assert app["env"] == [{"name": "A", "value": "one"}, {"name": "B", "value": "2"}]
    assert app["ports"] == [{"containerPort": 80, "name": "http", "protocol": "TCP"}, {"containerPort": 443},
                            {"containerPort": 8080}]
    assert app["volumeMounts"] == [{"name": "data", "mountPath": "/data", "readOnly": True},
                                   {"name": "cache", "mountPath": "/cache"}]


def test_smp_delete_directive_removes_container() -> None:
    patch = {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}
    out = strategic_merge_patch(_pod(), patch, POD)
    assert [c["name"] for c in out["spec"]["containers"]] == ["app"]


def test_smp_labels_merge_and_null_deletes() -> None:
    out = strategic_merge_patch(_pod(), {"metadata": {"labels": {"tier": None, "env": "prod"}}}, POD)
    assert out["metadata"]["labels"] == {"app": "web", "env": "prod"}


def test_smp_owner_references_merge_by_uid() -> None:
    ref2 = {"apiVersion": "v1", "kind": "Node", "name": "n", "uid": "u2"}
    out = strategic_merge_patch(_pod(), {"metadata": {"ownerReferences": [{"uid": "u1", "controller": True},
                                                                           ref2]}}, POD)
    refs = out["metadata"]["ownerReferences"]
    assert refs[0] == {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u1",
                       "controller": True}
    assert refs[1] == ref2


def test_smp_replace_directives() -> None:
    out = strategic_merge_patch(
        _pod(), {"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "x"}]}}, POD)
    assert out["spec"]["containers"] == [{"name": "only", "image": "x"}]
    out = strategic_merge_patch(_pod(), {"metadata": {"labels": {"$patch": "replace", "new": "1"}}}, POD)
    assert out["metadata"]["labels"] == {"new": "1"}
    out = strategic_merge_patch(_pod(), {"status": {"$patch": "delete"}}, POD)
    assert "status" not in out


def test_smp_scalar_lists_replace_but_finalizers_merge() -> None:
    out = strategic_merge_patch(_pod(), {"spec": {"containers": [{"name": "app", "command": ["sh"]}]},
                                         "metadata": {"finalizers": ["b/y", "a/x"]}}, POD)
    assert _container(out, "app")["command"] == ["sh"]
    assert out["metadata"]["finalizers"] == ["a/x", "b/y"]
    out = strategic_merge_patch(out, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a/x"]}}, POD)
    assert out["metadata"]["finalizers"] == ["b/y"]


def test_smp_leaves_and_maps_of_quantities() -> None:
    out = strategic_merge_patch(_pod(), {"spec": {"containers": [
        {"name": "app", "resources": {"limits": {"cpu": "500m", "memory": None}}}]}}, POD)
    assert _container(out, "app")["resources"] == {"limits": {"cpu": "500m"}}


def test_smp_retain_keys_and_set_element_order() -> None:
    pod = _pod()
    pod["spec"]["volumes"] = [{"name": "data", "emptyDir": {}}]
    out = strategic_merge_patch(pod, {"spec": {"volumes": [
        {"name": "data", "$retainKeys": ["name", "hostPath"], "hostPath": {"path": "/srv"}}]}}, POD)
    assert out["spec"]["volumes"] == [{"name": "data", "hostPath": {"path": "/srv"}}]
    out = strategic_merge_patch(_pod(), {"spec": {
        "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}],
        "containers": [{"name": "app", "image": "nginx:2"}]}}, POD)
    assert [c["name"] for c in out["spec"]["containers"]] == ["sidecar", "app"]


def test_smp_unknown_keys_merge_and_errors() -> None:
    out = strategic_merge_patch({"a": {"b": 1}}, {"a": {"c": 2}, "spec": {"bogus": [1]}}, POD)
    assert out == {"a": {"b": 1, "c": 2}, "spec": {"bogus": [1]}}
    with pytest.raises(Invalid, match=r"spec\.bogus"):
        codec.from_dict(out, core.Pod)
    with pytest.raises(BadRequest, match="merge key"):
        strategic_merge_patch(_pod(), {"spec": {"containers": [{"image": "x"}]}}, POD)
    with pytest.raises(BadRequest, match=r"\$patch"):
        strategic_merge_patch(_pod(), {"spec": {"$patch": "frob"}}, POD)


# -- three-way / two-way ---------------------------------------------------------------------------

def _deploy(replicas: int = 2, labels: dict[str, str] | None = None,
            containers: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": labels if labels is not None else {"app": "web"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": containers if containers is not None
                                  else [{"name": "app", "image": "nginx:1.25"}]}},
        },
    }


def _live(applied: dict[str, Any]) -> dict[str, Any]:
    """What the server holds after an apply: defaults, status and other writers' fields added."""
    live = copy.deepcopy(applied)
    live["metadata"].update(uid="u-1", resourceVersion="7")
    live["metadata"].setdefault("labels", {})["owner"] = "someone-else"
    live["spec"]["strategy"] = {"type": "RollingUpdate"}
    for c in live["spec"]["template"]["spec"]["containers"]:
        c.setdefault("imagePullPolicy", "IfNotPresent")
    live["status"] = {"replicas": 2}
    return live


def test_three_way_removing_label_deletes_only_it() -> None:
    original = _deploy(labels={"app": "web", "team": "a"})
    modified = _deploy(labels={"app": "web"})
    current = _live(original)
    patch = three_way_patch(original, modified, current, DEPLOY)
    assert patch == {"metadata": {"labels": {"team": None}}}
    out = strategic_merge_patch(current, patch, DEPLOY)
    assert out["metadata"]["labels"] == {"app": "web", "owner": "someone-else"}
    assert out["status"] == {"replicas": 2}


def test_three_way_changing_replicas_and_noop() -> None:
    original = _deploy()
    current = _live(original)
    assert three_way_patch(original, _deploy(), current, DEPLOY) == {}
    patch = three_way_patch(original, _deploy(replicas=5), current, DEPLOY)
    assert patch == {"spec": {"replicas": 5}}
    assert three_way_patch(None, _deploy(), current, DEPLOY) == {}


def test_three_way_removing_container_removes_it() -> None:
    two = [{"name": "app", "image": "nginx:1.25"}, {"name": "log", "image": "fluentd"}]
    original = _deploy(containers=two)
    current = _live(original)
    modified = _deploy(containers=[{"name": "app", "image": "nginx:1.27"}])
    patch = three_way_patch(original, modified, current, DEPLOY)
    out = strategic_merge_patch(current, patch, DEPLOY)
    assert out["spec"]["template"]["spec"]["containers"] == [
        {"name": "app", "image": "nginx:1.27", "imagePullPolicy": "IfNotPresent"}]
    codec.from_dict(out, apps.Deployment)


def test_three_way_keeps_server_added_container_and_field_edits() -> None:
    original = _deploy(containers=[{"name": "app", "image": "a", "env": [{"name": "X", "value": "1"}]}])
    current = _live(original)
    current["spec"]["template"]["spec"]["containers"].insert(0, {"name": "injected", "image": "proxy"})
    modified = _deploy(containers=[{"name": "app", "image": "b"}, {"name": "new", "image": "n"}])
    out = strategic_merge_patch(current, three_way_patch(original, modified, current, DEPLOY), DEPLOY)
    assert out["spec"]["template"]["spec"]["containers"] == [
        {"name": "injected", "image": "proxy"},
        {"name": "app", "image": "b", "imagePullPolicy": "IfNotPresent"},
        {"name": "new", "image": "n"},
    ]


def test_two_way_merge_patch() -> None:
    a = _deploy(labels={"app": "web", "x": "1"})
    b = _deploy(replicas=3, labels={"app": "web", "y": "2"},
                containers=[{"name": "app", "image": "nginx:2"}, {"name": "b", "image": "b"}])
    patch = create_two_way_merge_patch(a, b, DEPLOY)
    assert patch["metadata"] == {"labels": {"x": None, "y": "2"}}
    assert strategic_merge_patch(a, patch, DEPLOY) == b
    assert create_two_way_merge_patch(b, b, DEPLOY) == {}
    back = create_two_way_merge_patch(b, a, DEPLOY)
    assert strategic_merge_patch(b, back, DEPLOY) == a


# -- property: apply(current, three_way(original, modified, current)) reaches `modified` -----------

_NAMES = ["a", "b", "c", "d"]


def _rand_containers(rng: random.Random) -> list[dict[str, Any]]:
    out = []
    for n in rng.sample(_NAMES, rng.randint(0, 3)):
        c: dict[str, Any] = {"name": n, "image": rng.choice(["i1", "i2"])}
        if rng.random() < 0.5:
            env = rng.sample(_NAMES, rng.randint(0, 2))
            c["env"] = [{"name": e, "value": rng.choice(["1", "2"])} for e in env]
        if rng.random() < 0.3:
            c["args"] = rng.sample(_NAMES, rng.randint(0, 2))
        out.append(c)
    return out


def _rand_deploy(rng: random.Random) -> dict[str, Any]:
    d = _deploy(replicas=rng.randint(0, 3),
                labels={k: rng.choice(["x", "y"]) for k in rng.sample(_NAMES, rng.randint(0, 3))},
                containers=_rand_containers(rng))
    if rng.random() < 0.3:
        d["metadata"]["annotations"] = {k: "v" for k in rng.sample(_NAMES, rng.randint(1, 2))}
    if rng.random() < 0.3:
        d["metadata"]["finalizers"] = rng.sample(["f/1", "f/2", "f/3"], rng.randint(0, 2))
    if rng.random() < 0.2:
        del d["spec"]["replicas"]
    return d


def _covers(have: Any, want: Any, keyed: bool = False) -> bool:
    """`have` holds every value of `want` (extra fields allowed; keyed lists matched by name)."""
    if isinstance(want, dict):
        return isinstance(have, dict) and all(
            (k in have and _covers(have[k], v, k in ("containers", "env"))) or (k == "finalizers" and v == [])
            for k, v in want.items())
    if isinstance(want, list) and keyed:
        names = [x["name"] for x in have if x["name"] in {w["name"] for w in want}]
        by = {x["name"]: x for x in have}
        return names == [w["name"] for w in want] and all(_covers(by[w["name"]], w) for w in want)
    if isinstance(want, list) and want and isinstance(want[0], str) and "/" in want[0]:
        # finalizers merge as a set: others' finalizers may remain, ours come in our order
        return [x for x in have if x in want] == want
    return bool(have == want)


@pytest.mark.parametrize("seed", range(300))
def test_three_way_property(seed: int) -> None:
    rng = random.Random(seed)
    original = _rand_deploy(rng)
    current = _live(_rand_deploy(rng) if rng.random() < 0.3 else original)
    modified = _rand_deploy(rng)
    patch = three_way_patch(original, modified, current, DEPLOY)
    out = strategic_merge_patch(current, patch, DEPLOY)
    assert _covers(out, modified), (patch, out)
    # Anything in last-applied that `modified` dropped is gone.
    for k in original["metadata"].get("labels", {}):
        if k not in modified["metadata"]["labels"]:
            assert k not in out["metadata"].get("labels", {})
    want_names = {c["name"] for c in modified["spec"]["template"]["spec"]["containers"]}
    for c in original["spec"]["template"]["spec"]["containers"]:
        if c["name"] not in want_names:
            assert c["name"] not in {x["name"] for x in out["spec"]["template"]["spec"]["containers"]}
    # Fields only the server set stay (unless last-applied claimed the whole object).
    assert out["status"] == {"replicas": 2}
    assert out["metadata"]["uid"] == "u-1"
    if "owner" not in original["metadata"]["labels"]:
        assert out["metadata"]["labels"]["owner"] == "someone-else"
    for f in original["metadata"].get("finalizers", []):
        if f not in modified["metadata"].get("finalizers", []):
            assert f not in out["metadata"].get("finalizers", [])
    codec.from_dict(out, apps.Deployment)
    # Applying the same manifest again is a no-op.
    assert three_way_patch(modified, modified, out, DEPLOY) == {}
