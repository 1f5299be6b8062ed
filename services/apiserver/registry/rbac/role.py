"""Roles: names are path segments (`system:node` is valid), and each rule is a resource rule or a
non-resource rule (kube's ValidatePolicyRule); namespaced roles may not name URLs."""

from __future__ import annotations

from collections.abc import Sequence

from pybernetes.api.rbac.v1 import rbac_pb2 as rbac
from services.apiserver.registry.field import Errs, child, go_strings, index
from services.apiserver.registry.kindstrategy import KindStrategy


def is_path_segment_name(name: str) -> list[str]:
    """kube's path.IsValidPathSegmentName: the name of RBAC objects goes into a URL as it is."""
    if name in (".", ".."):
        return [f'may not be "{name}"']
    return [f"may not contain '{c}'" for c in "/%" if c in name]


def validate_rules(rules: Sequence[rbac.PolicyRule], path: str, errs: Errs, *, namespaced: bool) -> None:
    # verbs are required by the proto's field option (the generic rule)
    for i, r in enumerate(rules):
        p = index(path, i)
        if r.non_resource_urls:
            if namespaced:
                errs.invalid(child(p, "nonResourceURLs"), go_strings(r.non_resource_urls),
                             "namespaced rules cannot apply to non-resource URLs")
            if r.api_groups or r.resources or r.resource_names:
                errs.invalid(child(p, "nonResourceURLs"), go_strings(r.non_resource_urls),
                             "rules cannot apply to both regular resources and non-resource URLs")
            continue
        if not r.api_groups:
            errs.required(child(p, "apiGroups"), "resource rules must supply at least one api group")
        if not r.resources:
            errs.required(child(p, "resources"), "resource rules must supply at least one resource")


def validate(role: rbac.Role, errs: Errs) -> None:
    validate_rules(role.rules, "rules", errs, namespaced=True)


STRATEGY = KindStrategy(rbac.Role, name=is_path_segment_name, validate=validate)
