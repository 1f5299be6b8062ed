"""The kube-system/kube-dns Service and Endpoints that put pb-dns behind the cluster DNS IP, as kubeadm's
CoreDNS is: ports 53/UDP, 53/TCP and 9153/TCP (metrics), no selector (pb-dns is not a pod here), so the
Endpoints object names the address pb-dns listens on and every node's proxy DNATs the Service IP to it.

`publish(client, cluster_ip, address)` creates both, or brings the Endpoints back to `address`; the lab
(lab.cluster_dns) and deploy/pb_setup.py (`kube-dns`) call it once the apiserver answers.
"""

from __future__ import annotations

import contextlib

from pybernetes import errors, ports
from pybernetes.api import codec
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.client.client import Client

NAMESPACE = "kube-system"
NAME = "kube-dns"
CLUSTER_IP = "10.96.0.10"  # by convention the 10th address of the service range (kubeadm)
PORTS = [("dns", ports.DNS, "UDP"), ("dns-tcp", ports.DNS, "TCP"), ("metrics", ports.DNS_METRICS, "TCP")]
LABELS = {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"}


def service(cluster_ip: str = CLUSTER_IP) -> core.Service:
    return codec.from_dict({
        "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": LABELS},
        "spec": {"clusterIP": cluster_ip,
                 "ports": [{"name": n, "port": p, "targetPort": p, "protocol": proto} for n, p, proto in PORTS]},
    }, core.Service)


def endpoints(address: str) -> core.Endpoints:
    return codec.from_dict({
        "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": LABELS},
        "subsets": [{"addresses": [{"ip": address}],
                     "ports": [{"name": n, "port": p, "protocol": proto} for n, p, proto in PORTS]}],
    }, core.Endpoints)


async def publish(client: Client, cluster_ip: str, address: str) -> None:
    """Create the Service (kept as it is when it exists: its cluster IP cannot change) and the Endpoints.

    The Service is looked up first: creating it again would fail on its cluster IP (already allocated, to
    itself) before the apiserver sees that it exists, as in Kubernetes."""
    try:
        await client.get(core.Service, NAME, namespace=NAMESPACE)
    except errors.NotFound:
        with contextlib.suppress(errors.AlreadyExists):
            await client.create(service(cluster_ip))
    ep = endpoints(address)
    try:
        await client.create(ep)
    except errors.AlreadyExists:
        current = await client.get(core.Endpoints, NAME, namespace=NAMESPACE)
        ep.metadata.resource_version = current.metadata.resource_version
        await client.update(ep)
