"""pb-proxy's flags (`Config`, and a KubeProxyConfiguration-style file's fields), apart from main so that whoever
only builds a proxy's command line (the lab) does not import the proxier (kube-proxy's app/options)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pybernetes import flags, ports, secureserving
from pybernetes.api.endpointslices import ENDPOINTS, SOURCES
from pybernetes.client import config as client_config
from pybernetes.options import opt

BACKENDS = ("nftables", "iptables")


def _from_file(path: Path) -> dict[str, Any]:
    """A KubeProxyConfiguration-style YAML file: the fields pb-proxy knows."""
    doc = yaml.safe_load(path.read_text()) or {}
    out: dict[str, Any] = {}
    if "mode" in doc:
        out["backend"] = doc["mode"]
    if "clusterCIDR" in doc:
        out["cluster_cidr"] = doc["clusterCIDR"]
    if "hostnameOverride" in doc:
        out["hostname_override"] = doc["hostnameOverride"]
    ipt = doc.get("iptables") or doc.get("nftables") or {}
    if "minSyncPeriod" in ipt:
        out["min_sync_period"] = flags.duration(ipt["minSyncPeriod"])
    if "syncPeriod" in ipt:
        out["sync_period"] = flags.duration(ipt["syncPeriod"])
    if "masqueradeAll" in ipt:
        out["masquerade_all"] = bool(ipt["masqueradeAll"])
    if "nodePortAddresses" in doc:
        out["nodeport_addresses"] = list(doc["nodePortAddresses"] or [])
    if "healthzBindAddress" in doc:
        out["health_port"] = int(str(doc["healthzBindAddress"]).rsplit(":", 1)[-1])
    if "metricsBindAddress" in doc:
        host, _, port = str(doc["metricsBindAddress"]).rpartition(":")
        out["metrics_port"] = int(port)
        if host:
            out["metrics_bind_address"] = host
    kc = (doc.get("clientConnection") or {}).get("kubeconfig")
    if kc:
        out["kubeconfig"] = kc
    return out


@dataclass
class Config:
    config_file: Path | None = opt(None, "--config", file=_from_file,
                                   help="KubeProxyConfiguration-style YAML (mode, clusterCIDR, "
                                        "iptables.minSyncPeriod, ...); flags given explicitly win")
    kubeconfig: str | None = opt(None, "--kubeconfig", "--client-config",
                                 help=client_config.SEARCH_HELP)
    server: str = opt("", "--server", "--master", help="apiserver address")
    token: str = opt("", help="bearer token")
    hostname_override: str = opt("", help="this node's name (default: hostname)")
    backend: str = opt("nftables", "--backend", "--proxy-mode", choices=BACKENDS,
                       help="nftables (meets the 5,000-service targets) or iptables (KUBE-* chains)")
    cluster_cidr: str = opt("10.244.0.0/16", help="pod CIDR; traffic from outside it is masqueraded")
    service_cidr: str = opt("10.96.0.0/16", "--service-cidr", "--service-cluster-ip-range",
                            help="routed into a sink device inside the node so unmatched service "
                                 "traffic dies locally")
    min_sync_period: float = opt(1.0, parse=flags.duration)
    sync_period: float = opt(30.0, parse=flags.duration)
    bind_address: str = opt("0.0.0.0", help="address of the health server (/healthz, /livez, /readyz)")
    health_port: int = opt(ports.PROXY_HEALTH, "--health-port", "--healthz-port")
    metrics_bind_address: str = opt("127.0.0.1", help="address of the metrics server (kube-proxy's default: "
                                                      "loopback; another address wants --client-ca-file)")
    metrics_port: int = opt(ports.PROXY_METRICS)
    client_ca_file: Path | None = opt(None, help=secureserving.CLIENT_CA_HELP)
    tls_cert_file: Path | None = opt(None, help=secureserving.TLS_CERT_HELP)
    tls_private_key_file: Path | None = opt(None)
    cleanup: bool = opt(False, switch=True, help="remove every rule, chain, table and route we made; exit")
    masquerade_all: bool = opt(False)
    nodeport_addresses: list[str] = opt([], help="comma-separated CIDRs; NodePorts answer only on local "
                                                 "addresses inside them")
    netns: str = opt("", help="program this named network namespace (/run/netns/NAME) from outside "
                              "(nsenter + pyroute2 netns)")
    manage_routes: bool = opt(True, help="host-gw routes to other nodes' podCIDRs and the service-CIDR sink")
    conntrack: bool = opt(True, help="flush stale UDP conntrack entries")
    endpoint_source: str = opt(ENDPOINTS, choices=SOURCES,
                               help="read endpoints from EndpointSlices (as kube-proxy does) or Endpoints (the "
                                    "default until selectorless Services' Endpoints are mirrored into slices)")
    verbose: bool = opt(False, "-v", "--verbose", switch=True)


def check(cfg: Config) -> None:
    if cfg.backend not in BACKENDS:  # a config file's mode (the flag's value argparse checks)
        raise ValueError(f"--backend must be one of {', '.join(BACKENDS)}")
