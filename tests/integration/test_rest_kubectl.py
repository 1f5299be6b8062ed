"""The real kubectl v1.33 against a real apiserver and etcd, over the Kubernetes REST API (HTTPS) and the
admin.conf the apiserver writes. kubectl comes from deploy/get-kubectl.sh (run by deploy/install-deps.sh)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
from pathlib import Path

import pytest
import yaml

from pybernetes import errors
from pybernetes.api import codec
from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.client import config as client_config
from pybernetes.client.client import Client
from services.controllers.main import ControllerManager
from tests.integration.conftest import ApiServer
from tests.integration.test_controller_manager import manager_config
from tests.integration.test_controller_manager import running as manager_running
from tests.integration.test_controllers import HollowKubelet

pytestmark = pytest.mark.integration

KUBECTL = Path(sys.prefix) / "bin" / "kubectl"

POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  containers:
  - name: nginx
    image: nginx:1.15.4
"""

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
  labels: {app: shop}
spec:
  replicas: REPLICAS
  selector:
    matchLabels: {app: shop}
  template:
    metadata:
      labels: {app: shop}
    spec:
      containers:
      - name: web
        image: nginx:1.15.4
"""


class Kubectl:
    def __init__(self, srv: ApiServer, home: Path) -> None:
        if not KUBECTL.exists():
            pytest.fail(f"{KUBECTL} missing: run deploy/get-kubectl.sh (deploy/install-deps.sh does)")
        self.kubeconfig = srv.cfg.data_dir / "admin.conf"
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        self.env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}

    def argv(self, *args: str) -> list[str]:
        return [str(KUBECTL), f"--kubeconfig={self.kubeconfig}", f"--cache-dir={self.home / 'cache'}", *args]

    async def run(self, *args: str, stdin: str = "", ok: bool = True) -> tuple[int, str, str]:
        # A child process, awaited: the apiserver runs on this same event loop.
        p = await asyncio.create_subprocess_exec(*self.argv(*args), env=self.env, stdin=asyncio.subprocess.PIPE,
                                                 stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(p.communicate(stdin.encode()), 60)
        rc = p.returncode
        assert rc is not None
        if ok:
            assert rc == 0, f"kubectl {' '.join(args)} failed ({rc}): {err.decode()}"
        return rc, out.decode(), err.decode()

    def file(self, name: str, text: str) -> str:
        path = self.home / name
        path.write_text(text)
        return str(path)


@pytest.fixture
def kubectl(https_apiserver: ApiServer, tmp_path: Path) -> Kubectl:
    return Kubectl(https_apiserver, tmp_path / "home")


def _rows(table: str) -> list[list[str]]:
    return [line.split() for line in table.strip().splitlines()]


async def test_version_and_api_resources(kubectl: Kubectl) -> None:
    _, out, _ = await kubectl.run("version", "-o", "json")
    assert json.loads(out)["clientVersion"]["minor"] == "33"  # the pinned official build
    server = json.loads(out)["serverVersion"]
    assert (server["major"], server["minor"]) == ("1", "33")
    _, out, _ = await kubectl.run("api-resources")
    rows = {r[0]: r for r in _rows(out)[1:]}
    assert rows["pods"][1:] == ["po", "v1", "true", "Pod"]
    assert rows["deployments"][1:] == ["deploy", "apps/v1", "true", "Deployment"]
    assert rows["namespaces"][1:] == ["ns", "v1", "false", "Namespace"]
    assert rows["secrets"][1:] == ["v1", "true", "Secret"]
    _, out, _ = await kubectl.run("api-resources", "--categories=all", "-o", "name")
    assert set(out.split()) == {"pods", "replicationcontrollers", "services", "daemonsets.apps", "deployments.apps",
                                "replicasets.apps", "statefulsets.apps", "cronjobs.batch", "jobs.batch"}
    _, out, _ = await kubectl.run("get", "ns")
    assert [r[0] for r in _rows(out)] == ["NAME", "default", "kube-node-lease", "kube-public", "kube-system"]


async def test_create_get_in_every_format_and_the_errors_kubectl_prints(kubectl: Kubectl,
                                                                          https_apiserver: ApiServer) -> None:
    manifest = kubectl.file("pod.yaml", POD)
    _, out, _ = await kubectl.run("create", "-f", manifest)
    assert out.strip() == "pod/web created"
    _, out, _ = await kubectl.run("get", "pods")
    header, row = _rows(out)
    assert header == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"] and row[:4] == ["web", "0/1", "Pending", "0"]
    _, out, _ = await kubectl.run("get", "pods", "-o", "wide")
    assert _rows(out)[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED", "NODE",
                             "READINESS", "GATES"]
    assert _rows(out)[1][5:] == ["<none>"] * 4
    _, out, _ = await kubectl.run("get", "pod", "web", "-o", "yaml")
    doc = yaml.safe_load(out)
    assert (doc["apiVersion"], doc["kind"], doc["metadata"]["name"]) == ("v1", "Pod", "web")
    assert doc["spec"]["containers"][0]["image"] == "nginx:1.15.4"
    # Defaults come from the one Rest path: the same as a pbctl-created pod gets.
    assert doc["spec"]["restartPolicy"] == "Always"
    grpc_pod = await https_apiserver.client.get(core.Pod, "web", namespace="default")
    assert grpc_pod.metadata.uid == doc["metadata"]["uid"]
    assert grpc_pod.metadata.resource_version == doc["metadata"]["resourceVersion"]
    _, out, _ = await kubectl.run("get", "pods", "-l", "app=web", "-o", "json")
    assert [i["metadata"]["name"] for i in json.loads(out)["items"]] == ["web"]
    _, out, err = await kubectl.run("get", "pods", "-l", "app=other")
    assert out == "" and "No resources found in default namespace." in err
    _, out, _ = await kubectl.run("get", "po", "-A", "--show-labels")
    assert _rows(out)[1][0:2] == ["default", "web"] and _rows(out)[1][-1] == "app=web"

    rc, _, err = await kubectl.run("get", "pod", "nope", ok=False)
    assert rc == 1 and err.strip() == 'Error from server (NotFound): pods "nope" not found'
    rc, _, err = await kubectl.run("create", "-f", manifest, ok=False)
    assert rc == 1
    assert err.strip() == (f'Error from server (AlreadyExists): error when creating "{manifest}": '
                           'pods "web" already exists')
    bad = kubectl.file("bad.yaml", POD.replace("name: web", "name: bad").replace("image: nginx:1.15.4", 'image: ""'))
    rc, _, err = await kubectl.run("create", "-f", bad, ok=False)
    assert rc == 1 and 'The Pod "bad" is invalid: spec.containers[0].image: Required value' in err
    unknown = kubectl.file("unknown.yaml", POD.replace("name: web", "name: odd") + "    bogus: 1\n")
    rc, _, err = await kubectl.run("create", "-f", unknown, ok=False)
    assert rc == 1 and "spec.containers[0].bogus" in err
    with pytest.raises(errors.NotFound):
        await https_apiserver.client.get(core.Pod, "bad", namespace="default")  # nothing half-written


async def test_apply_creates_changes_and_keeps_untouched_fields(kubectl: Kubectl, https_apiserver: ApiServer) -> None:
    manifest = kubectl.file("deploy.yaml", DEPLOYMENT.replace("REPLICAS", "2"))
    _, out, _ = await kubectl.run("apply", "-f", manifest)
    assert out.strip() == "deployment.apps/shop created"
    _, out, _ = await kubectl.run("apply", "-f", manifest)
    assert out.strip() == "deployment.apps/shop unchanged"
    # A field kubectl never set (written over gRPC) survives the re-apply: a three-way strategic merge.
    c = https_apiserver.client
    d = await c.get(apps.Deployment, "shop", namespace="default")
    d.metadata.labels["team"] = "payments"
    await c.update(d)
    kubectl.file("deploy.yaml", DEPLOYMENT.replace("REPLICAS", "3"))
    _, out, _ = await kubectl.run("apply", "-f", manifest)
    assert out.strip() == "deployment.apps/shop configured"
    d = await c.get(apps.Deployment, "shop", namespace="default")
    assert d.spec.replicas == 3
    assert dict(d.metadata.labels) == {"app": "shop", "team": "payments"}
    last = json.loads(d.metadata.annotations["kubectl.kubernetes.io/last-applied-configuration"])
    assert last["spec"]["replicas"] == 3
    _, out, _ = await kubectl.run("get", "deploy", "shop", "-o", "jsonpath={.spec.replicas}")
    assert out == "3"
    # The server's Table carries Kubernetes' deployment columns, the same pbctl's get prints.
    _, out, _ = await kubectl.run("get", "deploy", "shop", "-o", "wide")
    header, row = _rows(out)
    assert header == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    assert row[:4] + row[5:] == ["shop", "0/3", "0", "0", "web", "nginx:1.15.4", "app=shop"]
    _, out, _ = await kubectl.run("delete", "-f", manifest)
    assert out.strip() == 'deployment.apps "shop" deleted'
    rc, _, err = await kubectl.run("get", "deployment", "shop", ok=False)
    assert rc == 1 and "NotFound" in err


async def test_watch_sees_changes_then_delete(kubectl: Kubectl) -> None:
    manifest = kubectl.file("pod.yaml", POD)
    p = await asyncio.create_subprocess_exec(*kubectl.argv("get", "pods", "-w", "--output-watch-events"),
                                             env=kubectl.env, stdout=asyncio.subprocess.PIPE,
                                             stderr=asyncio.subprocess.PIPE)
    assert p.stdout is not None
    try:
        # The initial (empty) list, then events: wait until the watch prints the pod, whatever the timing.
        await asyncio.sleep(0)
        await kubectl.run("create", "-f", manifest)
        await kubectl.run("label", "pod", "web", "tier=front")
        seen: list[list[str]] = []
        while not any(r and r[0] == "MODIFIED" for r in seen):
            line = await asyncio.wait_for(p.stdout.readline(), 30)
            assert line, "kubectl get -w ended early"
            seen.append(line.decode().split())
        assert ["ADDED", "web"] in [r[:2] for r in seen]
    finally:
        p.terminate()
        await p.wait()
    _, out, _ = await kubectl.run("delete", "pod", "web")
    assert out.strip() == 'pod "web" deleted'
    _, out, err = await kubectl.run("get", "pods")
    assert out == "" and "No resources found" in err



async def test_patch_types_replace_paging_selectors_and_dry_run(kubectl: Kubectl, https_apiserver: ApiServer) -> None:
    for i in (1, 2, 3):
        await kubectl.run("run", f"p{i}", "--image=busybox", f"--labels=app=p{i}", "--", "sleep", "3600")
    _, out, _ = await kubectl.run("get", "pods", "--chunk-size=1", "-o", "name")
    assert out.split() == ["pod/p1", "pod/p2", "pod/p3"]  # three pages, continue tokens followed
    _, out, _ = await kubectl.run("get", "pods", "--field-selector=metadata.name=p2", "-o", "name")
    assert out.split() == ["pod/p2"]
    await kubectl.run("patch", "pod", "p1", "--type=merge", "-p", '{"metadata":{"labels":{"m":"1"}}}')
    await kubectl.run("patch", "pod", "p1", "--type=json", "-p",
                      '[{"op":"add","path":"/metadata/labels/j","value":"2"}]')
    await kubectl.run("patch", "pod", "p1", "-p", '{"metadata":{"labels":{"s":"3"}}}')  # strategic, the default
    await kubectl.run("label", "pod", "p1", "l=4")
    await kubectl.run("annotate", "pod", "p1", "note=hi")
    p1 = await https_apiserver.client.get(core.Pod, "p1", namespace="default")
    assert dict(p1.metadata.labels) == {"app": "p1", "m": "1", "j": "2", "s": "3", "l": "4"}
    assert p1.metadata.annotations["note"] == "hi"
    _, out, _ = await kubectl.run("get", "pod", "p1", "-o", "yaml")
    replaced = kubectl.file("p1.yaml", out.replace("app: p1", "app: p1x"))
    _, out, _ = await kubectl.run("replace", "-f", replaced)
    assert out.strip() == "pod/p1 replaced"
    _, out, _ = await kubectl.run("get", "pods", "-l", "app=p1x", "-o", "name")
    assert out.split() == ["pod/p1"]
    rc, _, err = await kubectl.run("replace", "-f", replaced, ok=False)  # the resourceVersion is stale now
    assert rc == 1 and "Conflict" in err and "the object has been modified" in err
    _, out, _ = await kubectl.run("create", "-f", kubectl.file("pod.yaml", POD), "--dry-run=server")
    assert out.strip() == "pod/web created (server dry run)"
    rc, _, err = await kubectl.run("get", "pod", "web", ok=False)
    assert rc == 1 and "NotFound" in err
    _, out, _ = await kubectl.run("apply", "--server-side", "-f", str(kubectl.home / "pod.yaml"))
    assert out.strip() == "pod/web serverside-applied"  # test_rest_apply.py has the details
    _, out, _ = await kubectl.run("delete", "pod", "p2", "--grace-period=0", "--force")
    assert out.strip() == 'pod "p2" force deleted'


async def test_the_same_admin_conf_serves_kubectl_and_the_grpc_client(kubectl: Kubectl,
                                                                       https_apiserver: ApiServer) -> None:
    doc = yaml.safe_load(kubectl.kubeconfig.read_text())
    cluster = doc["clusters"][0]["cluster"]
    assert cluster["server"] == f"https://127.0.0.1:{https_apiserver.cfg.secure_port}"
    assert cluster["certificate-authority-data"]
    await kubectl.run("create", "-f", kubectl.file("pod.yaml", POD))
    cfg = client_config.load(str(kubectl.kubeconfig))
    assert cfg.server == https_apiserver.address  # from the pybernetes.io/grpc extension
    async with Client.from_config(cfg, timeout=10) as c:
        pod = await c.get(core.Pod, "web", namespace="default")
    _, out, _ = await kubectl.run("get", "pod", "web", "-o", "json", "--show-managed-fields")
    assert codec.to_dict(pod) == json.loads(out)  # written with kubectl, read back identically over gRPC


async def test_typed_generators_send_protobuf_and_it_is_read(kubectl: Kubectl) -> None:
    # kubectl's typed generators send Kubernetes' protobuf (k8s.io/api's field numbers): read with that schema.
    await kubectl.run("create", "deployment", "web", "--image=nginx", "--replicas=2", "--port=80")
    _, out, _ = await kubectl.run("get", "deployment", "web", "-o", "json")
    d = json.loads(out)
    assert d["spec"]["replicas"] == 2
    c = d["spec"]["template"]["spec"]["containers"][0]
    assert (c["name"], c["image"], c["ports"][0]["containerPort"]) == ("nginx", "nginx", 80)
    assert d["spec"]["selector"]["matchLabels"] == {"app": "web"}
    await kubectl.run("create", "service", "clusterip", "web", "--tcp=8080:80")
    _, out, _ = await kubectl.run("get", "service", "web", "-o", "json")
    port = json.loads(out)["spec"]["ports"][0]
    assert (port["port"], port["targetPort"]) == (8080, 80)  # IntOrString decoded to an int
    await kubectl.run("create", "configmap", "cfg", "--from-literal=a=1")
    await kubectl.run("create", "secret", "generic", "pw", "--from-literal=p=s3cret")
    _, out, _ = await kubectl.run("get", "secret", "pw", "-o", "jsonpath={.data.p}")
    assert base64.b64decode(out) == b"s3cret"
    await kubectl.run("create", "job", "once", "--image=busybox", "--", "true")
    _, out, _ = await kubectl.run("get", "job", "once", "-o", "jsonpath={.spec.template.spec.containers[0].command}")
    assert json.loads(out) == ["true"]


async def test_rollout_history_undo_and_restart(kubectl: Kubectl, https_apiserver: ApiServer) -> None:
    # With the deployment and replicaset controllers and hollow kubelets (tests/e2e/test_kubectl_lab.py: real pods).
    api = https_apiserver
    kubelet = HollowKubelet(api.new_client(timeout=10), nodes=2)
    await kubelet.create_nodes()
    await kubelet.start()
    cm = ControllerManager(manager_config(["deployment", "replicaset"]),
                           client=api.new_client("system:kube-controller-manager"))
    try:
        async with manager_running(cm):
            manifest = kubectl.file("deploy.yaml", DEPLOYMENT.replace("REPLICAS", "2"))
            await kubectl.run("apply", "-f", manifest)
            await kubectl.run("rollout", "status", "deployment/shop", "--timeout=60s")
            await kubectl.run("set", "image", "deployment/shop", "web=nginx:1.16")
            await kubectl.run("rollout", "status", "deployment/shop", "--timeout=60s")
            _, out, _ = await kubectl.run("rollout", "history", "deployment/shop")
            assert _rows(out)[1:] == [["REVISION", "CHANGE-CAUSE"], ["1", "<none>"], ["2", "<none>"]]
            _, out, _ = await kubectl.run("rollout", "undo", "deployment/shop")
            assert out.strip() == "deployment.apps/shop rolled back"
            await kubectl.run("rollout", "status", "deployment/shop", "--timeout=60s")
            # kubectl sends revision 1's template back (with `resources: {}`): the same ReplicaSet, now revision 3.
            _, out, _ = await kubectl.run("rollout", "history", "deployment/shop")
            assert [r[0] for r in _rows(out)[2:]] == ["2", "3"]
            _, out, _ = await kubectl.run("get", "rs", "-l", "app=shop", "-o", "name")
            assert len(out.split()) == 2
            _, out, _ = await kubectl.run("rollout", "restart", "deployment/shop")
            assert out.strip() == "deployment.apps/shop restarted"
            await kubectl.run("rollout", "status", "deployment/shop", "--timeout=60s")
            _, out, _ = await kubectl.run("get", "deployment", "shop", "-o", "json")
            d = json.loads(out)
            assert "kubectl.kubernetes.io/restartedAt" in d["spec"]["template"]["metadata"]["annotations"]
            assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.15.4"
            rc, _, err = await kubectl.run("rollout", "undo", "deployment/shop", "--to-revision=9", ok=False)
            assert rc == 1 and err.strip() == "error: unable to find specified revision 9 in history"
    finally:
        await kubelet.stop()
