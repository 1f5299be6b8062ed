"""`lab up`'s cluster DNS step: pb-dns in pb-control-plane, and the kube-system/kube-dns Service that makes it
reachable from pods (clusterdns.kubedns), as kubeadm's CoreDNS is.

The Service has the conventional cluster IP 10.96.0.10 (the kubelets' --cluster-dns) and no selector; its
Endpoints name the control plane's address, where pb-dns listens on :53 (UDP and TCP). Every node's pb-proxy
DNATs 10.96.0.10:53 to 172.30.0.10:53, and the answer returns through the pod-CIDR routes every lab
namespace has. The lab has no upstream nameserver: names outside cluster.local get SERVFAIL at once.
"""

from __future__ import annotations

from clusterdns import kubedns
from lab import commands
from lab.control_plane import admin_client
from lab.health import wait_healthy
from lab.processes import spawn
from lab.state import LabState
from lab.topology import CP_IP, CP_NETNS, DNS_SERVICE_IP, Plan
from pybernetes import ports


async def start_dns(plan: Plan, st: LabState) -> str:
    rec = spawn(st, "dns", "dns", commands.dns_argv(plan), netns_name=CP_NETNS)
    await wait_healthy(st, rec, "dns")
    async with admin_client(plan) as c:
        await kubedns.publish(c, DNS_SERVICE_IP, CP_IP)
    return (f"{CP_IP}:{ports.DNS} behind {kubedns.NAMESPACE}/{kubedns.NAME} {DNS_SERVICE_IP}; "
            "no upstream: names outside the cluster domain SERVFAIL")
