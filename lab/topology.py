"""Where everything in the lab is: namespaces, addresses, CIDRs, and the lab directory's layout (Plan).

All namespaces are named `pb-...` and joined by a bridge in `pb-lab-br` that has no uplink:

    pb-control-plane 172.30.0.10   etcd (client port on 127.0.0.1 of this namespace only, TLS with client
                                   certificates: only the apiserver talks to it), pb-apiserver, pb-scheduler,
                                   pb-controller-manager,
                                   pb-dns (:53, the kube-dns Service 10.96.0.10 points here),
                                   docker-registry (the lab's image registry)
    pb-node-i        172.30.0.1i   containerd (own root/state under the lab dir, socket in /run; it pulls
                                   localhost:5000/... from the control plane's registry: lab.image_supply),
                                   pb-kubelet, pb-proxy
    root namespace                 only relays on 127.0.0.1 -> the apiserver (and Prometheus), so `pbctl`
                                   works from the host with <lab-dir>/admin.conf (lab.processes.start_relay)

Every component listens on its pybernetes.ports default inside its own namespace; with `--etcd-members 3` the
etcd members etcd-1..3 listen on 2379/12379/22379 (peers 2380.., metrics 2381..) of the control plane's loopback.

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
from pybernetes import ports

DEFAULT_DIR = Path("/var/lib/pybernetes/lab")
DEFAULT_IMAGE_CACHE = Path("/var/tmp/pybernetes-images")
NETWORK = netns.Network("pb-lab")
CP_NETNS = "pb-control-plane"
CP_NAME = "control-plane"
SUBNET = "172.30.0"
CP_IP = f"{SUBNET}.10"
# The lab's image registry (docker-registry in pb-control-plane); nodes reach it here for localhost:5000/...
# and the mirrored public names (node_agent.containerd.render_hosts' endpoint).
REGISTRY_ADDRESS = f"{CP_IP}:{ports.REGISTRY}"
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


# etcd members beyond the first listen 10000 ports higher each (2379, 12379, 22379), as etcd's own Procfile
# spreads a local cluster; all of them on the control plane's loopback.
ETCD_MEMBER_PORT_STEP = 10_000


@dataclass(frozen=True)
class EtcdMember:
    """One etcd process of the lab: a single member keeps the record name `etcd`, the member name
    `control-plane` and data dir control-plane/etcd; members of a cluster are etcd-1.. with their own dirs."""

    record: str  # the process record's name (`lab stop etcd-2`)
    name: str  # etcd's --name
    data: Path
    client_port: int
    peer_port: int
    metrics_port: int

    @property
    def client_url(self) -> str:
        return f"https://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"https://127.0.0.1:{self.peer_port}"


def etcd_members(lab_dir: Path, count: int) -> list[EtcdMember]:
    if count == 1:
        return [EtcdMember("etcd", CP_NAME, lab_dir / "control-plane" / "etcd", ports.ETCD_CLIENT, ports.ETCD_PEER,
                           ports.ETCD_METRICS)]
    step = ETCD_MEMBER_PORT_STEP
    return [EtcdMember(f"etcd-{i}", f"etcd-{i}", lab_dir / "control-plane" / f"etcd-{i}",
                       ports.ETCD_CLIENT + step * (i - 1), ports.ETCD_PEER + step * (i - 1),
                       ports.ETCD_METRICS + step * (i - 1)) for i in range(1, count + 1)]


def pki_dir(lab_dir: Path) -> Path:
    """The cluster's certificates, kubeadm's layout (pybernetes.tls): the lab apiserver's --cert-dir default."""
    return lab_dir / "control-plane" / "apiserver" / "pki"


@dataclass
class Plan:
    """The lab `lab up` makes: its directory, worker nodes, timing profile and image cache."""

    dir: Path
    workers: int = 3
    profile: Profile = PROFILES["default"]
    image_cache: Path = DEFAULT_IMAGE_CACHE
    nodes: list[NodeSpec] = field(default_factory=list)
    etcd_count: int = 1  # `lab up --etcd-members N`

    def __post_init__(self) -> None:
        self.dir = self.dir.resolve()
        if not self.nodes:
            self.nodes = [NodeSpec(f"node-{i}", i) for i in range(1, self.workers + 1)]

    @property
    def etcd(self) -> list[EtcdMember]:
        return etcd_members(self.dir, self.etcd_count)

    @property
    def namespaces(self) -> list[str]:
        return [NETWORK.bridge_netns, CP_NETNS, *(n.netns for n in self.nodes)]

    def path(self, *parts: str) -> Path:
        return self.dir.joinpath(*parts)

    @property
    def admin_conf(self) -> Path:
        return self.path("admin.conf")

    @property
    def pki_dir(self) -> Path:
        return pki_dir(self.dir)

    def node_dir(self, node: str) -> Path:
        return self.path("nodes", node)

    def config_file(self, who: str) -> Path:
        return self.path("config", f"{who}.conf")
