"""Where everything in the lab is: namespaces, addresses, CIDRs, and the lab directory's layout (Plan).

All namespaces are named `pb-...` and joined by a bridge in `pb-lab-br` that has no uplink:

    pb-control-plane 172.30.0.10   etcd (client port on 127.0.0.1 of this namespace only; only the apiserver
                                   talks to it), pb-apiserver, pb-scheduler, pb-controller-manager,
                                   pb-dns (:53, the kube-dns Service 10.96.0.10 points here),
                                   docker-registry (the lab's image registry)
    pb-node-i        172.30.0.1i   containerd (own root/state/socket under the lab dir), pb-kubelet, pb-proxy,
                                   an image-registry forwarder on 127.0.0.1 (lab.image_supply)
    root namespace                 only relays on 127.0.0.1 -> the apiserver (and Prometheus), so `pbctl`
                                   works from the host with <lab-dir>/admin.conf (lab.processes.start_relay)

Every component listens on its pybernetes.ports default inside its own namespace.

Pod CIDRs are fixed, node-i gets 10.244.i.0/24: the lab creates the Node objects with spec.podCIDR before
the kubelets start (node IPAM in the controller manager keeps a podCIDR that is already set), passes the
same CIDR to the kubelet (--pod-cidr) and adds a static route per other node's CIDR inside every lab
namespace. Deterministic ranges make routes, docs and debugging simple and survive controller restarts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lab import netns
from lab.profiles import PROFILES, Profile

DEFAULT_DIR = Path("/var/lib/pybernetes/lab")
DEFAULT_IMAGE_CACHE = Path("/var/tmp/pybernetes-images")
NETWORK = netns.Network("pb-lab")
CP_NETNS = "pb-control-plane"
CP_NAME = "control-plane"
SUBNET = "172.30.0"
CP_IP = f"{SUBNET}.10"
CLUSTER_CIDR = "10.244.0.0/16"
SERVICE_CIDR = "10.96.0.0/16"
# The tail of the lab bridge's /24: type=LoadBalancer Services get these (the controller manager's servicelb).
LB_POOL = "172.30.0.200-172.30.0.250"
# The cluster DNS (pb-dns in pb-control-plane) behind Service kube-system/kube-dns, as kubeadm sets it up.
DNS_SERVICE_IP = "10.96.0.10"  # clusterdns.kubedns.CLUSTER_IP
CLUSTER_DOMAIN = "cluster.local"
COMPONENTS = ("etcd", "apiserver", "scheduler", "controller-manager", "dns", "containerd", "kubelet", "proxy")
CONTROL_PLANE_COMPONENTS = ("etcd", "apiserver", "scheduler", "controller-manager", "dns")


@dataclass(frozen=True)
class NodeSpec:
    name: str
    index: int

    @property
    def netns(self) -> str:
        return f"pb-{self.name}"

    @property
    def ip(self) -> str:
        return f"{SUBNET}.{10 + self.index}"

    @property
    def pod_cidr(self) -> str:
        return f"10.244.{self.index}.0/24"


@dataclass
class Plan:
    """The lab `lab up` makes: its directory, worker nodes, timing profile and image cache."""

    dir: Path
    workers: int = 3
    profile: Profile = PROFILES["default"]
    image_cache: Path = DEFAULT_IMAGE_CACHE
    nodes: list[NodeSpec] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.dir = self.dir.resolve()
        if not self.nodes:
            self.nodes = [NodeSpec(f"node-{i}", i) for i in range(1, self.workers + 1)]

    @property
    def namespaces(self) -> list[str]:
        return [NETWORK.bridge_netns, CP_NETNS, *(n.netns for n in self.nodes)]

    def path(self, *parts: str) -> Path:
        return self.dir.joinpath(*parts)

    @property
    def admin_conf(self) -> Path:
        return self.path("admin.conf")

    def node_dir(self, node: str) -> Path:
        return self.path("nodes", node)

    def config_file(self, who: str) -> Path:
        return self.path("config", f"{who}.conf")
