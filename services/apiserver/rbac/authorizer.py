"""The RBAC authorizer (`--authorization-mode=RBAC`), answered from the apiserver's own watch caches of Roles,
ClusterRoles, RoleBindings and ClusterRoleBindings: no etcd read per request.

Bindings are indexed by subject (users, groups; ServiceAccounts as their user name
`system:serviceaccount:NS:NAME`); the index is rebuilt only when one of the four caches changed since the last
request. A request is allowed when a rule of a role bound to the user or one of its groups allows it (kube's
rbac.RBACAuthorizer), else RBAC has no opinion (the union then denies). `PrivilegedGroupAuthorizer` is kube's
system:masters short-circuit, placed first in the union.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

from google.protobuf.message import Message

from pybernetes.api import kinds, rbacrules
from pybernetes.api.rbac.v1 import rbac_pb2 as rbac

from ..auth import ADMIN_GROUP, ANONYMOUS_USER, User
from ..authz import Attributes, Decision, Result
from ..storage.store import Store

log = logging.getLogger("pybernetes.apiserver.rbac")

AUTHENTICATED = "system:authenticated"
SA_PREFIX = "system:serviceaccount:"

Binding = rbac.RoleBinding | rbac.ClusterRoleBinding
SubjectKey = tuple[str, str]  # ("User" | "Group", name)


def effective_groups(user: User) -> tuple[str, ...]:
    """The user's groups plus system:authenticated, as kube's authenticator adds it to every authenticated
    user (not to system:anonymous)."""
    if user.name == ANONYMOUS_USER or AUTHENTICATED in user.groups:
        return user.groups
    return (*user.groups, AUTHENTICATED)


def subject_key(s: rbac.Subject, namespace: str) -> SubjectKey | None:
    if s.kind == "ServiceAccount":
        return "User", f"{SA_PREFIX}{s.namespace or namespace}:{s.name}"
    if s.kind in ("User", "Group"):
        return s.kind, s.name
    return None


def user_keys(user: User) -> list[SubjectKey]:
    return [("User", user.name), *(("Group", g) for g in effective_groups(user))]


class PrivilegedGroupAuthorizer:
    """system:masters may do anything (kube-apiserver's privileged group, ahead of every mode)."""

    def authorize(self, attrs: Attributes) -> Result:
        if ADMIN_GROUP in attrs.user.groups:
            return Result(Decision.ALLOW, f"allowed: member of {ADMIN_GROUP}")
        return Result(Decision.NO_OPINION)

    def rules_for(self, user: User, namespace: str) -> list[rbac.PolicyRule]:
        """None of its own: the cluster-admin binding of system:masters shows what the group may do."""
        return []


@dataclass
class _Index:
    cluster_roles: dict[str, rbac.ClusterRole] = field(default_factory=dict)
    roles: dict[tuple[str, str], rbac.Role] = field(default_factory=dict)
    cluster_bindings: dict[SubjectKey, list[rbac.ClusterRoleBinding]] = field(default_factory=lambda: defaultdict(list))
    # (namespace, subject) -> bindings
    bindings: dict[tuple[str, SubjectKey], list[rbac.RoleBinding]] = field(default_factory=lambda: defaultdict(list))


class RBACAuthorizer:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._infos = [kinds.for_class(c) for c in (rbac.ClusterRole, rbac.Role, rbac.ClusterRoleBinding,
                                                      rbac.RoleBinding)]
        self._version: tuple[object, ...] = ()
        self._index = _Index()

    # -- the index ------------------------------------------------------------------------------------

    def _objects(self, cls: type[Message]) -> list[Message]:
        return [c.obj for c in self.store.cache(kinds.for_class(cls)).state.values()]

    def index(self) -> _Index:
        """The index of the caches as they are now, rebuilt when any of them changed."""
        version = tuple((id(c.state), c.window_start, c.window[-1].rv if c.window else 0, len(c.state))
                        for c in (self.store.cache(i) for i in self._infos))
        if version == self._version:
            return self._index
        idx = _Index()
        for o in self._objects(rbac.ClusterRole):
            assert isinstance(o, rbac.ClusterRole)
            idx.cluster_roles[o.metadata.name] = o
        for o in self._objects(rbac.Role):
            assert isinstance(o, rbac.Role)
            idx.roles[(o.metadata.namespace, o.metadata.name)] = o
        for o in self._objects(rbac.ClusterRoleBinding):
            assert isinstance(o, rbac.ClusterRoleBinding)
            for k in {subject_key(s, "") for s in o.subjects} - {None}:
                assert k is not None
                idx.cluster_bindings[k].append(o)
        for o in self._objects(rbac.RoleBinding):
            assert isinstance(o, rbac.RoleBinding)
            ns = o.metadata.namespace
            for k in {subject_key(s, ns) for s in o.subjects} - {None}:
                assert k is not None
                idx.bindings[(ns, k)].append(o)
        self._index, self._version = idx, version
        log.debug("rbac index rebuilt cluster_roles=%d roles=%d", len(idx.cluster_roles), len(idx.roles))
        return idx

    def role_rules(self, ref: rbac.RoleRef, namespace: str) -> list[rbac.PolicyRule] | None:
        """The rules a roleRef names (None: no such role)."""
        idx = self.index()
        role: rbac.Role | rbac.ClusterRole | None
        if ref.kind == "ClusterRole":
            role = idx.cluster_roles.get(ref.name)
        else:
            role = idx.roles.get((namespace, ref.name))
        return list(role.rules) if role is not None else None

    def _grants(self, user: User, namespace: str) -> Iterator[tuple[Binding, list[rbac.PolicyRule]]]:
        """Each binding that applies to the user (cluster-wide, then in `namespace`) with its role's rules."""
        idx = self.index()
        keys = user_keys(user)
        seen: set[int] = set()
        for k in keys:
            for crb in idx.cluster_bindings.get(k, ()):
                if id(crb) not in seen:
                    seen.add(id(crb))
                    yield crb, self.role_rules(crb.role_ref, "") or []
        if namespace:
            for k in keys:
                for rb in idx.bindings.get((namespace, k), ()):
                    if id(rb) not in seen:
                        seen.add(id(rb))
                        yield rb, self.role_rules(rb.role_ref, namespace) or []

    def rules_for(self, user: User, namespace: str) -> list[rbac.PolicyRule]:
        """Every rule that applies to the user in `namespace` (cluster-wide ones only for "")."""
        return [r for _, rules in self._grants(user, namespace) for r in rules]

    # -- authorize -------------------------------------------------------------------------------------

    def authorize(self, attrs: Attributes) -> Result:
        for binding, rules in self._grants(attrs.user, attrs.namespace):
            for rule in rules:
                if attrs.is_resource_request:
                    ok = rbacrules.allows_resource(rule, attrs.verb, attrs.api_group, attrs.resource,
                                                   attrs.subresource, attrs.name)
                else:
                    ok = rbacrules.allows_url(rule, attrs.verb, attrs.path)
                if ok:
                    kind = "ClusterRoleBinding" if isinstance(binding, rbac.ClusterRoleBinding) else "RoleBinding"
                    where = f' of {binding.metadata.namespace}' if binding.metadata.namespace else ""
                    return Result(Decision.ALLOW, f'RBAC: allowed by {kind} "{binding.metadata.name}"{where} of '
                                                  f'{binding.role_ref.kind} "{binding.role_ref.name}"')
        return Result(Decision.NO_OPINION)
