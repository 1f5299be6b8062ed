"""pb-kubelet's flags (`Config`), apart from main so that whoever only builds a kubelet's command line (the lab)
does not import the kubelet (the kubelet's app/options)."""

from __future__ import annotations

import argparse
import socket
from dataclasses import dataclass
from pathlib import Path

from node_agent import pressure
from pybernetes import flags, ports
from pybernetes.client import config as client_config
from pybernetes.options import opt


def _eviction_hard(text: str) -> str:
    try:
        pressure.parse_thresholds(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


@dataclass
class Config:
    node_name: str = opt(socket.gethostname, help="default: the hostname")
    config: str | None = opt(None, "--config", "--kubeconfig", help=client_config.SEARCH_HELP)
    server: str | None = opt(None)
    token: str | None = opt(None)
    containerd_socket: str = opt("/run/containerd/containerd.sock", "--containerd-socket",
                                 "--container-runtime-endpoint")
    root_dir: Path = opt(Path("/var/lib/pybernetes/kubelet"))
    pod_cidr: str = opt("", help="else Node.spec.podCIDR (set by the controller manager)")
    cni_conf_dir: str = opt("", help="where to (re)write the CNI conflist for the pod CIDR")
    cni_data_dir: str = opt("", help="host-local IPAM data dir (default <cni-conf-dir>/../ipam)")
    node_ip: str = opt("")
    cpu: str = opt("")
    memory: str = opt("")
    max_pods: int = opt(110)
    node_status_update_frequency: float = opt(10.0, parse=flags.duration)
    node_status_report_frequency: float = opt(
        300.0, parse=flags.duration,
        help="how often an unchanged node status is written anyway (the Lease is the heartbeat; a change is "
             "written within --node-status-update-frequency)")
    node_lease_duration: int = opt(40)
    health_host: str = opt("127.0.0.1")
    health_port: int = opt(ports.KUBELET_HEALTH, "--health-port", "--healthz-port")
    port: int = opt(ports.KUBELET, help="the kubelet API (logs, exec) for the apiserver")
    address: str = opt("", help="bind address of the kubelet API (default 0.0.0.0, as Kubernetes)")
    authentication_token_file: Path | None = opt(
        None, help="tokens (one per line) accepted on the kubelet API when it has no --client-ca-file")
    # The kubelet API's TLS (Kubernetes' flags): without a certificate the kubelet makes itself a self-signed one
    # under <root-dir>/pki; with --client-ca-file every client must present a certificate that CA signed.
    tls_cert_file: Path | None = opt(None, help="the kubelet API's serving certificate (default: self-signed)")
    tls_private_key_file: Path | None = opt(None, help="its key")
    client_ca_file: Path | None = opt(None, help="CA the kubelet API's clients' certificates must be signed by "
                                                 "(the cluster CA: the apiserver's kubelet client certificate); "
                                                 "with it the health port is HTTPS and its /metrics is authorized")
    register_node: bool = opt(True)
    node_labels: dict[str, str] = opt({})
    probe_netns: str = opt("", help="netns path (e.g. /run/netns/pb-node1) for httpGet/tcpSocket probes and the "
                                    "runtime's streaming server (attach) when the kubelet itself is not in the "
                                    "node's network namespace")
    sync_frequency: float = opt(10.0, parse=flags.duration)
    cluster_dns: list[str] = opt([], help="nameserver IPs (comma-separated) for pods with dnsPolicy ClusterFirst")
    cluster_domain: str = opt("", help="the cluster's DNS domain (e.g. cluster.local): pods search "
                                       "<ns>.svc.<domain> svc.<domain> <domain>")
    resolv_conf: str = opt("/etc/resolv.conf", help="the resolver config pods with dnsPolicy Default get (and "
                                                    "whose search domains ClusterFirst pods append)")
    eviction_hard: str = opt(pressure.DEFAULT_EVICTION_HARD, parse=_eviction_hard,
                             help="pressure thresholds SIGNAL<QUANTITY|PERCENT%%,..., Kubernetes' by default")
    eviction_pressure_transition_period: float = opt(
        300.0, parse=flags.duration, help="how long a pressure condition stays True after its signals recover")
    verbose: bool = opt(False, "-v", "--verbose", switch=True)
    # not flags: fixed as in Kubernetes, shortened by tests
    pleg_period: float = 1.0
    crash_backoff: float = 10.0
    image_backoff: float = 10.0
    eviction_monitoring_period: float = 10.0  # Kubernetes' fixed evictionMonitoringPeriod
