"""Hollow nodes (kubemark's): the real kubelet over an in-memory container runtime, many per process.

Each HollowNode is a node_agent.kubelet.Kubelet started by node_agent.main.start_kubelet, as pb-kubelet
starts it: the pod source (informer on spec.nodeName), admission, one pod worker per pod running
node_agent.sync, the status manager writing pod statuses, the relister (PLEG), eviction, events, and
node_agent.nodestatus registering the Node and keeping its status and Lease. What is faked, as kubemark
fakes it: the container runtime (node_agent.cri.fake.FakeCRI: containers "run" as soon as they are
started, every image is present) and the node's resources (cpu/memory given, not read from the host).
Not run: the kubelet API server (logs, exec, port-forward) and the health server, as neither is on
the pod start path. The hollow proxy is not here yet (see bench/README.md).

It lives in bench/ because only the benches use it and it sits above the components (it will also hold
the hollow proxy, and node_agent and netproxy never import each other). `python -m bench.hollow` runs
`--nodes` of them in one process sharing one client connection, prints "ready" once every Node is
registered, and runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import cast

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from node_agent.cri.fake import FakeCRI
from node_agent.kubelet import Kubelet
from node_agent.main import Config, node_status, start_kubelet, stop_kubelet
from node_agent.nodestatus import NodeStatus
from node_agent.sync import InstrumentedCRI
from pybernetes import logs
from pybernetes.client import config as client_config
from pybernetes.client.client import Client

# Kubernetes' kubelet defaults where ours differ for a reason that does not apply to a hollow node: the
# pod workers' periodic resync (--sync-frequency; ours is 10 s for quick restarts in the lab, Kubernetes' 1m).
SYNC_FREQUENCY = 60.0
CLUSTER_DNS = "10.96.0.10"  # the lab's cluster DNS address; pods' resolv.conf names it, nothing answers


def node_name(prefix: str, i: int) -> str:
    return f"{prefix}-{i:05}"


def node_ip(i: int) -> str:
    """A distinct private address per node (its InternalIP and pod IP; nothing answers behind it)."""
    return f"10.{64 + i // 65536}.{i // 256 % 256}.{i % 256}"


class HollowNode:
    """One node: the real kubelet and node status over FakeCRI (see the module)."""

    def __init__(self, client: Client, name: str, ip: str, root_dir: Path, *, cpu: str = "32",
                 memory: str = "128Gi", max_pods: int = 110) -> None:
        self.cfg = Config(node_name=name, root_dir=root_dir, node_ip=ip, cpu=cpu, memory=memory, max_pods=max_pods,
                          sync_frequency=SYNC_FREQUENCY, cluster_dns=[CLUSTER_DNS], cluster_domain="cluster.local")
        self.cri = FakeCRI(record=False, pod_ip=ip)
        # FakeCRI has the CRIClient methods the kubelet calls (not a subclass: no gRPC channel behind it).
        self.kubelet = Kubelet(self.cfg, client, cast(InstrumentedCRI, self.cri))
        self.node: NodeStatus = node_status(self.cfg, client, self.kubelet)
        self.stop_event = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self.cfg.root_dir.mkdir(parents=True, exist_ok=True)
        await start_kubelet(self.kubelet, self.node, self.stop_event, self.tasks)

    async def stop(self) -> None:
        self.stop_event.set()
        await stop_kubelet(self.kubelet, self.tasks)


async def run_nodes(client: Client, names: list[str], ips: list[str], root: Path,
                    parallel: int = 16) -> list[HollowNode]:
    """Start one HollowNode per name (`parallel` registering at a time); they run until stopped."""
    nodes = [HollowNode(client, n, ip, root / n) for n, ip in zip(names, ips, strict=True)]
    sem = asyncio.Semaphore(parallel)

    async def start(n: HollowNode) -> None:
        async with sem:
            await n.start()

    await asyncio.gather(*(start(n) for n in nodes))
    return nodes


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kubeconfig", required=True)
    ap.add_argument("--root", required=True, type=Path, help="the nodes' root dirs go under it")
    ap.add_argument("--first", type=int, default=0, help="index of the first node")
    ap.add_argument("--nodes", type=int, default=10)
    ap.add_argument("--prefix", default="hollow")
    ap.add_argument("--log-level", default="WARNING", help="of the kubelets' log (pb-kubelet's is INFO)")
    args = ap.parse_args()
    logs.setup("hollow-kubelet")
    logging.getLogger().setLevel(args.log_level)
    client = Client.from_config(client_config.load(args.kubeconfig), timeout=30, user_agent="pb-kubelet")
    idx = range(args.first, args.first + args.nodes)
    nodes = await run_nodes(client, [node_name(args.prefix, i) for i in idx], [node_ip(i) for i in idx], args.root)
    print("ready", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await asyncio.gather(*(n.stop() for n in nodes), return_exceptions=True)
    await client.close()


if __name__ == "__main__":
    asyncio.run(main())
