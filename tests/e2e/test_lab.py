"""The lab end to end: demo workload across nodes, services from every node, self-healing, idempotent
`lab up`, component stop/start, and a `lab down` that leaves the machine as it was.

Tests run in file order against one session lab (tests/e2e/conftest.py).
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from lab.topology import NETWORK

from .conftest import OTHER_CONTEXT, Lab, poll

pytestmark = pytest.mark.e2e
DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo.yaml"



def pods_wide(lab: Lab) -> list[dict[str, str]]:
    """`pbctl get pods -o wide` rows for app=hello as dicts (NAME, STATUS, IP, NODE, ...)."""
    out = lab.pbctl("get", "pods", "-l", "app=hello", "-o", "wide")
    lines = [line for line in out.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("NAME"):
        return []
    # Columns by their header's position: some headers have spaces ("NOMINATED NODE").
    names = ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE", "READINESS GATES"]
    head = lines[0] + " "
    starts = [(head.index(f" {n} ") + 1 if i else 0, n) for i, n in enumerate(names) if f" {n} " in head or not i]
    bounds = [(a, starts[i + 1][0] if i + 1 < len(starts) else None, n) for i, (a, n) in enumerate(starts)]
    return [{n: line[a:b].strip() for a, b, n in bounds} for line in lines[1:]]


def running(lab: Lab) -> list[dict[str, str]]:
    rows = pods_wide(lab)
    ok = [r for r in rows if r.get("STATUS") == "Running" and r.get("READY") == "1/1"
          and r.get("IP", "<none>").startswith("10.244.")]
    return ok if len(ok) == 3 and len(rows) == 3 else []


def nodes(lab: Lab) -> list[str]:
    return [n["name"] for n in lab.state().info["nodes"]]


def test_up_reports_ready_nodes(lab: Lab) -> None:
    out = lab.pbctl("get", "nodes")
    ready = [line for line in out.splitlines() if " Ready " in f" {line} "]
    assert len(ready) == 3, out
    assert f"context pybernetes-lab (current) in {lab.kubeconfig}" in lab.up_output
    assert "[1/" in lab.up_output and "... ok (" in lab.up_output


def test_demo_pods_run_across_nodes(lab: Lab) -> None:
    # What `make lab` sees on a fresh lab: an earlier test of the shared lab (the chaos run applies the demo,
    # then kills kubelets) may have left its pods wherever evictions put them, and nothing rebalances them.
    lab.pbctl("delete", "-f", str(DEMO), "--ignore-not-found")
    poll(lambda: not pods_wide(lab), 90, "no demo pods left")
    lab.pbctl("apply", "-f", str(DEMO))
    lab.pbctl("rollout", "status", "deployment/hello", "--timeout", "120s", timeout=150)
    rows = poll(lambda: running(lab), 90, "3 Running demo pods with IPs")
    used = {r["NODE"] for r in rows}
    assert len(used) >= 2, rows
    assert all(r["IP"].startswith("10.244.") for r in rows), rows


def test_demo_shows_requests_balanced_across_nodes(lab: Lab) -> None:
    """What `make lab` runs after `lab up`: right after the rollout it must wait for the proxies, then show
    both Services answered by pods on more than one node, and exit 0."""
    res = subprocess.run([sys.executable, "-m", "lab.demo", "--dir", str(lab.dir)], capture_output=True,
                         text=True, timeout=180, cwd=Path(__file__).resolve().parents[2])
    assert res.returncode == 0, f"{res.stdout}\n{res.stderr}"
    assert "pb-proxy has programmed the Services" in res.stdout, res.stdout
    where = {r["NAME"]: r["NODE"] for r in running(lab)}
    for kind in ("clusterip", "nodeport"):
        line = next(x for x in res.stdout.splitlines() if x.startswith(f"{kind}: "))
        pods = {p for p in where if p in line}
        assert len(pods) >= 2 and len({where[p] for p in pods}) >= 2, (kind, line, where)
    assert "no answer" not in res.stdout, res.stdout


def test_pod_network_from_every_node(lab: Lab) -> None:
    rows = running(lab)
    assert rows
    for node in nodes(lab):
        for r in rows:
            res = lab.in_node(node, "curl", "-sS", "--max-time", "3", f"http://{r['IP']}:8080/")
            assert res.stdout.strip() == f"hello from {r['NAME']}", (node, r, res.stderr)


def service_diagnostics(lab: Lab, node: str) -> str:
    """What to look at when a node's requests through a Service misbehave: endpoints, pods, its proxy's log."""
    eps = lab.pbctl("get", "endpoints", "hello", "-o", "wide", check=False)
    log = lab.dir / "logs" / f"proxy-{node}.log"
    tail = "\n".join(log.read_text().splitlines()[-15:]) if log.exists() else "(no proxy log)"
    return f"endpoints:\n{eps}\npods:\n{lab.pbctl('get', 'pods', '-o', 'wide', check=False)}\nproxy-{node}:\n{tail}"


def hit_all(lab: Lab, node: str, urls: list[str], pods: set[str], timeout: float = 30) -> None:
    """Requests from `node` cycling over `urls` until every URL has answered and the answers name every pod.

    As in Kubernetes' e2e "hit all endpoints": each node's proxy programs a change within its min sync period
    (1 s) of seeing it, so right after a rollout a node may still balance over fewer endpoints; waiting for
    every pod to answer proves the balancing without racing the proxies. Failures along the way are kept
    for the message."""
    answered: dict[str, set[str]] = {url: set() for url in urls}
    failures: list[str] = []
    want = {f"hello from {p}" for p in pods}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for url in urls:
            res = lab.in_node(node, "curl", "-sS", "--max-time", "3", url)
            if res.returncode == 0:
                answered[url].add(res.stdout.strip())
            else:
                failures.append(f"{url}: {res.stderr.strip()}")
        seen = set().union(*answered.values())
        if all(answered.values()) and want <= seen:
            assert seen == want, f"from {node}: answers from outside the service: {seen - want}"
            return
        time.sleep(0.2)
    raise AssertionError(f"from {node} within {timeout:.0f} s: answered {answered}, wanted {sorted(want)}; "
                         f"last failures {failures[-5:]}\n{service_diagnostics(lab, node)}")


def test_service_answers_from_every_node(lab: Lab) -> None:
    assert lab.state().find("proxy"), "the lab runs a pb-proxy on every node"
    vip = lab.pbctl("get", "service", "hello", "-o", "jsonpath={.spec.clusterIP}").strip()
    assert vip.startswith("10.96."), vip
    ips = [n["ip"] for n in lab.state().info["nodes"]]
    pods = {r["NAME"] for r in running(lab)}
    assert len(pods) == 3, pods
    for node in nodes(lab):
        hit_all(lab, node, [f"http://{vip}:80/"], pods)
        hit_all(lab, node, [f"http://{ip}:30080/" for ip in ips], pods)


def test_self_healing_replaces_deleted_pod(lab: Lab) -> None:
    before = running(lab)
    assert before
    victim = before[0]["NAME"]
    lab.pbctl("delete", "pod", victim, "--wait=false")

    def replaced() -> list[dict[str, str]]:
        rows = running(lab)
        return rows if rows and victim not in {r["NAME"] for r in rows} else []

    after = poll(replaced, 90, "a replacement pod")
    assert len(after) == 3
    replicas = lab.pbctl("get", "deployment", "hello", "-o", "jsonpath={.status.readyReplicas}").strip()
    assert replicas == "3"


def test_secrets_are_ciphertext_in_etcd_and_requests_audited(lab: Lab) -> None:
    lab.pbctl("create", "secret", "generic", "e2e-secret", "--from-literal=password=e2e-hunter2")
    got = json.loads(lab.pbctl("get", "secret", "e2e-secret", "-o", "json"))
    assert base64.b64decode(got["data"]["password"]) == b"e2e-hunter2"
    # What `etcdctl get` shows on the control-plane host: Kubernetes' aescbc envelope, no plaintext.
    from lab.topology import pki_dir

    endpoint, pki = lab.state().info["etcd"][0]["client"], pki_dir(lab.dir)
    res = lab.in_node("control-plane", "etcdctl", f"--endpoints={endpoint}", f"--cacert={pki / 'etcd' / 'ca.crt'}",
                      f"--cert={pki / 'apiserver-etcd-client.crt'}", f"--key={pki / 'apiserver-etcd-client.key'}",
                      "-w", "json", "get", "/registry/secrets/default/e2e-secret")
    assert res.returncode == 0, res.stderr
    raw = base64.b64decode(json.loads(res.stdout)["kvs"][0]["value"])
    assert raw.startswith(b"k8s:enc:aescbc:v1:key1:") and b"e2e-hunter2" not in raw
    log = lab.dir / "control-plane" / "audit" / "audit.log"

    def created() -> list[dict[str, object]]:
        events = [json.loads(line) for line in (log.read_text() if log.exists() else "").splitlines()]
        return [e for e in events if e["verb"] == "create" and e.get("objectRef", {}).get("name") == "e2e-secret"]

    create = poll(created, 10, "the Secret's create in the lab's audit log")
    assert create[-1]["user"]["username"] == "kubernetes-admin", create  # admin.conf: kubeadm's admin certificate
    assert create[-1]["responseStatus"]["code"] == 201 and create[-1]["level"] == "Metadata"
    assert "e2e-hunter2" not in log.read_text() and "ZTJlLWh1bnRlcjI" not in log.read_text()


def test_up_again_is_a_noop(lab: Lab) -> None:
    pids = {k: p.pid for k, p in lab.state().processes.items()}
    res = lab.cli("up", "--profile", "fast")
    assert "already up" in res.stdout, res.stdout
    assert {k: p.pid for k, p in lab.state().processes.items()} == pids


def test_stop_and_start_a_component(lab: Lab) -> None:
    lab.cli("stop", "kubelet", "--node", "node-3")
    st = lab.cli("status", check=False)
    assert st.returncode == 1 and "STOPPED" in st.stdout, st.stdout
    lab.cli("start", "kubelet", "--node", "node-3")
    poll(lambda: lab.cli("status", check=False).returncode == 0, 60, "all components healthy")
    out = lab.cli("shell", "node-3", "--", "ip", "-4", "addr", "show", "eth0").stdout
    assert "172.30.0.13/24" in out


@pytest.mark.lab_teardown
def test_down_leaves_machine_as_before(lab: Lab) -> None:
    res = lab.cli("down")
    assert f"removed context pybernetes-lab from {lab.kubeconfig}" in res.stdout
    doc = yaml.safe_load(lab.kubeconfig.read_text())  # exactly the lab's entries gone, the user's intact
    assert [e["name"] for s in ("clusters", "users", "contexts") for e in doc[s]] == [OTHER_CONTEXT] * 3
    assert doc["current-context"] == ""
    left = lab.leftovers()
    assert not left, left
    res = lab.cli("down")  # idempotent
    assert "nothing to do" in res.stdout
    assert NETWORK.bridge_netns in lab.namespaces
