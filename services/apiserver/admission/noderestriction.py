"""NodeRestriction: a kubelet (user `system:node:NAME` in group `system:nodes`) may only write what its own node
needs (Kubernetes' plugin of the same name; RBAC and the Node authorizer decide the rest).

- nodes: only its own Node; it may not set or change labels under node-restriction.kubernetes.io/ (they steer
  workloads), nor change its taints or ownerReferences after registering.
- pods: create only mirror pods bound to itself that reference no service account, secret, configmap or
  persistent volume claim; delete only pods bound to itself; no other pod update.
- pods/status: only of pods bound to itself, without changing their labels. pods/eviction: only its own pods.
- leases: only its own Lease in kube-node-lease.
Other users pass untouched.
"""

from __future__ import annotations

from google.protobuf.message import Message

from pybernetes.api.core.v1 import core_pb2 as core

from ..auth import User
from .attributes import CREATE, DELETE, UPDATE, Attributes, Plugin, forbidden
from .serviceaccount import is_mirror_pod, references_secrets

NAME = "NodeRestriction"
NODES_GROUP = "system:nodes"
NODE_USER_PREFIX = "system:node:"
RESTRICTED_LABEL_DOMAIN = "node-restriction.kubernetes.io"
NODE_LEASE_NAMESPACE = "kube-node-lease"


def node_identity(user: User | None) -> tuple[str, bool]:
    """(node name, is a node) of the requesting user, as Kubernetes' NodeIdentifier."""
    if user is None or not user.name.startswith(NODE_USER_PREFIX) or NODES_GROUP not in user.groups:
        return "", False
    return user.name[len(NODE_USER_PREFIX):], True


def _restricted(label: str) -> bool:
    domain = label.split("/", 1)[0] if "/" in label else ""
    return domain == RESTRICTED_LABEL_DOMAIN or domain.endswith("." + RESTRICTED_LABEL_DOMAIN)


def _modified_labels(new: dict[str, str], old: dict[str, str]) -> set[str]:
    return {k for k in set(new) | set(old) if new.get(k) != old.get(k)}


def _references_configmaps(pod: core.Pod) -> bool:
    if any(v.HasField("config_map") or any(p.HasField("config_map") for p in v.projected.sources)
           for v in pod.spec.volumes):
        return True
    return any(any(e.value_from.HasField("config_map_key_ref") for e in c.env)
               or any(ef.HasField("config_map_ref") for ef in c.env_from)
               for c in [*pod.spec.containers, *pod.spec.init_containers])


class NodeRestriction(Plugin):
    name = NAME
    validating = True

    async def validate(self, a: Attributes) -> None:
        node, is_node = node_identity(a.user)
        if not is_node:
            return
        if not node:
            raise forbidden(a, f'could not determine node from user "{a.user.name if a.user else ""}"')
        plural = a.resource.plural
        if plural == "pods" and not a.resource.group:
            self._pod(node, a)
        elif plural == "nodes" and not a.resource.group:
            self._node(node, a)
        elif plural == "leases" and a.resource.group == "coordination.k8s.io":
            if a.namespace != NODE_LEASE_NAMESPACE:
                raise forbidden(a, f'can only access leases in the "{NODE_LEASE_NAMESPACE}" system namespace')
            if a.name != node:
                raise forbidden(a, "can only access node lease with the same name as the requesting node")

    @staticmethod
    def _bound_node(obj: Message | None) -> str:
        return obj.spec.node_name if isinstance(obj, core.Pod) else ""

    def _pod(self, node: str, a: Attributes) -> None:
        if a.subresource == "status":
            if a.operation != UPDATE:
                raise forbidden(a, f'unexpected operation "{a.operation}"')
            if self._bound_node(a.old) != node:
                raise forbidden(a, f'node "{node}" can only update pod status for pods with spec.nodeName set '
                                   "to itself")
            if isinstance(a.obj, core.Pod) and isinstance(a.old, core.Pod) and \
                    dict(a.obj.metadata.labels) != dict(a.old.metadata.labels):
                raise forbidden(a, f'node "{node}" cannot update labels through pod status')
            return
        if a.subresource == "eviction":
            if self._bound_node(a.old) != node:
                raise forbidden(a, f"node {node} can only evict pods with spec.nodeName set to itself")
            return
        if a.subresource:
            raise forbidden(a, f'unexpected subresource "{a.subresource}", only \'status\' and \'eviction\' are '
                               "allowed")
        if a.operation == CREATE:
            self._pod_create(node, a)
        elif a.operation == DELETE:
            if self._bound_node(a.old) != node:
                raise forbidden(a, f'node "{node}" can only delete pods with spec.nodeName set to itself')
        else:
            raise forbidden(a, f'unexpected operation "{a.operation}", node "{node}" can only create and delete '
                               "mirror pods")

    @staticmethod
    def _pod_create(node: str, a: Attributes) -> None:
        pod = a.obj
        if not isinstance(pod, core.Pod):
            return
        if not is_mirror_pod(pod):
            raise forbidden(a, f'pod does not have "kubernetes.io/config.mirror" annotation, node "{node}" can only '
                               "create mirror pods")
        if pod.spec.node_name != node:
            raise forbidden(a, f'node "{node}" can only create pods with spec.nodeName set to itself')
        if pod.spec.service_account_name:
            raise forbidden(a, f'node "{node}" can not create pods that reference a service account')
        if references_secrets(pod):
            raise forbidden(a, f'node "{node}" can not create pods that reference secrets')
        if _references_configmaps(pod):
            raise forbidden(a, f'node "{node}" can not create pods that reference configmaps')
        if any(v.HasField("persistent_volume_claim") for v in pod.spec.volumes):
            raise forbidden(a, f'node "{node}" can not create pods that reference persistentvolumeclaims')
        for ref in pod.metadata.owner_references:
            if ref.kind != "Node" or ref.name != node or ref.api_version != "v1":
                raise forbidden(a, f'node "{node}" can only create pods with an owner reference set to itself')

    @staticmethod
    def _node(node: str, a: Attributes) -> None:
        if a.name != node:
            raise forbidden(a, f'node "{node}" is not allowed to modify node "{a.name}"')
        new, old = a.obj, a.old
        if a.operation == CREATE and isinstance(new, core.Node):
            bad = sorted(k for k in new.metadata.labels if _restricted(k))
            if bad:
                raise forbidden(a, f'node "{node}" is not allowed to set the following labels: {", ".join(bad)}')
        if a.operation == UPDATE and isinstance(new, core.Node) and isinstance(old, core.Node):
            if list(new.metadata.owner_references) != list(old.metadata.owner_references):
                raise forbidden(a, f'node "{node}" is not allowed to modify ownerReferences')
            if list(new.spec.taints) != list(old.spec.taints):
                raise forbidden(a, f'node "{node}" is not allowed to modify taints')
            bad = sorted(k for k in _modified_labels(dict(new.metadata.labels), dict(old.metadata.labels))
                         if _restricted(k))
            if bad:
                raise forbidden(a, f"is not allowed to modify labels: {', '.join(bad)}")
