"""Admission and hard eviction under node pressure, as the kubelet's eviction manager: the policy (who is
refused, who is evicted first, the message); node_agent.kubelet runs the monitoring loop and ends the pod.

New pods are refused on a node under pressure as Kubernetes refuses them (pressure_rejection). Running pods:
while an --eviction-hard threshold is crossed, one pod per monitoring pass is ended with grace period 0, the
one Kubernetes would pick, and left Failed with reason Evicted so its controller replaces it elsewhere.

Ranking follows Kubernetes' memory ranking: pods using more memory than they request first, then lower
priority, then the most memory above the request. Kubernetes ranks disk and PID pressure by disk and
process usage; this kubelet does not measure those per pod, so it ranks them by memory too. It does not
try image garbage collection before evicting for disk pressure either. Critical pods are never evicted.
"""

from __future__ import annotations

from dataclasses import dataclass

from node_agent.pressure import Threshold
from pybernetes.api import quantity
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.qos import qos_class
from pybernetes.api.taints import tolerated

CRITICAL_PRIORITY = 2_000_000_000  # system-cluster-critical and above: always admitted, never evicted
MEMORY_PRESSURE_TAINT = "node.kubernetes.io/memory-pressure"

RESOURCE_OF = {"memory.available": "memory", "nodefs.available": "ephemeral-storage",
               "nodefs.inodesFree": "ephemeral-storage", "imagefs.available": "ephemeral-storage",
               "imagefs.inodesFree": "ephemeral-storage", "pid.available": "pids"}


def pressure_rejection(pod: core.Pod, conditions: list[str]) -> str:
    """Why a new pod is refused on a node under pressure ("" to admit): under memory pressure alone only
    BestEffort pods that do not tolerate it; under disk or PID pressure every pod."""
    if not conditions or pod.spec.priority >= CRITICAL_PRIORITY:
        return ""
    if conditions == ["MemoryPressure"]:
        if (pod.status.qos_class or qos_class(pod)) != "BestEffort":
            return ""
        if tolerated(pod.spec.tolerations, core.Taint(key=MEMORY_PRESSURE_TAINT, effect="NoSchedule")):
            return ""
    return f"The node had condition: [{' '.join(conditions)}]. "


@dataclass
class Candidate:
    pod: core.Pod
    memory: int  # working set of its containers, bytes


def memory_request(pod: core.Pod) -> int:
    total = 0
    for c in pod.spec.containers:
        q = c.resources.requests.get("memory")
        if q is not None and q.string:
            try:
                total += quantity.value(q.string)
            except quantity.QuantityError:
                pass
    return total


def evictable(pod: core.Pod) -> bool:
    return (pod.status.phase not in ("Succeeded", "Failed") and not pod.metadata.HasField("deletion_timestamp")
            and pod.spec.priority < CRITICAL_PRIORITY)


def rank(candidates: list[Candidate]) -> list[Candidate]:
    """Most evictable first."""
    def key(c: Candidate) -> tuple[bool, int, int]:
        above = c.memory - memory_request(c.pod)
        return (above <= 0, c.pod.spec.priority, -above)
    return sorted(candidates, key=key)


def _amount(signal: str, n: int) -> str:
    if signal.endswith(".available") and signal != "pid.available":
        return quantity.format_bytes(n // 1024 * 1024 if n >= 1024 else n)  # in whole Ki, like Kubernetes
    return str(n)


def message(threshold: Threshold, available: int, capacity: int) -> str:
    """Kubernetes' words: "The node was low on resource: memory. Threshold quantity: 100Mi, available: 50Mi. ".
    """
    limit = int(threshold.limit(capacity))
    resource = RESOURCE_OF[threshold.signal]
    return (f"The node was low on resource: {resource}. Threshold quantity: {_amount(threshold.signal, limit)}, "
            f"available: {_amount(threshold.signal, available)}. ")
