"""A pod's QoS class, as Kubernetes computes it (pkg/apis/core/helper/qos)."""

from __future__ import annotations

from pybernetes.api import quantity
from pybernetes.api.core.v1 import core_pb2 as core

_COMPUTE = ("cpu", "memory")  # only these decide the class


def _milli(q: str) -> int:
    try:
        return quantity.milli_value(q)
    except quantity.QuantityError:
        return 0  # validation reports it; the class is computed before validation runs


def qos_class(pod: core.Pod) -> str:
    """Guaranteed, Burstable or BestEffort from the containers' cpu/memory requests and limits."""
    requests: dict[str, int] = {}
    limits: dict[str, int] = {}
    guaranteed = True
    for c in [*pod.spec.init_containers, *pod.spec.containers]:
        for name, q in c.resources.requests.items():
            if name in _COMPUTE and (v := _milli(q.string)) != 0:
                requests[name] = requests.get(name, 0) + v
        found = set()
        for name, q in c.resources.limits.items():
            if name in _COMPUTE and (v := _milli(q.string)) != 0:
                found.add(name)
                limits[name] = limits.get(name, 0) + v
        if found != set(_COMPUTE):
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed and all(limits.get(k) == v for k, v in requests.items()) and len(requests) == len(limits):
        return "Guaranteed"
    return "Burstable"
