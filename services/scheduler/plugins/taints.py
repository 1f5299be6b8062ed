"""TaintToleration: NoSchedule/NoExecute taints filter, PreferNoSchedule taints score (fewer is better)."""

from __future__ import annotations

from services.scheduler.cache import NodeInfo, PodInfo, Taint, tolerates
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


def untolerated(pod: PodInfo, taints: tuple[Taint, ...]) -> Taint | None:
    for t in taints:
        if not tolerates(pod.tolerations, t):
            return t
    return None


class TaintToleration(FilterPlugin, ScorePlugin):
    name = "TaintToleration"
    events = frozenset({NODE_ADD, NODE_UPDATE})

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> tuple[str, ...] | None:
        if not node.hard_taints:
            return None
        t = untolerated(pod, node.hard_taints)
        return None if t is None else (f"node(s) had untolerated taint {{{t[0]}: {t[1]}}}",)

    def filter_nodes(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo],
                     failed: Failures) -> list[NodeInfo]:
        out = []
        for n in nodes:
            if not n.hard_taints:
                out.append(n)
                continue
            t = untolerated(pod, n.hard_taints)
            if t is None:
                out.append(n)
            else:
                failed[n.name] = (self.name, (f"node(s) had untolerated taint {{{t[0]}: {t[1]}}}",))
        return out

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> str | None:
        return SKIP if state.cache.prefer_taint_nodes == 0 else None

    def score_nodes(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
        tols = tuple(t for t in pod.tolerations if t[3] in ("", "PreferNoSchedule"))
        return [sum(1 for t in n.prefer_taints if not tolerates(tols, t)) if n.prefer_taints else 0 for n in nodes]

    def normalize(self, state: CycleState, pod: PodInfo, scores: list[int]) -> list[int]:
        return default_normalize(scores, reverse=True)
