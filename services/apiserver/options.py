"""pb-apiserver's flags (`Config`) and the defaults they name, apart from main so that whoever only builds an
apiserver's command line (the lab) does not import the server: Kubernetes keeps them apart the same way
(kube-apiserver's app/options). main parses them; admission, inflight and serviceaccount read their defaults here.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pybernetes import ports
from pybernetes.options import opt

# Kubernetes' admission plugin order (kube-apiserver's AllOrderedPlugins, the ones modelled here; admission.chain
# pairs each name with its plugin) and its default set; NodeRestriction is turned on by the deployment (kubeadm,
# the lab).
ADMISSION_PLUGINS = ("NamespaceLifecycle", "LimitRanger", "ServiceAccount", "NodeRestriction", "PodSecurity",
                     "DefaultTolerationSeconds", "ResourceQuota")
DEFAULT_ADMISSION_PLUGINS = ("NamespaceLifecycle", "LimitRanger", "ServiceAccount", "PodSecurity",
                             "DefaultTolerationSeconds", "ResourceQuota")
DEFAULT_MAX_READ_ONLY = 400  # kube-apiserver's --max-requests-inflight
DEFAULT_MAX_MUTATING = 200  # kube-apiserver's --max-mutating-requests-inflight
DEFAULT_SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
DEFAULT_BOOKMARK_INTERVAL = 60.0  # kube-apiserver's cacher bookmarks watches every minute (defaultBookmarkFrequency)


def enabled_admission_plugins(enable: Sequence[str] = (), disable: Sequence[str] = ()) -> list[str]:
    """The plugin names on, in ADMISSION_PLUGINS' order; unknown names or one named on both lists are a
    ValueError."""
    enable = [n.strip() for part in enable for n in part.split(",") if n.strip()]
    disable = [n.strip() for part in disable for n in part.split(",") if n.strip()]
    unknown = sorted({n for n in [*enable, *disable] if n not in ADMISSION_PLUGINS})
    if unknown:
        raise ValueError(f"unknown admission plugins: {', '.join(unknown)} (known: {', '.join(ADMISSION_PLUGINS)})")
    both = sorted(set(enable) & set(disable))
    if both:
        raise ValueError(f"{', '.join(both)} in both --enable-admission-plugins and --disable-admission-plugins")
    on = (set(DEFAULT_ADMISSION_PLUGINS) | set(enable)) - set(disable)
    return [n for n in ADMISSION_PLUGINS if n in on]


def _admission_plugins(text: str) -> list[str]:
    """One --enable/--disable-admission-plugins value: known plugin names, comma separated."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    try:
        enabled_admission_plugins(names)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return names


@dataclass
class Config:
    data_dir: Path = opt(Path("/var/lib/pybernetes/apiserver"))
    bind_address: str = opt("127.0.0.1")
    secure_port: int = opt(ports.APISERVER, help="the Kubernetes REST API over HTTPS (0: a free port)")
    grpc_port: int = opt(ports.APISERVER_GRPC, help="the API over gRPC, pbctl's protocol (0: a free port)")
    advertise_address: str = opt("", help="address written into admin.conf")
    etcd_servers: list[str] = opt([], help="comma-separated etcd URLs; empty = embedded etcd")
    # An https etcd of your own (kube-apiserver's flags); the embedded etcd always serves TLS with etcd/ca and
    # apiserver-etcd-client under the pki dir, and accepts no other client.
    etcd_cafile: Path | None = opt(None, help="CA of an https etcd's serving certificate")
    etcd_certfile: Path | None = opt(None, help="client certificate presented to etcd")
    etcd_keyfile: Path | None = opt(None, help="its key")
    # The embedded etcd's ports: 0 picks free loopback ports (logged), so standalone apiservers, tests and a lab
    # run side by side; deploy/install.sh gives Kubernetes' numbers.
    etcd_client_port: int = opt(0, help="embedded etcd's client port (0: a free one)")
    etcd_peer_port: int = opt(0, help="embedded etcd's peer port (0: a free one)")
    etcd_metrics_port: int = opt(0, help="embedded etcd's /metrics port (0: a free one)")
    token_auth_file: Path | None = opt(None)
    restore_from: Path | None = opt(None, help="an etcd snapshot (pbctl etcd snapshot save) to restore the embedded"
                                    " etcd from before starting (once: the same file again is skipped)")
    compaction_interval: float = opt(300.0, "--etcd-compaction-interval",
                                     help="seconds between compactions (0 disables)")
    watch_cache_size: int = opt(10_000, help="the most changes per resource the watch cache keeps for resuming "
                                "watches (it keeps those of the last 75 s, at least 100)")
    max_requests_inflight: int = opt(DEFAULT_MAX_READ_ONLY, help="read-only requests (get, list) served at "
                                     "once; more are refused with 429 TooManyRequests (0: no limit; watches and other "
                                     "long-running requests are not counted)")
    max_mutating_requests_inflight: int = opt(DEFAULT_MAX_MUTATING, help="mutating requests served at once; "
                                              "more are refused with 429 TooManyRequests (0: no limit)")
    bookmark_interval: float = opt(DEFAULT_BOOKMARK_INTERVAL, help="seconds between bookmarks on the watches that "
                                   "allow them (Kubernetes' one minute; the watch cache keeps 15 s more of changes)")
    health_port: int = opt(0, help="HTTP port for /metrics, /healthz, /readyz (0: Kubernetes' beside the default"
                                   " API port, else a free one)")
    client_ca_file: Path | None = opt(None, help="serve the health port over HTTPS (the serving certificate) and "
                                      "/metrics only to client certificates from this CA that RBAC lets get it "
                                      "(system:monitoring); unset: plain HTTP to anyone")
    admin_config: Path | None = opt(None, help="where to write admin.conf")
    service_cluster_ip_range: str = opt("10.96.0.0/16")
    service_node_port_range: str = opt(f"{ports.NODE_PORT_RANGE[0]}-{ports.NODE_PORT_RANGE[1]}")
    kubelet_client_token_file: Path | None = opt(None, help="token the apiserver presents to kubelets (logs, exec)")
    # The kubelet API is mTLS: the apiserver presents apiserver-kubelet-client (made under the pki dir when not
    # given) and checks the kubelets' serving certificates against --kubelet-certificate-authority (without it,
    # Kubernetes skips the check; pybernetes pins the certificate a kubelet first presents).
    kubelet_client_certificate: Path | None = opt(None, help="client certificate presented to kubelets")
    kubelet_client_key: Path | None = opt(None, help="its key")
    kubelet_certificate_authority: Path | None = opt(None, help="CA of the kubelets' serving certificates")
    default_not_ready_toleration_seconds: int = opt(
        300, help="tolerationSeconds of the not-ready:NoExecute toleration added to every pod")
    default_unreachable_toleration_seconds: int = opt(
        300, help="tolerationSeconds of the unreachable:NoExecute toleration added to every pod")
    enable_admission_plugins: list[str] = opt(
        [], parse=_admission_plugins, help="admission plugins to turn on besides the default ones (known: "
        f"{', '.join(ADMISSION_PLUGINS)}; default on: {', '.join(DEFAULT_ADMISSION_PLUGINS)})")
    disable_admission_plugins: list[str] = opt([], parse=_admission_plugins,
                                               help="admission plugins to turn off, default ones included")
    enable_metrics: bool = opt(True, help="record request and etcd metrics (false only to measure their overhead)")
    cert_dir: Path | None = opt(None, help="where the CA and serving certificate live, kubeadm's layout "
                                "(default <data-dir>/pki)")
    audit_log_path: str = opt("", help="write the audit log (JSON lines of audit.k8s.io/v1 Events) here; '-' is "
                              "stdout; empty: no audit log")
    audit_policy_file: Path | None = opt(None, help="the audit Policy (audit.k8s.io/v1); default: every request at "
                                         "Metadata")
    audit_log_maxsize: int = opt(0, help="megabytes before the audit log is rotated (0: 100)")
    audit_log_maxbackup: int = opt(0, help="rotated audit logs to keep (0: all)")
    audit_log_maxage: int = opt(0, help="days to keep rotated audit logs (0: no limit)")
    encryption_provider_config: Path | None = opt(None, help="an EncryptionConfiguration "
                                                  "(apiserver.config.k8s.io/v1): resources encrypted at rest")
    authorization_mode: list[str] = opt(["Node", "RBAC"], help="comma-separated authorizers in order: Node, RBAC, "
                                        "AlwaysAllow (system:masters is always allowed)")
    service_account_issuer: str = opt(DEFAULT_SERVICE_ACCOUNT_ISSUER, help="the iss of ServiceAccount tokens "
                                      "issued here (and accepted)")
    api_audiences: list[str] = opt([], help="audiences the API accepts in ServiceAccount tokens, and the default "
                                   "of TokenRequests (default: the issuer)")
    service_account_key_file: list[str] = opt([], help="PEM files of keys verifying ServiceAccount tokens "
                                              "(default: <cert-dir>/sa.pub)")
    service_account_signing_key_file: Path | None = opt(None, help="the private key signing ServiceAccount "
                                                        "tokens (default: <cert-dir>/sa.key, created if absent)")
    anonymous_auth: bool = opt(False, help="requests without credentials are system:anonymous in group "
                               "system:unauthenticated, authorized as such (false: they are 401)")
    # Bench/test only (services/apiserver/insecure.py): plaintext listeners on loopback, for measuring what TLS costs.
    insecure_bind_address: str = opt("127.0.0.1", help="BENCH/TEST ONLY: loopback address of the plaintext "
                                     "ports (anything else is refused)")
    insecure_grpc_port: int = opt(0, help="BENCH/TEST ONLY: the gRPC API without TLS on --insecure-bind-address "
                                  "(0: off; requests are still authenticated and authorized)")
    insecure_port: int = opt(0, help="BENCH/TEST ONLY: the REST API over plain HTTP on --insecure-bind-address "
                             "(0: off; requests are still authenticated and authorized)")
    verbose: bool = opt(False, "-v", "--verbose", switch=True)


def check(cfg: Config) -> None:
    for flag, value in (("--max-requests-inflight", cfg.max_requests_inflight),
                        ("--max-mutating-requests-inflight", cfg.max_mutating_requests_inflight)):
        if value < 0:
            raise ValueError(f"{flag}: must be >= 0 (0: no limit), not {value}")
