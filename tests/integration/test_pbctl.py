"""pbctl against a real apiserver (etcd + in-process pb-apiserver): `pbctl.main.run(argv)`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from pbctl.common import LAST_APPLIED
from pbctl.main import run
from pybernetes.api import codec
from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.client import config as client_config
from tests.integration.conftest import ApiServer, free_port

pytestmark = pytest.mark.integration

MANIFEST = """\
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {app: web, tier: frontend}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        ports:
        - containerPort: 80
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  selector: {app: web}
  ports:
  - port: 80
    targetPort: 80
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
  namespace: shop
data:
  greeting: hello
"""


class Pbctl:
    def __init__(self, cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.cfg = cfg
        self.capsys = capsys

    async def __call__(self, *argv: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        rc = await run(["--config", str(self.cfg), *argv])
        captured = self.capsys.readouterr()
        return rc, captured.out, captured.err

    async def ok(self, *argv: str) -> str:
        rc, out, err = await self(*argv)
        assert rc == 0, f"pbctl {' '.join(argv)} -> {rc}\nstdout:\n{out}\nstderr:\n{err}"
        return out

    async def json(self, *argv: str) -> Any:
        return json.loads(await self.ok(*argv, "-o", "json"))


@pytest.fixture
def pbctl(apiserver: ApiServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Pbctl:
    cfg = tmp_path / "pbconfig"
    apiserver.write_kubeconfig(cfg)
    return Pbctl(cfg, capsys)


def write(tmp_path: Path, text: str, name: str = "app.yaml") -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


async def test_apply_create_unchanged_configured(pbctl: Pbctl, tmp_path: Path) -> None:
    f = write(tmp_path, MANIFEST)
    out = await pbctl.ok("apply", "-f", f)
    assert out.splitlines() == ["namespace/shop created", "deployment.apps/web created", "service/web created",
                                "configmap/web-config created"]
    out = await pbctl.ok("apply", "-f", f)
    assert out.splitlines() == ["namespace/shop unchanged", "deployment.apps/web unchanged",
                                "service/web unchanged", "configmap/web-config unchanged"]

    changed = MANIFEST.replace("tier: frontend", "tier: backend").replace("nginx:1.25", "nginx:1.27")
    out = await pbctl.ok("apply", "-f", write(tmp_path, changed))
    assert "deployment.apps/web configured" in out.splitlines()
    assert "service/web unchanged" in out.splitlines()
    d = await pbctl.json("get", "deployment", "web", "-n", "shop")
    assert d["kind"] == "Deployment"
    assert d["metadata"]["labels"] == {"app": "web", "tier": "backend"}
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    assert json.loads(d["metadata"]["annotations"][LAST_APPLIED])["metadata"]["labels"]["tier"] == "backend"

    # a label another writer added survives; one dropped from the file is removed
    await pbctl.ok("label", "deploy/web", "owner=ops", "-n", "shop")
    dropped = changed.replace("labels: {app: web, tier: backend}", "labels: {app: web}")
    out = await pbctl.ok("apply", "-f", write(tmp_path, dropped))
    assert "deployment.apps/web configured" in out
    d = await pbctl.json("get", "deployment/web", "-n", "shop")
    assert d["metadata"]["labels"] == {"app": "web", "owner": "ops"}
    assert (await pbctl.ok("apply", "-f", write(tmp_path, dropped))).count("unchanged") == 4


async def test_apply_directory_and_stdin_names(pbctl: Pbctl, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "manifests"
    (d / "sub").mkdir(parents=True)
    (d / "a.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: v}\n")
    (d / "sub" / "b.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n")
    assert (await pbctl.ok("apply", "-f", str(d))).splitlines() == ["configmap/a created"]
    assert (await pbctl.ok("apply", "-R", "-f", str(d), "-o", "name")).splitlines() == [
        "configmap/a", "configmap/b"]
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"))
    assert (await pbctl.ok("create", "-f", "-")).strip() == "configmap/c created"
    rc, _, err = await pbctl("create", "-f", str(d / "a.yaml"))
    assert rc == 1
    assert 'Error from server (AlreadyExists): error when creating "' in err
    assert 'configmaps "a" already exists' in err


async def test_manifest_typo_names_document_and_field(pbctl: Pbctl, tmp_path: Path) -> None:
    bad = MANIFEST.replace("        image: nginx:1.25", "        imagee: nginx:1.25")
    f = write(tmp_path, bad, "bad.yaml")
    rc, out, err = await pbctl("apply", "-f", f)
    assert rc == 1 and out == ""
    assert err.startswith(f"error: {f}: document 2 (Deployment/web): ")
    assert "spec.template.spec.containers[0].imagee: unknown field" in err
    rc, _, _ = await pbctl("get", "ns", "shop")
    assert rc == 1  # nothing was applied


async def test_get_outputs(pbctl: Pbctl, tmp_path: Path) -> None:
    await pbctl.ok("apply", "-f", write(tmp_path, MANIFEST))
    table = await pbctl.ok("get", "deployments", "-n", "shop")
    lines = table.splitlines()
    assert lines[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert lines[1].split()[:4] == ["web", "0/2", "0", "0"]
    wide = (await pbctl.ok("get", "deploy", "web", "-n", "shop", "-o", "wide")).splitlines()
    assert wide[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES",
                               "SELECTOR"]
    assert wide[1].split()[-3:] == ["web", "nginx:1.25", "app=web"]
    svc = (await pbctl.ok("get", "svc", "-n", "shop")).splitlines()
    assert svc[0].split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert svc[1].split()[0:2] == ["web", "ClusterIP"] and "80/TCP" in svc[1]

    y = yaml.safe_load(await pbctl.ok("get", "cm", "web-config", "-n", "shop", "-o", "yaml"))
    assert (y["kind"], y["data"]) == ("ConfigMap", {"greeting": "hello"})
    lst = await pbctl.json("get", "cm,svc", "-n", "shop")
    assert lst["kind"] == "List" and {i["kind"] for i in lst["items"]} == {"ConfigMap", "Service"}
    names = (await pbctl.ok("get", "deploy,svc,cm", "-n", "shop", "-o", "name")).splitlines()
    assert names == ["deployment.apps/web", "service/web", "configmap/web-config"]

    multi = await pbctl.ok("get", "deploy,svc", "-n", "shop")
    assert "deployment.apps/web" in multi and "service/web" in multi and "\n\n" in multi
    every = await pbctl.ok("get", "all", "-n", "shop")
    assert "deployment.apps/web" in every and "service/web" in every

    labels = (await pbctl.ok("get", "deploy", "-n", "shop", "--show-labels", "--no-headers")).splitlines()
    assert len(labels) == 1 and labels[0].split()[-1] == "app=web,tier=frontend"
    all_ns = (await pbctl.ok("get", "cm", "-A", "-l", "app!=nothing")).splitlines()
    assert all_ns[0].split()[:2] == ["NAMESPACE", "NAME"] and any(ln.split()[:2] == ["shop", "web-config"]
                                                                  for ln in all_ns)
    assert (await pbctl.ok("get", "deploy", "-n", "shop", "-o", "jsonpath={.items[0].spec.replicas}")) == "2\n"
    fs = await pbctl.ok("get", "cm", "-n", "shop", "--field-selector", "metadata.name=web-config", "-o", "name")
    assert fs.splitlines() == ["configmap/web-config"]

    rc, out, err = await pbctl("get", "cm", "-n", "shop", "-l", "app=none")
    assert rc == 0 and out == "" and err.strip() == "No resources found in shop namespace."


async def test_get_errors(pbctl: Pbctl, tmp_path: Path) -> None:
    rc, _, err = await pbctl("get", "foos")
    assert rc == 1 and err.strip() == 'error: the server doesn\'t have a resource type "foos"'
    rc, _, err = await pbctl("get", "pod", "missing")
    assert rc == 1 and err.strip() == 'Error from server (NotFound): pods "missing" not found'
    rc, _, err = await pbctl("get", "pods", "-o", "table-ish")
    assert rc == 1 and "unable to match a printer" in err


async def test_connection_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "down"
    port = free_port()
    client_config.write_kubeconfig(cfg, "https://127.0.0.1:1", f"127.0.0.1:{port}", "t", b"")
    rc = await run(["--config", str(cfg), "get", "pods"])
    assert rc == 1
    assert capsys.readouterr().err.strip() == (
        f"The connection to the server 127.0.0.1:{port} was refused - did you specify the right host or port?")


async def test_label_and_annotate(pbctl: Pbctl, tmp_path: Path) -> None:
    await pbctl.ok("apply", "-f", write(tmp_path, MANIFEST))
    assert (await pbctl.ok("label", "cm", "web-config", "env=prod", "-n", "shop")).strip() == \
        "configmap/web-config labeled"
    rc, _, err = await pbctl("label", "cm", "web-config", "env=dev", "-n", "shop")
    assert rc == 1 and err.strip() == "error: 'env' already has a value (prod), and --overwrite is false"
    assert (await pbctl.ok("label", "cm/web-config", "env=dev", "--overwrite", "-n", "shop")).strip() == \
        "configmap/web-config labeled"
    cm = await pbctl.json("get", "cm", "web-config", "-n", "shop")
    assert cm["metadata"]["labels"] == {"env": "dev"}
    assert (await pbctl.ok("label", "cm", "web-config", "env-", "-n", "shop")).strip() == \
        "configmap/web-config unlabeled"
    assert "labels" not in (await pbctl.json("get", "cm", "web-config", "-n", "shop"))["metadata"]

    assert (await pbctl.ok("annotate", "svc", "web", "note=hi", "-n", "shop")).strip() == "service/web annotated"
    rc, _, err = await pbctl("annotate", "svc", "web", "note=bye", "-n", "shop")
    assert rc == 1 and "'note' already has a value (hi), and --overwrite is false" in err
    await pbctl.ok("annotate", "svc", "web", "note=bye", "--overwrite", "-n", "shop")
    svc = await pbctl.json("get", "svc", "web", "-n", "shop")
    assert svc["metadata"]["annotations"]["note"] == "bye"
    await pbctl.ok("label", "svc,cm", "--all", "team=a", "-n", "shop")
    assert (await pbctl.ok("get", "svc,cm", "-l", "team=a", "-n", "shop", "-o", "name")).splitlines() == [
        "service/web", "configmap/web-config"]


async def test_scale(pbctl: Pbctl, tmp_path: Path) -> None:
    await pbctl.ok("apply", "-f", write(tmp_path, MANIFEST))
    assert (await pbctl.ok("scale", "deployment", "web", "--replicas=5", "-n", "shop")).strip() == \
        "deployment.apps/web scaled"
    assert (await pbctl.json("get", "deploy", "web", "-n", "shop"))["spec"]["replicas"] == 5
    rc, _, err = await pbctl("scale", "deploy/web", "--replicas=1", "--current-replicas=2", "-n", "shop")
    assert rc == 1 and "Expected replicas to be 2, was 5" in err
    rc, _, err = await pbctl("scale", "cm", "web-config", "--replicas=1", "-n", "shop")
    assert rc == 1


async def test_delete_by_name_label_and_file(pbctl: Pbctl, tmp_path: Path) -> None:
    docs = "\n---\n".join(f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c{i}, labels: {{grp: '{i % 2}'}}}}"
                          for i in range(4))
    f = write(tmp_path, docs)
    await pbctl.ok("apply", "-f", f)
    assert (await pbctl.ok("delete", "cm", "c0")).strip() == 'configmap "c0" deleted'
    out = await pbctl.ok("delete", "cm", "-l", "grp=1")
    assert sorted(out.splitlines()) == ['configmap "c1" deleted', 'configmap "c3" deleted']
    rc, _, err = await pbctl("delete", "cm", "c0")
    assert rc == 1 and err.strip() == 'Error from server (NotFound): configmaps "c0" not found'
    assert (await pbctl.ok("delete", "cm", "c0", "--ignore-not-found")) == ""
    rc, _, err = await pbctl("delete", "cm")
    assert rc == 1 and "no name was specified" in err
    out = await pbctl.ok("delete", "-f", f, "--ignore-not-found")
    assert out.strip() == 'configmap "c2" deleted'
    assert (await pbctl.json("get", "cm"))["items"] == [] or all(
        i["metadata"]["name"] not in ("c0", "c1", "c2", "c3") for i in (await pbctl.json("get", "cm"))["items"])


async def test_delete_pod_waits(pbctl: Pbctl, apiserver: ApiServer) -> None:
    pod = codec.from_dict({"metadata": {"name": "p1", "namespace": "default"},
                           "spec": {"containers": [{"name": "c", "image": "busybox"}]}}, core.Pod)
    await apiserver.client.create(pod)
    out = await pbctl.ok("delete", "pod", "p1", "--now")
    assert out.strip() == 'pod "p1" deleted'
    rc, _, _ = await pbctl("get", "pod", "p1")
    assert rc == 1


async def test_describe_pod_shows_events(pbctl: Pbctl, apiserver: ApiServer) -> None:
    pod = codec.from_dict({"metadata": {"name": "web-1", "namespace": "default", "labels": {"app": "web"}},
                           "spec": {"containers": [{"name": "web", "image": "nginx:1.25",
                                                    "ports": [{"containerPort": 80}],
                                                    "env": [{"name": "MODE", "value": "prod"}]}]}}, core.Pod)
    created = await apiserver.client.create(pod)
    ev = core.Event()
    ev.metadata.name, ev.metadata.namespace = "web-1.1", "default"
    io = ev.involved_object
    io.kind, io.name, io.namespace, io.uid, io.api_version = "Pod", "web-1", "default", created.metadata.uid, "v1"
    ev.reason, ev.message, ev.type, ev.count = "Scheduled", "Successfully assigned default/web-1 to n1", "Normal", 1
    ev.source.component = "default-scheduler"
    ev.first_timestamp.CopyFrom(created.metadata.creation_timestamp)
    ev.last_timestamp.CopyFrom(created.metadata.creation_timestamp)
    await apiserver.client.create(ev)
    other = core.Event()
    other.CopyFrom(ev)
    other.metadata.name, other.involved_object.name, other.reason = "x.2", "someone-else", "Unrelated"
    await apiserver.client.create(other)

    out = await pbctl.ok("describe", "pod", "web-1")
    lines = out.splitlines()
    assert lines[0].split() == ["Name:", "web-1"]
    assert any(ln.split() == ["Namespace:", "default"] for ln in lines)
    assert any(ln.split() == ["Labels:", "app=web"] for ln in lines)
    assert "Containers:" in lines and "  web:" in lines
    assert any(ln.split() == ["Image:", "nginx:1.25"] for ln in lines)
    assert any(ln.split() == ["MODE:", "prod"] for ln in lines)
    i = lines.index("Events:")
    assert lines[i + 1].split() == ["Type", "Reason", "Age", "From", "Message"]
    assert lines[i + 3].split()[:2] == ["Normal", "Scheduled"]
    assert "default-scheduler" in lines[i + 3] and "Successfully assigned default/web-1 to n1" in lines[i + 3]
    assert "Unrelated" not in out

    events = (await pbctl.ok("get", "events")).splitlines()
    assert events[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert any("pod/web-1" in ln and "Scheduled" in ln for ln in events)


async def test_describe_other_kinds(pbctl: Pbctl, tmp_path: Path) -> None:
    await pbctl.ok("apply", "-f", write(tmp_path, MANIFEST))
    d = await pbctl.ok("describe", "deploy", "web", "-n", "shop")
    assert any(ln.split()[:2] == ["Replicas:", "2"] for ln in d.splitlines())
    assert "Pod Template:" in d and "RollingUpdateStrategy:" in d
    assert d.splitlines()[-1].split() == ["Events:", "<none>"]
    assert LAST_APPLIED not in d
    s = await pbctl.ok("describe", "svc/web", "-n", "shop")
    assert any(ln.split() == ["Type:", "ClusterIP"] for ln in s.splitlines())
    n = await pbctl.ok("describe", "ns", "shop")
    assert any(ln.split() == ["Status:", "Active"] for ln in n.splitlines())
    c = await pbctl.ok("describe", "cm", "web-config", "-n", "shop")
    assert "greeting:" in c and "hello" in c


async def test_explain_and_api_resources(pbctl: Pbctl) -> None:
    out = await pbctl.ok("explain", "pod.spec.containers")
    assert "KIND:       Pod" in out and "FIELD: containers <[]Container> -required-" in out
    assert "  image\t<string> -required-" in out
    rc, _, err = await pbctl("explain", "pod.spec.bogus")
    assert rc == 1 and 'field "bogus" does not exist' in err
    res = (await pbctl.ok("api-resources")).splitlines()
    assert res[0].split() == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    rows = {ln.split()[0]: ln.split() for ln in res[1:]}
    assert rows["pods"] == ["pods", "po", "v1", "true", "Pod"]
    assert rows["deployments"] == ["deployments", "deploy", "apps/v1", "true", "Deployment"]


async def test_rollout(pbctl: Pbctl, apiserver: ApiServer, tmp_path: Path) -> None:
    await pbctl.ok("apply", "-f", write(tmp_path, MANIFEST))
    c = apiserver.client
    d = await c.get(apps.Deployment, "web", namespace="shop")
    # act as the deployment controller: two revisions' ReplicaSets and a finished rollout
    for rev, image in ((1, "nginx:1.24"), (2, "nginx:1.25")):
        rs = apps.ReplicaSet()
        rs.metadata.name, rs.metadata.namespace = f"web-{rev}", "shop"
        rs.metadata.annotations["deployment.kubernetes.io/revision"] = str(rev)
        owner = rs.metadata.owner_references.add()
        owner.api_version, owner.kind, owner.name, owner.uid, owner.controller = (
            "apps/v1", "Deployment", "web", d.metadata.uid, True)
        rs.spec.selector.match_labels["app"] = "web"
        rs.spec.template.CopyFrom(d.spec.template)
        rs.spec.template.metadata.labels["pod-template-hash"] = f"h{rev}"
        rs.spec.template.spec.containers[0].image = image
        await c.create(rs)
    rc, out, err = await pbctl("rollout", "status", "deploy/web", "-n", "shop", "--watch=false")
    assert rc == 0 and out.strip() == "Waiting for deployment spec update to be observed..."
    d.status.observed_generation = d.metadata.generation
    d = await c.update_status(d)
    out = await pbctl.ok("rollout", "status", "deploy/web", "-n", "shop", "--watch=false")
    assert out.strip() == 'Waiting for deployment "web" rollout to finish: 0 out of 2 new replicas have been updated...'

    async def finish() -> None:
        await asyncio.sleep(0.5)
        live = await c.get(apps.Deployment, "web", namespace="shop")
        live.status.observed_generation = live.metadata.generation
        live.status.replicas = live.status.updated_replicas = 2
        live.status.available_replicas = live.status.ready_replicas = 2
        await c.update_status(live)

    task = asyncio.create_task(finish())
    out = await pbctl.ok("rollout", "status", "deployment", "web", "-n", "shop", "--timeout=20s")
    await task
    assert out.splitlines()[-1] == 'deployment "web" successfully rolled out'

    hist = (await pbctl.ok("rollout", "history", "deploy/web", "-n", "shop")).splitlines()
    assert hist[0].strip() == "deployment.apps/web"
    assert [ln.split() for ln in hist[1:]] == [["REVISION", "CHANGE-CAUSE"], ["1", "<none>"], ["2", "<none>"]]

    assert (await pbctl.ok("rollout", "undo", "deploy/web", "-n", "shop", "--to-revision=1")).strip() == \
        "deployment.apps/web rolled back"
    live = await pbctl.json("get", "deploy", "web", "-n", "shop")
    tmpl = live["spec"]["template"]
    assert tmpl["spec"]["containers"][0]["image"] == "nginx:1.24"
    assert "pod-template-hash" not in tmpl["metadata"]["labels"]
    rc, _, err = await pbctl("rollout", "undo", "deploy/web", "-n", "shop", "--to-revision=9")
    assert rc == 1 and "unable to find specified revision 9 in history" in err

    assert (await pbctl.ok("rollout", "restart", "deploy/web", "-n", "shop")).strip() == \
        "deployment.apps/web restarted"
    live = await pbctl.json("get", "deploy", "web", "-n", "shop")
    assert "kubectl.kubernetes.io/restartedAt" in live["spec"]["template"]["metadata"]["annotations"]
    assert (await pbctl.ok("rollout", "pause", "deploy/web", "-n", "shop")).strip() == "deployment.apps/web paused"
    assert (await pbctl.json("get", "deploy", "web", "-n", "shop"))["spec"]["paused"] is True
    rc, _, err = await pbctl("rollout", "restart", "deploy/web", "-n", "shop")
    assert rc == 1 and "paused" in err
    assert (await pbctl.ok("rollout", "resume", "deploy/web", "-n", "shop")).strip() == \
        "deployment.apps/web resumed"


async def test_get_watch(pbctl: Pbctl, apiserver: ApiServer) -> None:
    cm = core.ConfigMap()
    cm.metadata.name, cm.metadata.namespace = "w0", "default"
    await apiserver.client.create(cm)

    async def changes() -> None:
        await asyncio.sleep(0.7)
        later = core.ConfigMap()
        later.metadata.name, later.metadata.namespace = "w1", "default"
        await apiserver.client.create(later)
        await apiserver.client.delete(core.ConfigMap, "w0", namespace="default")

    task = asyncio.create_task(changes())
    out = await pbctl.ok("get", "cm", "-w", "--request-timeout=3s", "--output-watch-events")
    await task
    rows = [ln.split() for ln in out.splitlines()]
    assert rows[0] == ["EVENT", "NAME", "DATA", "AGE"]
    assert ["ADDED", "w0"] in [r[:2] for r in rows]
    assert ["ADDED", "w1"] in [r[:2] for r in rows]
    assert ["DELETED", "w0"] in [r[:2] for r in rows]


async def test_edit(pbctl: Pbctl, apiserver: ApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cm = core.ConfigMap()
    cm.metadata.name, cm.metadata.namespace = "ed", "default"
    cm.data["k"] = "v"
    await apiserver.client.create(cm)
    script = tmp_path / "editor.py"
    script.write_text("import sys, pathlib\np = pathlib.Path(sys.argv[1])\n"
                      "p.write_text(p.read_text().replace('k: v', 'k: edited'))\n")
    import sys

    monkeypatch.setenv("PBCTL_EDITOR", f"{sys.executable} {script}")
    assert (await pbctl.ok("edit", "cm", "ed")).strip() == "configmap/ed edited"
    assert (await apiserver.client.get(core.ConfigMap, "ed", namespace="default")).data["k"] == "edited"

    # an unknown field is reported as a comment in the re-opened file; saving it unchanged gives up
    seen = tmp_path / "seen.txt"
    script.write_text("import sys, pathlib\np = pathlib.Path(sys.argv[1])\nt = p.read_text()\n"
                      f"pathlib.Path({str(seen)!r}).write_text(t)\n"
                      "p.write_text(t.replace('\\ndata:', '\\ndataa:'))\n")
    rc, _, err = await pbctl("edit", "cm", "ed")
    assert rc == 1 and "Edit cancelled, the same errors occurred again." in err
    reopened = seen.read_text()
    assert reopened.startswith("# Please edit the object below.")
    assert "# The edited file failed validation: dataa: unknown field" in reopened, reopened
    assert (await apiserver.client.get(core.ConfigMap, "ed", namespace="default")).data["k"] == "edited"


async def test_version_config_logs_exec(pbctl: Pbctl, apiserver: ApiServer) -> None:
    out = await pbctl.ok("version")
    assert out.splitlines()[0].startswith("Client Version: v")
    assert f"Server Address: {apiserver.address}" in out
    assert (await pbctl.ok("config", "current-context")).strip() == "default"
    view = yaml.safe_load(await pbctl.ok("config", "view"))
    assert view["users"][0]["user"]["client-key-data"] == "REDACTED"  # admin.conf's user: a client certificate
    cluster = view["clusters"][0]["cluster"]
    assert cluster["server"] == apiserver.https_server
    assert cluster["extensions"] == [{"name": "pybernetes.io/grpc", "extension": {"address": apiserver.address}}]
    rc, _, err = await pbctl("logs", "web-1", "-c", "web", "--tail", "5")
    assert rc == 1 and err.strip() == 'Error from server (NotFound): pods "web-1" not found'
    rc, _, err = await pbctl("exec", "-it", "web-1", "--", "sh")
    assert rc == 1
