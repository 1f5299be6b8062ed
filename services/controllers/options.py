"""pb-controller-manager's flags (`Config`) and its table of controllers (their modules, classes, default
workers and the flags each takes), apart from main so that whoever only builds a controller manager's command line
(the lab) does not import the controllers (kube-controller-manager's app/options)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pybernetes import flags, ports, secureserving
from pybernetes.client import config as client_config
from pybernetes.options import opt

# name -> (module under services.controllers, class, --concurrent-*-syncs default, extra kwargs of cfg)
Kwargs = Callable[["Config"], dict[str, Any]]


def _lifecycle_kw(c: Config) -> dict[str, Any]:
    return {"node_monitor_period": c.node_monitor_period, "node_monitor_grace_period": c.node_monitor_grace_period,
            "node_eviction_rate": c.node_eviction_rate, "secondary_node_eviction_rate": c.secondary_node_eviction_rate,
            "unhealthy_zone_threshold": c.unhealthy_zone_threshold,
            "large_cluster_size_threshold": c.large_cluster_size_threshold}


def _ipam_kw(c: Config) -> dict[str, Any]:
    return {"cluster_cidr": c.cluster_cidr, "node_cidr_mask_size": c.node_cidr_mask_size}


def _none(c: Config) -> dict[str, Any]:
    return {}


def _endpointslice_kw(c: Config) -> dict[str, Any]:
    return {"max_endpoints_per_slice": c.max_endpoints_per_slice}


def _mirroring_kw(c: Config) -> dict[str, Any]:
    return {"max_endpoints_per_subset": c.mirroring_max_endpoints_subset_size}


def _servicelb_kw(c: Config) -> dict[str, Any]:
    return {"pool": c.loadbalancer_ip_range}


def _rootca_kw(c: Config) -> dict[str, Any]:
    """The CA pods trust: --root-ca-file, else the --kubeconfig's (kube-controller-manager's fallback to its
    client's CA; only an explicit --kubeconfig, never one found by search)."""
    if c.root_ca_file is not None:
        return {"root_ca": c.root_ca_file.read_bytes()}
    return {"root_ca": client_config.load(c.config).ca_pem if c.config else b""}


CONTROLLERS: dict[str, tuple[str, str, int, Kwargs]] = {
    "endpoint": ("endpoints", "EndpointsController", 5, _none),
    "endpointslice": ("endpointslice", "EndpointSliceController", 5, _endpointslice_kw),
    "endpointslicemirroring": ("endpointslicemirroring", "EndpointSliceMirroringController", 5, _mirroring_kw),
    "replicaset": ("replicaset", "ReplicaSetController", 5, _none),
    "replicationcontroller": ("replicaset", "ReplicationControllerController", 5, _none),
    "deployment": ("deployment", "DeploymentController", 5, _none),
    "daemonset": ("daemonset", "DaemonSetController", 2, _none),
    "statefulset": ("statefulset", "StatefulSetController", 5, _none),
    "garbagecollector": ("garbagecollector", "GarbageCollector", 20, _none),
    "namespace": ("namespace", "NamespaceController", 10, _none),
    "serviceaccount": ("serviceaccount", "ServiceAccountController", 1, _none),
    "resourcequota": ("resourcequota", "ResourceQuotaController", 5, _none),
    "root-ca-cert-publisher": ("rootcacertpublisher", "RootCACertPublisher", 1, _rootca_kw),
    "nodelifecycle": ("nodelifecycle", "NodeLifecycleController", 5, _lifecycle_kw),
    "nodeipam": ("nodeipam", "NodeIpamController", 1, _ipam_kw),
    "servicelb": ("servicelb", "ServiceLBController", 1, _servicelb_kw),
    "job": ("job", "JobController", 5, _none),
    "cronjob": ("cronjob", "CronJobController", 5, _none),
    "clusterrole-aggregation": ("clusterroleaggregation", "ClusterRoleAggregationController", 1, _none),
}
# --concurrent-<flag>-syncs -> controller name (Kubernetes' flag names)
CONCURRENCY_FLAGS = {
    "endpoint": "endpoint", "service-endpoint": "endpointslice", "replicaset": "replicaset",
    "rc": "replicationcontroller", "deployment": "deployment", "gc": "garbagecollector", "namespace": "namespace",
    "serviceaccount": "serviceaccount", "nodelifecycle": "nodelifecycle", "nodeipam": "nodeipam",
    "servicelb": "servicelb", "daemonset": "daemonset", "statefulset": "statefulset", "job": "job",
    "cron-job": "cronjob", "resource-quota": "resourcequota",
}


def enabled_controllers(spec: list[str]) -> list[str]:
    """Resolve `*`, `name`, `-name` (Kubernetes' --controllers) to the enabled names, in table order."""
    items = [s.strip() for part in spec for s in part.split(",") if s.strip()]
    unknown = [s.lstrip("-") for s in items if s != "*" and s.lstrip("-") not in CONTROLLERS]
    if unknown:
        raise ValueError(f"unknown controllers: {', '.join(unknown)} (known: {', '.join(CONTROLLERS)})")
    star = "*" in items
    on = {s for s in items if s != "*" and not s.startswith("-")}
    off = {s[1:] for s in items if s.startswith("-")}
    return [n for n in CONTROLLERS if n not in off and (star or n in on)]


def _controller_spec(text: str) -> str:
    """One --controllers value, checked against the table."""
    try:
        enabled_controllers([text])
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


@dataclass
class Config:
    config: str | None = opt(None, "--config", "--kubeconfig",
                             help=client_config.SEARCH_HELP)
    server: str | None = opt(None, help="apiserver address, overrides the config file")
    token: str | None = opt(None, help="bearer token, overrides the config file")
    controllers: list[str] = opt(["*"], append=True, parse=_controller_spec,
                                 help="controllers to run: '*' for all, 'foo' to enable, '-foo' to disable "
                                      f"(known: {', '.join(CONTROLLERS)})")
    leader_elect: bool = opt(True)
    leader_elect_lease_duration: float = opt(15.0, parse=flags.duration)
    leader_elect_renew_deadline: float = opt(10.0, parse=flags.duration)
    leader_elect_retry_period: float = opt(2.0, parse=flags.duration)
    leader_elect_resource_name: str = opt("kube-controller-manager")
    leader_elect_resource_namespace: str = opt("kube-system")
    identity: str = opt("", help="leader election identity (default hostname_uuid)")
    node_monitor_grace_period: float = opt(40.0, parse=flags.duration)
    node_monitor_period: float = opt(5.0, parse=flags.duration)
    pod_eviction_timeout: float = opt(300.0, parse=flags.duration,
                                      help="accepted for compatibility; eviction is taint based (tolerationSeconds)")
    default_not_ready_toleration_seconds: int = opt(
        300, help="accepted for compatibility; the apiserver adds this toleration to pods")
    default_unreachable_toleration_seconds: int = opt(
        300, help="accepted for compatibility; the apiserver adds this toleration to pods")
    node_eviction_rate: float = opt(0.1)
    secondary_node_eviction_rate: float = opt(0.01)
    unhealthy_zone_threshold: float = opt(0.55)
    large_cluster_size_threshold: int = opt(50)
    cluster_cidr: str = opt("10.244.0.0/16")
    node_cidr_mask_size: int = opt(24)
    allocate_node_cidrs: bool = opt(True)
    # controller name -> workers, one --concurrent-<flag>-syncs flag each (Kubernetes' names)
    concurrency: dict[str, int] = opt({name: CONTROLLERS[name][2] for name in CONCURRENCY_FLAGS.values()},
                                      keyed={name: f"--concurrent-{flag}-syncs"
                                             for flag, name in CONCURRENCY_FLAGS.items()})
    max_endpoints_per_slice: int = opt(100, help="the most endpoints one EndpointSlice holds")
    mirroring_max_endpoints_subset_size: int = opt(1000, help="the most addresses of one Endpoints subset mirrored "
                                                              "into an EndpointSlice (selector-less Services)")
    bind_address: str = opt("127.0.0.1")
    health_port: int = opt(ports.CONTROLLER_MANAGER, "--health-port", "--secure-port",
                           help="HTTP(S) port for /metrics, /healthz, /readyz")
    client_ca_file: Path | None = opt(None, help=secureserving.CLIENT_CA_HELP)
    tls_cert_file: Path | None = opt(None, help=secureserving.TLS_CERT_HELP)
    tls_private_key_file: Path | None = opt(None)
    loadbalancer_ip_range: str = opt("", help="pool for type=LoadBalancer Services, e.g. 172.30.0.200-172.30.0.250 "
                                              "or a CIDR (empty: they stay pending, as without a cloud provider)")
    root_ca_file: Path | None = opt(None, help="the CA published to every namespace as ConfigMap kube-root-ca.crt "
                                   "(default: the kubeconfig's certificate authority)")
    verbose: bool = opt(False, "-v", "--verbose", switch=True)
