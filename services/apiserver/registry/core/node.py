"""Nodes: validation (pod CIDRs, taints, what an update may change, status quantities), defaults
(allocatable from capacity, podCIDR/podCIDRs in step) and field selectors."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from pybernetes.api import quantity
from pybernetes.api.core.v1 import core_pb2 as core
from services.apiserver.registry.field import Errs, GoValue, child, go_quote, go_strings, index, key
from services.apiserver.registry.formats import is_label_value, is_qualified_name, is_valid_cidr
from services.apiserver.registry.kindstrategy import KindStrategy
from services.apiserver.registry.metadata import validate_conditions
from services.apiserver.registry.podspec import TAINT_EFFECTS


def _validate_taints(taints: Sequence[core.Taint], path: str, errs: Errs) -> None:
    seen: set[tuple[str, str]] = set()
    for i, t in enumerate(taints):
        p = index(path, i)
        errs.invalid_each(child(p, "key"), t.key, is_qualified_name(t.key))
        errs.invalid_each(child(p, "value"), t.value, is_label_value(t.value))
        if not t.effect:
            errs.required(child(p, "effect"))
        elif t.effect not in TAINT_EFFECTS:
            errs.not_supported(child(p, "effect"), t.effect, TAINT_EFFECTS)
        if (t.key, t.effect) in seen:
            errs.invalid(p, GoValue(f"core.Taint{{Key:{go_quote(t.key)}, Value:{go_quote(t.value)}, "
                                    f"Effect:{go_quote(t.effect)}, TimeAdded:<nil>}}"),
                         "taints must be unique by key and effect pair")
        seen.add((t.key, t.effect))


def validate(n: core.Node, errs: Errs) -> None:
    spec = n.spec
    if spec.pod_cidrs:
        for i, c in enumerate(spec.pod_cidrs):
            errs.invalid_each(index("spec.podCIDRs", i), c, is_valid_cidr(c))
        families = [ipaddress.ip_network(c, strict=False).version for c in spec.pod_cidrs if not is_valid_cidr(c)]
        if len(spec.pod_cidrs) > 2 or len(set(families)) != len(families):
            errs.invalid("spec.podCIDRs", go_strings(spec.pod_cidrs),
                         "may specify no more than one CIDR for each IP family")
    elif spec.pod_cidr:
        errs.invalid_each("spec.podCIDR", spec.pod_cidr, is_valid_cidr(spec.pod_cidr))
    _validate_taints(spec.taints, "spec.taints", errs)


def validate_update(new: core.Node, old: core.Node, errs: Errs) -> None:
    if old.spec.pod_cidrs and list(new.spec.pod_cidrs) != list(old.spec.pod_cidrs):
        errs.forbidden("spec.podCIDRs", 'node updates may not change podCIDR except from "" to valid')
    if old.spec.provider_id and new.spec.provider_id != old.spec.provider_id:
        errs.forbidden("spec.providerID", 'node updates may not change providerID except from "" to valid')


def validate_status(new: core.Node, old: core.Node, errs: Errs) -> None:
    validate_conditions(new.status.conditions, "status.conditions", errs)
    for bag, name in ((new.status.capacity, "capacity"), (new.status.allocatable, "allocatable")):
        for k in sorted(bag):
            if not quantity.is_valid(bag[k].string) or quantity.parse(bag[k].string) < 0:
                errs.invalid(key(child("status", name), k), bag[k].string, "must be greater than or equal to 0")


def default(n: core.Node) -> None:
    st = n.status
    if not st.allocatable and st.capacity:
        for k, q in st.capacity.items():
            st.allocatable[k].CopyFrom(q)
    spec = n.spec
    if spec.pod_cidr and not spec.pod_cidrs:
        spec.pod_cidrs.append(spec.pod_cidr)
    elif spec.pod_cidrs and not spec.pod_cidr:
        spec.pod_cidr = spec.pod_cidrs[0]


def fields(n: core.Node) -> dict[str, str]:
    return {"metadata.name": n.metadata.name, "spec.unschedulable": str(n.spec.unschedulable).lower()}


STRATEGY = KindStrategy(core.Node, default=default, validate=validate, validate_update=validate_update,
                        validate_status=validate_status, fields=fields)
