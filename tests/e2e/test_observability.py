"""Component health you can see: the lab's Prometheus scrapes every component, nodes are Ready in the
metrics, the overview console renders (screenshot in artifacts/), `pbctl top nodes` and `pbctl lab open
dashboards` work.

Runs against the session lab (tests/e2e/conftest.py); Prometheus is reached through the lab's relay on the
host's loopback (`prometheus_url` in the lab state).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from .conftest import REPO, Lab, poll

pytestmark = pytest.mark.e2e
ARTIFACTS = REPO / "artifacts"
NODES = ("node-1", "node-2", "node-3")
# Every job the lab's Prometheus scrapes and how many targets it has (one kubelet and one proxy per node).
COMPONENT_JOBS = {"apiserver": 1, "scheduler": 1, "controller-manager": 1, "etcd": 1, "kubelet": 3, "proxy": 3}
EXPECTED_JOBS = {**COMPONENT_JOBS, "prometheus": 1}
# Bytes of a blank 1400x1000 page as chromium's PNG (a few KB); a rendered console is far bigger.
BLANK_PNG_MAX = 20_000



def prom_url(lab: Lab) -> str:
    url = lab.state().info.get("prometheus_url")
    if not url:
        if shutil.which("prometheus") is None:
            pytest.skip("prometheus is not installed: the lab started none")
        raise AssertionError(f"the lab has no prometheus_url; lab up said:\n{lab.up_output[-3000:]}")
    return str(url)


def http_get(url: str, timeout: float = 10) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        body: bytes = r.read()
    return body.decode()


def api(lab: Lab, path: str, **params: str) -> Any:
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    doc = json.loads(http_get(f"{prom_url(lab)}/api/v1/{path}{query}"))
    assert doc.get("status") == "success", doc
    return doc["data"]


def query(lab: Lab, expr: str) -> list[dict[str, Any]]:
    data = api(lab, "query", query=expr)
    result: list[dict[str, Any]] = data["result"]
    return result


def active_targets_up(lab: Lab, want: dict[str, int], timeout: float = 120) -> list[dict[str, Any]]:
    """Active targets once each job in `want` has that many targets and every active target is "up"."""

    def all_up() -> list[dict[str, Any]]:
        active: list[dict[str, Any]] = api(lab, "targets", state="active")["activeTargets"]
        jobs = Counter(t["labels"]["job"] for t in active)
        down = [f"{t['labels']['job']} {t['scrapeUrl']}: {t['health']} {t.get('lastError', '')}"
                for t in active if t["health"] != "up"]
        wrong = {job: jobs.get(job, 0) for job, n in want.items() if jobs.get(job, 0) != n}
        assert not wrong, f"targets per job {dict(jobs)}, want {want}; down: {down}"
        assert not down, down
        return active

    return poll(all_up, timeout, f"Prometheus targets {want} all up", interval=2)


def test_prometheus_scrapes_every_component_up(lab: Lab) -> None:
    """Every active target reports health "up": apiserver, scheduler, controller-manager, etcd, 3 kubelets and
    3 proxies (labelled with their node)."""
    active = active_targets_up(lab, COMPONENT_JOBS)
    for job in ("kubelet", "proxy"):
        nodes = sorted(t["labels"].get("node", "") for t in active if t["labels"]["job"] == job)
        assert nodes == list(NODES), (job, nodes)
    # And as the rules see it: `up` is 1 for every series.
    ups = query(lab, "up")
    assert len(ups) == len(active), ups
    assert all(s["value"][1] == "1" for s in ups), ups


def test_prometheus_scrapes_itself(lab: Lab) -> None:
    active_targets_up(lab, EXPECTED_JOBS, timeout=20)  # the components are up by now (the test above)


def curl_status(lab: Lab, where: str, url: str, *args: str) -> str:
    """The HTTP status of GET `url` from inside `where`'s namespace ("000" when the handshake is refused)."""
    res = lab.in_node(where, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", *args, url)
    return res.stdout.strip()


def test_metrics_need_an_authorized_client_certificate(lab: Lab) -> None:
    """Prometheus scrapes every component but etcd over HTTPS as its own identity (user prometheus, group
    system:monitoring); inside the cluster's namespaces /metrics without a certificate is 401, with one RBAC
    does not let get /metrics 403, health paths stay open; etcd's metrics listen on the loopback only."""
    from lab.prometheus import SECURE_JOBS
    from lab.topology import CP_IP, pki_dir
    from pybernetes import pkiutil, ports

    active = active_targets_up(lab, COMPONENT_JOBS)
    schemes = {t["labels"]["job"]: t["scrapeUrl"].split(":", 1)[0] for t in active}
    assert all(schemes[j] == "https" for j in SECURE_JOBS if j in schemes), schemes
    assert schemes["etcd"] == "http", schemes
    pki = pki_dir(lab.dir)
    ca = ("--cacert", str(pki / "ca.crt"))  # curl takes no --flag=value
    nobody = pkiutil.ensure_client_cert(pki, "e2e-nobody", "e2e-nobody")
    as_nobody = ("--cert", str(nobody.cert), "--key", str(nobody.key))
    as_prometheus = ("--cert", str(pki / "prometheus.crt"), "--key", str(pki / "prometheus.key"))
    rows = []
    for where, port in (("control-plane", ports.SCHEDULER), ("control-plane", ports.CONTROLLER_MANAGER),
                        ("control-plane", ports.APISERVER_HEALTH), ("node-1", ports.KUBELET_HEALTH),
                        ("node-1", ports.PROXY_METRICS)):
        url = f"https://127.0.0.1:{port}"
        got = tuple(curl_status(lab, where, url + path, *ca, *who) for path, who in (
            ("/metrics", ()), ("/metrics", as_nobody), ("/metrics", as_prometheus), ("/healthz", ())))
        rows.append(f"{where}:{port} none={got[0]} nobody={got[1]} prometheus={got[2]} healthz={got[3]}")
        assert got == ("401", "403", "200", "200"), rows[-1]
    print("\n" + "\n".join(rows))
    # etcd's metrics listener is plain HTTP on the control plane's loopback, not on its address
    assert curl_status(lab, "control-plane", f"http://127.0.0.1:{ports.ETCD_METRICS}/metrics") == "200"
    assert curl_status(lab, "control-plane", f"http://{CP_IP}:{ports.ETCD_METRICS}/metrics") == "000"


def test_nodes_ready_in_metrics(lab: Lab) -> None:
    expr = 'sum(kube_node_status_condition{condition="Ready",status="true"})'

    def three() -> bool:
        res = query(lab, expr)
        assert res, f"{expr}: no data"
        assert float(res[0]["value"][1]) == 3.0, res
        return True

    poll(three, 90, f"{expr} == 3", interval=2)
    per_node = query(lab, 'max by (node) (kube_node_status_condition{condition="Ready",status="true"})')
    assert sorted(s["metric"]["node"] for s in per_node) == list(NODES), per_node


def test_apiserver_storage_and_etcd_metrics(lab: Lab) -> None:
    """The apiserver's own health figures reach Prometheus: stored objects per resource, etcd latency."""

    def scraped() -> bool:
        nodes = query(lab, 'apiserver_storage_objects{job="apiserver",resource="nodes"}')
        assert nodes and float(nodes[0]["value"][1]) == 3.0, nodes
        etcd = query(lab, 'sum by (operation) (etcd_request_duration_seconds_count{job="apiserver"})')
        ops = {s["metric"]["operation"] for s in etcd}
        assert {"get", "create", "update", "list"} <= ops, ops
        return True

    poll(scraped, 60, "apiserver_storage_objects and etcd_request_duration_seconds scraped", interval=2)


def screenshot(url: str, out: Path) -> str:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium not installed (apt-get install -y chromium) for the console screenshot")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="pb-chromium-") as profile:
        res = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--virtual-time-budget=5000", "--window-size=1400,1000",
             f"--screenshot={out}", url],
            capture_output=True, text=True, timeout=120)
    return res.stdout + res.stderr


def overview_url(lab: Lab) -> str:
    return f"{prom_url(lab)}/consoles/pybernetes-overview.html"


def kubelet_url(lab: Lab) -> str:
    return f"{prom_url(lab)}/consoles/pybernetes-kubelet.html"


def test_consoles_render_the_cluster(lab: Lab) -> None:
    """The overview: every component green, 3/3 nodes Ready; the kubelet console lists node-1..3.
    Screenshots of both (headless chromium) in artifacts/."""
    overview, kubelets = overview_url(lab), kubelet_url(lab)

    def rendered() -> str:
        html = http_get(overview)
        assert "pybernetes cluster" in html and 'id="nodes"' in html, html[:2000]
        assert "not scraped" not in html, "a component job has no targets"
        assert 'class="pb_bad"' not in html, "the overview shows something down or NotReady"
        nodes = html.split('id="nodes"', 1)[1].split("</table>", 1)[0]
        assert nodes.count(">3<") >= 2, f"not 3 / 3 nodes Ready: {nodes}"  # Ready / total
        listed = http_get(kubelets)
        missing = [n for n in NODES if n not in listed]
        assert not missing, f"{missing} not in the kubelet console"
        return html

    poll(rendered, 90, "the consoles show 3/3 nodes Ready and name node-1..3", interval=2)
    for name, url in (("overview", overview), ("kubelet", kubelets)):
        out = ARTIFACTS / f"lab-prometheus-{name}.png"
        log = screenshot(url, out)
        assert out.is_file(), log[-2000:]
        assert out.stat().st_size > BLANK_PNG_MAX, f"{out} is only {out.stat().st_size} bytes: blank?"


def test_overview_console_names_the_nodes(lab: Lab) -> None:
    html = http_get(overview_url(lab))
    missing = [n for n in NODES if n not in html]
    assert not missing, f"{missing} not in the overview console"


def test_top_nodes(lab: Lab) -> None:
    def listed() -> str:
        out = lab.pbctl("top", "nodes")
        missing = [n for n in NODES if n not in out]
        assert not missing, f"{missing} missing from:\n{out}"
        return out

    out = poll(listed, 60, "pbctl top nodes lists the three nodes", interval=2)
    assert out.splitlines()[0].split()[0] == "NAME", out


def test_lab_open_dashboards(lab: Lab) -> None:
    url = prom_url(lab)
    # As a user types it: `pbctl lab ...` runs the pbctl-lab plugin.
    res = subprocess.run([sys.executable, "-m", "pbctl.main", "lab", "open", "dashboards",
                          "--dir", str(lab.dir)], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert res.returncode == 0, res.stdout + res.stderr
    assert url in res.stdout, res.stdout
    assert "200" in str(urllib.request.urlopen(f"{url}/-/ready", timeout=10).status)
