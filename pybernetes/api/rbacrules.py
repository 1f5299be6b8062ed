"""RBAC rule semantics shared by the apiserver's authorizer and the aggregation controller: whether a
PolicyRule allows a request (kube's rbac.RuleAllows), whether one set of rules covers another (the
escalation check's ConfirmNoEscalation), and the rules an aggregated ClusterRole gathers.

"*" matches every verb, group, resource (subresources included) or URL; "*/scale" matches the scale
subresource of any resource; a URL rule ending in "*" is a prefix; no resourceNames means every name.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pybernetes.api import selectors
from pybernetes.api.rbac.v1 import rbac_pb2 as rbac

ALL = "*"


def verb_matches(rule: rbac.PolicyRule, verb: str) -> bool:
    return ALL in rule.verbs or verb in rule.verbs


def group_matches(rule: rbac.PolicyRule, group: str) -> bool:
    return ALL in rule.api_groups or group in rule.api_groups


def resource_matches(rule: rbac.PolicyRule, resource: str, subresource: str) -> bool:
    combined = f"{resource}/{subresource}" if subresource else resource
    for r in rule.resources:
        if r == ALL or r == combined or (subresource and r == f"*/{subresource}"):
            return True
    return False


def name_matches(rule: rbac.PolicyRule, name: str) -> bool:
    return not rule.resource_names or name in rule.resource_names


def url_matches(pattern: str, path: str) -> bool:
    if pattern == ALL or pattern == path:
        return True
    return pattern.endswith("*") and path.startswith(pattern[:-1])


def allows_resource(rule: rbac.PolicyRule, verb: str, group: str, resource: str, subresource: str = "",
                    name: str = "") -> bool:
    return (verb_matches(rule, verb) and group_matches(rule, group) and resource_matches(rule, resource, subresource)
            and name_matches(rule, name))


def allows_url(rule: rbac.PolicyRule, verb: str, path: str) -> bool:
    return verb_matches(rule, verb) and any(url_matches(p, path) for p in rule.non_resource_urls)


# -- escalation: does `owner` cover `requested`? ----------------------------------------------------------

def breakdown(rule: rbac.PolicyRule) -> list[rbac.PolicyRule]:
    """One rule per group x resource (x name), and per URL, each with all the verbs (kube's BreakdownRule)."""
    out = []
    for g in rule.api_groups:
        for r in rule.resources:
            if rule.resource_names:
                out += [rbac.PolicyRule(verbs=rule.verbs, api_groups=[g], resources=[r], resource_names=[n])
                        for n in rule.resource_names]
            else:
                out.append(rbac.PolicyRule(verbs=rule.verbs, api_groups=[g], resources=[r]))
    out += [rbac.PolicyRule(verbs=rule.verbs, non_resource_urls=[u]) for u in rule.non_resource_urls]
    return out


def _has_all(owner: Sequence[str], wanted: Iterable[str]) -> bool:
    return ALL in owner or all(w in owner for w in wanted)


def _resources_cover(owner: Sequence[str], wanted: Iterable[str]) -> bool:
    if ALL in owner:
        return True
    for w in wanted:
        _, slash, sub = w.partition("/")
        if w not in owner and not (slash and f"*/{sub}" in owner):
            return False
    return True


def _urls_cover(owner: Sequence[str], wanted: Iterable[str]) -> bool:
    return all(any(url_matches(o, w) for o in owner) for w in wanted)


def covers_rule(owner: rbac.PolicyRule, want: rbac.PolicyRule) -> bool:
    return (_has_all(owner.verbs, want.verbs) and _has_all(owner.api_groups, want.api_groups)
            and _resources_cover(owner.resources, want.resources)
            and _urls_cover(owner.non_resource_urls, want.non_resource_urls)
            and (not owner.resource_names
                 or (bool(want.resource_names) and all(n in owner.resource_names for n in want.resource_names))))


def uncovered(owner: Sequence[rbac.PolicyRule], requested: Iterable[rbac.PolicyRule]) -> list[rbac.PolicyRule]:
    """The pieces of `requested` that no rule of `owner` covers (empty: no escalation)."""
    return [piece for rule in requested for piece in breakdown(rule)
            if not any(covers_rule(o, piece) for o in owner)]


def describe(rule: rbac.PolicyRule) -> str:
    """kube's compact rule text: {APIGroups:["apps"], Resources:["deployments"], Verbs:["get"]}."""
    def q(vs: Iterable[str]) -> str:
        return ", ".join(f'"{v}"' for v in vs)
    parts = []
    if rule.api_groups:
        parts.append(f"APIGroups:[{q(rule.api_groups)}]")
    if rule.resources:
        parts.append(f"Resources:[{q(rule.resources)}]")
    if rule.resource_names:
        parts.append(f"ResourceNames:[{q(rule.resource_names)}]")
    if rule.non_resource_urls:
        parts.append(f"NonResourceURLs:[{q(rule.non_resource_urls)}]")
    parts.append(f"Verbs:[{q(rule.verbs)}]")
    return "{" + ", ".join(parts) + "}"


# -- aggregation --------------------------------------------------------------------------------------

def aggregated_rules(role: rbac.ClusterRole, roles: Iterable[rbac.ClusterRole]) -> list[rbac.PolicyRule]:
    """The rules of every ClusterRole (but `role`) that one of role's clusterRoleSelectors selects, without
    duplicates, in name order (kube's ClusterRoleAggregationController)."""
    sels = [selectors.from_message(s) for s in role.aggregation_rule.cluster_role_selectors]
    out: list[rbac.PolicyRule] = []
    for other in sorted(roles, key=lambda r: r.metadata.name):
        if other.metadata.name == role.metadata.name:
            continue
        if any(s.matches(other.metadata.labels) for s in sels):
            out += [r for r in other.rules if r not in out]
    return out
