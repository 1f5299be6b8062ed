"""The Node authorizer (services.apiserver.authz_node): the graph of pod references, its populator over a
watch cache fed by an in-memory etcd, and the decisions Kubernetes' node authorizer makes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from pybernetes import errors
from pybernetes.api import kinds
from pybernetes.api.core.v1 import core_pb2 as core
from services.apiserver.auth import User
from services.apiserver.authz import (
    Attributes,
    Decision,
    UnionAuthorizer,
    check,
    request_attributes,
    resource_attributes,
)
from services.apiserver.authz_node import (
    CONFIGMAP,
    POD,
    PVC,
    SECRET,
    SERVICEACCOUNT,
    GraphPopulator,
    NodeAuthorizer,
    NodeGraph,
    node_identity,
    pod_references,
)
from services.apiserver.rbac import policy
from services.apiserver.registry import strategy
from services.apiserver.storage.etcd import StorageUnavailable
from services.apiserver.storage.objects import object_key
from services.apiserver.storage.watch_cache import WatchCache
from tests.unit.etcd_fake import FakeEtcd, put, until

NODE1 = User("system:node:node-1", groups=("system:nodes", "system:authenticated"))
NODE2 = User("system:node:node-2", groups=("system:nodes",))
ADMIN = User("system:admin", groups=("system:masters",))


def pod(name: str, node: str = "", *, ns: str = "default", uid: str = "", secret_env: str = "", cm_vol: str = "",
        pull: str = "", sa: str = "", mirror: bool = False) -> core.Pod:
    p = core.Pod()
    p.metadata.name, p.metadata.namespace, p.metadata.uid = name, ns, uid or f"uid-{name}"
    p.spec.node_name = node
    c = p.spec.containers.add(name="c", image="busybox")
    if secret_env:
        e = c.env.add(name="PASSWORD")
        e.value_from.secret_key_ref.name, e.value_from.secret_key_ref.key = secret_env, "password"
    if cm_vol:
        p.spec.volumes.add(name="conf").config_map.name = cm_vol
    if pull:
        p.spec.image_pull_secrets.add(name=pull)
    if sa:
        p.spec.service_account_name = sa
    if mirror:
        p.metadata.annotations["kubernetes.io/config.mirror"] = "hash"
    return p


# -- pod references -------------------------------------------------------------------------------


def test_references_cover_every_place_a_pod_names_an_object() -> None:
    p = pod("web", "node-1", secret_env="env-s", cm_vol="vol-cm", pull="pull-s", sa="runner")
    c = p.spec.init_containers.add(name="init", image="busybox")
    c.env_from.add().secret_ref.name = "envfrom-s"
    c.env_from.add().config_map_ref.name = "envfrom-cm"
    e = p.spec.containers[0].env.add(name="X")
    e.value_from.config_map_key_ref.name, e.value_from.config_map_key_ref.key = "env-cm", "x"
    p.spec.volumes.add(name="s").secret.secret_name = "vol-s"
    proj = p.spec.volumes.add(name="proj").projected
    proj.sources.add().secret.name = "proj-s"
    proj.sources.add().config_map.name = "proj-cm"
    proj.sources.add().service_account_token.path = "token"
    p.spec.volumes.add(name="csi").csi.node_publish_secret_ref.name = "csi-s"
    p.spec.volumes.add(name="data").persistent_volume_claim.claim_name = "data-pvc"
    p.spec.volumes.add(name="scratch").ephemeral.volume_claim_template.spec.access_modes.append("ReadWriteOnce")
    p.spec.ephemeral_containers.add(name="debug", image="busybox").env_from.add().secret_ref.name = "debug-s"
    refs = {r for r in pod_references(p) if r[2]}
    assert refs == {
        (SERVICEACCOUNT, "default", "runner"),
        *((SECRET, "default", s) for s in ("env-s", "pull-s", "envfrom-s", "vol-s", "proj-s", "csi-s", "debug-s")),
        *((CONFIGMAP, "default", c) for c in ("vol-cm", "envfrom-cm", "env-cm", "proj-cm")),
        (PVC, "default", "data-pvc"), (PVC, "default", "web-scratch"),
    }


def test_mirror_pods_reference_nothing() -> None:
    assert list(pod_references(pod("static", "node-1", secret_env="s", sa="default", mirror=True))) == []


# -- the graph ------------------------------------------------------------------------------------


def test_graph_pod_added_moved_and_deleted() -> None:
    g = NodeGraph()
    g.add_pod(pod("web", "node-1", secret_env="db", cm_vol="conf", pull="regcred", sa="runner"))
    for vertex, name in ((SECRET, "db"), (CONFIGMAP, "conf"), (SECRET, "regcred"), (SERVICEACCOUNT, "runner"),
                         (POD, "web")):
        assert g.has_path("node-1", vertex, "default", name), (vertex, name)
        assert not g.has_path("node-2", vertex, "default", name), (vertex, name)
    assert not g.has_path("node-1", SECRET, "other", "db")  # same name, another namespace
    assert not g.has_path("node-1", CONFIGMAP, "default", "db")  # same name, another type
    # Deleted and recreated on node-2 under the same name (a new uid): the edges move with it.
    g.add_pod(pod("web", "node-2", uid="uid-2", secret_env="db"))
    assert g.has_path("node-2", SECRET, "default", "db") and not g.has_path("node-1", SECRET, "default", "db")
    assert not g.has_path("node-1", CONFIGMAP, "default", "conf")
    g.delete_pod("default", "web")
    assert not g.has_path("node-2", SECRET, "default", "db") and not g.has_path("node-2", POD, "default", "web")
    g.delete_pod("default", "web")  # deleting what is gone is harmless


def test_graph_unbound_pods_grant_nothing_until_bound() -> None:
    g = NodeGraph()
    g.add_pod(pod("web", secret_env="db"))
    assert not g.has_path("node-1", SECRET, "default", "db") and g.pod_node("default", "web") is None
    g.add_pod(pod("web", "node-1", secret_env="db"))  # the binding
    assert g.has_path("node-1", SECRET, "default", "db")


def test_graph_shared_secret_stays_reachable_until_the_last_pod_goes() -> None:
    g = NodeGraph()
    g.add_pod(pod("a", "node-1", secret_env="shared"))
    g.add_pod(pod("b", "node-1", secret_env="shared"))
    g.add_pod(pod("c", "node-2", secret_env="shared"))
    g.delete_pod("default", "a")
    assert g.has_path("node-1", SECRET, "default", "shared")
    g.delete_pod("default", "b")
    assert not g.has_path("node-1", SECRET, "default", "shared")
    assert g.has_path("node-2", SECRET, "default", "shared")


def test_graph_same_pod_updated_keeps_its_edges_and_replace_starts_over() -> None:
    g = NodeGraph()
    p = pod("web", "node-1", secret_env="db")
    g.add_pod(p)
    p.status.phase = "Running"
    g.add_pod(p)  # a status update: same uid and node
    g.delete_pod("default", "web")
    assert not g.has_path("node-1", SECRET, "default", "db")  # counted once, so one delete clears it
    g.add_pod(pod("old", "node-1", secret_env="old-s"))
    g.replace([pod("new", "node-2", secret_env="new-s")])
    assert not g.has_path("node-1", SECRET, "default", "old-s") and g.has_path("node-2", SECRET, "default", "new-s")


# -- the populator over a watch cache ---------------------------------------------------------------

PODS = kinds.for_class(core.Pod)


@pytest.fixture
async def etcd() -> FakeEtcd:
    return FakeEtcd()


@pytest.fixture
async def populated(etcd: FakeEtcd) -> AsyncIterator[tuple[NodeGraph, WatchCache]]:
    await put(etcd, pod("before", "node-1", secret_env="early"))
    cache = WatchCache(etcd, PODS, strategy.fields_fn(PODS), bookmark_interval=3600)
    cache.start()
    graph = NodeGraph()
    populator = GraphPopulator(cache, graph)
    populator.start()
    try:
        await until(populator.synced.is_set)
        yield graph, cache
    finally:
        await populator.stop()
        await cache.stop()


async def test_populator_follows_the_watch_cache(etcd: FakeEtcd, populated: tuple[NodeGraph, WatchCache]) -> None:
    graph, _ = populated
    assert graph.has_path("node-1", SECRET, "default", "early")  # from the initial snapshot
    await put(etcd, pod("web", secret_env="db"))
    await put(etcd, pod("web", "node-2", secret_env="db"))  # bound
    await until(lambda: graph.has_path("node-2", SECRET, "default", "db"))
    await etcd.delete(object_key(PODS, "default", "web"))
    await until(lambda: not graph.has_path("node-2", SECRET, "default", "db"))


async def test_populator_resyncs_after_the_watch_breaks(etcd: FakeEtcd,
                                                        populated: tuple[NodeGraph, WatchCache]) -> None:
    graph, _ = populated
    etcd.break_watches(StorageUnavailable("stream broke"))
    await etcd.delete(object_key(PODS, "default", "before"))  # while the cache re-lists
    await put(etcd, pod("after", "node-1", cm_vol="late"))
    await until(lambda: graph.has_path("node-1", CONFIGMAP, "default", "late"))
    assert not graph.has_path("node-1", SECRET, "default", "early")


# -- decisions --------------------------------------------------------------------------------------


@pytest.fixture
def authz() -> NodeAuthorizer:
    g = NodeGraph()
    g.add_pod(pod("web-1", "node-1", secret_env="s1", cm_vol="c1", sa="sa1"))
    g.add_pod(pod("web-2", "node-2", secret_env="s2", cm_vol="c2", sa="sa2"))
    return NodeAuthorizer(g)


def decide(a: NodeAuthorizer, user: User, verb: str, resource: str, ns: str = "", name: str = "",
           fs: str = "") -> Decision:
    return a.authorize(resource_attributes(user, verb, resource, ns, name, field_selector=fs)).decision


ALLOW, NO = Decision.ALLOW, Decision.NO_OPINION


@pytest.mark.parametrize(("verb", "resource", "ns", "name", "fs", "want"), [
    ("get", "secrets", "default", "s1", "", ALLOW),
    ("get", "configmaps", "default", "c1", "", ALLOW),
    ("watch", "secrets", "default", "", "metadata.name=s1", ALLOW),  # RequestInfo names it
    ("get", "secrets", "default", "s2", "", NO),  # node-2's pod's
    ("get", "configmaps", "default", "c2", "", NO),
    ("get", "secrets", "default", "nobody-uses-it", "", NO),
    ("list", "secrets", "default", "", "", NO),
    ("list", "secrets", "", "", "", NO),
    ("update", "secrets", "default", "s1", "", NO),
    ("create", "serviceaccounts/token", "default", "sa1", "", ALLOW),
    ("create", "serviceaccounts/token", "default", "sa2", "", NO),
    ("get", "serviceaccounts", "default", "sa1", "", NO),  # Kubernetes subdivides only token requests
    ("get", "pods", "default", "web-1", "", ALLOW),
    ("get", "pods", "default", "web-2", "", NO),
    ("list", "pods", "", "", "spec.nodeName=node-1", ALLOW),
    ("watch", "pods", "", "", "spec.nodeName=node-1", ALLOW),
    ("list", "pods", "", "", "spec.nodeName=node-2", NO),
    ("list", "pods", "", "", "", NO),
    ("update", "pods/status", "default", "web-1", "", ALLOW),  # NodeRestriction narrows
    ("create", "pods", "default", "", "", ALLOW),  # mirror pods; NodeRestriction narrows
    ("update", "pods", "default", "web-1", "", NO),
    ("get", "nodes", "", "node-1", "", ALLOW),
    ("watch", "nodes", "", "", "metadata.name=node-1", ALLOW),
    ("get", "nodes", "", "node-2", "", NO),
    ("list", "nodes", "", "", "", NO),
    ("update", "nodes", "", "node-1", "", ALLOW),  # NodeRestriction narrows
    ("patch", "nodes/status", "", "node-1", "", ALLOW),
    ("delete", "nodes", "", "node-1", "", NO),
    ("update", "leases", "kube-node-lease", "node-1", "", ALLOW),
    ("create", "leases", "kube-node-lease", "", "", ALLOW),
    ("update", "leases", "kube-node-lease", "node-2", "", NO),
    ("get", "leases", "kube-system", "node-1", "", NO),
    ("list", "leases", "kube-node-lease", "", "", NO),
    ("create", "events", "default", "", "", ALLOW),  # the static node rules
    ("patch", "events", "default", "web-1.1", "", ALLOW),
    ("delete", "events", "default", "web-1.1", "", NO),
    ("delete", "pods", "default", "web-1", "", ALLOW),  # NodeRestriction narrows
    ("create", "pods/eviction", "default", "web-1", "", ALLOW),
    ("list", "services", "", "", "", ALLOW),
    ("delete", "services", "default", "x", "", NO),
    ("get", "deployments", "default", "x", "", NO),
    ("get", "discovery", "", "", "", NO),  # a non-resource request
])
def test_node_1_decisions(authz: NodeAuthorizer, verb: str, resource: str, ns: str, name: str, fs: str,
                          want: Decision) -> None:
    assert decide(authz, NODE1, verb, resource, ns, name, fs) is want


def test_non_nodes_and_nameless_nodes_get_no_opinion(authz: NodeAuthorizer) -> None:
    assert decide(authz, ADMIN, "get", "secrets", "default", "s1") is NO
    assert decide(authz, User("system:node:node-1"), "get", "secrets", "default", "s1") is NO  # not in the group
    r = authz.authorize(resource_attributes(User("system:node:", groups=("system:nodes",)), "get", "nodes"))
    assert r.decision is NO and r.reason == 'unknown node for user "system:node:"'
    assert node_identity(NODE2) == "node-2" and node_identity(ADMIN) is None


def test_denial_reads_as_kubernetes(authz: NodeAuthorizer) -> None:
    with pytest.raises(errors.Forbidden) as e:
        check(UnionAuthorizer([authz]), resource_attributes(NODE1, "get", "secrets", "default", "s2"))
    assert str(e.value) == ('secrets "s2" is forbidden: User "system:node:node-1" cannot get resource "secrets" in '
                            'API group "" in the namespace "default": no relationship found between node \'node-1\' '
                            'and this object')


def test_rest_list_with_a_name_selector_is_about_that_name() -> None:
    a = request_attributes(NODE1, "GET", "/api/v1/namespaces/default/secrets", resource="secrets",
                           namespace="default", watch=True, field_selector="metadata.name=s1")
    assert (a.verb, a.name, a.field_selector) == ("watch", "s1", "metadata.name=s1")
    bad = request_attributes(NODE1, "GET", "/api/v1/secrets", resource="secrets", field_selector="no-operator")
    assert (bad.verb, bad.name) == ("list", "")


def test_one_node_rules_list_for_the_authorizer_and_the_cluster_role(authz: NodeAuthorizer) -> None:
    """Kubernetes' NodeRules() is one list: the system:node ClusterRole lists exactly the rules the Node authorizer
    judges the requests it does not narrow by; the role is bound to no one, and where the authorizer narrows, the
    list grants only what a kubelet may do on any object (get a Secret it names, not list them all)."""
    role = next(r for r in policy.CLUSTER_ROLES if r.metadata.name == "system:node")
    assert list(role.rules) == policy.NODE_RULES
    binding = next(b for b in policy.CLUSTER_ROLE_BINDINGS if b.metadata.name == "system:node")
    assert not binding.subjects
    granted = {(g, r, v) for rule in policy.NODE_RULES for g in rule.api_groups for r in rule.resources
               for v in rule.verbs}
    assert {("", "secrets", "get"), ("", "configmaps", "get")} <= granted
    assert not {("", "secrets", "list"), ("", "secrets", "watch"), ("", "configmaps", "list"), ("", "pods", "create"),
                ("", "serviceaccounts/token", "create"), ("coordination.k8s.io", "leases", "delete")} & granted
    # Not narrowed: the list decides, both ways.
    assert decide(authz, NODE1, "get", "endpoints", "default", "kubernetes") is ALLOW
    assert decide(authz, NODE1, "list", "endpoints", "default") is NO
    assert decide(authz, NODE1, "get", "services", "default", "kubernetes") is ALLOW
    sar = Attributes(NODE1, "create", resource="subjectaccessreviews", api_group="authorization.k8s.io")
    assert authz.authorize(sar).decision is ALLOW
    assert authz.authorize(replace(sar, api_group="")).decision is NO  # the rule names its API group
    # Narrowed: the authorizer decides, whatever the list says.
    assert decide(authz, NODE1, "list", "secrets", "default", "", "metadata.name=s1") is ALLOW
    assert decide(authz, NODE1, "create", "serviceaccounts/token", "default", "sa1") is ALLOW
