"""describe node (taints, conditions, capacity, system info, the pods on it) and describe namespace."""

from __future__ import annotations

from collections.abc import Sequence

from pbctl.describers.writer import Writer, fmt_time, labels, print_annotations
from pybernetes.api import cells
from pybernetes.api.core.v1 import core_pb2 as core


def describe_node(w: Writer, node: core.Node, pods: Sequence[core.Pod], t: float) -> None:
    md, spec, st = node.metadata, node.spec, node.status
    w.w(0, f"Name:\t{md.name}\n")
    w.w(0, f"Roles:\t{cells.node_roles(node)}\n")
    labels(w, "Labels", md.labels)
    print_annotations(w, md.annotations)
    w.w(0, f"CreationTimestamp:\t{fmt_time(md.creation_timestamp)}\n")
    if spec.taints:
        for i, tn in enumerate(spec.taints):
            s = f"{tn.key}={tn.value}:{tn.effect}" if tn.value else f"{tn.key}:{tn.effect}"
            w.w(0, f"Taints:\t{s}\n" if i == 0 else f"\t{s}\n")
    else:
        w.w(0, "Taints:\t<none>\n")
    w.w(0, f"Unschedulable:\t{str(spec.unschedulable).lower()}\n")
    if st.conditions:
        w.w(0, "Conditions:\n  Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage\n")
        w.w(1, "----\t------\t-----------------\t------------------\t------\t-------\n")
        for c in st.conditions:
            w.w(1, f"{c.type} \t{c.status} \t{fmt_time(c.last_heartbeat_time)} \t"
                   f"{fmt_time(c.last_transition_time)} \t{c.reason} \t{c.message}\n")
    w.w(0, "Addresses:\n")
    for a in st.addresses:
        w.w(1, f"{a.type}:\t{a.address}\n")
    for title, res in (("Capacity", st.capacity), ("Allocatable", st.allocatable)):
        if res:
            w.w(0, f"{title}:\n")
            for k in sorted(res):
                w.w(1, f"{k}:\t{res[k].string}\n")
    ni = st.node_info
    w.w(0, "System Info:\n")
    for label, v in (("Machine ID", ni.machine_id), ("System UUID", ni.system_uuid), ("Boot ID", ni.boot_id),
                     ("Kernel Version", ni.kernel_version), ("OS Image", ni.os_image),
                     ("Operating System", ni.operating_system), ("Architecture", ni.architecture),
                     ("Container Runtime Version", ni.container_runtime_version),
                     ("Kubelet Version", ni.kubelet_version), ("Kube-Proxy Version", ni.kube_proxy_version)):
        w.w(1, f"{label}:\t{v}\n")
    if spec.pod_cidr:
        w.w(0, f"PodCIDR:\t{spec.pod_cidr}\n")
        w.w(0, f"PodCIDRs:\t{','.join(spec.pod_cidrs) or spec.pod_cidr}\n")
    active = [p for p in pods if p.status.phase not in ("Succeeded", "Failed")]
    w.w(0, f"Non-terminated Pods:\t({len(active)} in total)\n")
    if active:
        w.w(1, "Namespace\tName\tAge\n")
        w.w(1, "---------\t----\t---\n")
        for p in active:
            w.w(1, f"{p.metadata.namespace}\t{p.metadata.name}\t{cells.age(p.metadata.creation_timestamp, t)}\n")


def describe_namespace(w: Writer, ns: core.Namespace) -> None:
    w.w(0, f"Name:\t{ns.metadata.name}\n")
    labels(w, "Labels", ns.metadata.labels)
    print_annotations(w, ns.metadata.annotations)
    w.w(0, f"Status:\t{ns.status.phase or 'Active'}\n")
    w.w(0, "\nNo resource quota.\n\nNo LimitRange resource.\n")
