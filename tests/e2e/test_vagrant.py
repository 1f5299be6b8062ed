"""The lab on Vagrant VMs (libvirt): `vagrant up`, the demo, pods on the workers, the service from every node.

Slow (VMs under TCG take minutes each): runs with PB_VAGRANT_E2E=1 and the VM tooling — vagrant with
vagrant-libvirt, a reachable libvirtd and a local box (PB_OFFLINE=1 with `make vagrant-box`'s
pybernetes/debian12); docs/vagrant.md sets a host up. Uses the repo's Vagrantfile as is, so PB_WORKERS,
PB_OFFLINE, PB_BOX, PB_MEMORY and PB_LIBVIRT_DRIVER apply; `make vagrant-prep` runs first when its artifacts
are missing. Everything is destroyed at the end (`vagrant destroy -f`), also on failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "deploy" / "vagrant" / "artifacts"
WORKERS = int(os.environ.get("PB_WORKERS", "3"))
UP_TIMEOUT = float(os.environ.get("PB_VAGRANT_UP_TIMEOUT", "10800"))


def _why_skip() -> str:
    """Runs with PB_VAGRANT_E2E=1 (a missing piece of the VM tooling is then the skip reason): four VMs under
    software emulation take 10-25 minutes, a long run like the chaos and soak ones, kept out of `make test`."""
    if os.environ.get("PB_VAGRANT_E2E") != "1":
        return "set PB_VAGRANT_E2E=1 to run the Vagrant e2e (about 10-25 minutes under TCG)"
    if shutil.which("vagrant") is None:
        return "vagrant is not installed (apt-get install vagrant vagrant-libvirt)"
    plugins = subprocess.run(["vagrant", "plugin", "list"], capture_output=True, text=True, cwd=REPO).stdout
    if "vagrant-libvirt" not in plugins:
        return "the vagrant-libvirt plugin is not installed (apt-get install vagrant-libvirt)"
    if subprocess.run(["virsh", "-c", "qemu:///system", "list"], capture_output=True).returncode != 0:
        return "libvirtd is not running (start libvirtd and virtlogd)"
    box = os.environ.get("PB_BOX") or ("pybernetes/debian12" if os.environ.get("PB_OFFLINE") == "1" else "")
    boxes = subprocess.run(["vagrant", "box", "list"], capture_output=True, text=True, cwd=REPO).stdout
    if os.environ.get("PB_VAGRANT_E2E") != "1" and (not box or box not in boxes):
        return "no local Vagrant box (make vagrant-box, then PB_OFFLINE=1), and no PB_VAGRANT_E2E=1"
    return ""


_SKIP = _why_skip()
pytestmark = [pytest.mark.e2e, pytest.mark.skipif(bool(_SKIP), reason=_SKIP or "runs"),
              pytest.mark.timeout(int(UP_TIMEOUT) + 1800)]


def vagrant(*args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(["vagrant", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)
    if check and res.returncode != 0:
        raise AssertionError(f"vagrant {' '.join(args)} failed ({res.returncode}):\n{res.stdout[-4000:]}\n"
                             f"{res.stderr[-4000:]}")
    return res


def ssh(machine: str, command: str, *, timeout: float = 300, check: bool = True) -> str:
    return vagrant("ssh", machine, "-c", command, "--", "-q", timeout=timeout, check=check).stdout


def pbctl(*args: str, timeout: float = 300, check: bool = True) -> str:
    return ssh("control-plane", "sudo /opt/pybernetes/bin/pbctl " + " ".join(args), timeout=timeout, check=check)


def eventually(fn, timeout: float, what: str, interval: float = 5.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last:
                return last
        except (AssertionError, subprocess.TimeoutExpired) as e:  # a TCG VM on a loaded host can be slow to answer
            last = e
        time.sleep(interval)
    raise AssertionError(f"{what} not true after {timeout:.0f} s; last: {last}")


@pytest.fixture(scope="module")
def vagrant_lab() -> Iterator[dict[str, float]]:
    times: dict[str, float] = {}
    if not (ARTIFACTS / "token").exists() or not list((ARTIFACTS / "wheels").glob("pybernetes-*.whl")):
        t = time.monotonic()
        subprocess.run([str(REPO / "deploy" / "vagrant" / "prep.sh")], cwd=REPO, check=True, timeout=1800)
        times["prep"] = time.monotonic() - t
    try:
        t = time.monotonic()
        vagrant("up", timeout=UP_TIMEOUT)
        times["up"] = time.monotonic() - t
        yield times
    finally:
        t = time.monotonic()
        if os.environ.get("PB_VAGRANT_KEEP") != "1":  # =1 leaves the VMs up to look at; `vagrant destroy -f` after
            vagrant("destroy", "-f", timeout=1800, check=False)
        times["destroy"] = time.monotonic() - t
        print(f"vagrant timings (s): { {k: round(v) for k, v in times.items()} }")


def test_demo_on_vagrant(vagrant_lab: dict[str, float]) -> None:
    workers = [f"node-{i}" for i in range(1, WORKERS + 1)]

    def nodes_ready() -> bool:
        out = pbctl("get", "nodes", check=False)
        return all(re.search(rf"^{n}\s+Ready\b", out, re.M) for n in workers)

    eventually(nodes_ready, 900, "all workers Ready")
    demo = "/pybernetes/examples/demo.yaml"
    if (REPO / "examples" / "demo.yaml").exists():
        pbctl("apply", "-f", demo)
    else:  # a 3-replica deployment and a NodePort service of the lab image
        pbctl("create", "deployment", "hello", "--image=localhost:5000/busybox:stable", "--replicas=3",
              "--", "httpd", "-f", "-p", "8080", "-h", "/www")
        pbctl("expose", "deployment", "hello", "--port=80", "--target-port=8080", "--type=NodePort")

    def pods_running() -> list[dict[str, object]]:
        doc = json.loads(pbctl("get", "pods", "-l", "app=hello", "-o", "json"))
        items = doc.get("items", [])
        running = [p for p in items if p.get("status", {}).get("phase") == "Running"
                   and p.get("spec", {}).get("nodeName") in workers]
        return running if len(running) >= 3 else []

    pods = eventually(pods_running, 1200, "3 demo pods Running on the workers")
    assert {p["spec"]["nodeName"] for p in pods} <= set(workers)  # type: ignore[index]
    names = {p["metadata"]["name"] for p in pods}  # type: ignore[index]

    svc = json.loads(pbctl("get", "service", "hello", "-o", "json"))
    cluster_ip = svc["spec"]["clusterIP"]
    nodeport = json.loads(pbctl("get", "service", "-o", "json"))["items"]
    port = next((p.get("nodePort") for s in nodeport for p in s["spec"].get("ports", []) if p.get("nodePort")), None)
    assert port, "no NodePort service"
    # From every worker: the NodePort on the node's own cluster address, and the ClusterIP from a pod on
    # that node (pod -> service VIP -> pods on any node: exercises the host-gw routes).
    answers: set[str] = set()
    for i, node in enumerate(workers, start=1):
        ip = f"172.31.0.{10 + i}"

        def nodeport_answers(ip: str = ip, node: str = node) -> str:
            out = ssh(node, f"curl -s --max-time 5 http://{ip}:{port}/", check=False)
            return out if "hello from" in out else ""

        for _ in range(4):
            answers.add(eventually(nodeport_answers, 300, f"NodePort {port} on {node}").strip())
    for pod in pods:
        pod_name = str(pod["metadata"]["name"])  # type: ignore[index]

        def cluster_ip_answers(pod_name: str = pod_name) -> str:
            # Through vagrant ssh, pbctl exec and the apiserver's proxy to the kubelet: on TCG VMs a single
            # attempt can time out on its way, so the answer is awaited (stdout and stderr kept for the report).
            res = vagrant("ssh", "control-plane", "-c", "sudo /opt/pybernetes/bin/pbctl exec " + pod_name +
                          " -- sh -c " + f"'printf \"GET / HTTP/1.0\\r\\n\\r\\n\" | nc -w 5 {cluster_ip} 80'",
                          "--", "-q", timeout=120, check=False)
            if "hello from" not in res.stdout:
                why = (f"ClusterIP {cluster_ip} from {pod_name}: exit {res.returncode}, "
                       f"stdout {res.stdout[-300:]!r}, stderr {res.stderr[-300:]!r}")
                print(f"attempt failed: {why}")  # shown with -s: a retried failure is still on record
                raise AssertionError(why)
            return res.stdout

        eventually(cluster_ip_answers, 120, f"ClusterIP {cluster_ip} from {pod_name}")
    # The NodePort answers came from more than one pod, so traffic crossed nodes.
    answered = {a.removeprefix("hello from ").strip() for a in answers}
    assert answered <= names and len(answered) >= 2, answered


def test_prometheus_on_vagrant_scrapes_every_component(vagrant_lab: dict[str, float]) -> None:
    """pb-prometheus on the control plane: every component and etcd's metrics up, a kubelet and a proxy
    target per node from the file_sd that pb-prometheus-sd writes from the Node objects."""
    want = {"apiserver": 1, "scheduler": 1, "controller-manager": 1, "etcd": 1, "prometheus": 1, "dns": 1,
            "kubelet": WORKERS, "proxy": WORKERS}

    def all_up() -> dict[str, int]:
        out = ssh("control-plane", "curl -s --max-time 5 'http://127.0.0.1:9090/api/v1/targets?state=active'",
                  check=False)
        try:
            active = json.loads(out)["data"]["activeTargets"]
        except (ValueError, KeyError) as e:
            unit = ssh("control-plane", "systemctl is-active pb-prometheus; dpkg -s prometheus | head -2",
                       check=False)
            raise AssertionError(f"Prometheus API: {e}: {out[:300]!r}; pb-prometheus: {unit.strip()!r} (an offline "
                                 "box built before it shipped prometheus has none: rebuild it, make vagrant-box)"
                                 ) from None
        jobs: dict[str, int] = {}
        for t in active:
            jobs[t["labels"]["job"]] = jobs.get(t["labels"]["job"], 0) + 1
        down = [(t["labels"]["job"], t["scrapeUrl"], t.get("lastError")) for t in active if t["health"] != "up"]
        assert jobs == want and not down, f"targets per job {jobs}, want {want}; not up: {down}"
        return jobs

    eventually(all_up, 300, "every Prometheus target up")


def test_each_vm_holds_only_its_own_keys(vagrant_lab: dict[str, float]) -> None:
    """As kubeadm hands keys out: the CA key only on the control plane; a node has its own kubelet and proxy
    keys and no other node's (the Vagrantfile's per-VM rsync excludes)."""
    workers = [f"node-{i}" for i in range(1, WORKERS + 1)]
    synced = "/pybernetes/deploy/vagrant/artifacts"
    cp = ssh("control-plane", f"sudo find {synced} /etc/pybernetes /var/lib/pybernetes -name '*.key' 2>/dev/null")
    assert f"{synced}/pki/ca.key" in cp.split() and "/nodes/" not in cp, cp
    for node in workers:
        keys = set(ssh(node, "sudo find / -xdev -name '*.key' -path '*pybernetes*' 2>/dev/null", check=False).split())
        assert keys, f"{node}: no key at all"
        foreign = [k for k in keys if k.endswith("ca.key") or f"{synced}/pki/" in k
                   or any(f"/nodes/{other}/" in k for other in workers if other != node)]
        assert not foreign, f"{node} holds keys that are not its own: {foreign}"
        assert f"{synced}/nodes/{node}/kubelet.key" in keys and "/etc/pybernetes/pki/kubelet.key" in keys, keys


def test_pods_find_services_by_name_on_vagrant(vagrant_lab: dict[str, float]) -> None:
    """Cluster DNS on the VMs: from a pod on each worker, `hello` (the search path) and the full name resolve
    to the Service's ClusterIP through pb-dns at kube-dns's address; an unknown name is NXDOMAIN."""
    cluster_ip = eventually(lambda: json.loads(pbctl("get", "service", "hello", "-o", "json"))["spec"]["clusterIP"],
                            600, "service hello")
    workers = [f"node-{i}" for i in range(1, WORKERS + 1)]

    def pods_by_node() -> dict[str, str]:
        items = json.loads(pbctl("get", "pods", "-l", "app=hello", "-o", "json")).get("items", [])
        got = {p["spec"].get("nodeName"): p["metadata"]["name"] for p in items
               if p.get("status", {}).get("phase") == "Running"}
        return got if len(got) >= 2 else {}

    for node, pod in eventually(pods_by_node, 900, "running demo pods").items():
        def resolves(n: str, p: str = pod) -> str:  # the answer itself in the failure message
            out = pbctl("exec", p, "--", "nslookup", n, "2>&1", check=False)
            assert cluster_ip in out, out
            return out

        for name in ("hello", "hello.default.svc.cluster.local"):
            eventually(lambda n=name: resolves(n), 120, f"{name} from {pod} on {node}")

        def nxdomain(p: str = pod) -> str:  # an exec through a TCG VM can fail on its own: retried as the above
            out = pbctl("exec", p, "--", "nslookup", "nope.default.svc.cluster.local.", "2>&1", check=False)
            return out if ("NXDOMAIN" in out or "can't find" in out) else ""

        missing = eventually(nxdomain, 120, f"NXDOMAIN for an unknown name from {pod} on {node}")
        assert cluster_ip not in missing, missing
    assert workers
