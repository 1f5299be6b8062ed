"""NodeUnschedulable, NodeName and NodePorts: the simple per-node filters."""

from __future__ import annotations

from services.scheduler.cache import UNSCHEDULABLE_TAINT, WILDCARD_IPS, NodeInfo, PodInfo, tolerates
from services.scheduler.framework import (
    NODE_ADD,
    NODE_UPDATE,
    POD_DELETE,
    SKIP,
    CycleState,
    Failures,
    FilterPlugin,
)


class NodeUnschedulable(FilterPlugin):
    name = "NodeUnschedulable"
    events = frozenset({NODE_ADD, NODE_UPDATE})
    REASON = ("node(s) were unschedulable",)

    def pre_filter(self, state: CycleState, pod: PodInfo) -> str | None:
        if tolerates(pod.tolerations, (UNSCHEDULABLE_TAINT, "", "NoSchedule")):
            return SKIP
        return None

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> tuple[str, ...] | None:
        return self.REASON if node.unschedulable else None

    def filter_nodes(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo],
                     failed: Failures) -> list[NodeInfo]:
        out = [n for n in nodes if not n.unschedulable]
        if len(out) != len(nodes):
            for n in nodes:
                if n.unschedulable:
                    failed[n.name] = (self.name, self.REASON)
        return out


class NodeName(FilterPlugin):
    name = "NodeName"
    events = frozenset({NODE_ADD})
    REASON = ("node(s) didn't match the requested node name",)

    def pre_filter(self, state: CycleState, pod: PodInfo) -> str | None:
        return None if pod.node_name else SKIP

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> tuple[str, ...] | None:
        return None if node.name == pod.node_name else self.REASON


def ports_conflict(node: NodeInfo, host_ports: tuple[tuple[str, str, int], ...]) -> bool:
    for ip, proto, port in host_ports:
        used = node.ports.get((proto, port))
        if not used:
            continue
        if ip in WILDCARD_IPS or ip in used or any(u in WILDCARD_IPS for u in used):
            return True
    return False


class NodePorts(FilterPlugin):
    name = "NodePorts"
    events = frozenset({NODE_ADD, POD_DELETE})
    REASON = ("node(s) didn't have free ports for the requested pod ports",)

    def pre_filter(self, state: CycleState, pod: PodInfo) -> str | None:
        return None if pod.host_ports else SKIP

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> tuple[str, ...] | None:
        return self.REASON if ports_conflict(node, pod.host_ports) else None
