"""API objects as the small JSON shapes the dashboard page draws (pure functions, no I/O).

Callers: `pbctl.dashboard.model`. Each view holds only what the page shows, so an update that changes
nothing visible (a node heartbeat, a lease renewal) compares equal and sends nothing.
"""

from __future__ import annotations

from typing import Any

from pbctl.timeline import event_time, seconds
from pybernetes.api import objects
from pybernetes.api.coordination.v1 import coordination_pb2 as coordination
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.rpc.v1 import rpc_pb2 as rpc

View = dict[str, Any]

# The taints the node lifecycle controller sets while a node is unhealthy: the scheduler avoids it.
HEALTH_TAINTS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")


def pod_status(pod: core.Pod) -> str:
    """What `pbctl get pods` calls the pod's STATUS: Terminating, a waiting reason, or the phase."""
    if objects.being_deleted(pod):
        return "Terminating"
    for cs in pod.status.container_statuses:
        if cs.state.HasField("waiting") and cs.state.waiting.reason not in ("", "ContainerCreating"):
            return str(cs.state.waiting.reason)
    return pod.status.phase or "Pending"


def pod_view(pod: core.Pod) -> View:
    statuses = pod.status.container_statuses
    ready = objects.condition(pod.status.conditions, "Ready")
    owner = objects.controller_ref(pod)
    return {
        "key": objects.key(pod),
        "namespace": pod.metadata.namespace,
        "name": pod.metadata.name,
        "node": pod.spec.node_name,
        "phase": pod.status.phase or "Pending",
        "status": pod_status(pod),
        "ready": ready is not None and ready.status == "True",
        "containers": f"{sum(1 for c in statuses if c.ready)}/{len(pod.spec.containers)}",
        "restarts": sum(c.restart_count for c in statuses),
        "ip": pod.status.pod_ip,
        "owner": f"{owner.kind}/{owner.name}" if owner is not None else "",
    }


def lease_fresh(lease: coordination.Lease | None, now: float) -> bool:
    """Renewed within its duration: its holder is alive (as the node lifecycle controller judges kubelets)."""
    if lease is None or not lease.spec.HasField("renew_time"):
        return False
    return seconds(lease.spec.renew_time) + (lease.spec.lease_duration_seconds or 40) >= now


def proxy_health(lease: coordination.Lease | None, now: float) -> str:
    """kube-proxy from its Lease kube-node-lease/kube-proxy-NAME (pybernetes' own, netproxy.heartbeat): renewed
    while its /healthz would pass, released on a clean stop; no Lease at all: not reported."""
    if lease is None:
        return "not reported"
    if not lease.spec.holder_identity:
        return "stopped"
    return "ok" if lease_fresh(lease, now) else "stale"


def node_view(node: core.Node, lease: coordination.Lease | None, now: float,
              proxy_lease: coordination.Lease | None = None) -> View:
    """The node box: its conditions, and its components' health as the API shows them.

    kubelet: the node Lease is renewed (kube-node-lease/NAME); container runtime: the kubelet reports Ready
    (it reports NotReady with the runtime's message when containerd is down); kube-proxy: its own Lease
    (`proxy_health`)."""
    ready = objects.condition(node.status.conditions, "Ready")
    status = {"True": "Ready", "False": "NotReady"}.get(ready.status if ready else "", "Unknown")
    kubelet_ok = lease_fresh(lease, now)
    if status == "Ready" and not kubelet_ok and lease is not None:
        status = "Unknown"  # the lease expired before the node lifecycle controller marked it
    if not kubelet_ok:
        runtime = "unknown"
    elif status == "Ready":
        runtime = "ok"
    else:
        runtime = "failing"
    return {
        "key": node.metadata.name,
        "name": node.metadata.name,
        "status": status,
        "message": ready.message if ready else "no status posted yet",
        "conditions": [{"type": c.type, "status": c.status} for c in node.status.conditions],
        "unschedulable": node.spec.unschedulable,
        "tainted": any(t.key in HEALTH_TAINTS for t in node.spec.taints),
        "ip": next((a.address for a in node.status.addresses if a.type == "InternalIP"), ""),
        "kubelet": "ok" if kubelet_ok else ("stale" if lease is not None else "unknown"),
        "runtime": runtime,
        "proxy": proxy_health(proxy_lease, now),
    }


def service_view(svc: core.Service, eps: core.Endpoints | None) -> View:
    ready: list[str] = []
    not_ready: list[str] = []
    for subset in eps.subsets if eps is not None else ():
        ready.extend(a.ip for a in subset.addresses)
        not_ready.extend(a.ip for a in subset.not_ready_addresses)
    return {
        "key": objects.key(svc),
        "namespace": svc.metadata.namespace,
        "name": svc.metadata.name,
        "type": svc.spec.type or "ClusterIP",
        "clusterIP": svc.spec.cluster_ip,
        "ports": [f"{p.port}/{p.protocol or 'TCP'}" for p in svc.spec.ports],
        "endpoints": sorted(ready),
        "notReady": sorted(not_ready),
    }


def leader_view(name: str, lease: coordination.Lease | None, now: float) -> View:
    """scheduler / controller-manager: healthy while someone holds its leader Lease (kube-system/kube-NAME)."""
    if lease is None or not lease.spec.holder_identity:
        return {"key": name, "name": name, "health": "unknown", "leader": "",
                "detail": f"no leader Lease kube-system/kube-{name} (run without leader election, its health "
                          "is not visible through the API)"}
    fresh = lease_fresh(lease, now)
    return {"key": name, "name": name, "health": "ok" if fresh else "stale", "leader": lease.spec.holder_identity,
            "detail": "leader Lease renewed" if fresh else "leader Lease expired: no leader is working"}


def etcd_member_view(m: rpc.EtcdMember) -> View:
    """One etcd member as the apiserver's EtcdStatus reports it."""
    return {"name": m.name or m.id, "id": m.id, "clientURLs": list(m.client_urls), "leader": m.leader,
            "learner": m.is_learner, "raftTerm": m.raft_term, "raftIndex": m.raft_index, "revision": m.revision,
            "dbSize": m.db_size, "version": m.version, "error": m.error}


def event_entry(ev: core.Event) -> View:
    """A timeline entry for an Event, worded as `pbctl trace` shows it."""
    at, _ = event_time(ev)
    io = ev.involved_object
    return {
        "at": at,
        "component": ev.reporting_component or ev.source.component or "unknown",
        "object": f"{io.kind.lower()}/{io.name}",
        "what": f"{ev.reason}: {ev.message}" if ev.message else ev.reason,
        "warning": ev.type == "Warning",
    }
