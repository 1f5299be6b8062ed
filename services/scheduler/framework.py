"""The scheduling framework: plugin interfaces, filtering (with early stop), scoring, normalization
and weights, host selection and the FitError message Kubernetes prints.

Plugins work on batches of nodes (one call per plugin per pod, a tight loop inside) so a decision over
hundreds of nodes stays cheap. Callers: services.scheduler.scheduler; plugins implement the classes here.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from services.scheduler.cache import NodeInfo, PodInfo, SchedulerCache

MAX_NODE_SCORE = 100
MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND = 5

# Cluster events that can make a rejected pod schedulable (requeue hints).
NODE_ADD = "NodeAdd"
NODE_UPDATE = "NodeUpdate"
NODE_DELETE = "NodeDelete"
POD_ADD = "AssignedPodAdd"
POD_UPDATE = "AssignedPodUpdate"
POD_DELETE = "AssignedPodDelete"
ALL_EVENTS = frozenset({NODE_ADD, NODE_UPDATE, NODE_DELETE, POD_ADD, POD_UPDATE, POD_DELETE})

# pre_filter / pre_score results
SKIP = "Skip"

Failures = dict[str, tuple[str, tuple[str, ...]]]  # node -> (plugin, reasons)


class CycleState(dict[str, Any]):
    """Per-decision data plugins compute in pre_filter / pre_score and read per node."""

    def __init__(self, cache: SchedulerCache, all_nodes: Sequence[NodeInfo]) -> None:
        super().__init__()
        self.cache = cache
        self.all_nodes = all_nodes


class Plugin:
    name: ClassVar[str] = ""
    events: ClassVar[frozenset[str]] = ALL_EVENTS

    def __init__(self, args: dict[str, Any] | None = None) -> None:
        self.args = args or {}


class FilterPlugin(Plugin):
    def pre_filter(self, state: CycleState, pod: PodInfo) -> str | None:
        """None to run the filter, SKIP when it cannot reject this pod, or a message that rejects every node."""
        return None

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> tuple[str, ...] | None:
        """Reasons the node does not fit, or None."""
        raise NotImplementedError

    def filter_nodes(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo],
                     failed: Failures) -> list[NodeInfo]:
        """The nodes that pass; the others go into `failed` with their reasons."""
        out = []
        name = self.name
        for n in nodes:
            r = self.filter(state, pod, n)
            if r is None:
                out.append(n)
            else:
                failed[n.name] = (name, r)
        return out


class ScorePlugin(Plugin):
    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> str | None:
        """None to score, SKIP when every node would get the same score."""
        return None

    def score_nodes(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
        raise NotImplementedError

    def normalize(self, state: CycleState, pod: PodInfo, scores: list[int]) -> list[int]:
        return scores


def default_normalize(scores: list[int], reverse: bool = False) -> list[int]:
    """Kubernetes' DefaultNormalizeScore: scale to 0..100 by the maximum (reversed: 100 - that)."""
    mx = max(scores, default=0)
    if mx == 0:
        return [MAX_NODE_SCORE] * len(scores) if reverse else [0] * len(scores)
    if reverse:
        return [MAX_NODE_SCORE - MAX_NODE_SCORE * s // mx for s in scores]
    return [MAX_NODE_SCORE * s // mx for s in scores]


def num_feasible_nodes_to_find(percentage: int, num_all: int) -> int:
    """Kubernetes' adaptive sample: all nodes below 100, else max(100, n * (50 - n/125, min 5)%)."""
    if num_all < MIN_FEASIBLE_NODES_TO_FIND or percentage >= 100:
        return num_all
    if percentage <= 0:
        percentage = max(50 - num_all // 125, MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND)
    n = num_all * percentage // 100
    return max(n, MIN_FEASIBLE_NODES_TO_FIND)


class FitError(Exception):
    """No node fits: the message is Kubernetes' '0/3 nodes are available: 3 Insufficient cpu.'"""

    def __init__(self, pod: PodInfo, num_all: int, failed: Failures, pre_filter_msg: str = "",
                 pre_filter_plugin: str = "") -> None:
        self.pod = pod
        self.num_all = num_all
        self.failed = failed
        self.pre_filter_msg = pre_filter_msg
        self.plugins = {p for p, _ in failed.values()}
        if pre_filter_plugin:
            self.plugins.add(pre_filter_plugin)
        super().__init__(self.message())

    def histogram(self) -> Counter[str]:
        c: Counter[str] = Counter()
        for _, reasons in self.failed.values():
            for r in reasons:
                c[r] += 1
        return c

    def message(self) -> str:
        if self.num_all == 0:
            return "no nodes available to schedule pods"
        msg = f"0/{self.num_all} nodes are available:"
        if self.pre_filter_msg:
            return f"{msg} {self.pre_filter_msg}."
        parts = sorted(f"{v} {k}" for k, v in self.histogram().items())
        return f"{msg} {', '.join(parts)}." if parts else msg


@dataclass
class ScheduleResult:
    node: str
    evaluated: int
    feasible: int
    total: int = 0
    breakdown: dict[str, int] = field(default_factory=dict)  # plugin -> weighted score on the chosen node
    top: list[tuple[str, int]] = field(default_factory=list)  # best nodes with totals


class Framework:
    """One profile: its filter plugins, weighted score plugins and sampling percentage."""

    def __init__(self, scheduler_name: str, filters: list[FilterPlugin],
                 scorers: list[tuple[ScorePlugin, int]], percentage_of_nodes_to_score: int = 0,
                 rng: random.Random | None = None) -> None:
        self.scheduler_name = scheduler_name
        self.filters = filters
        self.scorers = scorers
        self.percentage = percentage_of_nodes_to_score
        self.next_start = 0
        self.rng = rng or random.Random()

    def plugin_events(self) -> dict[str, frozenset[str]]:
        out: dict[str, frozenset[str]] = {p.name: p.events for p in self.filters}
        return out

    # -- filtering -------------------------------------------------------------------------------

    def find_feasible(self, state: CycleState, pod: PodInfo,
                      nodes: Sequence[NodeInfo]) -> tuple[list[NodeInfo], Failures, int]:
        """(feasible nodes, failures, nodes evaluated). Raises FitError for a pre-filter rejection."""
        active: list[FilterPlugin] = []
        for p in self.filters:
            r = p.pre_filter(state, pod)
            if r is None:
                active.append(p)
            elif r != SKIP:
                raise FitError(pod, len(nodes), {}, r, p.name)
        n = len(nodes)
        want = num_feasible_nodes_to_find(self.percentage, n)
        failed: Failures = {}
        if not active:
            start = self.next_start % n if n else 0
            out = [*nodes[start:], *nodes[:start]][:want]
            self.next_start = (start + len(out)) % n if n else 0
            return out, failed, len(out)
        start = self.next_start % n if n else 0
        order = [*nodes[start:], *nodes[:start]] if start else list(nodes)
        feasible: list[NodeInfo] = []
        i = 0
        while len(feasible) < want and i < n:
            size = max(want - len(feasible), 32)
            chunk = order[i:i + size]
            i += len(chunk)
            for p in active:
                chunk = p.filter_nodes(state, pod, chunk, failed)
                if not chunk:
                    break
            feasible.extend(chunk)
        if len(feasible) > want:
            feasible = feasible[:want]
        self.next_start = (start + i) % n if n else 0
        return feasible, failed, i

    # -- scoring ---------------------------------------------------------------------------------

    def score(self, state: CycleState, pod: PodInfo,
              nodes: list[NodeInfo]) -> tuple[list[int], dict[str, list[int]]]:
        totals = [0] * len(nodes)
        per_plugin: dict[str, list[int]] = {}
        for p, weight in self.scorers:
            if weight <= 0 or p.pre_score(state, pod, nodes) == SKIP:
                continue
            raw = p.score_nodes(state, pod, nodes)
            norm = p.normalize(state, pod, raw)
            weighted = [s * weight for s in norm]
            per_plugin[p.name] = weighted
            totals = [a + b for a, b in zip(totals, weighted, strict=True)]
        return totals, per_plugin

    def schedule(self, cache: SchedulerCache, pod: PodInfo) -> ScheduleResult:
        """Pick a node for `pod` or raise FitError."""
        nodes = cache.node_list()
        state = CycleState(cache, nodes)
        if not nodes:
            raise FitError(pod, 0, {})
        feasible, failed, evaluated = self.find_feasible(state, pod, nodes)
        if not feasible:
            raise FitError(pod, len(nodes), failed)
        if len(feasible) == 1:
            return ScheduleResult(feasible[0].name, evaluated, 1)
        totals, per_plugin = self.score(state, pod, feasible)
        best_i, best, ties = 0, -1, 0
        rng = self.rng
        for i, t in enumerate(totals):
            if t > best:
                best_i, best, ties = i, t, 1
            elif t == best:
                ties += 1
                if rng.randrange(ties) == 0:
                    best_i = i
        top_idx = sorted(range(len(totals)), key=totals.__getitem__, reverse=True)[:3]
        return ScheduleResult(
            feasible[best_i].name, evaluated, len(feasible), best,
            {name: scores[best_i] for name, scores in per_plugin.items()},
            [(feasible[i].name, totals[i]) for i in top_idx])
