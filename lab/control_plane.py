"""`lab up`'s control-plane steps, all in pb-control-plane: credentials (the PKI, one client certificate and
kubeconfig per component, the encryption-at-rest config and the audit policy), etcd, the apiserver and its host
relays (admin.conf, and the `pybernetes-lab` context in the user's kubeconfig, as kind does), the Node objects
with fixed pod CIDRs, the scheduler and the controller manager.

Each step starts its process through lab.processes with its lab.commands argv, waits until lab.health
says it serves, and returns a short note for the progress line. lab.lifecycle runs them in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from pathlib import Path

from lab import commands, prometheus
from lab.errors import LabError
from lab.health import tcp_ok, wait_for, wait_healthy
from lab.processes import spawn, start_relay
from lab.state import LabState
from lab.topology import CP_IP, CP_NAME, CP_NETNS, Plan
from pybernetes import errors, pkiutil, ports, tls
from pybernetes.client import config as client_config
from pybernetes.client.client import Client
from services.apiserver.audit import policy as audit_policy
from services.apiserver.rbac.policy import DASHBOARD_USER
from services.apiserver.storage import encryption

# The cluster, user and context `lab up` adds to the user's kubeconfig (kind's are `kind-<name>`).
CONTEXT = "pybernetes-lab"


# Who runs with which identity, as kubeadm issues them: (kubeconfig, user = CN, groups = O).
COMPONENT_USERS: tuple[tuple[str, str, tuple[str, ...]], ...] = (("scheduler", "system:kube-scheduler", ()),
                   ("controller-manager", "system:kube-controller-manager", ()),
                   ("proxy", "system:kube-proxy", ()),
                   ("dns", "system:serviceaccount:kube-system:coredns", ()))  # as CoreDNS runs in kubeadm's clusters


def pki_dir(plan: Plan) -> Path:
    return plan.path("control-plane", "apiserver", "pki")


def kubelet_user(node: str) -> tuple[str, str, tuple[str, ...]]:
    """A node's kubelet's kubeconfig name and identity: system:node:<node> in system:nodes (what the Node
    authorizer and NodeRestriction read; bench/density.py gives each hollow node the same)."""
    return f"kubelet-{node}", f"system:node:{node}", (tls.NODES_GROUP,)


def component_users(plan: Plan) -> list[tuple[str, str, tuple[str, ...]]]:
    """Every component's kubeconfig name and identity: the control plane's, then one kubelet per node."""
    users: list[tuple[str, str, tuple[str, ...]]] = list(COMPONENT_USERS)
    users += [kubelet_user(n.name) for n in plan.nodes]
    return users


def write_credentials(plan: Plan) -> dict[str, str]:
    """The PKI (kubeadm's layout under the apiserver's pki dir), a client certificate and a kubeconfig per
    component, and the admin token in the apiserver's token file (for scripts); who -> token.

    The apiserver's CA and serving certificate are made here, before it starts (it reuses them: they cover
    the control-plane IP and 127.0.0.1, which the host's relays reach), so every kubeconfig carries the CA.
    Each component's kubeconfig names its certificate by path: `pbctl certs renew` re-issues it in place and
    the component picks it up when it restarts (`pbctl lab restart COMPONENT`)."""
    cp = plan.path("control-plane")
    cp.mkdir(parents=True, exist_ok=True)
    pki = pki_dir(plan)
    ca = pkiutil.ensure_apiserver_pki(pki, [CP_IP]).ca_pem()
    write_certificates(plan)
    for who, user, groups in component_users(plan):
        pair = pkiutil.ensure_client_cert(pki, who, user, groups)
        client_config.write_kubeconfig(plan.config_file(who), f"https://{CP_IP}:{ports.APISERVER}",
                                       f"{CP_IP}:{ports.APISERVER_GRPC}", "", ca,
                                       cert=client_config.ClientCert(pair.cert, pair.key, by_path=True))
    pkiutil.ensure_client_cert(pki, "admin", tls.ADMIN_USER, [tls.MASTERS_GROUP])
    tok = secrets.token_hex(24)
    path = cp / "tokens.csv"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f'{tok},system:admin,admin,"{tls.MASTERS_GROUP}"\n')
    # Secrets encrypted at rest under a random key (kept across `lab up` runs), and the audit log's policy.
    encryption.write_config(commands.encryption_config(plan))
    audit_policy.write_lab_policy(commands.audit_policy(plan))
    return {"admin": tok}


def admin_client(plan: Plan) -> Client:
    """A client as the lab's admin (admin.conf: kubernetes-admin's certificate, through the host's relay)."""
    return Client.from_config(client_config.load(str(plan.admin_conf)), timeout=10)


def write_certificates(plan: Plan) -> None:
    """etcd's PKI (its CA, server, peer and the apiserver's client certificate), the apiserver's kubelet client
    certificate, each node's kubelet and proxy serving certificates (cluster CA; SANs its name and IP), kept
    under that node's own directory, the control plane's components' serving certificates for /metrics, and
    Prometheus' scrape identity (a client certificate in group system:monitoring; never one of etcd's CA)."""
    pkiutil.ensure_etcd_pki(plan.pki_dir, [CP_IP], name=CP_NAME)
    pkiutil.ensure_kubelet_client_cert(plan.pki_dir)
    cp_dns, cp_ips = tls.serving_names([CP_NAME, CP_IP], cluster_names=False)
    for who, cn in commands.SERVING_CERTS.items():
        pkiutil.ensure_cert(plan.pki_dir, f"{who}-serving", common_name=cn, server=True, dns=cp_dns, ips=cp_ips)
    pkiutil.ensure_client_cert(plan.pki_dir, prometheus.PROMETHEUS_USER, prometheus.PROMETHEUS_USER,
                           [prometheus.MONITORING_GROUP])
    for n in plan.nodes:
        dns, ips = tls.serving_names([n.name, n.ip], cluster_names=False)
        node_pki = commands.kubelet_pki(plan, n.name)
        node_pki.mkdir(parents=True, exist_ok=True)  # the relative CA path below goes through it
        # <node>/pki/kubelet.{crt,key}, signed by the cluster CA (named relative to the node's directory)
        pkiutil.ensure_cert(node_pki, "kubelet", ca_stem=os.path.relpath(plan.pki_dir / "ca", node_pki),
                        common_name=f"system:node:{n.name}", organizations=(tls.NODES_GROUP,), server=True,
                        dns=dns, ips=ips)
        pkiutil.ensure_cert(node_pki, "proxy-serving", ca_stem=os.path.relpath(plan.pki_dir / "ca", node_pki),
                        common_name="kube-proxy", server=True, dns=dns, ips=ips)


async def start_etcd(plan: Plan, st: LabState) -> str:
    """Every etcd member at once (a member of a cluster is healthy only once a quorum has met)."""
    members = plan.etcd
    write_certificates(plan)  # etcd serves TLS from its first start
    st.info["etcd"] = [{"record": m.record, "name": m.name, "client": m.client_url, "peer": m.peer_url,
                        "metrics_port": m.metrics_port} for m in members]
    recs = []
    for m in members:
        m.data.mkdir(parents=True, exist_ok=True)
        m.data.chmod(0o700)  # etcd's data is the apiserver's alone
        recs.append(spawn(st, m.record, "etcd", commands.etcd_argv(m, members, plan.pki_dir), netns_name=CP_NETNS))
    await asyncio.gather(*(wait_healthy(st, rec, rec.name) for rec in recs))
    return f"{','.join(f'127.0.0.1:{m.client_port}' for m in members)} in {CP_NETNS}"


async def start_apiserver(plan: Plan, st: LabState) -> str:
    rec = spawn(st, "apiserver", "apiserver", commands.apiserver_argv(plan), netns_name=CP_NETNS)
    await wait_healthy(st, rec, "apiserver")
    return f"https://{CP_IP}:{ports.APISERVER}, gRPC {CP_IP}:{ports.APISERVER_GRPC}"


async def start_apiserver_relay(plan: Plan, st: LabState) -> str:
    """The host's 127.0.0.1 relays to the apiserver (HTTPS on 6443, gRPC on 6442, or free ports), admin.conf
    naming both, and the `pybernetes-lab` context merged into the user's kubeconfig."""
    rec = start_relay(st)
    grpc_rec = start_relay(st, "apiserver-grpc-relay", port_key="grpc_relay_port", want=ports.APISERVER_GRPC,
                           target=f"127.0.0.1:{ports.APISERVER_GRPC}")
    port, grpc_port = int(st.info["relay_port"]), int(st.info["grpc_relay_port"])
    await wait_for(lambda: tcp_ok("127.0.0.1", port), "apiserver relay", rec=rec)
    await wait_for(lambda: tcp_ok("127.0.0.1", grpc_port), "apiserver gRPC relay", rec=grpc_rec)
    pki = pki_dir(plan)
    admin = pkiutil.ensure_client_cert(pki, "admin", tls.ADMIN_USER, [tls.MASTERS_GROUP])
    # kubeadm's admin.conf: the certificate embedded (the user's kubeconfig gets a copy of it).
    client_config.write_kubeconfig(plan.admin_conf, f"https://127.0.0.1:{port}", f"127.0.0.1:{grpc_port}",
                                   "", (pki / "ca.crt").read_bytes(), name=CONTEXT,
                                   cert=client_config.ClientCert(admin.cert, admin.key))
    st.info["admin_conf"] = str(plan.admin_conf)
    # `pbctl dashboard` reads the cluster as its own read-only user (ClusterRole pybernetes:dashboard), not as admin
    dash = pkiutil.ensure_client_cert(pki, "dashboard", DASHBOARD_USER)
    client_config.write_kubeconfig(dashboard_conf(plan), f"https://127.0.0.1:{port}", f"127.0.0.1:{grpc_port}",
                                   "", (pki / "ca.crt").read_bytes(), name=CONTEXT,
                                   cert=client_config.ClientCert(dash.cert, dash.key))
    st.info["dashboard_conf"] = str(dashboard_conf(plan))
    st.save()
    where = publish_kubeconfig(st)
    return (f"https://127.0.0.1:{port} and gRPC 127.0.0.1:{grpc_port} -> {CP_IP}, {plan.admin_conf}; "
            f"context {CONTEXT} in {where}")


def dashboard_conf(plan: Plan) -> Path:
    """The kubeconfig `pbctl dashboard` runs with in the lab (user pybernetes:dashboard, read-only)."""
    return plan.dir / "dashboard.conf"


def publish_kubeconfig(st: LabState) -> str:
    """Merge admin.conf's cluster, user and context into the user's kubeconfig as `pybernetes-lab` and make it
    current ($KUBECONFIG's first file, else ~/.kube/config; created 0600), as `kind create cluster` does."""
    path = client_config.user_kubeconfig_path()
    if not st.info.get("admin_conf"):
        return ""
    try:
        client_config.merge_context(path, Path(st.info["admin_conf"]), CONTEXT)
    except errors.ConfigError as e:
        raise LabError(f"cannot add context {CONTEXT} to {path}: {e}") from None
    st.info["user_kubeconfig"] = str(path)
    st.save()
    return str(path)


def unpublish_kubeconfig(st: LabState) -> str:
    """Remove exactly the `pybernetes-lab` entries `publish_kubeconfig` added (other contexts stay); the path
    they were removed from, or "" when there was nothing to remove."""
    path = st.info.get("user_kubeconfig")
    if not path:
        return ""
    try:
        removed = client_config.remove_context(Path(path), CONTEXT)
    except errors.ConfigError:
        return ""  # the user's file no longer parses: leave it alone
    return str(path) if removed else ""


async def register_nodes(plan: Plan, st: LabState) -> str:
    """Create every Node with its fixed spec.podCIDR before any kubelet starts (node IPAM keeps it)."""
    from pybernetes.api.core.v1 import core_pb2 as core

    async with admin_client(plan) as c:
        for n in plan.nodes:
            node = core.Node()
            node.metadata.name = n.name
            node.spec.pod_cidr = n.pod_cidr
            node.spec.pod_cidrs.append(n.pod_cidr)
            with contextlib.suppress(errors.AlreadyExists):
                await c.create(node)
    return "podCIDR 10.244.<i>.0/24 per node"


async def start_scheduler(plan: Plan, st: LabState) -> str:
    rec = spawn(st, "scheduler", "scheduler", commands.scheduler_argv(plan), netns_name=CP_NETNS)
    await wait_healthy(st, rec, "scheduler")
    return ""


async def start_controller_manager(plan: Plan, st: LabState) -> str:
    rec = spawn(st, "controller-manager", "controller-manager", commands.controller_manager_argv(plan),
                netns_name=CP_NETNS)
    await wait_healthy(st, rec, "controller-manager")
    return ""

