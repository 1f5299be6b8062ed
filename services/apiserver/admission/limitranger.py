"""LimitRanger: a namespace's LimitRanges default and bound what each container (and pod) asks for.

Kubernetes' plugin of the same name. On pod create, `admit` fills the containers' missing limits from each
Container item's `default` and missing requests from its `defaultRequest`, and records what it set in the
`kubernetes.io/limit-ranger` annotation; `validate` then refuses a pod outside an item's min/max or
maxLimitRequestRatio (Container items per container, Pod items on the pod's sums), with Kubernetes' messages
(`maximum cpu usage per Container is 1, but limit is 2`).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from pybernetes.api import quantity
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.meta.v1 import meta_pb2 as meta

from ..storage.store import Store
from . import lookup
from .attributes import CREATE, Attributes, Plugin, forbidden

NAME = "LimitRanger"
ANNOTATION = "kubernetes.io/limit-ranger"

Bag = Mapping[str, meta.Quantity]


def _value(bag: Bag, name: str) -> Decimal | None:
    if name not in bag:
        return None
    try:
        return quantity.parse(bag[name].string)
    except quantity.QuantityError:
        return Decimal(0)


def _min(kind: str, name: str, enforced: str, requests: Bag, limits: Bag) -> str:
    want, req, lim = quantity.parse(enforced), _value(requests, name), _value(limits, name)
    if req is None:
        return f"minimum {name} usage per {kind} is {enforced}.  No request is specified"
    if req < want:
        return f"minimum {name} usage per {kind} is {enforced}, but request is {requests[name].string}"
    if lim is not None and lim < want:
        return f"minimum {name} usage per {kind} is {enforced}, but limit is {limits[name].string}"
    return ""


def _max(kind: str, name: str, enforced: str, requests: Bag, limits: Bag) -> str:
    want, req, lim = quantity.parse(enforced), _value(requests, name), _value(limits, name)
    if lim is None:
        return f"maximum {name} usage per {kind} is {enforced}.  No limit is specified"
    if lim > want:
        return f"maximum {name} usage per {kind} is {enforced}, but limit is {limits[name].string}"
    if req is not None and req > want:
        return f"maximum {name} usage per {kind} is {enforced}, but request is {requests[name].string}"
    return ""


def _ratio(kind: str, name: str, enforced: str, requests: Bag, limits: Bag) -> str:
    req, lim = _value(requests, name), _value(limits, name)
    head = f"{name} max limit to request ratio per {kind} is {enforced}"
    if not req:
        return f"{head}, but no request is specified or request is 0"
    if not lim:
        return f"{head}, but no limit is specified or limit is 0"
    observed = lim / req
    if observed > quantity.parse(enforced):
        return f"{head}, but provided ratio is {float(observed):f}"
    return ""


def _check(item: core.LimitRangeItem, kind: str, requests: Bag, limits: Bag) -> list[str]:
    out = [_min(kind, n, q.string, requests, limits) for n, q in sorted(item.min.items())]
    out += [_max(kind, n, q.string, requests, limits) for n, q in sorted(item.max.items())]
    out += [_ratio(kind, n, q.string, requests, limits) for n, q in sorted(item.max_limit_request_ratio.items())]
    return [m for m in out if m]


def _pod_totals(pod: core.Pod, bag: str) -> dict[str, meta.Quantity]:
    """The pod's requests or limits: containers summed, at least the largest init container."""
    total: dict[str, Decimal] = {}
    for c in pod.spec.containers:
        for n, q in getattr(c.resources, bag).items():
            total[n] = total.get(n, Decimal(0)) + (_value({n: q}, n) or Decimal(0))
    for c in pod.spec.init_containers:
        for n, q in getattr(c.resources, bag).items():
            total[n] = max(total.get(n, Decimal(0)), _value({n: q}, n) or Decimal(0))
    return {n: meta.Quantity(string=str(v.normalize())) for n, v in total.items()}


def aggregate(messages: list[str]) -> str:
    """apimachinery's NewAggregate: one message alone, several in brackets."""
    return messages[0] if len(messages) == 1 else "[" + ", ".join(messages) + "]"


class LimitRanger(Plugin):
    name = NAME
    mutating = True
    validating = True

    def __init__(self, store: Store) -> None:
        self.store = store

    async def _ranges(self, a: Attributes) -> list[core.LimitRange]:
        if a.operation != CREATE or a.subresource or not isinstance(a.obj, core.Pod):
            return []
        return [s.obj for s in await lookup.list_fresh(self.store, core.LimitRange, a.namespace)
                if isinstance(s.obj, core.LimitRange)]

    async def admit(self, a: Attributes) -> None:
        ranges = await self._ranges(a)
        pod = a.obj
        if not ranges or not isinstance(pod, core.Pod):
            return
        notes: list[str] = []
        for lr in ranges:
            for item in lr.spec.limits:
                if item.type != "Container":
                    continue
                for kind, containers in (("container", pod.spec.containers),
                                         ("init container", pod.spec.init_containers)):
                    for c in containers:
                        notes += self._default(item, kind, c)
        if notes:
            pod.metadata.annotations[ANNOTATION] = "LimitRanger plugin set: " + "; ".join(notes)

    @staticmethod
    def _default(item: core.LimitRangeItem, kind: str, c: core.Container) -> list[str]:
        set_requests, set_limits = [], []
        for n, q in sorted(item.default.items()):
            if n not in c.resources.limits:
                c.resources.limits[n].CopyFrom(q)
                set_limits.append(n)
        for n, q in sorted(item.default_request.items()):
            if n not in c.resources.requests:
                c.resources.requests[n].CopyFrom(q)
                set_requests.append(n)
        notes = []
        if set_requests:
            notes.append(f"{', '.join(set_requests)} request for {kind} {c.name}")
        if set_limits:
            notes.append(f"{', '.join(set_limits)} limit for {kind} {c.name}")
        return notes

    async def validate(self, a: Attributes) -> None:
        ranges = await self._ranges(a)
        pod = a.obj
        if not ranges or not isinstance(pod, core.Pod):
            return
        problems: list[str] = []
        for lr in ranges:
            for item in lr.spec.limits:
                if item.type == "Container":
                    for c in [*pod.spec.containers, *pod.spec.init_containers]:
                        problems += _check(item, "Container", c.resources.requests, c.resources.limits)
                elif item.type == "Pod":
                    problems += _check(item, "Pod", _pod_totals(pod, "requests"), _pod_totals(pod, "limits"))
        if problems:
            raise forbidden(a, aggregate(problems))
