"""`lab up`'s cluster DNS step: pb-dns in pb-control-plane, and the kube-system/kube-dns Service that makes it
reachable from pods, as kubeadm's CoreDNS is.

The Service has the conventional cluster IP 10.96.0.10 (the kubelets' --cluster-dns), ports 53/UDP and
53/TCP (and 9153 for metrics), and no selector: its Endpoints object is written here and points at the
control plane's address, where pb-dns listens on :53. Every node's pb-proxy DNATs 10.96.0.10:53 to
172.30.0.10:53; the answer returns through the pod-CIDR routes every lab namespace has.
"""

from __future__ import annotations

from lab import commands
from lab.health import wait_healthy
from lab.processes import spawn
from lab.state import LabState
from lab.topology import CP_IP, CP_NETNS, DNS_SERVICE_IP, Plan
from pybernetes import ports
from pybernetes.api import codec
from pybernetes.api.core.v1 import core_pb2 as core

NAMESPACE = "kube-system"
NAME = "kube-dns"
_PORTS = [("dns", ports.DNS, "UDP"), ("dns-tcp", ports.DNS, "TCP"), ("metrics", ports.DNS_METRICS, "TCP")]


def kube_dns_service() -> core.Service:
    return codec.from_dict({
        "metadata": {"name": NAME, "namespace": NAMESPACE,
                     "labels": {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"}},
        "spec": {"clusterIP": DNS_SERVICE_IP,
                 "ports": [{"name": n, "port": p, "targetPort": p, "protocol": proto} for n, p, proto in _PORTS]},
    }, core.Service)


def kube_dns_endpoints() -> core.Endpoints:
    return codec.from_dict({
        "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": {"k8s-app": "kube-dns"}},
        "subsets": [{"addresses": [{"ip": CP_IP}],
                     "ports": [{"name": n, "port": p, "protocol": proto} for n, p, proto in _PORTS]}],
    }, core.Endpoints)


async def publish(st: LabState, admin_token: str) -> None:
    """Create (or bring back) the kube-dns Service and its Endpoints."""
    from pybernetes import errors
    from pybernetes.client.client import Client

    async with Client(f"127.0.0.1:{st.info['relay_port']}", token=admin_token, timeout=10) as c:
        for obj in (kube_dns_service(), kube_dns_endpoints()):
            try:
                await c.create(obj)
            except errors.AlreadyExists:
                current = await c.get(type(obj), NAME, namespace=NAMESPACE)
                obj.metadata.resource_version = current.metadata.resource_version
                if isinstance(obj, core.Service):
                    continue  # its cluster IP is fixed; nothing else to bring back
                await c.update(obj)


async def start_dns(plan: Plan, st: LabState, admin_token: str) -> str:
    rec = spawn(st, "dns", "dns", commands.dns_argv(plan), netns_name=CP_NETNS)
    await wait_healthy(st, rec, "dns")
    await publish(st, admin_token)
    return f"{CP_IP}:{ports.DNS} behind {NAMESPACE}/{NAME} {DNS_SERVICE_IP}, no upstream (outside names SERVFAIL)"
