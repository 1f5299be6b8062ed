"""PodTopologySpread (hard constraints filter, soft constraints score) and SelectorSpread (spread a
controller's pods over nodes and zones, Kubernetes' DefaultPodTopologySpread/SelectorSpread score)."""

from __future__ import annotations

import math

from services.scheduler.cache import HOSTNAME_LABEL, ZONE_LABEL, NodeInfo, PodInfo, SpreadConstraint
from services.scheduler.framework import (
    MAX_NODE_SCORE,
    NODE_ADD,
    NODE_DELETE,
    NODE_UPDATE,
    POD_ADD,
    POD_DELETE,
    POD_UPDATE,
    SKIP,
    CycleState,
    FilterPlugin,
    ScorePlugin,
)
from services.scheduler.plugins.node_affinity import matches_required
from services.scheduler.plugins.taints import untolerated

MISSING_LABEL = ("node(s) didn't match pod topology spread constraints (missing required label)",)
SKEW = ("node(s) didn't match pod topology spread constraints",)


def count_matching(n: NodeInfo, pod: PodInfo, c: SpreadConstraint) -> int:
    ns, sel = pod.namespace, c.selector
    return sum(1 for p in n.pods.values() if p.namespace == ns and not p.terminating and sel.matches(p.labels))


def eligible(pod: PodInfo, n: NodeInfo, c: SpreadConstraint) -> bool:
    if c.honor_affinity and not matches_required(pod, n):
        return False
    return not (c.honor_taints and n.hard_taints and untolerated(pod, n.hard_taints) is not None)


class PodTopologySpread(FilterPlugin, ScorePlugin):
    name = "PodTopologySpread"
    events = frozenset({NODE_ADD, NODE_UPDATE, NODE_DELETE, POD_ADD, POD_UPDATE, POD_DELETE})

    def pre_filter(self, state: CycleState, pod: PodInfo) -> str | None:
        hard = [c for c in pod.spread_constraints if c.hard]
        if not hard:
            return SKIP
        keys = [c.topology_key for c in hard]
        counts: list[dict[str, int]] = [{} for _ in hard]
        for n in state.all_nodes:
            labels = n.labels
            if any(k not in labels for k in keys):
                continue
            for i, c in enumerate(hard):
                if not eligible(pod, n, c):
                    continue
                v = labels[c.topology_key]
                counts[i][v] = counts[i].get(v, 0) + count_matching(n, pod, c)
        mins = [(min(cs.values()) if cs and len(cs) >= c.min_domains else 0) for c, cs in zip(hard, counts,
                                                                                               strict=True)]
        state[self.name] = (hard, counts, mins)
        return None

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> tuple[str, ...] | None:
        hard, counts, mins = state[self.name]
        for c, cs, mn in zip(hard, counts, mins, strict=True):
            v = node.labels.get(c.topology_key)
            if v is None:
                return MISSING_LABEL
            self_match = 1 if c.selector.matches(pod.labels) else 0
            if cs.get(v, 0) + self_match - mn > c.max_skew:
                return SKEW
        return None

    # -- score (ScheduleAnyway) ------------------------------------------------------------------

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> str | None:
        soft = [c for c in pod.spread_constraints if not c.hard]
        if not soft:
            return SKIP
        keys = [c.topology_key for c in soft]
        counts: list[dict[str, int]] = [{} for _ in soft]
        weights = []
        for i, c in enumerate(soft):
            domains = {n.labels[c.topology_key] for n in nodes if c.topology_key in n.labels}
            weights.append(math.log(len(domains) + 2))
            if c.topology_key == HOSTNAME_LABEL:
                continue  # counted per scored node
            for n in state.all_nodes:
                if all(k in n.labels for k in keys) and eligible(pod, n, c):
                    v = n.labels[c.topology_key]
                    counts[i][v] = counts[i].get(v, 0) + count_matching(n, pod, c)
        state[self.name + "/score"] = (soft, counts, weights)
        return None

    def score_nodes(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
        soft, counts, weights = state[self.name + "/score"]
        raw: list[int] = []
        for n in nodes:
            if any(c.topology_key not in n.labels for c in soft):
                raw.append(-1)  # ignored: lacks a key
                continue
            s = 0.0
            for c, cs, w in zip(soft, counts, weights, strict=True):
                if c.topology_key == HOSTNAME_LABEL:
                    cnt = count_matching(n, pod, c)
                else:
                    cnt = cs.get(n.labels[c.topology_key], 0)
                s += cnt * w + (c.max_skew - 1)
            raw.append(round(s))
        return raw

    def normalize(self, state: CycleState, pod: PodInfo, scores: list[int]) -> list[int]:
        valid = [s for s in scores if s >= 0]
        if not valid:
            return [0] * len(scores)
        mn, mx = min(valid), max(valid)
        out = []
        for s in scores:
            if s < 0:
                out.append(0)
            elif mx == 0:
                out.append(MAX_NODE_SCORE)
            else:
                out.append(MAX_NODE_SCORE * (mx + mn - s) // mx)
        return out


class SelectorSpread(ScorePlugin):
    """Fewer pods of the same controller (owner UID) on a node, and in its zone, scores higher."""

    name = "SelectorSpread"
    events = frozenset({NODE_ADD, POD_ADD, POD_DELETE})
    ZONE_WEIGHTING = 2.0 / 3.0

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> str | None:
        return None if pod.owner_uid else SKIP

    def score_nodes(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
        uid = pod.owner_uid
        counts = [n.owner_counts.get(uid, 0) for n in nodes]
        mx = max(counts, default=0)
        zone_counts: dict[str, int] = {}
        for n, cnt in zip(nodes, counts, strict=True):
            z = n.labels.get(ZONE_LABEL)
            if z is not None:
                zone_counts[z] = zone_counts.get(z, 0) + cnt
        max_zone = max(zone_counts.values(), default=0)
        out = []
        for n, cnt in zip(nodes, counts, strict=True):
            f = float(MAX_NODE_SCORE * (mx - cnt) / mx) if mx > 0 else float(MAX_NODE_SCORE)
            if zone_counts:
                z = n.labels.get(ZONE_LABEL)
                if z is not None:
                    zs = MAX_NODE_SCORE * (max_zone - zone_counts[z]) / max_zone if max_zone > 0 else MAX_NODE_SCORE
                    f = f * (1.0 - self.ZONE_WEIGHTING) + self.ZONE_WEIGHTING * zs
            out.append(int(f))
        return out
