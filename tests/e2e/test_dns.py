"""Cluster DNS in the lab (issue 15): a busybox pod finds the demo's `hello` Service by its short,
namespaced and full names, and fetches `http://hello/` and `http://hello.default/` (the demo's page); its
resolv.conf is Kubernetes'; a headless Service resolves to the ready pods only and drops one that turns
unready; an unknown name is NXDOMAIN within 100 ms; a selector-less Service with user-managed Endpoints is
mirrored into an EndpointSlice and serves by name.

pb-dns runs in pb-control-plane behind kube-system/kube-dns (10.96.0.10); the kubelets write each pod's
resolv.conf with `nameserver 10.96.0.10`, `search <ns>.svc.cluster.local svc.cluster.local cluster.local`,
`options ndots:5`. Uses the session lab (tests/e2e/conftest.py); applies examples/demo.yaml itself, so it
does not depend on test_lab's order.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import Lab, poll

pytestmark = pytest.mark.e2e
DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo.yaml"
CLIENT = """apiVersion: v1
kind: Pod
metadata:
  name: dns-client
spec:
  containers:
    - name: sh
      image: localhost:5000/busybox:stable
      command: ["sleep", "3600"]
"""
# A Service without a selector and the Endpoints its user writes (here: one hello pod's address).
MANUAL = """apiVersion: v1
kind: Service
metadata:
  name: hello-manual
spec:
  ports:
    - name: http
      port: 80
      targetPort: 8080
---
apiVersion: v1
kind: Endpoints
metadata:
  name: hello-manual
subsets:
  - addresses: [{{ip: "{ip}"}}]
    ports: [{{name: http, port: 8080}}]
"""
HEADLESS = """apiVersion: v1
kind: Service
metadata:
  name: hello-headless
spec:
  clusterIP: None
  selector:
    app: hello
  ports:
    - name: http
      port: 8080
"""



def in_client(lab: Lab, *cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pbctl.main", "--config", str(lab.admin), "exec", "dns-client",
                           "--", *cmd], capture_output=True, text=True, timeout=30)


def ready_hello_ips(lab: Lab) -> set[str]:
    out = lab.pbctl("get", "endpoints", "hello", "-o", "jsonpath={.subsets[*].addresses[*].ip}")
    return set(out.split())


@pytest.fixture(scope="module")
def client(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Lab:
    lab.pbctl("apply", "-f", str(DEMO))
    poll(lambda: len(ready_hello_ips(lab)) == 3, 120, "3 ready hello endpoints")
    path = tmp_path_factory.mktemp("dns") / "client.yaml"
    path.write_text(CLIENT)
    lab.pbctl("apply", "-f", str(path))
    poll(lambda: lab.pbctl("get", "pod", "dns-client", "-o", "jsonpath={.status.phase}").strip() == "Running",
         90, "dns-client Running")
    return lab


def test_kube_dns_service_and_status(client: Lab) -> None:
    vip = client.pbctl("get", "service", "kube-dns", "-n", "kube-system", "-o", "jsonpath={.spec.clusterIP}")
    assert vip.strip() == "10.96.0.10"
    status = client.cli("status", check=False).stdout
    assert any(line.split()[:1] == ["dns"] and "ok" in line for line in status.splitlines()), status


def test_pod_resolv_conf_is_kubernetes(client: Lab) -> None:
    conf = in_client(client, "cat", "/etc/resolv.conf").stdout
    assert "nameserver 10.96.0.10" in conf, conf
    assert "search default.svc.cluster.local svc.cluster.local cluster.local" in conf, conf
    assert "ndots:5" in conf, conf


def test_service_names_resolve_and_serve(client: Lab) -> None:
    vip = client.pbctl("get", "service", "hello", "-o", "jsonpath={.spec.clusterIP}").strip()
    # busybox's nslookup applies the search path only to names without a dot (the reason Kubernetes' DNS docs
    # pin busybox:1.28), and also tries the host's search domains, which SERVFAIL here (no upstream): it is
    # asked the dotless and the full name, and the answer is looked for, not the exit status.
    for name in ("hello", "hello.default.svc.cluster.local"):
        res = poll(lambda n=name: vip in (r := in_client(client, "nslookup", n)).stdout and r, 30, f"nslookup {name}")
        assert vip in res.stdout
    # wget resolves through the C library (resolv.conf's search path and ndots:5), so the short and the
    # namespaced names both reach the Service. Bounded with `timeout`, not wget's -T: the lab's busybox (Debian's
    # busybox-static 1.35) is built without FEATURE_WGET_TIMEOUT and dies of SIGSEGV parsing -T, before any
    # lookup (what failed here once, not the DNS).
    for name in ("hello", "hello.default"):
        res = poll(lambda n=name: (r := in_client(client, "timeout", "5", "wget", "-q", "-O", "-", f"http://{n}/"))
                   .returncode == 0 and r, 30, f"wget http://{name}/")
        assert res.stdout.startswith("hello from hello-"), res.stdout


def test_unknown_name_is_nxdomain_within_100ms(client: Lab) -> None:
    res = in_client(client, "nslookup", "nope.default.svc.cluster.local.")
    assert "NXDOMAIN" in res.stdout + res.stderr, (res.stdout, res.stderr)
    # timed from a node (the pod's path: its proxy DNATs 10.96.0.10 to pb-dns), with dnspython
    probe = ("import time, dns.message, dns.query, dns.rcode\n"
             "q = dns.message.make_query('nope.default.svc.cluster.local.', 'A')\n"
             "t = time.monotonic(); r = dns.query.udp(q, '10.96.0.10', timeout=2)\n"
             "print(dns.rcode.to_text(r.rcode()), time.monotonic() - t)\n")
    out = client.in_node("node-1", sys.executable, "-c", probe).stdout.split()
    assert out[0] == "NXDOMAIN" and float(out[1]) < 0.1, out


def test_headless_service_ready_pods_only(client: Lab, tmp_path: Path) -> None:
    path = tmp_path / "headless.yaml"
    path.write_text(HEADLESS)
    client.pbctl("apply", "-f", str(path))
    name = "hello-headless.default.svc.cluster.local."

    def answers() -> set[str]:
        out = in_client(client, "nslookup", name).stdout
        return {tok for line in out.splitlines() if line.startswith("Address") for tok in line.split()
                if tok.startswith("10.244.")}

    ips = ready_hello_ips(client)
    poll(lambda: answers() == ips, 30, "headless answers = ready pod IPs")
    # one pod turns unready (its readiness probe's page goes away): it drops out of the answers
    pods = client.pbctl("get", "pods", "-l", "app=hello", "-o", "jsonpath={.items[*].metadata.name}").split()
    victim = pods[0]
    victim_ip = client.pbctl("get", "pod", victim, "-o", "jsonpath={.status.podIP}").strip()
    client.pbctl("exec", victim, "--", "mv", "/www/index.html", "/www/away.html")
    try:
        poll(lambda: answers() == ips - {victim_ip}, 60, "unready pod dropped from the headless answers")
    finally:
        client.pbctl("exec", victim, "--", "mv", "/www/away.html", "/www/index.html", check=False)
    poll(lambda: answers() == ips, 60, "pod back in the headless answers")


def test_selectorless_service_mirrored_and_served(client: Lab, tmp_path: Path) -> None:
    """A user-managed Endpoints gets a mirrored EndpointSlice (the endpointslicemirroring controller), and its
    Service's name serves from a pod like any other."""
    pod = client.pbctl("get", "pods", "-l", "app=hello", "-o", "jsonpath={.items[0].metadata.name}").strip()
    ip = client.pbctl("get", "pod", pod, "-o", "jsonpath={.status.podIP}").strip()
    path = tmp_path / "manual.yaml"
    path.write_text(MANUAL.format(ip=ip))
    client.pbctl("apply", "-f", str(path))

    def mirrored() -> list[tuple[str, list[str]]]:
        items = json.loads(client.pbctl("get", "endpointslices", "-l", "kubernetes.io/service-name=hello-manual",
                                        "-o", "json"))["items"]
        return [(s["metadata"]["labels"].get("endpointslice.kubernetes.io/managed-by", ""),
                 [a for e in s.get("endpoints", []) for a in e["addresses"]]) for s in items]

    try:
        poll(lambda: mirrored() == [("endpointslicemirroring-controller.k8s.io", [ip])], 30,
             "hello-manual's Endpoints mirrored into one slice")
        res = poll(lambda: (r := in_client(client, "timeout", "5", "wget", "-q", "-O", "-", "http://hello-manual/"))
                   .returncode == 0 and r, 30, "wget http://hello-manual/")
        assert res.stdout.strip() == f"hello from {pod}", res.stdout
    finally:
        client.pbctl("delete", "-f", str(path), "--ignore-not-found", check=False)
