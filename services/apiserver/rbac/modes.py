"""`--authorization-mode`: the union of authorizers in the order named, behind kube's system:masters
short-circuit; with RBAC, the escalation guard on writes and the bootstrap policy at start.

Modes: RBAC, AlwaysAllow, Node (the Node authorizer the caller passes as `node`; without one, kubelets (group
system:nodes) are authorized by the rules of the system:node ClusterRole, as Kubernetes did before the Node
authorizer, with a log line saying so).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from pybernetes import errors
from pybernetes.api import kinds, rbacrules
from pybernetes.api.objects import meta_of
from pybernetes.api.rbac.v1 import rbac_pb2 as rbac

from ..auth import User
from ..authz import AlwaysAllowAuthorizer, Attributes, Authorizer, Decision, Result, UnionAuthorizer
from ..rest import Rest
from ..storage.objects import object_key
from ..storage.store import Store
from . import policy
from .authorizer import PrivilegedGroupAuthorizer, RBACAuthorizer
from .bootstrap import ensure_policy
from .escalation import EscalationGuard

log = logging.getLogger("pybernetes.apiserver.rbac")

MODES = ("Node", "RBAC", "AlwaysAllow")
NODES_GROUP = "system:nodes"
RBAC_KINDS = (rbac.ClusterRole, rbac.Role, rbac.ClusterRoleBinding, rbac.RoleBinding)


class NodeRoleAuthorizer:
    """Group system:nodes gets the rules of the system:node ClusterRole, cluster-wide (what binding the group
    to the role did before Kubernetes 1.8); the stand-in for the Node authorizer."""

    def __init__(self, rbac_authz: RBACAuthorizer) -> None:
        self.rbac = rbac_authz

    def authorize(self, attrs: Attributes) -> Result:
        if NODES_GROUP not in attrs.user.groups:
            return Result(Decision.NO_OPINION)
        ref = rbac.RoleRef(api_group=kinds.RBAC_GROUP, kind="ClusterRole", name="system:node")
        for rule in self.rbac.role_rules(ref, "") or []:
            if attrs.is_resource_request and rbacrules.allows_resource(
                    rule, attrs.verb, attrs.api_group, attrs.resource, attrs.subresource, attrs.name):
                return Result(Decision.ALLOW, 'allowed: group system:nodes, rules of ClusterRole "system:node"')
        return Result(Decision.NO_OPINION)

    def rules_for(self, user: User, namespace: str) -> list[rbac.PolicyRule]:
        if NODES_GROUP not in user.groups:
            return []
        ref = rbac.RoleRef(api_group=kinds.RBAC_GROUP, kind="ClusterRole", name="system:node")
        return self.rbac.role_rules(ref, "") or []


def build(modes: Sequence[str], store: Store, rest: Rest, node: Authorizer | None = None) -> Authorizer:
    """The union of `modes` (`node`: the Node mode's authorizer); installs RBAC's escalation guard on `rest`
    when RBAC is one of them."""
    chain: list[Authorizer] = [PrivilegedGroupAuthorizer()]
    rbac_authz: RBACAuthorizer | None = None
    for m in modes:
        if m not in MODES:
            raise errors.ConfigError(f"--authorization-mode: unknown mode {m!r} (known: {', '.join(MODES)})")
        if m == "AlwaysAllow":
            chain.append(AlwaysAllowAuthorizer())
        elif m == "RBAC":
            rbac_authz = RBACAuthorizer(store)
            chain.append(rbac_authz)
        elif node is not None:
            chain.append(node)
        else:
            log.warning("authorization mode Node has no authorizer in this build: kubelets (group system:nodes) get "
                        "the system:node ClusterRole's rules on every node's objects")
            chain.append(NodeRoleAuthorizer(RBACAuthorizer(store)))
    union = UnionAuthorizer(chain)
    if rbac_authz is not None:
        rest.write_guard = EscalationGuard(union, rbac_authz)  # asks the whole chain (escalate, bind)
    log.info("authorization modes=%s", ",".join(modes))
    return union


async def bootstrap_policy(modes: Sequence[str], store: Store, rest: Rest) -> None:
    """With RBAC: write the bootstrap policy, then wait until the watch caches hold it, so the first request
    after start is authorized against it."""
    if "RBAC" not in modes:
        return
    infos = [kinds.for_class(c) for c in RBAC_KINDS]
    await asyncio.gather(*(store.cache(i).wait_ready(30) for i in infos))
    await ensure_policy(rest)
    want = [(store.cache(kinds.for_message(o)), object_key(kinds.for_message(o), meta_of(o).namespace,
                                                           meta_of(o).name)) for o in policy.everything()]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while any(cache.get(key) is None for cache, key in want):
        if loop.time() > deadline:
            raise errors.Unavailable("the watch caches did not catch up with the bootstrap RBAC policy in 30s")
        await asyncio.sleep(0.01)
