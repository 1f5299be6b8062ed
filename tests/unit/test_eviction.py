"""Which pod the eviction manager ends first, and what it says (node_agent.eviction)."""

from __future__ import annotations

from node_agent import eviction
from node_agent.eviction import Candidate
from node_agent.pressure import parse_thresholds
from pybernetes.api.core.v1 import core_pb2 as core

MI = 1024**2


def pod(name: str, request: str = "", priority: int = 0, phase: str = "Running") -> core.Pod:
    p = core.Pod()
    p.metadata.name = name
    c = p.spec.containers.add(name="c")
    if request:
        c.resources.requests["memory"].string = request
    p.spec.priority = priority
    p.status.phase = phase
    return p


def names(cands: list[Candidate]) -> list[str]:
    return [c.pod.metadata.name for c in eviction.rank(cands)]


def test_rank_over_request_then_priority_then_usage_above_request() -> None:
    cands = [
        Candidate(pod("within-request", "100Mi"), 50 * MI),
        Candidate(pod("best-effort-small"), 5 * MI),
        Candidate(pod("best-effort-big"), 80 * MI),
        Candidate(pod("burstable-over", "10Mi"), 60 * MI),  # 50Mi above its request
        Candidate(pod("important-best-effort", priority=1000), 500 * MI),
    ]
    assert names(cands) == ["best-effort-big", "burstable-over", "best-effort-small", "important-best-effort",
                            "within-request"]


def test_what_is_evictable() -> None:
    assert eviction.evictable(pod("a"))
    assert not eviction.evictable(pod("done", phase="Succeeded"))
    assert not eviction.evictable(pod("failed", phase="Failed"))
    assert not eviction.evictable(pod("critical", priority=2_000_001_000))
    deleting = pod("deleting")
    deleting.metadata.deletion_timestamp.seconds = 1
    assert not eviction.evictable(deleting)


def test_messages_in_kubernetes_words() -> None:
    mem, = parse_thresholds("memory.available<100Mi")
    assert eviction.message(mem, 50 * MI + 100, 16 * 1024 * MI) == (
        "The node was low on resource: memory. Threshold quantity: 100Mi, available: 50Mi. ")
    disk, = parse_thresholds("nodefs.available<10%")
    assert eviction.message(disk, 5 * 1024 * MI, 100 * 1024 * MI) == (
        "The node was low on resource: ephemeral-storage. Threshold quantity: 10Gi, available: 5Gi. ")
    pids, = parse_thresholds("pid.available<1000")
    assert eviction.message(pids, 10, 32768) == (
        "The node was low on resource: pids. Threshold quantity: 1000, available: 10. ")
