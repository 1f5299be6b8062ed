"""NodeResourcesFit (filter: requests vs allocatable minus what is requested, pods count; score:
LeastAllocated / MostAllocated) and NodeResourcesBalancedAllocation."""

from __future__ import annotations

import math
from typing import Any

from services.scheduler.cache import NodeInfo, PodInfo
from services.scheduler.framework import (
    MAX_NODE_SCORE,
    NODE_ADD,
    NODE_UPDATE,
    POD_DELETE,
    POD_UPDATE,
    SKIP,
    CycleState,
    Failures,
    FilterPlugin,
    ScorePlugin,
)

DEFAULT_RESOURCES = (("cpu", 1), ("memory", 1))
STRATEGIES = ("LeastAllocated", "MostAllocated")


def insufficient(pod: PodInfo, n: NodeInfo) -> tuple[str, ...]:
    a, r = n.alloc, n.req
    reasons = []
    if len(n.pods) + 1 > a.pods:
        reasons.append("Too many pods")
    if pod.cpu and pod.cpu > a.cpu - r.cpu:
        reasons.append("Insufficient cpu")
    if pod.mem and pod.mem > a.mem - r.mem:
        reasons.append("Insufficient memory")
    if pod.eph and pod.eph > a.eph - r.eph:
        reasons.append("Insufficient ephemeral-storage")
    for k, v in pod.scalars.items():
        if v and v > a.scalars.get(k, 0) - r.scalars.get(k, 0):
            reasons.append(f"Insufficient {k}")
    return tuple(reasons)


def _requested(pod: PodInfo, n: NodeInfo, resource: str, non_zero: bool) -> tuple[int, int]:
    """(requested including the pod, allocatable) for one resource."""
    if resource == "cpu":
        return ((n.nz_cpu + pod.nz_cpu) if non_zero else (n.req.cpu + pod.cpu)), n.alloc.cpu
    if resource == "memory":
        return ((n.nz_mem + pod.nz_mem) if non_zero else (n.req.mem + pod.mem)), n.alloc.mem
    if resource == "ephemeral-storage":
        return n.req.eph + pod.eph, n.alloc.eph
    return n.req.scalars.get(resource, 0) + pod.scalars.get(resource, 0), n.alloc.scalars.get(resource, 0)


def _resources_arg(args: dict[str, Any]) -> tuple[tuple[str, int], ...]:
    res = args.get("resources")
    if not res:
        return DEFAULT_RESOURCES
    return tuple((str(r["name"]), int(r.get("weight", 1) or 1)) for r in res)


class NodeResourcesFit(FilterPlugin, ScorePlugin):
    """args: {scoringStrategy: {type: LeastAllocated|MostAllocated, resources: [{name, weight}]}}"""

    name = "NodeResourcesFit"
    events = frozenset({NODE_ADD, NODE_UPDATE, POD_DELETE, POD_UPDATE})

    def __init__(self, args: dict[str, Any] | None = None) -> None:
        super().__init__(args)
        strategy = dict(self.args.get("scoringStrategy") or {})
        self.strategy = str(strategy.get("type") or "LeastAllocated")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"NodeResourcesFit: scoringStrategy.type {self.strategy!r} is not one of "
                             f"{', '.join(STRATEGIES)}")
        self.resources = _resources_arg(strategy)

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> tuple[str, ...] | None:
        return insufficient(pod, node) or None

    def filter_nodes(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo],
                     failed: Failures) -> list[NodeInfo]:
        cpu, mem, eph, scalars = pod.cpu, pod.mem, pod.eph, pod.scalars
        out = []
        name = self.name
        for n in nodes:
            a, r = n.alloc, n.req
            if (len(n.pods) < a.pods and (not cpu or cpu <= a.cpu - r.cpu) and (not mem or mem <= a.mem - r.mem)
                    and (not eph or eph <= a.eph - r.eph) and not scalars):
                out.append(n)
                continue
            reasons = insufficient(pod, n)
            if reasons:
                failed[n.name] = (name, reasons)
            else:
                out.append(n)
        return out

    def score_nodes(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
        if self.resources == DEFAULT_RESOURCES:
            # the common case, inlined: cpu and memory, weight 1 each, non-zero requests
            pc, pm = pod.nz_cpu, pod.nz_mem
            out = []
            least = self.strategy == "LeastAllocated"
            for n in nodes:
                ac, am = n.alloc.cpu, n.alloc.mem
                rc, rm = n.nz_cpu + pc, n.nz_mem + pm
                total = weights = 0
                if ac:
                    weights += 1
                    if rc <= ac:
                        total += ((ac - rc) if least else rc) * MAX_NODE_SCORE // ac
                if am:
                    weights += 1
                    if rm <= am:
                        total += ((am - rm) if least else rm) * MAX_NODE_SCORE // am
                out.append(total // weights if weights else 0)
            return out
        return [self._score_one(pod, n) for n in nodes]

    def _score_one(self, pod: PodInfo, n: NodeInfo) -> int:
        total = weights = 0
        for res, w in self.resources:
            req, alloc = _requested(pod, n, res, True)
            if alloc == 0:
                continue
            weights += w
            if req > alloc:
                s = 0
            elif self.strategy == "LeastAllocated":
                s = (alloc - req) * MAX_NODE_SCORE // alloc
            else:
                s = req * MAX_NODE_SCORE // alloc
            total += s * w
        return total // weights if weights else 0


class NodeResourcesBalancedAllocation(ScorePlugin):
    """Prefer nodes whose cpu and memory utilization stay balanced: (1 - stddev of fractions) * 100."""

    name = "NodeResourcesBalancedAllocation"
    events = frozenset({NODE_ADD, NODE_UPDATE, POD_DELETE})

    def __init__(self, args: dict[str, Any] | None = None) -> None:
        super().__init__(args)
        self.resources = tuple(r for r, _ in _resources_arg(self.args))

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> str | None:
        for r in self.resources:
            if _requested(pod, _EMPTY, r, False)[0]:
                return None
        return SKIP

    def score_nodes(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
        out = []
        two = self.resources == ("cpu", "memory")
        for n in nodes:
            if two:
                ac, am = n.alloc.cpu, n.alloc.mem
                if ac and am:
                    fc = min(1.0, (n.req.cpu + pod.cpu) / ac)
                    fm = min(1.0, (n.req.mem + pod.mem) / am)
                    out.append(int((1 - abs(fc - fm) / 2) * MAX_NODE_SCORE))
                    continue
            fr = []
            for r in self.resources:
                req, alloc = _requested(pod, n, r, False)
                if alloc:
                    fr.append(min(1.0, req / alloc))
            if len(fr) < 2:
                out.append(MAX_NODE_SCORE)
                continue
            mean = sum(fr) / len(fr)
            std = math.sqrt(sum((f - mean) ** 2 for f in fr) / len(fr))
            out.append(int((1 - std) * MAX_NODE_SCORE))
        return out


_EMPTY = NodeInfo("")
