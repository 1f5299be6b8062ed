"""The command line of every process the lab runs as a cluster component: etcd, containerd and the six
pybernetes components (apiserver, scheduler, controller-manager, kubelet, proxy, dns).

Each pybernetes component's argv is its own `Config` (declared once in the component's options module, which
imports none of the component) filled with the lab's values and the timing profile's (lab.profiles), turned back
into flags by `pybernetes.options.to_argv`. lab.control_plane and lab.nodes spawn these; lab.processes records them, so
`lab start` reruns exactly the recorded line.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from clusterdns import options as dns_options
from lab.topology import (
    CLUSTER_CIDR,
    CLUSTER_DOMAIN,
    CP_IP,
    DNS_SERVICE_IP,
    LB_POOL,
    SERVICE_CIDR,
    EtcdMember,
    NodeSpec,
    Plan,
)
from netproxy import options as proxy_options
from node_agent import options as kubelet_options
from pybernetes import options, ports
from services.apiserver import options as apiserver_options
from services.apiserver.storage import embedded
from services.controllers import options as controller_manager_options
from services.scheduler import options as scheduler_options

# component -> (console script, module for `python -m`)
_PROGRAMS = {
    "apiserver": ("pb-apiserver", "services.apiserver.main"),
    "scheduler": ("pb-scheduler", "services.scheduler.main"),
    "controller-manager": ("pb-controller-manager", "services.controllers.main"),
    "kubelet": ("pb-kubelet", "node_agent.main"),
    "proxy": ("pb-proxy", "netproxy.main"),
    "dns": ("pb-dns", "clusterdns.main"),
}


def program(component: str) -> list[str]:
    """The command that starts a component: its console script if installed, else `python -m`."""
    script, module = _PROGRAMS[component]
    path = Path(sys.executable).parent / script
    if path.exists():
        return [str(path)]
    return [sys.executable, "-m", module]


def _argv(component: str, cfg: Any, profile: dict[str, Any]) -> list[str]:
    """`program` + the flags of `cfg` (a component's Config) with the profile's settings on top."""
    return [*program(component), *options.to_argv(replace(cfg, **profile))]


def initial_cluster(members: list[EtcdMember]) -> str:
    return ",".join(f"{m.name}={m.peer_url}" for m in members)


def etcd_tls_argv(pki_dir: Path) -> list[str]:
    """etcd's TLS as kubeadm configures it: clients and peers need a certificate signed by etcd/ca."""
    etcd = pki_dir / "etcd"
    return [f"--cert-file={etcd / 'server.crt'}", f"--key-file={etcd / 'server.key'}", "--client-cert-auth=true",
            f"--trusted-ca-file={etcd / 'ca.crt'}", f"--peer-cert-file={etcd / 'peer.crt'}",
            f"--peer-key-file={etcd / 'peer.key'}", "--peer-client-cert-auth=true",
            f"--peer-trusted-ca-file={etcd / 'ca.crt'}"]


def etcd_argv(member: EtcdMember, members: list[EtcdMember], pki_dir: Path) -> list[str]:
    """One member of the lab's etcd (`members`: the whole cluster, one or more); its certificates are
    lab.control_plane's (pkiutil.ensure_etcd_pki under `pki_dir`)."""
    client, peer = member.client_url, member.peer_url
    return ["etcd", f"--name={member.name}", f"--data-dir={member.data}", f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}", f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}", f"--initial-cluster={initial_cluster(members)}",
            *(["--initial-cluster-state=new", "--initial-cluster-token=pb-lab"] if len(members) > 1 else
              [f"--election-timeout={embedded.SINGLE_MEMBER_ELECTION_TIMEOUT_MS}"]),
            "--experimental-watch-progress-notify-interval=5s", f"--snapshot-count={embedded.SNAPSHOT_COUNT}",
            "--logger=zap", "--log-outputs=stderr",
            f"--listen-metrics-urls=http://127.0.0.1:{member.metrics_port}",
            *etcd_tls_argv(pki_dir), "--log-level=warn"]


# The control plane's components serving /metrics over HTTPS with a certificate from the cluster CA (SANs the
# control plane's name, IP and loopback): stem <who>-serving under the pki dir -> common name. Each asks the
# apiserver whether a caller may get /metrics (SubjectAccessReview); the apiserver decides in process.
SERVING_CERTS = {"scheduler": "kube-scheduler", "controller-manager": "kube-controller-manager", "dns": "coredns"}


class _SecureServingConfig(Protocol):
    client_ca_file: Path | None
    tls_cert_file: Path | None
    tls_private_key_file: Path | None


def secure_metrics(cfg: _SecureServingConfig, plan: Plan, who: str, pki: Path | None = None) -> None:
    """Put a component's /metrics behind client certificates (pybernetes.secureserving): the cluster CA and its
    serving certificate (<pki>/<who>-serving, the control plane's pki by default)."""
    where = pki or plan.pki_dir
    cfg.client_ca_file = plan.pki_dir / "ca.crt"
    cfg.tls_cert_file, cfg.tls_private_key_file = where / f"{who}-serving.crt", where / f"{who}-serving.key"


def encryption_config(plan: Plan) -> Path:
    """The lab's EncryptionConfiguration (Secrets under aescbc, a random key), beside the apiserver's keys."""
    return plan.path("control-plane", "apiserver", "pki", "encryption-config.yaml")


def audit_policy(plan: Plan) -> Path:
    return plan.path("control-plane", "audit-policy.yaml")


def audit_log(plan: Plan) -> Path:
    return plan.path("control-plane", "audit", "audit.log")


def apiserver_argv(plan: Plan) -> list[str]:
    cfg = apiserver_options.Config(
        data_dir=plan.path("control-plane", "apiserver"), bind_address="0.0.0.0",
        secure_port=ports.APISERVER, grpc_port=ports.APISERVER_GRPC,
        advertise_address=CP_IP, etcd_servers=[m.client_url for m in plan.etcd],
        health_port=ports.APISERVER_HEALTH, token_auth_file=plan.path("control-plane", "tokens.csv"),
        service_cluster_ip_range=SERVICE_CIDR, encryption_provider_config=encryption_config(plan),
        audit_log_path=str(audit_log(plan)), audit_policy_file=audit_policy(plan), audit_log_maxbackup=3,
        enable_admission_plugins=["NodeRestriction"],  # as kubeadm: kubelets write only their own node's objects
        client_ca_file=plan.pki_dir / "ca.crt")  # the health port over HTTPS, /metrics for system:monitoring
    # its client certificates towards etcd and kubelets, the CA of the kubelets' serving certificates
    # (lab.control_plane.write_credentials makes them all)
    pki = plan.pki_dir
    cfg.etcd_cafile, cfg.kubelet_certificate_authority = pki / "etcd" / "ca.crt", pki / "ca.crt"
    cfg.etcd_certfile, cfg.etcd_keyfile = pki / "apiserver-etcd-client.crt", pki / "apiserver-etcd-client.key"
    cfg.kubelet_client_certificate = pki / "apiserver-kubelet-client.crt"
    cfg.kubelet_client_key = pki / "apiserver-kubelet-client.key"
    return _argv("apiserver", cfg, plan.profile.apiserver)


def kubelet_pki(plan: Plan, node: str) -> Path:
    """Where a node's own serving certificate lives (only that node's key under its directory)."""
    return plan.node_dir(node) / "pki"


def scheduler_argv(plan: Plan) -> list[str]:
    cfg = scheduler_options.Config(kubeconfig=str(plan.config_file("scheduler")), health_port=ports.SCHEDULER)
    secure_metrics(cfg, plan, "scheduler")
    return _argv("scheduler", cfg, plan.profile.scheduler)


def controller_manager_argv(plan: Plan) -> list[str]:
    cfg = controller_manager_options.Config(
        config=str(plan.config_file("controller-manager")), cluster_cidr=CLUSTER_CIDR, node_cidr_mask_size=24,
        health_port=ports.CONTROLLER_MANAGER, loadbalancer_ip_range=LB_POOL)
    secure_metrics(cfg, plan, "controller-manager")
    return _argv("controller-manager", cfg, plan.profile.controller_manager)


def containerd_argv(config: Path) -> list[str]:
    return ["containerd", "--config", str(config)]


def kubelet_argv(plan: Plan, n: NodeSpec) -> list[str]:
    from node_agent.containerd import NodePaths
    from node_agent.pressure import LAB_EVICTION_HARD

    paths = NodePaths((plan.node_dir(n.name) / "containerd").resolve())
    cfg = kubelet_options.Config(
        config=str(plan.config_file(f"kubelet-{n.name}")), node_name=n.name, node_ip=n.ip,
        containerd_socket=str(paths.socket), root_dir=plan.node_dir(n.name) / "kubelet", pod_cidr=n.pod_cidr,
        cni_conf_dir=str(paths.cni_conf_dir), cni_data_dir=str(paths.cni_data_dir),
        health_port=ports.KUBELET_HEALTH, health_host="0.0.0.0", eviction_hard=LAB_EVICTION_HARD,
        cluster_dns=[DNS_SERVICE_IP], cluster_domain=CLUSTER_DOMAIN,
        # the kubelet API: a serving certificate from the cluster CA; only the apiserver's client certificate
        tls_cert_file=kubelet_pki(plan, n.name) / "kubelet.crt",
        tls_private_key_file=kubelet_pki(plan, n.name) / "kubelet.key", client_ca_file=plan.pki_dir / "ca.crt")
    return _argv("kubelet", cfg, plan.profile.kubelet)


def proxy_argv(plan: Plan, n: NodeSpec) -> list[str]:
    # health and metrics on every address: the lab checks 127.0.0.1, Prometheus scrapes the node IP (so /metrics
    # is HTTPS for client certificates RBAC lets read it, rather than kube-proxy's loopback-only default)
    cfg = proxy_options.Config(
        kubeconfig=str(plan.config_file("proxy")), hostname_override=n.name, bind_address="0.0.0.0",
        cluster_cidr=CLUSTER_CIDR, service_cidr=SERVICE_CIDR, health_port=ports.PROXY_HEALTH,
        metrics_bind_address="0.0.0.0", metrics_port=ports.PROXY_METRICS)
    secure_metrics(cfg, plan, "proxy", kubelet_pki(plan, n.name))
    return _argv("proxy", cfg, {})


def dns_argv(plan: Plan) -> list[str]:
    # no --upstream: the lab has no uplink, so names outside the cluster domain get SERVFAIL at once
    cfg = dns_options.Config(kubeconfig=str(plan.config_file("dns")), cluster_domain=CLUSTER_DOMAIN,
                          bind_address="0.0.0.0", port=ports.DNS, health_port=ports.DNS_METRICS)
    secure_metrics(cfg, plan, "dns")
    return _argv("dns", cfg, {})
