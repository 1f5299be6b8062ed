"""The architecture's promises, end to end in the lab (runs before test_lab.py's teardown test):

- a container killed behind the kubelet's back is restarted;
- a failed node's pods are evicted and recreated elsewhere while the Service keeps answering;
- with etcd, the apiserver, the scheduler and the controller manager offline for 2 minutes, containers keep
  serving through their Service and a crashed one is still restarted; afterwards the cluster converges with
  nothing lost and nothing duplicated;
- killing and restarting the scheduler, the controller manager and a kubelet during a rolling update does
  not stop it from completing;
- only the apiserver holds a connection to etcd.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import Lab, poll

pytestmark = pytest.mark.e2e

WEB = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  strategy: {rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: web
        image: localhost:5000/busybox:stable
        command: ["sh", "-c", "echo $(hostname) > /tmp/i; exec httpd -f -p 8080 -h /tmp"]
        ports: [{containerPort: 8080}]
        readinessProbe: {httpGet: {path: /i, port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
"""


def pods(lab: Lab) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(lab.pbctl("get", "pods", "-l", "app=web", "-o", "json"))["items"]
    return items


def healthy(lab: Lab, *, avoid: str = "") -> list[dict[str, Any]]:
    """The web pods when exactly 3 are Running, Ready and not terminating (optionally none on `avoid`)."""
    out = []
    for p in pods(lab):
        st = p.get("status", {})
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions", []))
        if p["metadata"].get("deletionTimestamp") or st.get("phase") != "Running" or not ready:
            continue
        if avoid and p["spec"].get("nodeName") == avoid:
            continue
        out.append(p)
    return out if len(out) == 3 else []


_LAST_REFUSAL: list[str] = []  # serve_all's last failed request, for a failure's message


def serve_all(lab: Lab, vip: str) -> set[str]:
    """Who answers the Service from each node (6 requests per node); empty if any request fails."""
    seen: set[str] = set()
    for node in ("node-1", "node-2", "node-3"):
        for _ in range(6):
            res = lab.in_node(node, "curl", "-sS", "--max-time", "3", f"http://{vip}/i")
            if res.returncode != 0:
                _LAST_REFUSAL[:] = [f"from {node}: {res.stderr.strip()}"]
                return set()
            seen.add(res.stdout.strip())
    return seen


def serving_state(lab: Lab) -> str:
    """What a Service failure's message shows: the failed request, the pods, the Service's EndpointSlices."""
    return "\n".join([f"last failed request {' '.join(_LAST_REFUSAL)}", lab.pbctl("get", "pods", "-o", "wide"),
                      lab.pbctl("get", "endpointslices", "-o", "yaml", check=False)])


def ctr(lab: Lab, node: str, *args: str) -> subprocess.CompletedProcess[str]:
    sock = lab.state().containerd[node]["socket"]
    return subprocess.run(["ctr", "--address", sock, "-n", "k8s.io", *args], capture_output=True, text=True,
                          timeout=30)


def kill_container(lab: Lab, pod: dict[str, Any]) -> str:
    cid = pod["status"]["containerStatuses"][0]["containerID"].split("://", 1)[1]
    res = ctr(lab, pod["spec"]["nodeName"], "tasks", "kill", "-s", "SIGKILL", cid)
    assert res.returncode == 0, res.stderr
    return cid


def answers(lab: Lab, pod: dict[str, Any]) -> bool:
    res = lab.in_node("node-1", "curl", "-sS", "--max-time", "2", f"http://{pod['status']['podIP']}:8080/i")
    return res.returncode == 0 and res.stdout.strip() == pod["metadata"]["name"]


@pytest.fixture(scope="module")
def web(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> str:
    f = tmp_path_factory.mktemp("web") / "web.yaml"
    f.write_text(WEB)
    lab.pbctl("apply", "-f", str(f))
    lab.pbctl("rollout", "status", "deployment/web", "--timeout", "120s", timeout=150)
    poll(lambda: healthy(lab), 90, "3 ready web pods")
    vip = lab.pbctl("get", "service", "web", "-o", "jsonpath={.spec.clusterIP}").strip()
    poll(lambda: len(serve_all(lab, vip)) >= 2, 60, "the web Service answering from every node")
    return vip


def test_container_killed_behind_the_kubelets_back_is_restarted(lab: Lab, web: str) -> None:
    victim = healthy(lab)[0]
    name = victim["metadata"]["name"]
    old = kill_container(lab, victim)

    def restarted() -> bool:
        p = next((p for p in pods(lab) if p["metadata"]["name"] == name), None)
        cs = (p or {}).get("status", {}).get("containerStatuses", [{}])[0]
        return bool(cs.get("restartCount", 0) >= 1 and cs.get("ready") and old not in cs.get("containerID", ""))

    poll(restarted, 60, f"{name} restarted with a new container")
    assert len(pods(lab)) == 3


def test_node_failure_evicts_and_recreates_pods(lab: Lab, web: str) -> None:
    if not any(p["spec"]["nodeName"] == "node-2" for p in healthy(lab)):
        pytest.skip("no web pod on node-2 to evict")  # the scheduler spreads 3 replicas over 3 nodes
    lab.cli("stop", "kubelet", "--node", "node-2")
    try:
        def node_down() -> bool:
            return " NotReady " in f" {lab.pbctl('get', 'node', 'node-2')} "

        poll(node_down, 60, "node-2 NotReady")
        # The Service keeps answering while the pods move (evicted after the fast profile's 20 s).
        deadline = time.monotonic() + 120
        moved: list[dict[str, Any]] = []
        while time.monotonic() < deadline and not moved:
            assert serve_all(lab, web), "the Service stopped answering during the node failure"
            moved = healthy(lab, avoid="node-2")
            time.sleep(2)
        assert moved, "pods were not recreated on the healthy nodes"
        assert {p["spec"]["nodeName"] for p in moved} <= {"node-1", "node-3"}
    finally:
        lab.cli("start", "kubelet", "--node", "node-2")
    poll(lambda: " Ready " in f" {lab.pbctl('get', 'node', 'node-2')} " and len(pods(lab)) == 3, 90,
         "node-2 back and its terminating pods finalized")


def test_control_plane_offline_containers_keep_serving(lab: Lab, web: str) -> None:
    before = {p["metadata"]["name"]: p for p in healthy(lab)}
    assert len(before) == 3
    down = ("controller-manager", "scheduler", "apiserver", "etcd")
    for component in down:
        lab.cli("stop", component)
    crashed: dict[str, Any] | None = None
    try:
        start = time.monotonic()
        while time.monotonic() - start < 120:
            assert len(serve_all(lab, web)) >= 2, "containers stopped serving with the control plane offline"
            if crashed is None and time.monotonic() - start > 20:
                crashed = next(iter(before.values()))
                kill_container(lab, crashed)
                # The kubelet restarts it from its local state, with no apiserver to ask.
                poll(lambda v=crashed: answers(lab, v), 60, "the crashed container restarted offline")
            time.sleep(5)
    finally:
        for component in reversed(down):
            lab.cli("start", component)
    assert crashed is not None

    def converged() -> bool:
        now = healthy(lab)
        if {p["metadata"]["name"] for p in now} != set(before):
            return False
        victim = next(p for p in now if p["metadata"]["name"] == crashed["metadata"]["name"])
        return bool(victim["status"]["containerStatuses"][0].get("restartCount", 0) >= 1)

    poll(converged, 120, "the same 3 pods, the crashed one's restart reported")
    assert len(pods(lab)) == 3  # nothing duplicated
    rs = json.loads(lab.pbctl("get", "replicasets", "-l", "app=web", "-o", "json"))["items"]
    assert len([r for r in rs if r["spec"].get("replicas", 0) > 0]) == 1


def test_rollout_survives_component_restarts(lab: Lab, web: str) -> None:
    old = {p["metadata"]["labels"]["pod-template-hash"] for p in healthy(lab)}
    lab.pbctl("rollout", "restart", "deployment/web")
    for component, node in (("scheduler", ""), ("controller-manager", ""), ("kubelet", "node-1")):
        args = ["--node", node] if node else []
        lab.cli("stop", component, *args)
        time.sleep(2)
        lab.cli("start", component, *args)
    lab.pbctl("rollout", "status", "deployment/web", "--timeout", "180s", timeout=200)

    def renewed() -> list[dict[str, Any]]:
        now = healthy(lab)
        return now if now and not ({p["metadata"]["labels"]["pod-template-hash"] for p in now} & old) else []

    poll(renewed, 120, "3 new pods of the new template")
    try:
        poll(lambda: len(pods(lab)) == 3, 60, "the old pods finished terminating")
    except AssertionError:
        raise AssertionError(lab.pbctl("get", "pods", "-o", "wide") + "\n" + lab.pbctl("get", "events")) from None
    # Endpoints and proxy rules follow the finished pods within a sync or two (as in Kubernetes, a pod can be
    # gone a moment before the rules are): the Service answers every request again shortly after.
    try:
        poll(lambda: serve_all(lab, web), 30, "every request answered after the rollout")
    except AssertionError as e:
        raise AssertionError(f"{e}\n{serving_state(lab)}") from None


def test_load_balancer_service_gets_an_address_and_answers(lab: Lab, web: str,
                                                            tmp_path_factory: pytest.TempPathFactory) -> None:
    f = tmp_path_factory.mktemp("lb") / "lb.yaml"
    f.write_text("apiVersion: v1\nkind: Service\nmetadata: {name: web-lb}\nspec:\n  type: LoadBalancer\n"
                 "  selector: {app: web}\n  ports: [{port: 80, targetPort: 8080}]\n")
    lab.pbctl("apply", "-f", str(f))

    def address() -> str:
        return lab.pbctl("get", "service", "web-lb", "-o", "jsonpath={.status.loadBalancer.ingress[0].ip}").strip()

    ip = poll(address, 30, "a LoadBalancer address (never <pending> in the lab)")
    assert ip.startswith("172.30.0.2"), ip
    assert ip in lab.pbctl("get", "service", "web-lb")  # EXTERNAL-IP column
    for node in ("node-1", "node-2", "node-3"):
        res = poll(lambda n=node: lab.in_node(n, "curl", "-sS", "--max-time", "3", f"http://{ip}/i").stdout.strip(),
                   30, f"{ip} from {node}")
        assert res.startswith("web-"), res


def _socket_peers(pid: int, port: int) -> set[int]:
    """Inodes of `pid`'s TCP sockets connected to `port` (seen in pid's own network namespace)."""
    hexport = f"{port:04X}"
    inodes = set()
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            f = line.split()
            if f[2].endswith(":" + hexport) and f[3] == "01":  # remote port, ESTABLISHED
                inodes.add(int(f[9]))
    mine = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            mine.add(int(target[8:-1]))
    return inodes & mine


def test_only_the_apiserver_reaches_etcd(lab: Lab, web: str) -> None:
    st = lab.state()
    connected = {rec.component for rec in st.processes.values() if rec.alive() and _socket_peers(rec.pid, 2379)}
    # etcd's own gRPC gateway talks to its client port too; apart from etcd itself, only the apiserver.
    assert connected - {"etcd"} == {"apiserver"}, connected
    # No other component is told where etcd is: only the apiserver's command line names it.
    for rec in st.processes.values():
        if rec.component not in ("apiserver", "etcd") and any("2379" in a for a in rec.argv):
            pytest.fail(f"{rec.name} is configured with etcd's address: {rec.argv}")
    data = next(a.split("=", 1)[1] for a in st.processes["etcd"].argv if a.startswith("--data-dir="))
    assert (os.stat(data).st_mode & 0o077) == 0, "etcd's data dir is readable by others"
    # etcd itself refuses anyone else on the control-plane host: TLS with client certificates from etcd/ca.
    from lab.topology import CP_NETNS, pki_dir

    pki = pki_dir(lab.dir)

    def etcdctl(*flags: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", CP_NETNS, "env", "ETCDCTL_API=3", "etcdctl",
                               "--endpoints=https://127.0.0.1:2379", "--command-timeout=3s", *flags, "endpoint",
                               "status"], capture_output=True, text=True, timeout=30)

    ca = f"--cacert={pki / 'etcd' / 'ca.crt'}"
    assert etcdctl(ca).returncode != 0
    plain = subprocess.run(["ip", "netns", "exec", CP_NETNS, "env", "ETCDCTL_API=3", "etcdctl",
                            "--endpoints=http://127.0.0.1:2379", "--command-timeout=3s", "endpoint", "status"],
                           capture_output=True, text=True, timeout=30)
    assert plain.returncode != 0
    ok = etcdctl(ca, f"--cert={pki / 'apiserver-etcd-client.crt'}", f"--key={pki / 'apiserver-etcd-client.key'}")
    assert ok.returncode == 0, ok.stdout + ok.stderr


# Stats from the kubelet API, asked directly with gRPC: prints OK or the gRPC status code.
_KUBELET_STATS = """
import sys, grpc
from pybernetes.api.rpc.v1 import rpc_pb2 as pb, rpc_pb2_grpc as pb_grpc
ca, target, *pair = sys.argv[1:]
key, cert = (open(pair[1], "rb").read(), open(pair[0], "rb").read()) if pair else (None, None)
ch = grpc.secure_channel(target, grpc.ssl_channel_credentials(open(ca, "rb").read(), key, cert))
try:
    pb_grpc.KubeletStub(ch).Stats(pb.StatsRequest(), timeout=10)
    print("OK")
except grpc.RpcError as e:
    print(e.code().name)
"""


def test_kubelet_api_refuses_clients_without_the_apiservers_certificate(lab: Lab, web: str) -> None:
    # From another node (anyone who can reach a node's 10250): the kubelet's serving certificate checks out
    # against the cluster CA, but without a client certificate, or with another CA's, the handshake is refused
    # (UNAVAILABLE); the apiserver's kubelet client certificate gets through.
    import sys

    from lab.topology import pki_dir
    from pybernetes import pkiutil, tls

    pki = pki_dir(lab.dir)

    def stats(*pair: Path) -> str:
        res = lab.in_node("node-2", sys.executable, "-c", _KUBELET_STATS, str(pki / "ca.crt"), "172.30.0.11:10250",
                          *map(str, pair), timeout=30)
        return res.stdout.strip() or res.stderr

    impostor = pkiutil.ensure_client_cert(lab.dir.parent / "foreign-pki", "impostor", tls.KUBELET_CLIENT_NAME,
                                      (tls.MASTERS_GROUP,))
    assert stats() == "UNAVAILABLE"
    assert stats(impostor.cert, impostor.key) == "UNAVAILABLE"
    assert stats(pki / "apiserver-kubelet-client.crt", pki / "apiserver-kubelet-client.key") == "OK"
    # and exec through the apiserver works
    pod = lab.pbctl("get", "pods", "-l", "app=web", "-o", "jsonpath={.items[0].metadata.name}").strip()
    assert lab.pbctl("exec", pod, "--", "echo", "through-the-apiserver").strip() == "through-the-apiserver"
