"""Real kubectl v1.33 and the official Python client against the lab's real pods (issue 13, "Real clients as the
tests"): what tests/integration proves against an apiserver alone (formats, patch types, errors, SSA details),
here with the scheduler, controllers and kubelets replacing real containers on the three nodes.

One unmodified nginx Deployment in its own namespace carries most verbs, in file order: get (-o wide with the
pod IP and node, -w, -l, -A, --show-labels, jsonpath, custom-columns) and describe's events; exec, logs -f and
port-forward to a real nginx; apply/label/annotate/re-apply, rollout status|history|undo|restart, scale, diff,
edit; delete with each cascade over real ReplicaSets and pods; cluster-info and top; then the Python client
(create_from_yaml, watch, exec and port-forward through kubernetes.stream). Runs against the session lab
(tests/e2e/conftest.py), bounded by polls, and removes its namespace.
"""

from __future__ import annotations

import json
import os
import selectors
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pybernetes.ports import free_port

from .conftest import REPO, Lab, poll
from .test_upstream_manifests import NGINX_DEPLOYMENT  # the docs' unmodified nginx-deployment.yaml

pytestmark = pytest.mark.e2e

KUBECTL = Path(sys.prefix) / "bin" / "kubectl"
NS = "kc-lab"
ROLLOUT_TIMEOUT = "150s"


def sleeper(name: str) -> str:
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, labels: {{app: {name}}}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers: [{{name: main, image: busybox, command: [sleep, "3600"]}}]
"""


class Kubectl:
    """kubectl as a user runs it right after `lab up`: HOME is the lab's, whose ~/.kube/config has the context."""

    def __init__(self, lab: Lab, work: Path) -> None:
        assert KUBECTL.exists(), f"{KUBECTL} missing: run deploy/get-kubectl.sh (deploy/install-deps.sh does)"
        self.work = work
        self.env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "PBCONFIG")}
        self.env["HOME"] = str(lab.home)

    def run(self, *args: str, stdin: str = "", ok: bool = True, env: dict[str, str] | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        res = subprocess.run([str(KUBECTL), *args], input=stdin, capture_output=True, text=True, timeout=timeout,
                             cwd=REPO, env=dict(self.env, **(env or {})))
        if ok:
            assert res.returncode == 0, f"kubectl {' '.join(args)} failed ({res.returncode}):\n{res.stdout}{res.stderr}"
        return res

    def out(self, *args: str, timeout: float = 60) -> str:
        return self.run(*args, timeout=timeout).stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.out(*args, "-o", "json"))

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen([str(KUBECTL), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO,
                                env=self.env)

    def file(self, name: str, text: str) -> str:
        path = self.work / name
        path.write_text(text)
        return str(path)


class Lines:
    """A running process's stdout read line by line until a wanted line, bounded by a deadline (no sleeps)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self.proc, self.buf, self.lines = proc, b"", list[str]()
        self.sel = selectors.DefaultSelector()
        self.sel.register(proc.stdout, selectors.EVENT_READ)

    def until(self, want: Callable[[str], bool], timeout: float = 60, what: str = "line") -> str:
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while True:
            for i, line in enumerate(self.lines):
                if want(line):
                    del self.lines[:i + 1]
                    return line
            self.lines.clear()
            left = deadline - time.monotonic()
            if left <= 0 or not self.sel.select(left):
                raise AssertionError(f"{what} not seen within {timeout:.0f} s")
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise AssertionError(f"{what}: the output ended ({self.proc.wait()}): {err}")
            self.buf += chunk
            *done, self.buf = self.buf.split(b"\n")
            self.lines += [d.decode() for d in done]

    def stop(self) -> None:
        self.sel.close()
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.communicate(timeout=10)


@pytest.fixture(scope="module")
def kc(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubectl]:
    k = Kubectl(lab, tmp_path_factory.mktemp("kubectl-lab"))
    k.run("create", "namespace", NS)
    try:
        yield k
    finally:
        k.run("delete", "namespace", NS, "--wait=false", ok=False)


def pods(kc: Kubectl, selector: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = kc.json("get", "pods", "-n", NS, "-l", selector)["items"]
    return items


def ready_pods(kc: Kubectl, selector: str, count: int) -> list[dict[str, Any]]:
    """Exactly `count` Running pods with every container ready and none terminating, else []."""
    all_ = pods(kc, selector)
    ok = [p for p in all_ if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
          and all(c.get("ready") for c in p["status"].get("containerStatuses", []))]
    return ok if len(ok) == count == len(all_) else []


def rollout(kc: Kubectl, name: str = "deployment/nginx-deployment") -> None:
    out = kc.out("rollout", "status", name, "-n", NS, f"--timeout={ROLLOUT_TIMEOUT}", timeout=180)
    assert out.strip().endswith(f'"{name.split("/")[1]}" successfully rolled out'), out


def rows(table: str) -> list[list[str]]:
    return [line.split() for line in table.strip().splitlines()]


@pytest.fixture(scope="module")
def nginx(kc: Kubectl) -> str:
    """The docs' Deployment applied unmodified and rolled out: the path of its manifest."""
    manifest = kc.file("nginx-deployment.yaml", NGINX_DEPLOYMENT)
    assert kc.out("apply", "-n", NS, "-f", manifest).strip() == "deployment.apps/nginx-deployment created"
    rollout(kc)
    return manifest


def test_get_and_describe_real_pods(kc: Kubectl, nginx: str, lab: Lab) -> None:
    running = poll(lambda: ready_pods(kc, "app=nginx", 3), 60, "3 ready nginx pods")
    nodes = {n["name"] for n in lab.state().info["nodes"]}
    by_name = {p["metadata"]["name"]: p for p in running}
    # -o wide: the server's Table with each pod's real IP and the node the scheduler chose.
    header, *body = rows(kc.out("get", "pods", "-n", NS, "-o", "wide"))
    assert header[:7] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]
    assert sorted(r[0] for r in body) == sorted(by_name)
    for r in body:
        p = by_name[r[0]]
        assert r[1:4] == ["1/1", "Running", "0"]
        assert (r[5], r[6]) == (p["status"]["podIP"], p["spec"]["nodeName"]) and r[6] in nodes
    # -l, -A, --show-labels, jsonpath, custom-columns over the same pods.
    assert kc.out("get", "pods", "-n", NS, "-l", "app=other", "-o", "name") == ""
    all_ns = [r for r in rows(kc.out("get", "pods", "-A", "--show-labels"))[1:] if r[0] == NS]
    assert sorted(r[1] for r in all_ns) == sorted(by_name)
    assert all(r[-1].startswith("app=nginx,pod-template-hash=") for r in all_ns)
    ips = kc.out("get", "pods", "-n", NS, "-l", "app=nginx", "-o", "jsonpath={.items[*].status.podIP}")
    assert sorted(ips.split()) == sorted(p["status"]["podIP"] for p in running)
    cols = rows(kc.out("get", "pods", "-n", NS, "-o", "custom-columns=NAME:.metadata.name,NODE:.spec.nodeName,"
                                                       "IMAGE:.spec.containers[0].image"))
    assert cols[0] == ["NAME", "NODE", "IMAGE"]
    assert sorted(cols[1:]) == sorted([n, p["spec"]["nodeName"], "nginx:1.14.2"] for n, p in by_name.items())
    # describe: the pod's events, from the scheduler and the kubelet, in Kubernetes' words.
    name = sorted(by_name)[0]
    described = kc.out("describe", "pod", name, "-n", NS)
    fields = {r[0]: r[1:] for r in (line.split(":  ", 1) for line in described.splitlines()) if len(r) == 2}
    assert fields["Node"][0].strip().startswith(by_name[name]["spec"]["nodeName"] + "/"), fields
    assert fields["Controlled By"][0].strip().startswith("ReplicaSet/nginx-deployment-"), fields
    events = described.split("\nEvents:", 1)[1]
    reasons = [r[1] for r in rows(events)[2:]]
    for reason in ("Scheduled", "Pulled", "Created", "Started"):
        assert reason in reasons, events
    assert f"Successfully assigned {NS}/{name} to {by_name[name]['spec']['nodeName']}" in events


def test_exec_logs_and_port_forward_to_real_nginx(kc: Kubectl, nginx: str) -> None:
    pod = poll(lambda: ready_pods(kc, "app=nginx", 3), 60, "3 ready nginx pods")[0]["metadata"]["name"]
    # exec: a command with arguments, stdin, and the exit code as kubectl's own.
    assert kc.out("exec", "-n", NS, pod, "--", "cat", "/usr/share/nginx/html/index.html").count("Welcome to nginx!")
    assert kc.out("exec", "-n", NS, pod, "--", "sh", "-c", 'echo "$1-$2"', "sh", "a b", "c") == "a b-c\n"
    assert kc.run("exec", "-i", "-n", NS, pod, "--", "wc", "-l", stdin="1\n2\n3\n").stdout.strip() == "3"
    res = kc.run("exec", "-n", NS, pod, "--", "sh", "-c", "echo gone >&2; exit 7", ok=False)
    assert (res.returncode, res.stderr) == (7, "gone\ncommand terminated with exit code 7\n")
    # port-forward to the pod's port 80 and an HTTP GET through it; logs -f shows the request as nginx logs it.
    logs = Lines(kc.start("logs", "-f", "-n", NS, pod))
    port = free_port()
    fwd = Lines(kc.start("port-forward", "-n", NS, f"pod/{pod}", f"{port}:80"))
    try:
        fwd.until(lambda line: line.startswith(f"Forwarding from 127.0.0.1:{port} -> 80"), 30, "Forwarding from")
        status, body = http_get(f"http://127.0.0.1:{port}/kubectl-lab")
        assert status == 404 and b"nginx" in body  # nginx itself answered
        status, body = http_get(f"http://127.0.0.1:{port}/")
        assert status == 200 and b"Welcome to nginx!" in body
        logs.until(lambda line: '"GET /kubectl-lab HTTP/1.1" 404' in line, 30, "the 404 in the log")
        logs.until(lambda line: '"GET / HTTP/1.1" 200' in line, 30, "the 200 in the log")
    finally:
        fwd.stop()
        logs.stop()


def http_get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=20) as r:
            return int(r.status), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_apply_rollout_scale_diff_edit(kc: Kubectl, nginx: str) -> None:
    dep = "deployment/nginx-deployment"
    first = {p["metadata"]["name"] for p in poll(lambda: ready_pods(kc, "app=nginx", 3), 60, "3 ready pods")}
    assert kc.out("label", dep, "-n", NS, "team=web").strip() == "deployment.apps/nginx-deployment labeled"
    assert kc.out("annotate", dep, "-n", NS, "note=kept").strip() == "deployment.apps/nginx-deployment annotated"
    # Re-apply a change: the template's image and replicas change, what kubectl apply never set is kept.
    Path(nginx).write_text(NGINX_DEPLOYMENT.replace("nginx:1.14.2", "nginx:1.16").replace("replicas: 3",
                                                                                          "replicas: 2"))
    assert kc.out("apply", "-n", NS, "-f", nginx).strip() == "deployment.apps/nginx-deployment configured"
    rollout(kc)
    d = kc.json("get", dep, "-n", NS)
    assert d["metadata"]["labels"] == {"app": "nginx", "team": "web"} and d["metadata"]["annotations"]["note"] == "kept"
    assert d["spec"]["strategy"]["type"] == "RollingUpdate"  # the server's default, untouched
    second = poll(lambda: ready_pods(kc, "app=nginx", 2), 90, "2 ready nginx:1.16 pods")
    assert {p["spec"]["containers"][0]["image"] for p in second} == {"nginx:1.16"}
    assert not first & {p["metadata"]["name"] for p in second}  # real pods replaced
    assert kc.out("apply", "-n", NS, "-f", nginx).strip() == "deployment.apps/nginx-deployment unchanged"

    history = rows(kc.out("rollout", "history", dep, "-n", NS))
    assert history[0] == ["deployment.apps/nginx-deployment"] and history[1] == ["REVISION", "CHANGE-CAUSE"]
    assert history[2:] == [["1", "<none>"], ["2", "<none>"]]
    assert "nginx:1.14.2" in kc.out("rollout", "history", dep, "-n", NS, "--revision=1")
    assert kc.out("rollout", "undo", dep, "-n", NS).strip() == "deployment.apps/nginx-deployment rolled back"
    rollout(kc)
    third = poll(lambda: ready_pods(kc, "app=nginx", 2), 90, "2 ready nginx:1.14.2 pods again")
    assert {p["spec"]["containers"][0]["image"] for p in third} == {"nginx:1.14.2"}
    assert [r[0] for r in rows(kc.out("rollout", "history", dep, "-n", NS))[2:]] == ["2", "3"]  # 1 became 3
    res = kc.run("rollout", "undo", dep, "-n", NS, "--to-revision=9", ok=False)
    assert res.returncode == 1 and "unable to find specified revision 9 in history" in res.stderr

    assert kc.out("rollout", "restart", dep, "-n", NS).strip() == "deployment.apps/nginx-deployment restarted"
    rollout(kc)
    restarted = poll(lambda: ready_pods(kc, "app=nginx", 2), 90, "2 restarted pods")
    assert not {p["metadata"]["name"] for p in third} & {p["metadata"]["name"] for p in restarted}
    assert "kubectl.kubernetes.io/restartedAt" in restarted[0]["metadata"]["annotations"]

    # scale, with a watch open beforehand that sees the new pod come and turn Running.
    before = {p["metadata"]["name"] for p in restarted}
    watch = Lines(kc.start("get", "pods", "-n", NS, "-l", "app=nginx", "-w"))
    try:
        watch.until(lambda line: line.split()[:1] == [sorted(before)[0]], 30, "the watch's initial list")
        assert kc.out("scale", dep, "-n", NS, "--replicas=3").strip() == "deployment.apps/nginx-deployment scaled"
        watch.until(lambda line: line.split()[1:3] == ["1/1", "Running"] and line.split()[0] not in before, 90,
                    "the new pod Running in the watch")
    finally:
        watch.stop()
    poll(lambda: ready_pods(kc, "app=nginx", 3), 90, "3 ready pods after scale")
    res = kc.run("scale", "deployment/nope", "-n", NS, "--replicas=1", ok=False)
    assert res.returncode == 1 and 'no objects passed to scale deployments.apps "nope" not found' in res.stderr

    # diff: the server's dry run against the live object, diff's exit code; nothing changes.
    Path(nginx).write_text(NGINX_DEPLOYMENT.replace("replicas: 3", "replicas: 1"))
    res = kc.run("diff", "-n", NS, "-f", nginx, ok=False)
    assert res.returncode == 1, res.stderr
    assert "-  replicas: 3\n" in res.stdout and "+  replicas: 1\n" in res.stdout
    assert "-    note: kept" not in res.stdout  # kept through the three-way merge
    assert kc.out("get", dep, "-n", NS, "-o", "jsonpath={.spec.replicas}") == "3"
    Path(nginx).write_text(NGINX_DEPLOYMENT)  # what the live object is now (after undo and scale)
    assert kc.out("apply", "-n", NS, "-f", nginx).strip() == "deployment.apps/nginx-deployment configured"
    res = kc.run("diff", "-n", NS, "-f", nginx, ok=False)
    assert (res.returncode, res.stdout) == (0, ""), res.stderr

    # edit with EDITOR a script: kubectl hands it the object, sends back the change.
    editor = Path(kc.file("editor.sh", "#!/bin/sh\nsed -i 's/team: web/team: edited/' \"$1\"\n"))
    editor.chmod(0o755)
    out = kc.run("edit", dep, "-n", NS, env={"EDITOR": str(editor)}).stdout
    assert out.strip() == "deployment.apps/nginx-deployment edited"
    assert kc.out("get", dep, "-n", NS, "-o", "jsonpath={.metadata.labels.team}") == "edited"
    # Written with kubectl, read back identically with pbctl (gRPC); -o json on both sides.
    poll(lambda: kc.json("get", dep, "-n", NS, "--show-managed-fields") == json.loads(
        kc_pbctl(kc, "get", "deployment", "nginx-deployment", "-n", NS, "-o", "json")), 30, "the same Deployment")


def kc_pbctl(kc: Kubectl, *args: str) -> str:
    """pbctl with the same HOME (it reads the same ~/.kube/config)."""
    res = subprocess.run([sys.executable, "-m", "pbctl.main", *args], capture_output=True, text=True, timeout=60,
                         cwd=REPO, env=kc.env)
    assert res.returncode == 0, f"pbctl {' '.join(args)} failed: {res.stderr}"
    return res.stdout


def test_server_side_apply_and_delete_cascades(kc: Kubectl, nginx: str) -> None:
    both = kc.file("sleepers.yaml", sleeper("orphaned") + "---\n" + sleeper("foreground"))
    out = kc.out("apply", "--server-side", "-n", NS, "-f", both)
    assert out.split("\n")[:2] == ["deployment.apps/orphaned serverside-applied",
                                   "deployment.apps/foreground serverside-applied"]
    rollout(kc, "deployment/orphaned")
    rollout(kc, "deployment/foreground")
    orphan_pod = poll(lambda: ready_pods(kc, "app=orphaned", 1), 60, "the orphaned deployment's pod")[0]
    # orphan: the Deployment goes, its ReplicaSet and pod stay, no longer owned.
    out = kc.out("delete", "deployment", "orphaned", "-n", NS, "--cascade=orphan")
    assert out.strip() == 'deployment.apps "orphaned" deleted'
    [rs] = poll(lambda: [r for r in kc.json("get", "rs", "-n", NS, "-l", "app=orphaned")["items"]
                         if not r["metadata"].get("ownerReferences")], 30, "the ReplicaSet released")
    assert ready_pods(kc, "app=orphaned", 1)[0]["metadata"]["uid"] == orphan_pod["metadata"]["uid"]
    # delete pod: the (orphaned) ReplicaSet puts a new real pod in its place.
    assert kc.out("delete", "pod", orphan_pod["metadata"]["name"], "-n", NS).strip() == \
        f'pod "{orphan_pod["metadata"]["name"]}" deleted'
    new = poll(lambda: ready_pods(kc, "app=orphaned", 1), 90, "the replacement pod")[0]
    assert new["metadata"]["ownerReferences"][0]["name"] == rs["metadata"]["name"]
    kc.run("delete", "rs", rs["metadata"]["name"], "-n", NS)
    # foreground: kubectl returns once the Deployment is gone, which is after its ReplicaSet and pods.
    out = kc.out("delete", "deployment", "foreground", "-n", NS, "--cascade=foreground", timeout=120)
    assert out.strip() == 'deployment.apps "foreground" deleted'
    assert kc.json("get", "rs", "-n", NS, "-l", "app=foreground")["items"] == []
    assert pods(kc, "app=foreground") == []
    # delete -f: what the file names.
    assert kc.out("delete", "-n", NS, "-f", nginx).strip() == 'deployment.apps "nginx-deployment" deleted'
    res = kc.run("get", "deployment", "nginx-deployment", "-n", NS, ok=False)
    assert res.returncode == 1 and 'deployments.apps "nginx-deployment" not found' in res.stderr
    poll(lambda: pods(kc, "app in (nginx, orphaned)") == [], 90, "every pod gone")


def test_pbctl_writes_kubectl_reads_cluster_info_and_top(kc: Kubectl, lab: Lab) -> None:
    # Written with pbctl, read back identically with kubectl.
    kc_pbctl(kc, "create", "configmap", "from-pbctl", "-n", NS, "--from-literal=greeting=hello")
    assert kc.json("get", "configmap", "from-pbctl", "-n", NS, "--show-managed-fields") == json.loads(
        kc_pbctl(kc, "get", "configmap", "from-pbctl", "-n", NS, "-o", "json"))
    assert kc.out("get", "cm", "from-pbctl", "-n", NS, "-o", "jsonpath={.data.greeting}") == "hello"
    out = kc.out("cluster-info")
    assert "Kubernetes control plane is running at https://127.0.0.1:" in out
    if "metrics.k8s.io/v1beta1" in kc.out("api-versions").split():
        # A Metrics API served: kubectl's tables, one row per node (and per pod of the namespace's).
        header, *body = rows(kc.out("top", "nodes"))
        assert header[:3] == ["NAME", "CPU(cores)", "CPU(%)"]
        assert sorted(r[0] for r in body) == sorted(n["name"] for n in lab.state().info["nodes"])
        assert rows(kc.out("top", "pods", "-A"))[0][:4] == ["NAMESPACE", "NAME", "CPU(cores)", "MEMORY(bytes)"]
        return
    # No metrics.k8s.io served (no metrics-server): kubectl says so, as against a cluster without one.
    for what in ("pods", "nodes"):
        res = kc.run("top", what, ok=False)
        assert (res.returncode, res.stderr.strip()) == (1, "error: Metrics API not available"), res


def test_python_client_against_real_pods(kc: Kubectl, lab: Lab) -> None:
    kubernetes = pytest.importorskip("kubernetes")
    from kubernetes import client as k8s
    from kubernetes import stream as k8s_stream
    from kubernetes import utils as k8s_utils
    from kubernetes import watch as k8s_watch

    api = kubernetes.config.new_client_from_config(config_file=str(lab.kubeconfig))
    try:
        v1 = k8s.CoreV1Api(api)
        pod = yaml.safe_load(NGINX_DEPLOYMENT)["spec"]["template"]
        pod.update(apiVersion="v1", kind="Pod")
        pod["metadata"].update(name="py-nginx", labels={"app": "py-nginx"})
        [[created]] = k8s_utils.create_from_yaml(api, yaml_objects=[pod], namespace=NS)
        assert created.metadata.uid and created.status.phase == "Pending"
        # watch.Watch().stream from the created resourceVersion until the real pod runs.
        w = k8s_watch.Watch()
        phases = []
        for ev in w.stream(v1.list_namespaced_pod, NS, label_selector="app=py-nginx",
                           resource_version=created.metadata.resource_version, timeout_seconds=90):
            phases.append((ev["type"], ev["object"].status.phase))
            if ev["object"].status.phase == "Running":
                w.stop()
        assert phases[-1] == ("MODIFIED", "Running"), phases
        running = v1.read_namespaced_pod("py-nginx", NS)
        assert running.spec.node_name and running.status.pod_ip
        patched = v1.patch_namespaced_pod("py-nginx", NS, {"metadata": {"labels": {"tier": "web"}}})
        assert patched.metadata.labels == {"app": "py-nginx", "tier": "web"}
        assert [p.metadata.name for p in v1.list_namespaced_pod(NS, label_selector="tier=web").items] == ["py-nginx"]

        ws = k8s_stream.stream(v1.connect_get_namespaced_pod_exec, "py-nginx", NS,
                               command=["sh", "-c", "read x; echo got-$x; exit 5"], stdin=True, stdout=True,
                               stderr=True, tty=False, _preload_content=False)
        ws.write_stdin("hello\n")
        ws.run_forever(timeout=30)
        assert ws.returncode == 5 and ws.read_stdout() == "got-hello\n"
        ws.close()
        ws.sock.shutdown()  # websocket-client skips closing its socket when the server has already hung up

        def get_through_port_forward() -> bytes:
            pf = k8s_stream.portforward(v1.connect_get_namespaced_pod_portforward, "py-nginx", NS, ports="80")
            sock: socket.socket = pf.socket(80)
            sock.setblocking(True)
            sock.settimeout(20)
            sock.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
            sock.close()
            error = pf.error(80)
            pf.websocket.shutdown()
            assert error is None, error  # e.g. "Connection refused" while nginx starts listening: poll again
            return data

        body = poll(get_through_port_forward, 30, "an answer through kubernetes.stream.portforward")
        assert body.startswith(b"HTTP/1.1 200") and b"Welcome to nginx!" in body
        v1.delete_namespaced_pod("py-nginx", NS, grace_period_seconds=0)

        def gone() -> bool:
            try:
                v1.read_namespaced_pod("py-nginx", NS)
            except k8s.ApiException as e:
                return e.status == 404
            return False

        poll(gone, 60, "py-nginx deleted")
    finally:
        api.close()
