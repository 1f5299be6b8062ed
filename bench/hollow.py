"""Hollow nodes (kubemark's): the real kubelet over an in-memory container runtime, many per process.

Each HollowNode is a node_agent.kubelet.Kubelet started by node_agent.main.start_kubelet, as pb-kubelet
starts it: the pod source (informer on spec.nodeName), admission, one pod worker per pod running
node_agent.sync, the status manager writing pod statuses, the relister (PLEG), eviction, events, and
node_agent.nodestatus registering the Node and keeping its status and Lease. What is faked, as kubemark
fakes it: the container runtime (node_agent.cri.fake.FakeCRI: containers "run" as soon as they are
started, every image is present), the node's resources (cpu/memory given, not read from the host) and its
eviction signals (the host's as first read, for every node: machine_at_start, where kubemark fakes cAdvisor).
Not run: the kubelet API server (logs, exec, port-forward) and the health server, as neither is on
the pod start path.

With `proxy`, each node also runs a HollowProxy: netproxy.proxier.Proxier with the nftables backend, its
informers (Services, EndpointSlices, Nodes) and its Lease (netproxy.heartbeat), as pb-proxy runs them, over
FakeRunner, which takes every `nft` script and answers success without a kernel (kubemark's fake iptables).

It lives in bench/ because only the benches use it and it sits above the components: it joins the
kubelet and the proxy, and node_agent and netproxy never import each other. `python -m bench.hollow` runs
`--nodes` of them in one process, prints "ready" once every Node is registered, and runs until SIGTERM.

Credentials: with `{node}` in `--kubeconfig` each node's kubelet has a client (gRPC channel, so TLS connection)
of its own, from its own kubeconfig: as a real kubelet, it is system:node:<name> in system:nodes, which the
Node authorizer, NodeRestriction and the apiserver's in-flight exemptions read (bench/density.py writes them).
Without it every node shares one client of the kubeconfig's user. The hollow proxies of a process share one
client (`--proxy-kubeconfig`, system:kube-proxy in density.py; each pb-proxy has the same identity).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
import subprocess
import sys
from pathlib import Path
from typing import cast

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import cli
from netproxy.backend import Options
from netproxy.execs import Runner
from netproxy.heartbeat import ProxyLease
from netproxy.nftables import NftBackend
from netproxy.proxier import Proxier
from node_agent import pressure
from node_agent.cri.fake import FakeCRI
from node_agent.kubelet import Kubelet
from node_agent.main import Config, node_status, start_kubelet, stop_kubelet
from node_agent.nodestatus import NodeStatus
from node_agent.sync import InstrumentedCRI
from pybernetes import logs
from pybernetes.api.endpointslices import ENDPOINTSLICES
from pybernetes.cache import InformerFactory
from pybernetes.client import config as client_config
from pybernetes.client.client import Client

# Kubernetes' kubelet defaults where ours differ for a reason that does not apply to a hollow node: the
# pod workers' periodic resync (--sync-frequency; ours is 10 s for quick restarts in the lab, Kubernetes' 1m).
SYNC_FREQUENCY = 60.0
CLUSTER_CIDR = "10.128.0.0/9"  # the pods' range (bench/density.py gives the controller manager the same)
CLUSTER_DNS = "10.96.0.10"  # the lab's cluster DNS address; pods' resolv.conf names it, nothing answers


def node_name(prefix: str, i: int) -> str:
    return f"{prefix}-{i:05}"


def node_ip(i: int) -> str:
    """A distinct private address per node (its InternalIP and pod IP; nothing answers behind it)."""
    return f"10.{64 + i // 65536}.{i // 256 % 256}.{i % 256}"


@functools.cache
def _machine_at_start(nodefs: str) -> pressure.Observations:
    return pressure.observe(nodefs, None)


def machine_at_start(nodefs: str, imagefs: str | None) -> pressure.Observations:
    """The eviction signals as this host showed them at the first reading, for every hollow node of the process:
    each would otherwise re-read the same host's /proc and filesystems every 10 s (kubemark fakes cAdvisor)."""
    return _machine_at_start(str(Path(nodefs).parent))


class FakeRunner(Runner):
    """The netfilter writer faked: every command succeeds at once; the scripts are counted, the last one kept."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts = 0
        self.last_script = ""

    def run(self, *cmd: str, input: str | None = None, check: bool = True,
            timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
        if input is not None:
            self.scripts += 1
            self.last_script = input
        return subprocess.CompletedProcess(self.argv(*cmd), 0, "", "")


class HollowProxy:
    """One node's proxy: the real Proxier, informers and Lease over FakeRunner (see the module)."""

    def __init__(self, client: Client, name: str) -> None:
        self.runner = FakeRunner()
        self.proxier = Proxier(NftBackend(self.runner, Options(cluster_cidr=CLUSTER_CIDR)), hostname=name,
                               endpoint_source=ENDPOINTSLICES)
        self.factory = InformerFactory(client)
        self.proxier.register(self.factory)
        self.lease = ProxyLease(client, name, self.proxier.healthz)
        self.stop_event = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self.factory.start()
        await self.factory.wait_for_cache_sync()
        await self.proxier.sync(full=True)
        self.tasks = [asyncio.create_task(self.proxier.run(self.stop_event), name="proxy-sync-loop"),
                      asyncio.create_task(self.lease.run(self.stop_event), name="proxy-lease")]

    async def stop(self) -> None:
        self.stop_event.set()
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.proxier.close()
        await self.factory.shutdown()


class HollowNode:
    """One node: the real kubelet and node status over FakeCRI (see the module); with `proxy_client`, its proxy."""

    def __init__(self, client: Client, name: str, ip: str, root_dir: Path, *, cpu: str = "32",
                 memory: str = "128Gi", max_pods: int = 110, proxy_client: Client | None = None) -> None:
        self.cfg = Config(node_name=name, root_dir=root_dir, node_ip=ip, cpu=cpu, memory=memory, max_pods=max_pods,
                          sync_frequency=SYNC_FREQUENCY, cluster_dns=[CLUSTER_DNS], cluster_domain="cluster.local")
        self.cri = FakeCRI(record=False, pod_ip=ip)
        # FakeCRI has the CRIClient methods the kubelet calls (not a subclass: no gRPC channel behind it).
        self.kubelet = Kubelet(self.cfg, client, cast(InstrumentedCRI, self.cri))
        self.node: NodeStatus = node_status(self.cfg, client, self.kubelet, observer=machine_at_start)
        self.proxy = HollowProxy(proxy_client, name) if proxy_client is not None else None
        self.stop_event = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self.cfg.root_dir.mkdir(parents=True, exist_ok=True)
        await start_kubelet(self.kubelet, self.node, self.stop_event, self.tasks)
        if self.proxy is not None:
            await self.proxy.start()

    async def stop(self) -> None:
        self.stop_event.set()
        if self.proxy is not None:
            await self.proxy.stop()
        await stop_kubelet(self.kubelet, self.tasks)


def node_kubeconfig(template: str, node: str) -> str:
    """The kubeconfig of `node`'s kubelet: `{node}` in `template` replaced by its name (see the module)."""
    return template.replace("{node}", node)


async def run_nodes(clients: dict[str, Client], ips: list[str], root: Path, *, proxy_client: Client | None = None,
                    parallel: int = 16) -> list[HollowNode]:
    """Start one HollowNode per name in `clients` (its kubelet's client; `parallel` registering at a time), each
    with a proxy on `proxy_client` if given; they run until stopped."""
    nodes = [HollowNode(client, n, ip, root / n, proxy_client=proxy_client)
             for (n, client), ip in zip(clients.items(), ips, strict=True)]
    sem = asyncio.Semaphore(parallel)

    async def start(n: HollowNode) -> None:
        async with sem:
            await n.start()

    await asyncio.gather(*(start(n) for n in nodes))
    return nodes


async def main() -> None:
    ap = cli.arguments(__doc__, None)
    ap.add_argument("--kubeconfig", required=True,
                    help="the kubelets' kubeconfig; `{node}` in it: one per node, named by the node")
    ap.add_argument("--proxy-kubeconfig", help="the hollow proxies' (default: --kubeconfig, without `{node}`)")
    ap.add_argument("--root", required=True, type=Path, help="the nodes' root dirs go under it")
    ap.add_argument("--first", type=int, default=0, help="index of the first node")
    ap.add_argument("--nodes", type=int, default=10)
    ap.add_argument("--prefix", default="hollow")
    ap.add_argument("--proxy", action="store_true", help="a hollow proxy beside each kubelet")
    ap.add_argument("--log-level", default="WARNING", help="of the kubelets' log (pb-kubelet's is INFO)")
    args = ap.parse_args()
    logs.setup("hollow-kubelet")
    logging.getLogger().setLevel(args.log_level)
    if args.proxy and "{node}" in (args.proxy_kubeconfig or args.kubeconfig):
        ap.error("--proxy: the proxies share one client: give --proxy-kubeconfig without `{node}`")

    def client(path: str, user_agent: str) -> Client:
        return Client.from_config(client_config.load(path), timeout=30, user_agent=user_agent)

    idx = range(args.first, args.first + args.nodes)
    shared = None if "{node}" in args.kubeconfig else client(args.kubeconfig, "pb-kubelet")
    clients = {name: shared or client(node_kubeconfig(args.kubeconfig, name), "pb-kubelet")
               for name in (node_name(args.prefix, i) for i in idx)}
    proxy_client = client(args.proxy_kubeconfig or args.kubeconfig, "pb-proxy") if args.proxy else None
    nodes = await run_nodes(clients, [node_ip(i) for i in idx], args.root, proxy_client=proxy_client)
    print("ready", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await asyncio.gather(*(n.stop() for n in nodes), return_exceptions=True)
    await asyncio.gather(*(c.close() for c in {id(c): c for c in [*clients.values(), proxy_client] if c}.values()),
                         return_exceptions=True)


if __name__ == "__main__":
    asyncio.run(main())
