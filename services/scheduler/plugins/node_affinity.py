"""NodeAffinity: nodeSelector and required node affinity filter, preferred node affinity score."""

from __future__ import annotations

from services.scheduler.cache import NodeInfo, PodInfo
from services.scheduler.framework import (
    NODE_ADD,
    NODE_UPDATE,
    SKIP,
    CycleState,
    Failures,
    FilterPlugin,
    ScorePlugin,
    default_normalize,
)


def matches_required(pod: PodInfo, node: NodeInfo) -> bool:
    labels = node.labels
    for k, v in pod.node_selector.items():
        if labels.get(k) != v:
            return False
    terms = pod.required_node_terms
    if terms is not None:
        return any(t.matches(labels, node.name) for t in terms)
    return True


class NodeAffinity(FilterPlugin, ScorePlugin):
    name = "NodeAffinity"
    events = frozenset({NODE_ADD, NODE_UPDATE})
    REASON = ("node(s) didn't match Pod's node affinity/selector",)

    def pre_filter(self, state: CycleState, pod: PodInfo) -> str | None:
        if not pod.node_selector and pod.required_node_terms is None:
            return SKIP
        return None

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> tuple[str, ...] | None:
        return None if matches_required(pod, node) else self.REASON

    def filter_nodes(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo],
                     failed: Failures) -> list[NodeInfo]:
        out = []
        for n in nodes:
            if matches_required(pod, n):
                out.append(n)
            else:
                failed[n.name] = (self.name, self.REASON)
        return out

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> str | None:
        return None if pod.preferred_node_terms else SKIP

    def score_nodes(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
        terms = pod.preferred_node_terms
        return [sum(w for w, t in terms if t.matches(n.labels, n.name)) for n in nodes]

    def normalize(self, state: CycleState, pod: PodInfo, scores: list[int]) -> list[int]:
        return default_normalize(scores)
