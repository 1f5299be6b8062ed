"""Resource quota accounting: what an object uses of a ResourceQuota's resources (Kubernetes' quota evaluators).

Callers: the ResourceQuota admission plugin (services/apiserver/admission/resourcequota.py), which charges a
new object against status.used, and the quota controller (services/controllers/resourcequota.py), which
recounts status.used from the objects that exist. Both use `usage` and `matches_scopes` so that they agree.

Resource names as Kubernetes spells them: `pods`, `requests.cpu` (or `cpu`), `requests.memory` (or `memory`),
`limits.cpu`, `limits.memory`, object counts `count/<resource>[.<group>]` and the legacy counts (`services`,
`configmaps`, `secrets`, `replicationcontrollers`, `resourcequotas`, `services.nodeports`,
`services.loadbalancers`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

from google.protobuf.message import Message

from pybernetes.api import quantity
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.kinds import ResourceInfo
from pybernetes.api.meta.v1 import meta_pb2 as meta
from pybernetes.api.qos import qos_class

Usage = dict[str, Decimal]

# Kinds with a count name older than count/* (the quota evaluators' legacy object counts).
LEGACY_COUNTS = {"pods": "pods", "services": "services", "configmaps": "configmaps", "secrets": "secrets",
                 "replicationcontrollers": "replicationcontrollers", "resourcequotas": "resourcequotas",
                 "persistentvolumeclaims": "persistentvolumeclaims"}
# Pods must request these explicitly, container by container, once a quota limits them (Kubernetes' podEvaluator
# Constraints: "a mistake kept for backward compatibility").
CONSTRAINED = frozenset({"cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory"})
COMPUTE = ("cpu", "memory", "ephemeral-storage")


def count_name(info: ResourceInfo) -> str:
    """`count/<resource>` for core kinds, `count/<resource>.<group>` for the others."""
    return f"count/{info.group_resource}"


def parse_list(bag: Mapping[str, meta.Quantity]) -> Usage:
    """A ResourceList's quantities; unparsable ones (validation refuses them) count as zero."""
    out: Usage = {}
    for name, q in bag.items():
        try:
            out[name] = quantity.parse(q.string)
        except quantity.QuantityError:
            out[name] = Decimal(0)
    return out


def format_quantity(name: str, v: Decimal) -> str:
    """A quantity as Kubernetes prints a computed one: cpu in cores or millicores, bytes with a binary suffix."""
    if v != v.to_integral_value():
        return quantity.format_cpu_milli(int((v * 1000).to_integral_value()))
    n = int(v)
    if "memory" in name or "storage" in name:
        return quantity.format_bytes(n)
    return str(n)


def pretty(usage: Mapping[str, Decimal]) -> str:
    """`a=1,b=2` in name order (the quota admission's prettyPrint)."""
    return ",".join(f"{k}={format_quantity(k, usage[k])}" for k in sorted(usage))


def terminal(pod: core.Pod) -> bool:
    """A pod that no longer holds its resources (it counts only as an object: count/pods)."""
    return pod.status.phase in ("Succeeded", "Failed")


def _pod_compute(pod: core.Pod, bag: str) -> Usage:
    """The pod's total requests or limits: the sum over containers, at least the largest init container."""
    total: Usage = {}
    for c in pod.spec.containers:
        for name, v in parse_list(getattr(c.resources, bag)).items():
            total[name] = total.get(name, Decimal(0)) + v
    for c in pod.spec.init_containers:
        for name, v in parse_list(getattr(c.resources, bag)).items():
            total[name] = max(total.get(name, Decimal(0)), v)
    return total


def pod_usage(pod: core.Pod) -> Usage:
    out: Usage = {"count/pods": Decimal(1)}
    if terminal(pod):
        return out
    out["pods"] = Decimal(1)
    for name, v in _pod_compute(pod, "requests").items():
        out[f"requests.{name}"] = v
        if name in COMPUTE:
            out[name] = v
    for name, v in _pod_compute(pod, "limits").items():
        out[f"limits.{name}"] = v
    return out


def usage(info: ResourceInfo, obj: Message) -> Usage:
    """Everything `obj` counts against, by quota resource name."""
    if isinstance(obj, core.Pod):
        return pod_usage(obj)
    out: Usage = {count_name(info): Decimal(1)}
    if info.plural in LEGACY_COUNTS:
        out[LEGACY_COUNTS[info.plural]] = Decimal(1)
    if isinstance(obj, core.Service):
        ports = sum(1 for p in obj.spec.ports if p.node_port) if obj.spec.type in ("NodePort", "LoadBalancer") \
            else 0
        out["services.nodeports"] = Decimal(ports)
        out["services.loadbalancers"] = Decimal(1 if obj.spec.type == "LoadBalancer" else 0)
    return out


def _scope_matches(scope: str, pod: core.Pod) -> bool:
    terminating = pod.spec.HasField("active_deadline_seconds") and pod.spec.active_deadline_seconds >= 0
    best_effort = qos_class(pod) == "BestEffort"
    return {"Terminating": terminating, "NotTerminating": not terminating, "BestEffort": best_effort,
            "NotBestEffort": not best_effort}.get(scope, False)


def matches_scopes(q: core.ResourceQuota, obj: Message) -> bool:
    """Whether the quota's scopes (and scopeSelector on the same scopes) select `obj`; scoped quotas track pods
    only."""
    scopes = list(q.spec.scopes)
    selector = list(q.spec.scope_selector.match_expressions)
    if not scopes and not selector:
        return True
    if not isinstance(obj, core.Pod):
        return False
    if not all(_scope_matches(s, obj) for s in scopes):
        return False
    for req in selector:
        matched = _scope_matches(req.scope_name, obj)
        if req.operator in ("In", "Exists") and not matched:
            return False
        if req.operator in ("NotIn", "DoesNotExist") and matched:
            return False
    return True


def add(total: Usage, more: Mapping[str, Decimal], names: Iterable[str]) -> None:
    """Add `more` into `total`, only for `names`."""
    for name in names:
        if name in more:
            total[name] = total.get(name, Decimal(0)) + more[name]


def missing_requests(pod: core.Pod, hard: Iterable[str]) -> str:
    """`limits.cpu for: a,b; requests.memory for: a` when the quota limits cpu/memory and a container does not
    say how much it needs; "" when every container does."""
    required = CONSTRAINED.intersection(hard)
    missing: dict[str, set[str]] = {}
    for c in [*pod.spec.containers, *pod.spec.init_containers]:
        have: set[str] = set()
        for name in c.resources.requests:
            have |= {name, f"requests.{name}"}
        for name in c.resources.limits:
            have.add(f"limits.{name}")
        for res in required - have:
            missing.setdefault(res, set()).add(c.name)
    return "; ".join(f"{r} for: {','.join(sorted(missing[r]))}" for r in sorted(missing))
