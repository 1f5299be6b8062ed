"""InterPodAffinity: required pod affinity / anti-affinity (the pod's own and existing pods' anti-affinity)
as a filter, preferred terms (both directions, plus existing pods' required affinity) as a score."""

from __future__ import annotations

from typing import Any

from services.scheduler.cache import NodeInfo, PodInfo
from services.scheduler.framework import (
    MAX_NODE_SCORE,
    NODE_ADD,
    NODE_UPDATE,
    POD_ADD,
    POD_DELETE,
    POD_UPDATE,
    SKIP,
    CycleState,
    FilterPlugin,
    ScorePlugin,
)

EXISTING_ANTI = ("node(s) didn't satisfy existing pods anti-affinity rules",)
ANTI = ("node(s) didn't match pod anti-affinity rules",)
AFFINITY = ("node(s) didn't match pod affinity rules",)

Pair = tuple[str, str]


class InterPodAffinity(FilterPlugin, ScorePlugin):
    """args: {hardPodAffinityWeight: 1}"""

    name = "InterPodAffinity"
    events = frozenset({NODE_ADD, NODE_UPDATE, POD_ADD, POD_UPDATE, POD_DELETE})

    def __init__(self, args: dict[str, Any] | None = None) -> None:
        super().__init__(args)
        self.hard_weight = int(self.args.get("hardPodAffinityWeight", 1))

    def pre_filter(self, state: CycleState, pod: PodInfo) -> str | None:
        if not pod.affinity_terms and not pod.anti_affinity_terms and state.cache.anti_affinity_pod_count == 0:
            return SKIP
        existing: dict[Pair, int] = {}
        affinity: dict[Pair, int] = {}
        anti: dict[Pair, int] = {}
        for n in state.all_nodes:
            labels = n.labels
            for ep in n.anti_affinity_pods.values():
                for t in ep.anti_affinity_terms:
                    v = labels.get(t.topology_key)
                    if v is not None and t.matches(pod):
                        existing[(t.topology_key, v)] = existing.get((t.topology_key, v), 0) + 1
            if not pod.affinity_terms and not pod.anti_affinity_terms:
                continue
            for ep in n.pods.values():
                if ep.terminating:
                    continue
                if pod.affinity_terms and all(t.matches(ep) for t in pod.affinity_terms):
                    for t in pod.affinity_terms:
                        v = labels.get(t.topology_key)
                        if v is not None:
                            affinity[(t.topology_key, v)] = affinity.get((t.topology_key, v), 0) + 1
                for t in pod.anti_affinity_terms:
                    v = labels.get(t.topology_key)
                    if v is not None and t.matches(ep):
                        anti[(t.topology_key, v)] = anti.get((t.topology_key, v), 0) + 1
        self_match = bool(pod.affinity_terms) and all(t.matches(pod) for t in pod.affinity_terms)
        state[self.name] = (existing, {k for k, _ in existing}, affinity, anti, self_match)
        return None

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> tuple[str, ...] | None:
        existing, existing_keys, affinity, anti, self_match = state[self.name]
        labels = node.labels
        for k in existing_keys:
            v = labels.get(k)
            if v is not None and existing.get((k, v), 0) > 0:
                return EXISTING_ANTI
        for t in pod.anti_affinity_terms:
            v = labels.get(t.topology_key)
            if v is not None and anti.get((t.topology_key, v), 0) > 0:
                return ANTI
        if pod.affinity_terms:
            pods_exist = True
            for t in pod.affinity_terms:
                v = labels.get(t.topology_key)
                if v is None:
                    return AFFINITY
                if affinity.get((t.topology_key, v), 0) <= 0:
                    pods_exist = False
            if not pods_exist and not (not affinity and self_match):
                return AFFINITY
        return None

    # -- score -------------------------------------------------------------------------------

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> str | None:
        mine = bool(pod.preferred_affinity or pod.preferred_anti_affinity)
        if not mine and state.cache.affinity_pod_count == 0:
            return SKIP
        scores: dict[str, dict[str, int]] = {}

        def add(key: str, labels: dict[str, str], w: int) -> None:
            v = labels.get(key)
            if v is not None and w:
                d = scores.setdefault(key, {})
                d[v] = d.get(v, 0) + w

        for n in state.all_nodes:
            labels = n.labels
            pods = n.pods.values() if mine else n.affinity_pods.values()
            for ep in pods:
                for t in pod.preferred_affinity:
                    if t.matches(ep):
                        add(t.topology_key, labels, t.weight)
                for t in pod.preferred_anti_affinity:
                    if t.matches(ep):
                        add(t.topology_key, labels, -t.weight)
                if ep.has_affinity:
                    for t in ep.preferred_affinity:
                        if t.matches(pod):
                            add(t.topology_key, labels, t.weight)
                    for t in ep.preferred_anti_affinity:
                        if t.matches(pod):
                            add(t.topology_key, labels, -t.weight)
                    for t in ep.affinity_terms:
                        if t.matches(pod):
                            add(t.topology_key, labels, self.hard_weight)
        if not scores:
            return SKIP
        state[self.name + "/score"] = scores
        return None

    def score_nodes(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
        scores: dict[str, dict[str, int]] = state[self.name + "/score"]
        out = []
        for n in nodes:
            s = 0
            for key, vals in scores.items():
                v = n.labels.get(key)
                if v is not None:
                    s += vals.get(v, 0)
            out.append(s)
        return out

    def normalize(self, state: CycleState, pod: PodInfo, scores: list[int]) -> list[int]:
        if not scores:
            return scores
        mn, mx = min(scores), max(scores)
        diff = mx - mn
        return [int(MAX_NODE_SCORE * (s - mn) / diff) if diff > 0 else 0 for s in scores]
