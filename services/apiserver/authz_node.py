"""The Node authorization mode (kube-apiserver's plugin/pkg/auth/authorizer/node): what a kubelet may do.

A kubelet authenticates as `system:node:<name>` in group `system:nodes`. It may read a Secret, ConfigMap or
PersistentVolumeClaim, and request a token for a ServiceAccount, only when a pod bound to its node references
the object; it reads only its own Node and Lease by name, and lists pods only with `spec.nodeName=<its name>`.
What the authorizer cannot check without the request's body (which node a created pod, a Node update or a pod
status belongs to) it allows, as Kubernetes does, and NodeRestriction admission narrows. Other resources are
judged against the node rules, rbac/policy.py's NODE_RULES: the one list the `system:node` ClusterRole lists
too, as Kubernetes' node authorizer and ClusterRole share bootstrappolicy.NodeRules(). Everything else, and
every request not from a node, is NoOpinion: the next mode (RBAC) decides.

The graph of references (secret/configmap/serviceaccount/pvc -> pod -> node, from the pod spec) follows the
apiserver's own pods watch cache (`GraphPopulator`): no etcd read per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from pybernetes import errors, tls
from pybernetes.api import rbacrules
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.rbac.v1 import rbac_pb2 as rbac
from pybernetes.api.selectors import EVERYTHING, FieldSelector, parse_field_selector

from .auth import User
from .authz import Attributes, Decision, Result
from .rbac import policy
from .storage.watch_cache import WatchCache, Watcher

log = logging.getLogger("pybernetes.apiserver.authz.node")

NODE_USER_PREFIX = "system:node:"
NODES_GROUP = tls.NODES_GROUP
NODE_LEASE_NAMESPACE = "kube-node-lease"
MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"

# Vertex types of the graph (Kubernetes' vertexType names).
POD, SECRET, CONFIGMAP, SERVICEACCOUNT, PVC = "pod", "secret", "configmap", "serviceAccount", "pvc"

Ref = tuple[str, str, str]  # (vertex type, namespace, name)


def node_identity(user: User) -> str | None:
    """The node a user is (Kubernetes' default NodeIdentifier): None when not a node, "" when a node whose
    name is missing (`system:node:`)."""
    if not user.name.startswith(NODE_USER_PREFIX) or NODES_GROUP not in user.groups:
        return None
    return user.name[len(NODE_USER_PREFIX):]


# -- the graph ------------------------------------------------------------------------------------


def pod_references(pod: core.Pod) -> Iterator[Ref]:
    """What a bound pod lets its node read: its ServiceAccount, the Secrets and ConfigMaps of its image pull
    secrets, env, envFrom and volumes (projected sources, CSI publish secrets), its claims (Kubernetes'
    VisitPodSecretNames / VisitPodConfigmapNames / AddPod). Mirror pods reference nothing: a node creates
    them, and must not grant itself access that way."""
    if MIRROR_POD_ANNOTATION in pod.metadata.annotations:
        return
    ns, spec = pod.metadata.namespace, pod.spec
    if spec.service_account_name:
        yield SERVICEACCOUNT, ns, spec.service_account_name
    for ref in spec.image_pull_secrets:
        yield SECRET, ns, ref.name
    containers: list[core.Container | core.EphemeralContainer] = [*spec.init_containers, *spec.containers]
    containers.extend(spec.ephemeral_containers)
    for c in containers:
        for src in c.env_from:
            yield SECRET, ns, src.secret_ref.name
            yield CONFIGMAP, ns, src.config_map_ref.name
        for e in c.env:
            yield SECRET, ns, e.value_from.secret_key_ref.name
            yield CONFIGMAP, ns, e.value_from.config_map_key_ref.name
    for v in spec.volumes:
        yield SECRET, ns, v.secret.secret_name
        yield CONFIGMAP, ns, v.config_map.name
        yield SECRET, ns, v.csi.node_publish_secret_ref.name
        for p in v.projected.sources:
            yield SECRET, ns, p.secret.name
            yield CONFIGMAP, ns, p.config_map.name
        yield PVC, ns, v.persistent_volume_claim.claim_name
        if v.HasField("ephemeral"):
            yield PVC, ns, f"{pod.metadata.name}-{v.name}"  # the generic ephemeral volume's claim name


@dataclass(frozen=True)
class _BoundPod:
    uid: str
    node: str
    refs: frozenset[Ref]


class NodeGraph:
    """Which node each bound pod is on and which objects each node's pods reference.

    Kubernetes keeps a general graph with a destination index; the only paths here are object -> pod ->
    node, so a count per (object, node) answers every question in O(1)."""

    def __init__(self) -> None:
        self._pods: dict[tuple[str, str], _BoundPod] = {}
        self._reach: dict[Ref, dict[str, int]] = {}  # object -> node -> how many of its pods reference it

    def add_pod(self, pod: core.Pod) -> None:
        """Record a pod (added or updated). Unbound pods have no edges; a pod's node and references are
        immutable once bound, so an update with the same uid and node changes nothing."""
        node = pod.spec.node_name
        if not node:
            return
        key = (pod.metadata.namespace, pod.metadata.name)
        old = self._pods.get(key)
        if old is not None and old.node == node and old.uid == pod.metadata.uid:
            return
        if old is not None:
            self._unlink(old)
        bound = _BoundPod(pod.metadata.uid, node, frozenset(r for r in pod_references(pod) if r[2]))
        self._pods[key] = bound
        for ref in bound.refs:
            per_node = self._reach.setdefault(ref, {})
            per_node[node] = per_node.get(node, 0) + 1

    def delete_pod(self, namespace: str, name: str) -> None:
        old = self._pods.pop((namespace, name), None)
        if old is not None:
            self._unlink(old)

    def replace(self, pods: Iterable[core.Pod]) -> None:
        """Start over from a full list (after the watch cache re-listed)."""
        self._pods.clear()
        self._reach.clear()
        for p in pods:
            self.add_pod(p)

    def _unlink(self, old: _BoundPod) -> None:
        for ref in old.refs:
            per_node = self._reach.get(ref)
            if per_node is None:
                continue
            n = per_node.get(old.node, 0) - 1
            if n > 0:
                per_node[old.node] = n
            else:
                per_node.pop(old.node, None)
                if not per_node:
                    del self._reach[ref]

    def pod_node(self, namespace: str, name: str) -> str | None:
        p = self._pods.get((namespace, name))
        return p.node if p is not None else None

    def has_path(self, node: str, vertex: str, namespace: str, name: str) -> bool:
        if vertex == POD:
            return self.pod_node(namespace, name) == node
        return self._reach.get((vertex, namespace, name), {}).get(node, 0) > 0


class GraphPopulator:
    """Keeps a NodeGraph equal to the pods watch cache: a snapshot of the cache, then its events (the
    informer event handlers of Kubernetes' graph_populator). A broken watch re-snapshots."""

    def __init__(self, pods: WatchCache, graph: NodeGraph) -> None:
        self.pods = pods
        self.graph = graph
        self.synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="node-authorizer-graph")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await self.pods.ready.wait()
            # Snapshot and watch from the same version with no await between: nothing is missed or doubled.
            cached = self.pods.list("", EVERYTHING, FieldSelector())
            self.graph.replace(c.obj for c in cached if isinstance(c.obj, core.Pod))
            w = self.pods.watch(self.pods.rv, "", EVERYTHING, FieldSelector(), bookmarks=False)
            log.info("node authorizer graph synced pods=%d rv=%d", len(cached), self.pods.rv)
            self.synced.set()
            try:
                await self._follow(w)
            except Exception:
                # A graph that stopped following would slowly deny nodes what their new pods use: start over.
                log.exception("node authorizer graph failed; re-syncing")
                await asyncio.sleep(1.0)
            finally:
                self.pods.unwatch(w)

    async def _follow(self, w: Watcher) -> None:
        while True:
            ev = await w.queue.get()
            if ev.type == "ERROR":
                log.warning("node authorizer graph watch ended error=%s; re-syncing", ev.error)
                return
            if ev.type == "BOOKMARK":
                continue
            pod = core.Pod.FromString(ev.raw)
            if ev.type == "DELETED":
                self.graph.delete_pod(pod.metadata.namespace, pod.metadata.name)
            else:
                self.graph.add_pod(pod)


# -- static node rules ----------------------------------------------------------------------------


def rules_allow(attrs: Attributes, rules: Iterable[rbac.PolicyRule]) -> bool:
    """Kubernetes' rbac.RulesAllow for a resource request (the node rules name no URLs)."""
    return attrs.is_resource_request and any(
        rbacrules.allows_resource(r, attrs.verb, attrs.api_group, attrs.resource, attrs.subresource, attrs.name)
        for r in rules)


# -- the authorizer -------------------------------------------------------------------------------

_NO = Decision.NO_OPINION
_ALLOW = Result(Decision.ALLOW)


def _selects_node(field_selector: str, field: str, node: str) -> bool:
    try:
        return parse_field_selector(field_selector).value_of(field) == node
    except errors.BadRequest:
        return False  # the list itself refuses it


class NodeAuthorizer:
    """Kubernetes' NodeAuthorizer over a NodeGraph (AuthorizeNodeWithSelectors on, as since 1.32).
    `rules_allow` judges what is not subdivided (the static node rules by default)."""

    def __init__(self, graph: NodeGraph, rules: Callable[[Attributes], bool] | None = None) -> None:
        self.graph = graph
        self.rules = rules or (lambda a: rules_allow(a, policy.NODE_RULES))

    def authorize(self, attrs: Attributes) -> Result:
        node = node_identity(attrs.user)
        if node is None:
            return Result(_NO)
        if not node:
            return Result(_NO, f'unknown node for user "{attrs.user.name}"')
        if attrs.is_resource_request:
            r = self._subdivided(node, attrs)
            if r is not None:
                if r.decision is _NO:
                    log.debug("NODE DENY node=%s verb=%s resource=%s namespace=%s name=%s reason=%s", node,
                              attrs.verb, attrs.resource, attrs.namespace, attrs.name, r.reason)
                return r
        return _ALLOW if self.rules(attrs) else Result(_NO)

    def _subdivided(self, node: str, a: Attributes) -> Result | None:
        group = a.api_group
        if group == "" and a.resource in ("secrets", "configmaps"):
            return self._read_namespaced(node, SECRET if a.resource == "secrets" else CONFIGMAP, a)
        if group == "" and a.resource == "persistentvolumeclaims":
            return self._status_update(node, PVC, a) if a.subresource == "status" else self._get(node, PVC, a)
        if group == "" and a.resource == "serviceaccounts":
            return self._create_token(node, a)
        if group == "coordination.k8s.io" and a.resource == "leases":
            return self._lease(node, a)
        if group == "" and a.resource == "nodes":
            return self._node(node, a)
        if group == "" and a.resource == "pods":
            return self._pod(node, a)
        return None

    def _related(self, node: str, vertex: str, a: Attributes) -> Result:
        if not a.name:
            return Result(_NO, "No Object name found")
        if not self.graph.has_path(node, vertex, a.namespace, a.name):
            return Result(_NO, f"no relationship found between node '{node}' and this object")
        return _ALLOW

    def _read_namespaced(self, node: str, vertex: str, a: Attributes) -> Result:
        if a.verb not in ("get", "list", "watch"):
            return Result(_NO, "can only read resources of this type")
        if a.subresource:
            return Result(_NO, "cannot read subresource")
        if not a.namespace:
            return Result(_NO, "can only read namespaced object of this type")
        return self._related(node, vertex, a)

    def _get(self, node: str, vertex: str, a: Attributes) -> Result:
        if a.verb != "get":
            return Result(_NO, "can only get individual resources of this type")
        if a.subresource:
            return Result(_NO, "cannot get subresource")
        return self._related(node, vertex, a)

    def _status_update(self, node: str, vertex: str, a: Attributes) -> Result:
        if a.verb not in ("update", "patch"):
            return Result(_NO, "can only get/update/patch this type")
        return self._related(node, vertex, a)

    def _create_token(self, node: str, a: Attributes) -> Result:
        if a.verb != "create" or not a.name:
            return Result(_NO, "can only create tokens for individual service accounts")
        if a.subresource != "token":
            return Result(_NO, "can only create token subresource of serviceaccount")
        return self._related(node, SERVICEACCOUNT, a)

    def _lease(self, node: str, a: Attributes) -> Result:
        if a.verb not in ("get", "create", "update", "patch", "delete"):
            return Result(_NO, "can only get, create, update, patch, or delete a node lease")
        if a.namespace != NODE_LEASE_NAMESPACE:
            return Result(_NO, f'can only access leases in the "{NODE_LEASE_NAMESPACE}" system namespace')
        # On create the name is in the body: NodeRestriction checks it.
        if a.verb != "create" and a.name != node:
            return Result(_NO, "can only access node lease with the same name as the requesting node")
        return _ALLOW

    def _node(self, node: str, a: Attributes) -> Result:
        if a.subresource == "" and a.verb in ("create", "update", "patch"):
            return _ALLOW  # NodeRestriction limits a node to its own Node object
        if a.subresource == "" and a.verb in ("get", "list", "watch"):
            # By name, not through the graph: a kubelet reads its Node before registering it.
            if a.name == node:
                return _ALLOW
            if not a.name:
                return Result(_NO, f"node '{node}' cannot read all nodes, only its own Node object")
            return Result(_NO, f"node '{node}' cannot read '{a.name}', only its own Node object")
        if a.subresource == "status" and a.verb in ("update", "patch"):
            return _ALLOW  # NodeRestriction: only its own status
        return Result(_NO)

    def _pod(self, node: str, a: Attributes) -> Result:
        if a.subresource == "":
            if a.verb == "get":
                return self._get(node, POD, a)
            if a.verb in ("list", "watch"):
                if _selects_node(a.field_selector, "spec.nodeName", node):
                    return _ALLOW
                if a.name:
                    return self._related(node, POD, a)
                return Result(_NO, "can only list/watch pods with spec.nodeName field selector")
            if a.verb in ("create", "delete"):
                return _ALLOW  # mirror pods; NodeRestriction limits them to this node
        elif a.subresource == "status" and a.verb in ("update", "patch"):
            return _ALLOW  # NodeRestriction: only pods bound to this node
        elif a.subresource == "eviction" and a.verb == "create":
            return _ALLOW  # NodeRestriction: only pods bound to this node
        return Result(_NO)


def new_node_authorizer(pods: WatchCache) -> tuple[NodeAuthorizer, GraphPopulator]:
    """The Node mode over the apiserver's pods watch cache; start the populator once the store runs and
    wait for `synced` before serving."""
    graph = NodeGraph()
    return NodeAuthorizer(graph), GraphPopulator(pods, graph)
