"""`lab up`'s control-plane steps, all in pb-control-plane: credentials, etcd, the apiserver and its host
relay (admin.conf), the Node objects with fixed pod CIDRs, the scheduler and the controller manager.

Each step starts its process through lab.processes with its lab.commands argv, waits until lab.health
says it serves, and returns a short note for the progress line. lab.lifecycle runs them in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets

from lab import commands
from lab.health import tcp_ok, wait_for, wait_healthy
from lab.processes import spawn, start_relay
from lab.state import LabState
from lab.topology import CP_IP, CP_NETNS, Plan
from pybernetes import ports


def write_credentials(plan: Plan) -> dict[str, str]:
    """One token per component in the apiserver's token file, and a client config for each; who -> token."""
    from pybernetes.client import config as client_config

    cp = plan.path("control-plane")
    cp.mkdir(parents=True, exist_ok=True)
    users = [("admin", "system:admin", "system:masters"),
             ("scheduler", "system:kube-scheduler", ""),
             ("controller-manager", "system:kube-controller-manager", ""),
             ("proxy", "system:kube-proxy", ""),
             ("dns", "system:serviceaccount:kube-system:coredns", "")]
    users += [(f"kubelet-{n.name}", f"system:node:{n.name}", "system:nodes") for n in plan.nodes]
    tokens: dict[str, str] = {}
    lines = []
    for who, user, groups in users:
        tok = secrets.token_hex(24)
        tokens[who] = tok
        lines.append(f'{tok},{user},{who},"{groups}"' if groups else f"{tok},{user},{who}")
        if who != "admin":
            client_config.write(plan.config_file(who), f"{CP_IP}:{ports.APISERVER}", tok)
    path = cp / "tokens.csv"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")
    return tokens


async def start_etcd(plan: Plan, st: LabState) -> str:
    """Every etcd member at once (a member of a cluster is healthy only once a quorum has met)."""
    members = plan.etcd
    st.info["etcd"] = [{"record": m.record, "name": m.name, "client": m.client_url, "peer": m.peer_url,
                        "metrics_port": m.metrics_port} for m in members]
    recs = []
    for m in members:
        m.data.mkdir(parents=True, exist_ok=True)
        m.data.chmod(0o700)  # etcd's data is the apiserver's alone
        recs.append(spawn(st, m.record, "etcd", commands.etcd_argv(m, members), netns_name=CP_NETNS))
    await asyncio.gather(*(wait_healthy(st, rec, rec.name) for rec in recs))
    return f"{','.join(f'127.0.0.1:{m.client_port}' for m in members)} in {CP_NETNS}"


async def start_apiserver(plan: Plan, st: LabState) -> str:
    rec = spawn(st, "apiserver", "apiserver", commands.apiserver_argv(plan), netns_name=CP_NETNS)
    await wait_healthy(st, rec, "apiserver")
    return f"{CP_IP}:{ports.APISERVER}"


async def start_apiserver_relay(plan: Plan, st: LabState, admin_token: str) -> str:
    """The host's 127.0.0.1 relay to the apiserver, and admin.conf pointing at it."""
    rec = start_relay(st)
    port = int(st.info["relay_port"])
    await wait_for(lambda: tcp_ok("127.0.0.1", port), "apiserver relay", rec=rec)
    from pybernetes.client import config as client_config

    client_config.write(plan.admin_conf, f"127.0.0.1:{port}", admin_token)
    st.info["admin_conf"] = str(plan.admin_conf)
    st.save()
    return f"127.0.0.1:{port} -> {CP_IP}:{ports.APISERVER}, {plan.admin_conf}"


async def register_nodes(plan: Plan, st: LabState, admin_token: str) -> str:
    """Create every Node with its fixed spec.podCIDR before any kubelet starts (node IPAM keeps it)."""
    from pybernetes import errors
    from pybernetes.api.core.v1 import core_pb2 as core
    from pybernetes.client.client import Client

    async with Client(f"127.0.0.1:{st.info['relay_port']}", token=admin_token, timeout=10) as c:
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

