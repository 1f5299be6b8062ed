"""Escalation prevention (kube's rbac registry policybased storage): a user may create or update a Role or
ClusterRole only with rules it already holds in that scope, unless it may `escalate` roles there; and a
RoleBinding or ClusterRoleBinding only to a role whose rules it holds, unless it may `bind` that role.
system:masters is exempt. Called by Rest on every create and update (`Rest.write_guard`) with the user of the
request, as the front ends pass it to Rest's writes (None: the apiserver's own writes).
"""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf.message import Message

from pybernetes import errors
from pybernetes.api import kinds, rbacrules
from pybernetes.api.kinds import RBAC_GROUP
from pybernetes.api.rbac.v1 import rbac_pb2 as rbac

from ..auth import ADMIN_GROUP, User
from ..authz import Attributes, Authorizer, Decision
from .authorizer import RBACAuthorizer

Role = rbac.Role | rbac.ClusterRole
Binding = rbac.RoleBinding | rbac.ClusterRoleBinding


class EscalationGuard:
    def __init__(self, authz: Authorizer, rbac_authz: RBACAuthorizer) -> None:
        self.authz = authz
        self.rbac = rbac_authz

    async def __call__(self, obj: Message, old: Message | None, user: User | None) -> None:
        if not isinstance(obj, rbac.Role | rbac.ClusterRole | rbac.RoleBinding | rbac.ClusterRoleBinding):
            return
        if user is None or ADMIN_GROUP in user.groups:
            return  # the apiserver's own writes (bootstrap policy), and cluster admins
        if isinstance(obj, rbac.Role | rbac.ClusterRole):
            self.check_role(user, obj, old)
        else:
            self.check_binding(user, obj)

    def _allowed(self, user: User, verb: str, resource: str, namespace: str, name: str) -> bool:
        attrs = Attributes(user=user, verb=verb, resource=resource, api_group=RBAC_GROUP, namespace=namespace,
                           name=name)
        return self.authz.authorize(attrs).decision is Decision.ALLOW

    def check_role(self, user: User, role: Role, old: Message | None) -> None:
        if isinstance(old, rbac.Role | rbac.ClusterRole) and list(old.rules) == list(role.rules) and (
                not isinstance(role, rbac.ClusterRole) or not isinstance(old, rbac.ClusterRole)
                or role.aggregation_rule == old.aggregation_rule):
            return  # rules unchanged (labels, annotations...)
        md = role.metadata
        plural = kinds.for_message(role).plural
        if self._allowed(user, "escalate", plural, md.namespace, md.name):
            return
        wanted: Sequence[rbac.PolicyRule] = list(role.rules)
        if isinstance(role, rbac.ClusterRole) and role.HasField("aggregation_rule"):
            # An aggregation rule can gather any rule: only who holds every permission may set one.
            wanted = [*wanted, rbac.PolicyRule(verbs=["*"], api_groups=["*"], resources=["*"])]
        self._confirm(user, plural, md.name, md.namespace, wanted)

    def check_binding(self, user: User, b: Binding) -> None:
        md, ref = b.metadata, b.role_ref
        plural = "clusterroles" if ref.kind == "ClusterRole" else "roles"
        if self._allowed(user, "bind", plural, md.namespace, ref.name):
            return
        rules = self.rbac.role_rules(ref, md.namespace)
        if rules is None:
            raise errors.Forbidden(f'{kinds.for_message(b).plural}.{RBAC_GROUP} "{md.name}" is forbidden: '
                                   f'{plural}.{RBAC_GROUP} "{ref.name}" not found')
        self._confirm(user, kinds.for_message(b).plural, md.name, md.namespace, rules)

    def _confirm(self, user: User, plural: str, name: str, namespace: str, wanted: Sequence[rbac.PolicyRule]) -> None:
        missing = rbacrules.uncovered(self.rbac.rules_for(user, namespace), wanted)
        if not missing:
            return
        groups = ", ".join(f'"{g}"' for g in user.groups)
        text = "\n".join(rbacrules.describe(r) for r in missing)
        raise errors.Forbidden(f'{plural}.{RBAC_GROUP} "{name}" is forbidden: user "{user.name}" (groups=[{groups}]) '
                               f"is attempting to grant RBAC permissions not currently held:\n{text}")
