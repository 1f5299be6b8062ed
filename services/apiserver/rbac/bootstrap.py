"""The bootstrap policy written at apiserver start and reconciled as kube-apiserver's rbac/bootstrap-roles
post-start hook does: missing roles and bindings are created; existing ones annotated
`rbac.authorization.kubernetes.io/autoupdate: "true"` get back the rules, labels and subjects they lost
(additions of the cluster's own are kept); a binding whose roleRef differs is re-created. Aggregated
ClusterRoles (admin, edit, view) get their rules filled from the labelled roles here once, and from then on by
the ClusterRole aggregation controller.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from google.protobuf.message import Message

from pybernetes import errors
from pybernetes.api import kinds, rbacrules
from pybernetes.api.meta.v1 import meta_pb2 as meta
from pybernetes.api.objects import meta_of
from pybernetes.api.rbac.v1 import rbac_pb2 as rbac

from ..rest import Rest
from . import policy

log = logging.getLogger("pybernetes.apiserver.rbac")


def _merge_rules(have: Sequence[rbac.PolicyRule], want: Sequence[rbac.PolicyRule]) -> list[rbac.PolicyRule]:
    return [*have, *(r for r in want if not any(rbacrules.covers_rule(h, r) for h in have))]


def _reconciled(cur: Message, want: Message) -> Message | None:
    """The object `cur` should become to hold what `want` holds (None: nothing to do)."""
    md = meta_of(cur)
    if md.annotations.get(policy.AUTOUPDATE) == "false":
        return None
    out = type(cur)()
    out.CopyFrom(cur)
    omd = meta_of(out)
    omd.labels.update(meta_of(want).labels)
    for k, v in meta_of(want).annotations.items():
        omd.annotations.setdefault(k, v)
    if isinstance(out, rbac.Role | rbac.ClusterRole) and isinstance(want, rbac.Role | rbac.ClusterRole):
        if isinstance(out, rbac.ClusterRole) and isinstance(want, rbac.ClusterRole) and \
                want.HasField("aggregation_rule"):
            out.aggregation_rule.CopyFrom(want.aggregation_rule)
        else:
            have = list(out.rules)
            del out.rules[:]
            out.rules.extend(_merge_rules(have, list(want.rules)))
    elif isinstance(out, rbac.RoleBinding | rbac.ClusterRoleBinding) and \
            isinstance(want, rbac.RoleBinding | rbac.ClusterRoleBinding):
        out.subjects.extend(s for s in want.subjects if s not in out.subjects)
    return None if out == cur else out


async def _ensure(rest: Rest, want: Message) -> None:
    info = kinds.for_message(want)
    md = meta_of(want)
    try:
        cur = await rest.get(info.plural, md.namespace, md.name)
    except errors.NotFound:
        try:
            await rest.create(info.plural, md.namespace, want.SerializeToString())
            log.info("created bootstrap %s name=%s", info.kind, md.name)
        except errors.AlreadyExists:
            pass
        return
    if isinstance(cur, rbac.RoleBinding | rbac.ClusterRoleBinding) and \
            isinstance(want, rbac.RoleBinding | rbac.ClusterRoleBinding) and cur.role_ref != want.role_ref:
        if meta_of(cur).annotations.get(policy.AUTOUPDATE) != "false":
            await rest.delete(info.plural, md.namespace, md.name, meta.DeleteOptions())
            await rest.create(info.plural, md.namespace, want.SerializeToString())
            log.info("re-created bootstrap %s with its roleRef name=%s", info.kind, md.name)
        return
    new = _reconciled(cur, want)
    if new is not None:
        await rest.update(info.plural, md.namespace, new.SerializeToString())
        log.info("reconciled bootstrap %s name=%s", info.kind, md.name)


async def aggregate(rest: Rest) -> None:
    """Fill every aggregated ClusterRole's rules from the roles its selectors pick, until nothing changes
    (edit aggregates into admin once view has aggregated into edit)."""
    roles = [rbac.ClusterRole.FromString(raw) for raw in (await rest.list("clusterroles", "", "", "", 0, "", "")).items]
    changed = set()
    for _ in range(len(roles)):
        changed_now = False
        for role in roles:
            if not role.HasField("aggregation_rule"):
                continue
            rules = rbacrules.aggregated_rules(role, roles)
            if list(role.rules) != rules:
                del role.rules[:]
                role.rules.extend(rules)
                changed.add(role.metadata.name)
                changed_now = True
        if not changed_now:
            break
    for role in roles:
        if role.metadata.name in changed:
            await rest.update("clusterroles", "", role.SerializeToString())
            log.info("aggregated ClusterRole name=%s rules=%d", role.metadata.name, len(role.rules))


async def ensure_policy(rest: Rest) -> None:
    for obj in policy.everything():
        await _ensure(rest, obj)
    await aggregate(rest)
