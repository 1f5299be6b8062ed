"""pbctl dashboard against the real apiserver, seen through headless Chromium (DevTools protocol, tests/browser.py).

No kubelet or scheduler runs: the test writes Nodes, node and leader Leases, Pods (binding them and setting their
status itself), a Service and its Endpoints, then checks that the page shows them and follows each change
within 3 s, and that its JavaScript logs no errors. Screenshots land in the test's tmp dir. The health probe asks
/readyz over HTTPS with the kubeconfig's CA when the health port is HTTPS.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from pbctl.dashboard import health
from pbctl.dashboard.model import Model
from pbctl.dashboard.server import Dashboard
from pbctl.verbs.dashboard import readyz_tls
from pybernetes import errors
from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.coordination.v1 import coordination_pb2 as coordination
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.times import micro_now
from pybernetes.client import config as client_config
from pybernetes.client.client import Client
from pybernetes.ports import free_port
from tests.browser import Browser, chromium
from tests.integration.conftest import ApiServer

pytestmark = pytest.mark.integration

PODS = "document.querySelectorAll('.pod').length"
NODES = "document.querySelectorAll('.node').length"


def pod_el(name: str) -> str:
    return f"document.querySelector('.pod[data-key=\"default/{name}\"]')"


def node_part(node: str, part: str) -> str:
    return f"document.querySelector('.node[data-key=\"{node}\"] .part[data-part=\"{part}\"]')"


async def make_node(client: Client, name: str, ready: bool = True) -> core.Node:
    node = core.Node()
    node.metadata.name = name
    node.status.addresses.add(type="InternalIP", address=f"172.30.0.{10 + len(name)}")
    with contextlib.suppress(errors.AlreadyExists):
        await client.create(node)
    return await set_ready(client, name, ready)


async def set_ready(client: Client, name: str, ready: bool) -> core.Node:
    node = await client.get(core.Node, name)
    del node.status.conditions[:]
    c = node.status.conditions.add(type="Ready", status="True" if ready else "False",
                                   reason="KubeletReady" if ready else "KubeletNotReady",
                                   message="kubelet is posting ready status" if ready else "container runtime is down")
    c.last_heartbeat_time.CopyFrom(micro_now())
    c.last_transition_time.CopyFrom(micro_now())
    return await client.update_status(node)


async def make_lease(client: Client, namespace: str, name: str, holder: str) -> None:
    lease = coordination.Lease()
    lease.metadata.name, lease.metadata.namespace = name, namespace
    lease.spec.holder_identity = holder
    lease.spec.lease_duration_seconds = 40
    lease.spec.renew_time.CopyFrom(micro_now())
    with contextlib.suppress(errors.AlreadyExists):
        await client.create(lease)


async def make_pod(client: Client, name: str, node: str = "", running: bool = True) -> core.Pod:
    pod = core.Pod()
    pod.metadata.name, pod.metadata.namespace = name, "default"
    pod.metadata.labels["app"] = "web"
    pod.spec.containers.add(name="web", image="localhost:5000/web:1")
    pod = await client.create(pod)
    if not node:
        return pod
    await client.bind("default", name, node, uid=pod.metadata.uid)
    if running:
        pod = await client.get(core.Pod, name, namespace="default")
        pod.status.phase = "Running"
        pod.status.pod_ip = f"10.244.{sum(map(ord, node)) % 250}.{sum(map(ord, name)) % 250 + 1}"
        pod.status.container_statuses.add(name="web", image="localhost:5000/web:1", ready=True, started=True,
                                          restart_count=1 if name.endswith("-1") else 0)
        pod.status.conditions.add(type="Ready", status="True")
        pod = await client.update_status(pod)
    return pod


async def make_service(client: Client, pods: list[core.Pod]) -> None:
    svc = core.Service()
    svc.metadata.name, svc.metadata.namespace = "web", "default"
    svc.spec.selector["app"] = "web"
    svc.spec.ports.add(port=80, protocol="TCP")
    await client.create(svc)
    eps = core.Endpoints()
    eps.metadata.name, eps.metadata.namespace = "web", "default"
    subset = eps.subsets.add()
    for p in pods:
        if p.status.pod_ip:
            subset.addresses.add(ip=p.status.pod_ip)
    subset.ports.add(port=80, protocol="TCP")
    await client.create(eps)


async def cluster(client: Client, nodes: int = 3, per_node: int = 3, pending: int = 2) -> list[core.Pod]:
    for i in range(1, nodes + 1):
        await make_node(client, f"node-{i}")
        await make_lease(client, "kube-node-lease", f"node-{i}", f"node-{i}")
        await make_lease(client, "kube-node-lease", f"kube-proxy-node-{i}", f"node-{i}")
    await make_lease(client, "kube-system", "kube-scheduler", "control-plane_1a2b")
    pods = [await make_pod(client, f"web-{n}-{j}", f"node-{n}") for n in range(1, nodes + 1) for j in range(per_node)]
    pods += [await make_pod(client, f"waiting-{j}") for j in range(pending)]
    await make_service(client, pods)
    return pods


async def test_page_follows_the_cluster(apiserver: ApiServer, tmp_path: Path) -> None:
    client = apiserver.client
    await cluster(client, per_node=9, pending=3)  # 30 pods: the page must stay readable at 1280x800
    if chromium() is None:
        pytest.skip("chromium not installed (deploy/install-deps.sh installs it)")
    dash = Dashboard(client, port=free_port(), readyz_url=f"http://127.0.0.1:{apiserver.cfg.health_port}/readyz",
                     probe_interval=0.5)
    url = await dash.start()
    assert url.startswith("http://127.0.0.1:")
    b = await Browser.launch(tmp_path)
    try:
        await b.goto(url)
        await b.wait_for(f"{NODES} === 3 && {PODS} === 30")
        # Bound pods sit in their node's box, unbound ones in the pending lane.
        assert await b.eval(f"{pod_el('web-2-0')}.closest('.node').dataset.key") == "node-2"
        assert await b.eval("document.querySelectorAll('#pending-pods .pod').length") == 3
        assert "Running" in await b.eval(f"{pod_el('web-1-1')}.textContent")
        assert "↻1" in await b.eval(f"{pod_el('web-1-1')}.textContent")
        await b.wait_for("document.querySelector('.component[data-key=apiserver]').dataset.health === 'ok'")
        assert await b.eval("document.querySelector('.component[data-key=etcd]').dataset.health") == "ok"
        # etcd's members from the apiserver's EtcdStatus: the one member, marked leader, with its DB size.
        await b.wait_for("document.querySelector('.component[data-key=etcd] .member')?.dataset.leader === 'true'")
        member = await b.eval("document.querySelector('.component[data-key=etcd] .member').textContent")
        assert "leader" in member and "iB" in member and "idx" in member, member
        assert await b.eval(f"{node_part('node-1', 'kube-proxy')}.dataset.health") == "ok"
        scheduler = await b.eval("document.querySelector('.component[data-key=scheduler]').textContent")
        assert "control-plane_1a2b" in scheduler
        svc = await b.eval("document.querySelector('#svc-rows tr[data-key=\"default/web\"]').textContent")
        assert "default/web" in svc and "80/TCP" in svc and "10.244." in svc
        await b.screenshot(tmp_path / "dashboard-3-nodes.png")

        # A deleted pod disappears within 3 s.
        await client.delete(core.Pod, "web-3-8", namespace="default", grace_period_seconds=0)
        await b.wait_for(f"{pod_el('web-3-8')} === null", timeout=3)

        # New pods appear: unscheduled in the pending lane, then in their node's box once bound.
        await make_pod(client, "extra-0")
        await b.wait_for(f"{pod_el('extra-0')}?.closest('#pending-pods') != null", timeout=3)
        await client.bind("default", "extra-0", "node-1")
        await b.wait_for(f"{pod_el('extra-0')}?.closest('.node')?.dataset.key === 'node-1'", timeout=3)
        await make_pod(client, "extra-1", "node-3")
        await b.wait_for(f"{pod_el('extra-1')}?.dataset.status === 'Running'", timeout=3)

        # A node gone NotReady is shown so, in words as well as colour.
        await set_ready(client, "node-2", False)
        await b.wait_for("document.querySelector('.node[data-key=\"node-2\"]').dataset.status === 'NotReady'",
                         timeout=3)
        assert "NotReady" in await b.eval("document.querySelector('.node[data-key=\"node-2\"] .nstat').textContent")
        assert "node-2 NotReady" in await b.eval("document.getElementById('impact').textContent")

        # node-3's proxy released its Lease (a clean stop): greyed at once, the impact said in words.
        proxy = await client.get(coordination.Lease, "kube-proxy-node-3", namespace="kube-node-lease")
        proxy.spec.holder_identity = ""
        await client.update(proxy)
        await b.wait_for(f"{node_part('node-3', 'kube-proxy')}.dataset.health === 'stopped'", timeout=3)
        assert "node-3 kube-proxy stopped" in await b.eval("document.getElementById('impact').textContent")

        # The timeline tells the story: a Deployment written, its ReplicaSet created, pods bound, deleted.
        d = apps.Deployment()
        d.metadata.name, d.metadata.namespace = "shop", "default"
        d.spec.replicas = 2
        d.spec.selector.match_labels["app"] = "shop"
        d.spec.template.metadata.labels["app"] = "shop"
        d.spec.template.spec.containers.add(name="shop", image="localhost:5000/shop:1")
        d = await client.create(d)
        rs = apps.ReplicaSet()
        rs.metadata.name, rs.metadata.namespace = "shop-5d8f", "default"
        rs.metadata.owner_references.add(api_version="apps/v1", kind="Deployment", name="shop", uid=d.metadata.uid,
                                         controller=True)
        rs.spec.replicas = 2
        rs.spec.selector.CopyFrom(d.spec.selector)
        rs.spec.template.CopyFrom(d.spec.template)
        await client.create(rs)
        await b.wait_for("document.getElementById('events').textContent.includes('created by deployment/shop')",
                         timeout=3)
        story = await b.eval("document.getElementById('events').textContent")
        assert "bound to node-1" in story and "deleted" in story and "written (replicas 2)" in story

        # Keyboard: Tab reaches the boxes and pods, and the focused one's details show.
        for _ in range(6):
            await b.key("Tab", "Tab", 9)
        assert await b.eval("document.activeElement.dataset.detail || ''")
        assert await b.eval("document.getElementById('details').textContent") == \
            await b.eval("document.activeElement.dataset.detail")
        await b.screenshot(tmp_path / "dashboard-node-2-notready.png")

        assert b.errors == [], b.errors
        assert await b.eval("window.pbDashboard.errors") == []
    finally:
        await b.close()
        await dash.stop()
    print(f"screenshots: {tmp_path}")


async def test_state_endpoint_and_port_taken(apiserver: ApiServer) -> None:
    """/state answers the snapshot; a taken port falls back to a free one."""
    import aiohttp

    first = Dashboard(apiserver.client, port=free_port())
    await first.start()
    second = Dashboard(apiserver.client, port=first.port)
    try:
        url = await second.start()
        assert second.port != first.port
        async with aiohttp.ClientSession() as s, s.get(url + "state") as r:
            snap = await r.json()
        assert snap["type"] == "snapshot" and set(snap["control"]) == {"apiserver", "etcd", "scheduler",
                                                                       "controller-manager"}
    finally:
        await second.stop()
        await first.stop()


async def test_dashboard_identity_reads_what_the_page_draws_and_nothing_more(apiserver: ApiServer) -> None:
    """The lab runs `pbctl dashboard` as user pybernetes:dashboard (ClusterRole of the same name): it fills the
    model from its informers and the etcd status, and may not write anything or read Secrets."""
    from pybernetes import pkiutil
    from pybernetes.rpc import ChannelTLS
    from services.apiserver.rbac.policy import DASHBOARD_USER

    await cluster(apiserver.client, nodes=2, per_node=2, pending=1)
    pki = apiserver.pki
    pair = pkiutil.ensure_client_cert(pki, "dashboard", DASHBOARD_USER)
    client = Client(apiserver.address, timeout=10, tls=ChannelTLS((pki / "ca.crt").read_bytes(),
                                                                  pair.cert.read_bytes(), pair.key.read_bytes()))
    dash = Dashboard(client, port=free_port())
    try:
        await dash.start(sync_timeout=10)
        assert all(i.has_synced() for i in dash.factory.informers()), "every list allowed"
        snap = dash.model.snapshot()
        assert sorted(snap["nodes"]) == ["node-1", "node-2"], snap["nodes"]
        assert (await client.etcd_status()).members
        with pytest.raises(errors.Forbidden):
            await make_pod(client, "not-allowed")
        with pytest.raises(errors.Forbidden):
            await client.list(core.Secret, namespace="kube-system")
    finally:
        await dash.stop()
        await client.close()


async def test_many_nodes_collapse_to_a_compact_grid(apiserver: ApiServer, tmp_path: Path) -> None:
    """20 nodes: the node boxes become a compact grid, pods still labelled."""
    if chromium() is None:
        pytest.skip("chromium not installed (deploy/install-deps.sh installs it)")
    await cluster(apiserver.client, nodes=20, per_node=2, pending=1)
    dash = Dashboard(apiserver.client, port=free_port())
    url = await dash.start()
    b = await Browser.launch(tmp_path)
    try:
        await b.goto(url)
        await b.wait_for(f"{NODES} === 20 && {PODS} === 41")
        assert await b.eval("document.getElementById('node-grid').classList.contains('compact')")
        assert (await b.eval(f"{pod_el('web-17-1')}.textContent")).startswith("web-17-1")
        await b.screenshot(tmp_path / "dashboard-20-nodes.png")
        assert b.errors == [], b.errors
    finally:
        await b.close()
        await dash.stop()


async def test_readyz_over_https_with_the_kubeconfigs_ca(apiserver: ApiServer, tmp_path: Path) -> None:
    """With a client CA the apiserver's health port is HTTPS: pbctl dashboard's probe trusts the kubeconfig's
    cluster CA there (plain HTTP gets no /readyz answer, and the page falls back to the API answering)."""
    apiserver.cfg.client_ca_file = apiserver.pki / "ca.crt"
    await apiserver.restart()
    cfg = client_config.load(str(apiserver.write_kubeconfig(tmp_path / "pbconfig")))
    port = apiserver.cfg.health_port
    host = cfg.server.rsplit(":", 1)[0]  # the name the kubeconfig reaches the apiserver by, as the verb uses it
    async with health.new_session(readyz_tls(cfg)) as session:
        assert await health.readyz(session, f"https://{host}:{port}/readyz") == (200, "ok")
        assert await health.readyz(session, f"http://{host}:{port}/readyz") is None
        m = Model()
        await health.check_once(m, apiserver.client, session, f"https://{host}:{port}/readyz")
        assert m.state["control"]["apiserver"]["detail"] == "/readyz ok"
    async with health.new_session() as session:  # the system's roots do not know the cluster CA
        assert await health.readyz(session, f"https://{host}:{port}/readyz") is None
