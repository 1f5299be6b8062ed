"""pb-proxy against real netfilter inside lab namespaces.

Topology (all `pb-npt-*` namespaces, no default route anywhere): a bridge namespace with node-1
(172.30.50.11), node-2 (172.30.50.12) and an outside client (172.30.50.100). Each node has "pods":
namespaces behind a routed veth (node side 10.244.N.1/32, pod 10.244.N.x/32), running `busybox httpd`
that answers with the pod's name. Node objects carry podCIDR + InternalIP, so routes.py installs the
host-gw routes between the nodes. Services and Endpoints (or EndpointSlices) go through the real apiserver; one
in-process pb-proxy (`netproxy.main.run`) per node programs its node's namespace via nsenter/pyroute2.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lab import netns
from netproxy.main import Config, run
from pybernetes.api.coordination.v1 import coordination_pb2 as coordination
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.discovery.v1 import discovery_pb2 as discovery
from pybernetes.api.endpointslices import SERVICE_NAME_LABEL
from pybernetes.api.meta.v1 import meta_pb2 as meta
from tests.helpers import eventually
from tests.integration.conftest import ApiServer

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("nft") is None or shutil.which("nsenter") is None,
                                 reason="needs nft and nsenter")]

NET = "pb-npt"
NODES = {"node-1": ("pb-npt-n1", "172.30.50.11", 1), "node-2": ("pb-npt-n2", "172.30.50.12", 2)}
CLIENT = ("pb-npt-c", "172.30.50.100")
PODS = {  # pod netns -> (node, ip)
    "pb-npt-n1a": ("node-1", "10.244.1.10"),
    "pb-npt-n2a": ("node-2", "10.244.2.10"),
    "pb-npt-n2b": ("node-2", "10.244.2.11"),
}


@dataclass
class Lab:
    network: netns.Network
    httpd: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def node_ns(self, node: str) -> str:
        return NODES[node][0]


def _sh(ns: str, *argv: str) -> None:
    netns.run(netns.nsenter(ns, argv))


def _add_pod(pod_ns: str, node: str, ip: str, www: Path) -> subprocess.Popen[bytes]:
    node_ns, _, n = NODES[node]
    gw = f"10.244.{n}.1"
    veth = f"vp{pod_ns[-3:]}"
    if not netns.exists(pod_ns):
        netns.run(["ip", "netns", "add", pod_ns])
    _sh(pod_ns, "ip", "link", "set", "lo", "up")
    if not netns.link_exists(veth, node_ns):
        _sh(node_ns, "ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", pod_ns)
        _sh(node_ns, "ip", "addr", "add", f"{gw}/32", "dev", veth)
        _sh(node_ns, "ip", "link", "set", veth, "up")
        _sh(node_ns, "ip", "route", "add", f"{ip}/32", "dev", veth)
        _sh(pod_ns, "ip", "addr", "add", f"{ip}/32", "dev", "eth0")
        _sh(pod_ns, "ip", "link", "set", "eth0", "up")
        _sh(pod_ns, "ip", "route", "add", gw, "dev", "eth0")
        for dst in ("10.244.0.0/16", "10.96.0.0/16", "172.30.50.0/24", "192.0.2.0/24"):
            _sh(pod_ns, "ip", "route", "add", dst, "via", gw)
    root = www / pod_ns
    root.mkdir(parents=True, exist_ok=True)
    (root / "index.html").write_text(pod_ns + "\n")
    return subprocess.Popen(netns.nsenter(pod_ns, ["busybox", "httpd", "-f", "-p", "8080", "-h", str(root)]),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    network = netns.Network(NET)
    all_ns = [*PODS, *(ns for ns, _, _ in NODES.values()), CLIENT[0]]
    network.destroy(all_ns)
    network.create()
    for ns, ip, _ in NODES.values():
        network.add_host(ns, f"{ip}/24")
    network.add_host(CLIENT[0], f"{CLIENT[1]}/24")
    # the outside client reaches the LB pool through node-1, nothing else
    _sh(CLIENT[0], "ip", "route", "add", "192.0.2.0/24", "via", NODES["node-1"][1])
    www = tmp_path_factory.mktemp("www")
    lab = Lab(network)
    try:
        for pod_ns, (node, ip) in PODS.items():
            lab.httpd.append(_add_pod(pod_ns, node, ip, www))
        yield lab
    finally:
        for p in lab.httpd:
            p.terminate()
            with contextlib.suppress(Exception):
                p.wait(5)
        network.destroy(all_ns)


async def curl(ns: str, url: str, timeout: float = 3.0) -> tuple[int, str]:
    def call() -> tuple[int, str]:
        res = subprocess.run(netns.nsenter(ns, ["curl", "-sS", "--max-time", str(timeout), url]),
                             capture_output=True, text=True, timeout=timeout + 10)
        return res.returncode, (res.stdout + res.stderr).strip()

    return await asyncio.to_thread(call)


async def create_nodes(api: ApiServer) -> None:
    for name, (_, ip, n) in NODES.items():
        node = core.Node(metadata=meta.ObjectMeta(name=name), spec=core.NodeSpec(pod_cidr=f"10.244.{n}.0/24"))
        node.spec.pod_cidrs.append(f"10.244.{n}.0/24")
        created = await api.client.create(node)
        created.status.addresses.append(core.NodeAddress(type="InternalIP", address=ip))
        await api.client.update_status(created)


async def create_service(api: ApiServer, name: str, *, type_: str = "NodePort", affinity: bool = False,
                         external_local: bool = False) -> core.Service:
    svc = core.Service(metadata=meta.ObjectMeta(name=name, namespace="default"))
    svc.spec.type = type_
    p = svc.spec.ports.add(name="http", port=80, protocol="TCP")
    p.target_port.int_val = 8080
    if affinity:
        svc.spec.session_affinity = "ClientIP"
    if external_local:
        svc.spec.external_traffic_policy = "Local"
    return await api.client.create(svc)


async def set_endpoints(api: ApiServer, name: str, pods: list[str]) -> None:
    ep = core.Endpoints(metadata=meta.ObjectMeta(name=name, namespace="default"))
    if pods:
        sub = ep.subsets.add()
        for pod in pods:
            node, ip = PODS[pod]
            sub.addresses.add(ip=ip, node_name=node)
        sub.ports.add(name="http", port=8080, protocol="TCP")
    try:
        old = await api.client.get(core.Endpoints, name, namespace="default")
    except Exception:
        await api.client.create(ep)
        return
    ep.metadata.resource_version = old.metadata.resource_version
    await api.client.update(ep)


class Proxies:
    def __init__(self, api: ApiServer, backend: str, endpoint_source: str = "endpoints") -> None:
        self.api, self.backend, self.endpoint_source = api, backend, endpoint_source
        self.tasks: dict[str, tuple[asyncio.Task[None], asyncio.Event]] = {}

    def config(self, node: str) -> Config:
        return Config(kubeconfig=str(self.api.admin_conf), hostname_override=node, backend=self.backend,
                      netns=NODES[node][0], min_sync_period=0.1, sync_period=30, health_port=0, metrics_port=0,
                      bind_address="127.0.0.1", endpoint_source=self.endpoint_source)

    async def start(self, node: str) -> None:
        ready, stop = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(run(self.config(node), ready, stop))
        done, _ = await asyncio.wait([task, asyncio.create_task(ready.wait())], timeout=60,
                                     return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()
        assert ready.is_set()
        self.tasks[node] = (task, stop)

    async def stop(self, node: str) -> None:
        task, stop = self.tasks.pop(node)
        stop.set()
        await asyncio.wait_for(task, 30)

    async def cleanup(self, node: str) -> None:
        cfg = self.config(node)
        cfg.cleanup = True
        await run(cfg)


@pytest.fixture(params=["nftables", "iptables"])
async def proxies(request: pytest.FixtureRequest, lab: Lab, apiserver: ApiServer) -> AsyncIterator[Proxies]:
    async with started_proxies(apiserver, request.param) as px:
        yield px


@pytest.fixture
async def slice_proxies(lab: Lab, apiserver: ApiServer) -> AsyncIterator[Proxies]:
    async with started_proxies(apiserver, "nftables", "endpointslices") as px:
        yield px


@contextlib.asynccontextmanager
async def started_proxies(apiserver: ApiServer, backend: str, endpoint_source: str = "endpoints",
                          ) -> AsyncIterator[Proxies]:
    px = Proxies(apiserver, backend, endpoint_source)
    for node in NODES:
        await px.cleanup(node)
    await create_nodes(apiserver)
    try:
        yield px
    finally:
        for node in list(px.tasks):
            await px.stop(node)
        for node in NODES:
            await px.cleanup(node)


async def proxy_holder(api: ApiServer, node: str) -> str:
    lease = await api.client.get(coordination.Lease, f"kube-proxy-{node}", namespace="kube-node-lease")
    return str(lease.spec.holder_identity)


async def _served_by(ns: str, url: str, n: int = 12) -> set[str]:
    out = set()
    for _ in range(n):
        rc, text = await curl(ns, url)
        assert rc == 0, text
        out.add(text)
    return out


async def test_clusterip_nodeport_endpoint_removal(proxies: Proxies) -> None:
    api = proxies.api
    svc = await create_service(api, "web")
    cip, np = svc.spec.cluster_ip, svc.spec.ports[0].node_port
    assert cip and np
    await set_endpoints(api, "web", ["pb-npt-n2a", "pb-npt-n2b"])
    for node in NODES:
        await proxies.start(node)
    # ClusterIP from a pod on node-1 to backends on node-2 (host-gw route + DNAT)
    seen = await eventually(lambda: _served_by("pb-npt-n1a", f"http://{cip}/"), timeout=20, what="cluster IP")
    assert seen <= {"pb-npt-n2a", "pb-npt-n2b"}
    # NodePort on node-1's address from outside, backends only on node-2 (masqueraded)
    seen = await eventually(lambda: _served_by(CLIENT[0], f"http://{NODES['node-1'][1]}:{np}/"), timeout=20,
                            what="node port")
    assert seen <= {"pb-npt-n2a", "pb-npt-n2b"}
    # endpoint removal: connections stop going to n2b
    await set_endpoints(api, "web", ["pb-npt-n2a"])

    async def only_a() -> bool:
        return await _served_by("pb-npt-n1a", f"http://{cip}/", 10) == {"pb-npt-n2a"}

    await eventually(only_a, timeout=20, what="endpoint removed")
    assert await _served_by(CLIENT[0], f"http://{NODES['node-1'][1]}:{np}/", 10) == {"pb-npt-n2a"}
    # no endpoints: NodePort is refused at once (and the cluster IP with nftables, see below)
    await set_endpoints(api, "web", [])

    async def refused() -> bool:
        rc, _ = await curl(CLIENT[0], f"http://{NODES['node-1'][1]}:{np}/")
        return rc == 7  # CURLE_COULDNT_CONNECT: refused (a drop would time out: 28)

    await eventually(refused, timeout=20, what="node port refused")


async def test_no_endpoints_rejects_cluster_ip(proxies: Proxies) -> None:
    svc = await create_service(proxies.api, "empty", type_="ClusterIP")
    await proxies.start("node-1")

    async def refused() -> bool:
        rc, _ = await curl("pb-npt-n1a", f"http://{svc.spec.cluster_ip}/", timeout=5)
        return rc == 7  # CURLE_COULDNT_CONNECT: refused (a drop would time out: 28)

    await eventually(refused, timeout=20, what="cluster IP refused")


async def test_session_affinity(proxies: Proxies) -> None:
    svc = await create_service(proxies.api, "sticky", type_="ClusterIP", affinity=True)
    await set_endpoints(proxies.api, "sticky", ["pb-npt-n2a", "pb-npt-n2b"])
    for node in NODES:  # node-2's proxy routes the replies back to node-1's pod CIDR
        await proxies.start(node)
    url = f"http://{svc.spec.cluster_ip}/"
    first = await eventually(lambda: _served_by("pb-npt-n1a", url, 1), timeout=20, what="serving")
    seen = await _served_by("pb-npt-n1a", url, 12)
    assert seen == first, seen


async def test_restart_keeps_serving_and_cleanup(proxies: Proxies) -> None:
    svc = await create_service(proxies.api, "steady", type_="ClusterIP")
    await set_endpoints(proxies.api, "steady", ["pb-npt-n2a", "pb-npt-n2b"])
    await proxies.start("node-1")
    await proxies.start("node-2")
    url = f"http://{svc.spec.cluster_ip}/"
    await eventually(lambda: _served_by("pb-npt-n1a", url, 2), timeout=20, what="serving")
    await eventually(lambda: proxy_holder(proxies.api, "node-1"), timeout=10, what="the proxy's Lease")
    failures: list[str] = []
    done = asyncio.Event()

    async def hammer() -> int:
        n = 0
        while not done.is_set():
            rc, text = await curl("pb-npt-n1a", url)
            n += 1
            if rc != 0:
                failures.append(text)
        return n

    loader = asyncio.create_task(hammer())
    await proxies.stop("node-1")
    await asyncio.sleep(0.5)  # rules stay while no proxy runs
    await proxies.start("node-1")  # compute and replace; no flush
    await asyncio.sleep(0.5)
    done.set()
    requests = await loader
    assert requests > 0 and not failures, failures
    await proxies.stop("node-1")
    assert await proxy_holder(proxies.api, "node-1") == ""  # released on a clean stop (netproxy.heartbeat)
    await proxies.cleanup("node-1")
    node_ns = NODES["node-1"][0]
    ruleset = netns.run(netns.nsenter(node_ns, ["nft", "list", "ruleset"])).stdout
    assert "pybernetes" not in ruleset
    saved = netns.run(netns.nsenter(node_ns, ["iptables-save"])).stdout
    assert "KUBE-" not in saved
    routes = netns.run(netns.nsenter(node_ns, ["ip", "route", "show", "proto", "199"])).stdout
    assert routes.strip() == ""


async def test_load_balancer_ingress_ip(proxies: Proxies) -> None:
    api = proxies.api
    svc = await create_service(api, "lb", type_="LoadBalancer")
    await set_endpoints(api, "lb", ["pb-npt-n2a"])

    async def ingress_ip() -> str:
        cur = await api.client.get(core.Service, "lb", namespace="default")
        if not cur.status.load_balancer.ingress:  # no pool in this apiserver: play the LB controller
            cur.status.load_balancer.ingress.add(ip="192.0.2.10")
            cur = await api.client.update_status(cur)
        return cur.status.load_balancer.ingress[0].ip

    ip = await eventually(ingress_ip, timeout=10, what="ingress IP")
    if not ip.startswith("192.0.2."):
        netns.run(netns.nsenter(CLIENT[0], ["ip", "route", "replace", f"{ip}/32", "via", NODES["node-1"][1]]))
    assert svc.spec.ports[0].node_port
    for node in NODES:
        await proxies.start(node)
    seen = await eventually(lambda: _served_by(CLIENT[0], f"http://{ip}/", 4), timeout=20, what="LB ingress")
    assert seen == {"pb-npt-n2a"}


async def test_cluster_ip_from_the_node_itself(proxies: Proxies) -> None:
    """A node's own processes reach cluster IPs (the service CIDR sink route lets the nat OUTPUT hook DNAT)."""
    svc = await create_service(proxies.api, "fromnode", type_="ClusterIP")
    await set_endpoints(proxies.api, "fromnode", ["pb-npt-n2a"])
    for node in NODES:
        await proxies.start(node)
    seen = await eventually(lambda: _served_by(NODES["node-1"][0], f"http://{svc.spec.cluster_ip}/", 3),
                            timeout=20, what="cluster IP from node-1")
    assert seen == {"pb-npt-n2a"}
    # An address in the service range that no Service holds goes nowhere: it dies in the sink device.
    rc, _ = await curl(NODES["node-1"][0], "http://10.96.250.250/", timeout=2)
    assert rc != 0


async def set_endpoint_slice(api: ApiServer, name: str, pods: dict[str, bool]) -> None:
    """The Service's one EndpointSlice `<name>-slice`, its pods with their readiness."""
    s = discovery.EndpointSlice(metadata=meta.ObjectMeta(name=f"{name}-slice", namespace="default"),
                                address_type="IPv4")
    s.metadata.labels[SERVICE_NAME_LABEL] = name
    s.ports.add(name="http", port=8080, protocol="TCP")
    for pod, ready in pods.items():
        node, ip = PODS[pod]
        e = s.endpoints.add(addresses=[ip], node_name=node)
        e.conditions.ready = e.conditions.serving = ready
    try:
        old = await api.client.get(discovery.EndpointSlice, s.metadata.name, namespace="default")
    except Exception:
        await api.client.create(s)
        return
    s.metadata.resource_version = old.metadata.resource_version
    await api.client.update(s)


async def test_endpoint_slices_as_the_source(slice_proxies: Proxies) -> None:
    """--endpoint-source=endpointslices: ready endpoints of the Service's slices carry its traffic."""
    api = slice_proxies.api
    svc = await create_service(api, "sliced", type_="ClusterIP")
    await set_endpoint_slice(api, "sliced", {"pb-npt-n2a": True, "pb-npt-n2b": True})
    for node in NODES:
        await slice_proxies.start(node)
    url = f"http://{svc.spec.cluster_ip}/"

    async def both() -> bool:
        return await _served_by("pb-npt-n1a", url) == {"pb-npt-n2a", "pb-npt-n2b"}
    await eventually(both, timeout=20, what="both endpoints serving")
    await set_endpoint_slice(api, "sliced", {"pb-npt-n2a": True, "pb-npt-n2b": False})

    async def only_a() -> bool:
        return await _served_by("pb-npt-n1a", url, 10) == {"pb-npt-n2a"}
    await eventually(only_a, timeout=20, what="unready endpoint dropped")
