"""`lab up`'s network and worker-node steps: the namespaces and bridge, the pod routes, and per node
containerd, pb-kubelet and pb-proxy; then the wait until every Node is Ready.

Each process step spawns its lab.commands argv inside the node's namespace (lab.processes) and waits
until lab.health says it serves. lab.lifecycle runs them, node steps concurrently.
"""

from __future__ import annotations

import asyncio
import time

from lab import commands, netns
from lab.errors import LabError
from lab.health import wait_healthy
from lab.processes import run_cmd, spawn
from lab.state import LabState
from lab.status import node_rows
from lab.topology import CP_IP, CP_NETNS, NETWORK, REGISTRY_ADDRESS, NodeSpec, Plan


async def create_network(plan: Plan, st: LabState) -> str:
    for ns in plan.namespaces:
        st.add_namespace(ns)
    await asyncio.to_thread(NETWORK.create)
    hosts = [(CP_NETNS, f"{CP_IP}/24")] + [(n.netns, f"{n.ip}/24") for n in plan.nodes]
    # One at a time: each veth's host end is briefly named eth0 inside the bridge namespace.
    for ns, addr in hosts:
        await asyncio.to_thread(NETWORK.add_host, ns, addr)
    return f"{NETWORK.bridge_netns} + {len(hosts)} hosts"


async def routes(plan: Plan) -> str:
    """Forwarding on, and in every lab namespace a route per other node's pod CIDR via that node."""
    async def one(ns: str, own: int) -> None:
        await run_cmd(netns.nsenter(ns, ["sysctl", "-qw", "net.ipv4.ip_forward=1"]))
        for n in plan.nodes:
            if n.index != own:
                await run_cmd(netns.nsenter(ns, ["ip", "route", "replace", n.pod_cidr, "via", n.ip]))
        # The service range gets no route here: each node's pb-proxy routes it into its sink device
        # (unmatched cluster IPs die there), and the lab hosts have no default route at all.
    await asyncio.gather(one(CP_NETNS, 0), *(one(n.netns, n.index) for n in plan.nodes))
    return f"pod CIDRs {', '.join(n.pod_cidr for n in plan.nodes)}"


async def start_containerd(plan: Plan, st: LabState, n: NodeSpec) -> str:
    from node_agent.containerd import Containerd

    base = plan.node_dir(n.name) / "containerd"
    ctd = Containerd(base, netns=n.netns, pod_cidr=n.pod_cidr, registry_endpoint=REGISTRY_ADDRESS)
    st.containerd[n.name] = {"dir": str(base), "netns": n.netns, "pod_cidr": n.pod_cidr, "socket": ctd.socket}
    st.add_mount_root(base)
    ctd.write_config()
    ctd.paths.socket.unlink(missing_ok=True)
    rec = spawn(st, f"containerd/{n.name}", "containerd", commands.containerd_argv(ctd.paths.config),
                netns_name=n.netns, node=n.name)
    await wait_healthy(st, rec, f"containerd on {n.name}")
    return ""


async def start_kubelet(plan: Plan, st: LabState, n: NodeSpec) -> str:
    rec = spawn(st, f"kubelet/{n.name}", "kubelet", commands.kubelet_argv(plan, n), netns_name=n.netns, node=n.name)
    await wait_healthy(st, rec, f"kubelet on {n.name}")
    return ""


async def start_proxy(plan: Plan, st: LabState, n: NodeSpec) -> str:
    rec = spawn(st, f"proxy/{n.name}", "proxy", commands.proxy_argv(plan, n), netns_name=n.netns, node=n.name)
    await wait_healthy(st, rec, f"proxy on {n.name}")
    return ""


async def wait_nodes_ready(plan: Plan, st: LabState, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        rows = await node_rows(st)
        ready = [r for r in rows if r[1] == "Ready"]
        if len(ready) >= len(plan.nodes):
            return f"{len(ready)}/{len(plan.nodes)} Ready"
        if time.monotonic() > deadline:
            raise LabError(f"nodes not Ready after {timeout:.0f} s: "
                           + ", ".join(f"{r[0]}={r[1]}" for r in rows))
        await asyncio.sleep(0.2)
