"""pbctl argument parsing, target resolution, label changes and apply's decision logic."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pbctl import manifests
from pbctl.common import LAST_APPLIED, CliError, format_api_error, get_path, parse_targets
from pbctl.main import parse_args, run
from pbctl.verbs import apply, label
from pbctl.verbs.explain import explain
from pybernetes.api import codec
from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.objects import meta_of
from pybernetes.errors import FieldError, Invalid, NotFound, Unavailable, Unreachable


def test_global_flags_before_and_after_verb() -> None:
    a = parse_args(["-n", "kube-system", "get", "pods", "-o", "wide"])
    assert (a.command, a.namespace, a.output, a.resources) == ("get", "kube-system", "wide", ["pods"])
    b = parse_args(["get", "po", "web", "--namespace=x", "-A", "--config", "/c", "--v=6"])
    assert (b.namespace, b.all_namespaces, b.config, b.verbosity) == ("x", True, "/c", 6)
    c = parse_args(["get", "pods"])
    assert (c.namespace, c.all_namespaces, c.config) == (None, False, None)


def test_verb_flags() -> None:
    d = parse_args(["delete", "pod", "x", "--grace-period=0", "--cascade=orphan", "--wait=false", "--now"])
    assert (d.grace_period, d.cascade, d.wait, d.now) == (0, "orphan", False, True)
    assert parse_args(["delete", "pod", "x"]).wait is True
    e = parse_args(["exec", "-it", "web", "-c", "app", "--", "sh", "-c", "echo hi"])
    assert (e.command, e.stdin, e.tty, e.pod, e.container, e.cmd) == (
        "exec", True, True, "web", "app", ["sh", "-c", "echo hi"])
    lg = parse_args(["logs", "-f", "--previous", "-c", "c1", "--tail", "10", "web"])
    assert (lg.follow, lg.previous, lg.container, lg.tail, lg.pod) == (True, True, "c1", 10, "web")
    r = parse_args(["rollout", "undo", "deploy/web", "--to-revision=2"])
    assert (r.rollout_cmd, r.resources, r.to_revision) == ("undo", ["deploy/web"], 2)
    s = parse_args(["scale", "--replicas=3", "deployment", "web"])
    assert (s.replicas, s.resources) == (3, ["deployment", "web"])
    ap = parse_args(["apply", "-f", "a.yaml", "-f", "dir", "-R"])
    assert (ap.filename, ap.recursive) == (["a.yaml", "dir"], True)


def test_parse_targets_forms() -> None:
    [(info, names)] = parse_targets(["po", "a", "b"])
    assert (info.plural, names) == ("pods", ["a", "b"])
    t = parse_targets(["deploy/web", "svc/web", "deployments.apps/api"])
    assert [(i.plural, n) for i, n in t] == [("deployments", ["web", "api"]), ("services", ["web"])]
    assert [i.plural for i, _ in parse_targets(["all"])] == [
        "pods", "services", "replicationcontrollers", "deployments", "replicasets", "daemonsets", "statefulsets",
        "cronjobs", "jobs"]
    assert [i.plural for i, _ in parse_targets(["pods,svc"])] == ["pods", "services"]
    with pytest.raises(CliError, match='the server doesn\'t have a resource type "foos"'):
        parse_targets(["foos"])
    with pytest.raises(CliError):
        parse_targets(["pods", "deploy/web"])


async def test_bad_flag_and_unknown_type_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert await run(["get", "--bogus"]) == 1
    assert "error: unrecognized arguments: --bogus" in capsys.readouterr().err
    assert await run(["--server", "127.0.0.1:1", "get", "foos"]) == 1
    assert capsys.readouterr().err.strip() == 'error: the server doesn\'t have a resource type "foos"'


def test_error_wording() -> None:
    assert format_api_error(NotFound('pods "x" not found')) == 'Error from server (NotFound): pods "x" not found'
    inv = Invalid('Deployment "web" is invalid: spec.replicas: must be >= 0', kind="Deployment", name="web",
                  causes=[FieldError("spec.replicas", "Invalid value: -1: must be >= 0")])
    assert format_api_error(inv) == 'The Deployment "web" is invalid: spec.replicas: Invalid value: -1: must be >= 0'
    down = Unreachable("the apiserver is unreachable: failed to connect to all addresses")
    assert format_api_error(down, "127.0.0.1:6443") == (
        "The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?")
    # The server's own 503 about a kubelet it cannot reach is not the server being unreachable.
    backend = Unavailable("the pod's kubelet is unreachable: failed to connect to all addresses")
    assert format_api_error(backend, "127.0.0.1:6443") == (
        "Error from server (ServiceUnavailable): the pod's kubelet is unreachable: failed to connect to all addresses")


def test_label_changes_and_overwrite() -> None:
    resources, ch = label.split_args(["pod", "web", "app=api", "tier-"])
    assert resources == ["pod", "web"]
    assert (ch.set, ch.remove) == ({"app": "api"}, ["tier"])
    with pytest.raises(CliError, match=r"'app' already has a value \(web\), and --overwrite is false"):
        label.compute_patch({"app": "web", "tier": "fe"}, ch, overwrite=False)
    patch, warnings = label.compute_patch({"app": "web", "tier": "fe"}, ch, overwrite=True)
    assert patch == {"app": "api", "tier": None} and warnings == []
    same, _ = label.compute_patch({"app": "api"}, label.Changes({"app": "api"}, []), overwrite=False)
    assert same == {}
    _, warn = label.compute_patch({}, label.Changes({}, ["gone"]), overwrite=False)
    assert warn == ['label "gone" not found.']


DEPLOY = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web", "tier": "fe"}},
    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
             "template": {"metadata": {"labels": {"app": "web"}},
                          "spec": {"containers": [{"name": "web", "image": "nginx:1"}]}}},
}


def _live(applied: dict[str, Any]) -> dict[str, Any]:
    """What the server would hold after applying: defaults and status added."""
    live: dict[str, Any] = json.loads(json.dumps(applied))
    live["metadata"].update({"uid": "u1", "resourceVersion": "5", "generation": 1})
    c = live["spec"]["template"]["spec"]["containers"][0]
    c.update({"imagePullPolicy": "IfNotPresent", "terminationMessagePath": "/dev/termination-log"})
    live["spec"]["strategy"] = {"type": "RollingUpdate"}
    live["status"] = {"replicas": 2}
    return live


def test_apply_plan_create_unchanged_configured() -> None:
    first = apply.plan_apply(DEPLOY, None, apps.Deployment)
    assert first.action == "create"
    stored = json.loads(first.body["metadata"]["annotations"][LAST_APPLIED])
    assert stored == DEPLOY
    codec.from_dict(first.body, apps.Deployment)  # still a valid object
    live = _live(first.body)
    assert apply.plan_apply(DEPLOY, live, apps.Deployment).action == "unchanged"

    changed = json.loads(json.dumps(DEPLOY))
    changed["metadata"]["labels"]["tier"] = "backend"
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    plan = apply.plan_apply(changed, live, apps.Deployment)
    assert plan.action == "patch"
    assert plan.body["metadata"]["labels"] == {"tier": "backend"}
    assert plan.body["spec"]["template"]["spec"]["containers"] == [{"name": "web", "image": "nginx:2"}]
    assert "strategy" not in plan.body["spec"] and "status" not in plan.body


def test_apply_plan_removes_dropped_fields_only() -> None:
    live = _live(apply.plan_apply(DEPLOY, None, apps.Deployment).body)
    live["metadata"]["labels"]["owner"] = "someone-else"  # added by another writer
    dropped = json.loads(json.dumps(DEPLOY))
    del dropped["metadata"]["labels"]["tier"]
    plan = apply.plan_apply(dropped, live, apps.Deployment)
    assert plan.action == "patch"
    assert plan.body["metadata"]["labels"] == {"tier": None}


def test_apply_plan_without_annotation_never_deletes() -> None:
    live = _live(DEPLOY)  # created by `create`, no last-applied
    plan = apply.plan_apply({**DEPLOY, "metadata": {"name": "web", "namespace": "default"}}, live, apps.Deployment)
    assert plan.action == "patch"
    assert "labels" not in plan.body["metadata"]  # only the annotation is added
    assert LAST_APPLIED in plan.body["metadata"]["annotations"]


def test_manifest_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.json").write_text('{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}}')
    assert manifests.manifest_files([str(tmp_path)], False) == [str(tmp_path / "a.yaml")]
    assert manifests.manifest_files([str(tmp_path)], True) == [
        str(tmp_path / "a.yaml"), str(tmp_path / "sub" / "b.json")]
    objs = manifests.read_manifests([str(tmp_path)], True)
    assert [meta_of(o).name for _, o in objs] == ["a", "b"]
    with pytest.raises(CliError, match="does not exist"):
        manifests.manifest_files([str(tmp_path / "missing.yaml")], False)


def test_explain_fields_and_docs() -> None:
    text = explain("pod.spec.containers")
    assert text.startswith("KIND:       Pod\nVERSION:    v1\n")
    assert "FIELD: containers <[]Container> -required-" in text
    assert "The app containers of the pod (at least one)." in text
    assert "  image\t<string> -required-" in text
    assert "  ports\t<[]ContainerPort>" in text
    top = explain("deployments")
    assert "GROUP:      apps" in top and "  apiVersion\t<string>" in top and "  spec\t<DeploymentSpec>" in top
    assert "<map[string]Quantity>" in explain("pod.spec.containers.resources")
    with pytest.raises(CliError, match='field "nope" does not exist'):
        explain("pod.spec.nope")


def test_get_path() -> None:
    d = {"metadata": {"name": "x"}, "items": [{"a": 1}]}
    assert get_path(d, ".metadata.name") == "x"
    assert get_path(d, "{.items[0].a}") == 1
    assert get_path(d, ".spec.missing") is None


def test_configmap_namespace_rules() -> None:
    from pbctl.common import Ctx

    ctx = Ctx(None, namespace="other", explicit_namespace=True)
    cm = codec.from_dict({"metadata": {"name": "a", "namespace": "prod"}}, core.ConfigMap)
    with pytest.raises(CliError, match="does not match the namespace"):
        manifests.set_namespace(ctx, cm)
    ns = codec.from_dict({"metadata": {"name": "n"}}, core.Namespace)
    manifests.set_namespace(ctx, ns)
    assert ns.metadata.namespace == ""
