"""RBAC: rule matching (verbs, groups, resources with subresources and "*", resourceNames, URL prefixes),
the escalation check's rule coverage, aggregation by label, and the authorizer, escalation guard and bootstrap
policy over the real Store and Rest on an in-memory etcd."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest

from pybernetes import errors
from pybernetes.api import codec, kinds, rbacrules
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.rbac.v1 import rbac_pb2 as rbac
from services.apiserver.auth import User
from services.apiserver.authz import Attributes, Decision, check
from services.apiserver.impersonation import impersonate
from services.apiserver.rbac import modes
from services.apiserver.registry import strategy
from services.apiserver.rest import Rest
from services.apiserver.reviews import answer
from services.apiserver.storage.store import Store
from tests.unit.etcd_fake import FakeEtcd

G = "rbac.authorization.k8s.io"


def rule(verbs: list[str], groups: list[str], resources: list[str], names: Sequence[str] = ()) -> rbac.PolicyRule:
    return rbac.PolicyRule(verbs=verbs, api_groups=groups, resources=resources, resource_names=list(names))


@pytest.mark.parametrize(("r", "verb", "group", "resource", "sub", "name", "want"), [
    (rule(["get"], [""], ["pods"]), "get", "", "pods", "", "", True),
    (rule(["get"], [""], ["pods"]), "list", "", "pods", "", "", False),
    (rule(["get"], [""], ["pods"]), "get", "apps", "pods", "", "", False),
    (rule(["get"], [""], ["pods"]), "get", "", "pods", "log", "", False),  # a subresource is its own resource
    (rule(["get"], [""], ["pods/log"]), "get", "", "pods", "log", "", True),
    (rule(["get"], [""], ["pods/log"]), "get", "", "pods", "", "", False),
    (rule(["*"], ["*"], ["*"]), "delete", "apps", "deployments", "scale", "x", True),
    (rule(["update"], ["apps"], ["*/scale"]), "update", "apps", "deployments", "scale", "", True),
    (rule(["update"], ["apps"], ["*/scale"]), "update", "apps", "deployments", "", "", False),
    (rule(["get"], [""], ["secrets"], ["a"]), "get", "", "secrets", "", "a", True),
    (rule(["get"], [""], ["secrets"], ["a"]), "get", "", "secrets", "", "b", False),
    (rule(["list"], [""], ["secrets"], ["a"]), "list", "", "secrets", "", "", False),  # names never match a list
])
def test_resource_rule_matching(r: rbac.PolicyRule, verb: str, group: str, resource: str, sub: str, name: str,
                                want: bool) -> None:
    assert rbacrules.allows_resource(r, verb, group, resource, sub, name) is want


@pytest.mark.parametrize(("urls", "path", "want"), [
    (["/healthz"], "/healthz", True), (["/healthz"], "/healthz/etcd", False), (["/healthz/*"], "/healthz/etcd", True),
    (["/api/*"], "/api/v1", True), (["/api/*"], "/apis", False), (["*"], "/anything", True),
])
def test_url_rule_matching(urls: list[str], path: str, want: bool) -> None:
    assert rbacrules.allows_url(rbac.PolicyRule(verbs=["get"], non_resource_urls=urls), "get", path) is want


def test_coverage_is_per_group_resource_and_name() -> None:
    owner = [rule(["get", "list"], ["", "apps"], ["pods", "deployments"]), rule(["get"], [""], ["secrets"], ["s1"]),
             rule(["create"], ["apps"], ["*/scale"]), rbac.PolicyRule(verbs=["get"], non_resource_urls=["/logs/*"])]
    assert rbacrules.uncovered(owner, [rule(["get"], ["apps"], ["deployments"])]) == []
    assert rbacrules.uncovered(owner, [rule(["get"], [""], ["secrets"], ["s1"])]) == []
    assert rbacrules.uncovered(owner, [rule(["create"], ["apps"], ["deployments/scale"])]) == []
    assert rbacrules.uncovered(owner, [rbac.PolicyRule(verbs=["get"], non_resource_urls=["/logs/a"])]) == []
    missing = rbacrules.uncovered(owner, [rule(["get", "delete"], [""], ["pods", "secrets"])])
    assert [rbacrules.describe(m) for m in missing] == [
        '{APIGroups:[""], Resources:["pods"], Verbs:["get", "delete"]}',
        '{APIGroups:[""], Resources:["secrets"], Verbs:["get", "delete"]}']
    # all names of a resource are more than one name
    assert len(rbacrules.uncovered(owner, [rule(["get"], [""], ["secrets"])])) == 1
    assert rbacrules.uncovered([rule(["*"], ["*"], ["*"])], [rule(["escalate"], [G], ["roles"], ["x"])]) == []


def test_aggregation_by_label() -> None:
    agg = rbac.ClusterRole()
    agg.metadata.name = "view"
    agg.aggregation_rule.cluster_role_selectors.add().match_labels["to-view"] = "true"
    a = rbac.ClusterRole(rules=[rule(["get"], [""], ["pods"])])
    a.metadata.name, a.metadata.labels["to-view"] = "b-role", "true"
    b = rbac.ClusterRole(rules=[rule(["get"], [""], ["pods"]), rule(["list"], [""], ["pods"])])
    b.metadata.name, b.metadata.labels["to-view"] = "a-role", "true"
    other = rbac.ClusterRole(rules=[rule(["*"], ["*"], ["*"])])
    other.metadata.name = "other"
    assert rbacrules.aggregated_rules(agg, [agg, a, b, other]) == [rule(["get"], [""], ["pods"]),
                                                                   rule(["list"], [""], ["pods"])]


# -- the authorizer, guard and bootstrap over the real Store -------------------------------------------------

@pytest.fixture
async def api() -> AsyncIterator[tuple[Rest, modes.Authorizer]]:
    store = Store(FakeEtcd(), {i.plural: strategy.fields_fn(i) for i in kinds.RESOURCES}, bookmark_interval=3600)
    store.start()
    rest = Rest(store)
    for n in ("default", "kube-system", "a", "b"):
        ns = core.Namespace()
        ns.metadata.name = n
        await rest.create("namespaces", "", ns.SerializeToString())
    authz = modes.build(["Node", "RBAC"], store, rest)
    await modes.bootstrap_policy(["Node", "RBAC"], store, rest)
    yield rest, authz
    await store.stop()


async def put(rest: Rest, doc: dict[str, object], user: User | None = None) -> None:
    """Create `doc` as `user` asks it (None: the apiserver itself)."""
    obj = codec.parse_object({"apiVersion": f"{G}/v1", **doc})
    md = obj.metadata  # type: ignore[attr-defined]  # every kind has ObjectMeta
    await rest.create(kinds.for_message(obj).plural, md.namespace, obj.SerializeToString(), user=user)
    await asyncio.sleep(0.05)  # the watch cache catches up


def binding(kind: str, name: str, role_kind: str, role: str, subject: dict[str, str],
            ns: str = "") -> dict[str, object]:
    md = {"name": name, **({"namespace": ns} if ns else {})}
    s = {"apiGroup": G, **subject} if subject["kind"] != "ServiceAccount" else subject
    return {"kind": kind, "metadata": md, "subjects": [s], "roleRef": {"apiGroup": G, "kind": role_kind, "name": role}}


ALICE = User("alice", groups=("dev",))
BOB = User("bob")
SCHED = User("system:kube-scheduler")
SA = User("system:serviceaccount:a:robot", groups=("system:serviceaccounts", "system:serviceaccounts:a"))


def allowed(authz: modes.Authorizer, user: User, verb: str, resource: str, ns: str = "", name: str = "",
            group: str = "", sub: str = "") -> bool:
    attrs = Attributes(user=user, verb=verb, resource=resource, subresource=sub, api_group=group, namespace=ns,
                       name=name)
    return authz.authorize(attrs).decision is Decision.ALLOW


async def test_bootstrap_policy_and_bindings(api: tuple[Rest, modes.Authorizer]) -> None:
    rest, authz = api
    names = {rbac.ClusterRole.FromString(r).metadata.name for r in
             (await rest.list("clusterroles", "", "", "", 0, "", "")).items}
    assert {"cluster-admin", "admin", "edit", "view", "system:kube-scheduler", "system:node-proxier"} <= names
    view = await rest.get("clusterroles", "", "view")
    assert isinstance(view, rbac.ClusterRole) and any("pods" in r.resources for r in view.rules)  # aggregated
    await put(rest, binding("RoleBinding", "alice-view", "ClusterRole", "view", {"kind": "User", "name": "alice"}, "a"))
    await put(rest, binding("ClusterRoleBinding", "bob-edit", "ClusterRole", "edit", {"kind": "User", "name": "bob"}))
    await put(rest, {"kind": "Role", "metadata": {"name": "cm", "namespace": "a"},
                     "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"],
                                "resourceNames": ["one"]}]})
    await put(rest, binding("RoleBinding", "robot", "Role", "cm", {"kind": "ServiceAccount", "name": "robot"}, "a"))
    assert allowed(authz, ALICE, "list", "pods", "a") and not allowed(authz, ALICE, "list", "pods", "b")
    assert allowed(authz, ALICE, "get", "pods", "a", sub="log") and not allowed(authz, ALICE, "get", "secrets", "a")
    assert not allowed(authz, ALICE, "create", "pods", "a") and not allowed(authz, ALICE, "list", "nodes")
    assert allowed(authz, BOB, "create", "deployments", "b", group="apps")
    assert allowed(authz, BOB, "create", "pods", "b", sub="exec") and not allowed(authz, BOB, "create", "roles", "b",
                                                                                  group=G)
    assert allowed(authz, SA, "get", "configmaps", "a", "one") and not allowed(authz, SA, "get", "configmaps", "a", "x")
    assert allowed(authz, SCHED, "create", "pods", "a", sub="binding") and not allowed(authz, SCHED, "delete", "pods",
                                                                                         "a")
    assert allowed(authz, User("root", groups=("system:masters",)), "delete", "nodes", name="n")
    # every authenticated user: discovery and self-reviews
    assert authz.authorize(Attributes(user=ALICE, verb="get", path="/apis/apps")).decision is Decision.ALLOW
    assert allowed(authz, ALICE, "create", "selfsubjectaccessreviews", group="authorization.k8s.io")
    with pytest.raises(errors.Forbidden, match='pods "p" is forbidden: User "alice" cannot delete resource "pods" in '
                                               'API group "" in the namespace "a"'):
        check(authz, Attributes(user=ALICE, verb="delete", resource="pods", namespace="a", name="p"))


async def test_escalation_prevention(api: tuple[Rest, modes.Authorizer]) -> None:
    rest, _ = api
    # bob may manage roles and bindings in namespace b (admin there), but holds only edit elsewhere
    await put(rest, binding("RoleBinding", "bob-admin", "ClusterRole", "admin", {"kind": "User", "name": "bob"}, "b"))
    ok = {"kind": "Role", "metadata": {"name": "ok", "namespace": "b"},
          "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}
    await put(rest, ok, BOB)
    bad = {"kind": "Role", "metadata": {"name": "bad", "namespace": "b"},
           "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}]}
    with pytest.raises(errors.Forbidden, match=r'user "bob" \(groups=\[\]\) is attempting to grant RBAC '
                                               r'permissions not currently held:\n'
                                               r'\{APIGroups:\[""\], Resources:\["nodes"\]'):
        await put(rest, bad, BOB)
    # binding a role whose rules bob holds is fine; cluster-admin is not, unless bob may `bind` it
    await put(rest, binding("RoleBinding", "x", "Role", "ok", {"kind": "User", "name": "carol"}, "b"), BOB)
    with pytest.raises(errors.Forbidden, match="attempting to grant RBAC permissions not currently held"):
        await put(rest, binding("RoleBinding", "y", "ClusterRole", "cluster-admin", {"kind": "User", "name": "c"},
                                "b"), BOB)
    await put(rest, {"kind": "ClusterRole", "metadata": {"name": "binder"},
                     "rules": [{"apiGroups": [G], "resources": ["clusterroles"], "verbs": ["bind"],
                                "resourceNames": ["cluster-admin"]}]})
    await put(rest, binding("ClusterRoleBinding", "bob-binder", "ClusterRole", "binder",
                            {"kind": "User", "name": "bob"}))
    await put(rest, binding("RoleBinding", "y", "ClusterRole", "cluster-admin", {"kind": "User", "name": "c"}, "b"),
              BOB)


async def test_impersonation_and_reviews(api: tuple[Rest, modes.Authorizer]) -> None:
    rest, authz = api
    await put(rest, {"kind": "ClusterRole", "metadata": {"name": "imp"},
                     "rules": [{"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"],
                                "resourceNames": ["alice"]}]})
    await put(rest, binding("ClusterRoleBinding", "bob-imp", "ClusterRole", "imp", {"kind": "User", "name": "bob"}))
    assert impersonate(authz, BOB, "alice", []) == User("alice")
    with pytest.raises(errors.Forbidden, match='users "carol" is forbidden: User "bob" cannot impersonate resource '
                                               '"users" in API group "" at the cluster scope'):
        impersonate(authz, BOB, "carol", [])
    with pytest.raises(errors.Forbidden, match='groups "system:masters" is forbidden'):
        impersonate(authz, BOB, "alice", ["system:masters"])
    assert impersonate(authz, BOB, None, []) is BOB
    from pybernetes.api.authorization.v1 import authorization_pb2 as az
    ssar = az.SelfSubjectAccessReview()
    ssar.spec.resource_attributes.verb, ssar.spec.resource_attributes.resource = "impersonate", "users"
    ssar.spec.resource_attributes.name = "alice"
    out = answer(authz, BOB, "selfsubjectaccessreviews", ssar.SerializeToString())
    assert isinstance(out, az.SelfSubjectAccessReview) and out.status.allowed and "bob-imp" in out.status.reason
    rr = az.SelfSubjectRulesReview()
    rr.spec.namespace = "a"
    rules = answer(authz, BOB, "selfsubjectrulesreviews", rr.SerializeToString())
    assert isinstance(rules, az.SelfSubjectRulesReview)
    assert any("users" in r.resources and "impersonate" in r.verbs for r in rules.status.resource_rules)
    assert any("/api/*" in r.non_resource_urls for r in rules.status.non_resource_rules)
    assert not rules.status.incomplete  # every authorizer in Node,RBAC lists its rules


def test_kubernetes_protobuf_envelope() -> None:
    from pybernetes.api.authorization.v1 import authorization_pb2 as az
    from services.apiserver.http import kubeproto

    ssar = az.SelfSubjectAccessReview()
    ssar.spec.resource_attributes.verb, ssar.spec.resource_attributes.resource = "get", "pods"
    body = kubeproto.wrap("authorization.k8s.io/v1", "SelfSubjectAccessReview", ssar.SerializeToString())
    assert body.startswith(b"k8s\x00")
    av, kind, raw = kubeproto.unwrap(body)
    assert (av, kind, az.SelfSubjectAccessReview.FromString(raw)) == ("authorization.k8s.io/v1",
                                                                      "SelfSubjectAccessReview", ssar)
    with pytest.raises(errors.BadRequest, match="starts with"):
        kubeproto.unwrap(b"{}")
    with pytest.raises(errors.BadRequest, match="cannot decode"):
        kubeproto.unwrap(b"k8s\x00\x0a\x7f")


def test_printing_columns_as_kubectl() -> None:
    from pybernetes.api import printing

    b = codec.parse_object({"apiVersion": f"{G}/v1", "kind": "RoleBinding",
                            "metadata": {"name": "x", "namespace": "a", "creationTimestamp": "2026-01-01T00:00:00Z"},
                            "subjects": [{"kind": "User", "apiGroup": G, "name": "alice"},
                                         {"kind": "Group", "apiGroup": G, "name": "dev"},
                                         {"kind": "User", "apiGroup": G, "name": "bob"},
                                         {"kind": "ServiceAccount", "name": "robot", "namespace": "a"}],
                            "roleRef": {"apiGroup": G, "kind": "ClusterRole", "name": "view"}})
    assert [c.name for c in printing.columns("rolebindings")] == ["Name", "Role", "Age", "Users", "Groups",
                                                                   "ServiceAccounts"]
    assert printing.cells("rolebindings", b, 1767225600 + 120) == ["x", "ClusterRole/view", "2m", "alice, bob", "dev",
                                                                    "a/robot"]
    r = codec.parse_object({"apiVersion": f"{G}/v1", "kind": "ClusterRole",
                            "metadata": {"name": "view", "creationTimestamp": "2026-01-01T00:00:00Z"}})
    assert printing.cells("clusterroles", r, 0) == ["view", "2026-01-01T00:00:00Z"]


async def test_subject_access_review(api: tuple[Rest, modes.Authorizer]) -> None:
    from pybernetes.api.authorization.v1 import authorization_pb2 as az

    rest, authz = api
    await put(rest, binding("RoleBinding", "alice-view", "ClusterRole", "view", {"kind": "User", "name": "alice"}, "a"))
    sar = az.SubjectAccessReview()
    sar.spec.user = "alice"
    ra = sar.spec.resource_attributes
    ra.verb, ra.resource, ra.namespace = "list", "pods", "a"
    out = answer(authz, User("root", groups=("system:masters",)), "subjectaccessreviews", sar.SerializeToString())
    assert isinstance(out, az.SubjectAccessReview) and out.status.allowed and "alice-view" in out.status.reason
    ra.namespace = "b"
    out = answer(authz, User("root", groups=("system:masters",)), "subjectaccessreviews", sar.SerializeToString())
    assert isinstance(out, az.SubjectAccessReview) and not out.status.allowed and not out.status.denied
    sar.spec.user = ""
    with pytest.raises(errors.Invalid, match="at least one of user or group must be specified"):
        answer(authz, ALICE, "subjectaccessreviews", sar.SerializeToString())
    ssar = az.SelfSubjectAccessReview()
    with pytest.raises(errors.Invalid, match="exactly one of nonResourceAttributes or resourceAttributes"):
        answer(authz, ALICE, "selfsubjectaccessreviews", ssar.SerializeToString())


async def test_kubelets_get_the_node_role_until_the_node_authorizer_exists(api: tuple[Rest, modes.Authorizer]) -> None:
    _, authz = api
    kubelet = User("system:node:n1", groups=("system:nodes",))
    assert allowed(authz, kubelet, "get", "secrets", "a", "s") and allowed(authz, kubelet, "update", "nodes",
                                                                           name="n1", sub="status")
    assert allowed(authz, kubelet, "watch", "pods") and allowed(authz, kubelet, "create", "leases", "kube-node-lease",
                                                                 group="coordination.k8s.io")
    assert not allowed(authz, kubelet, "list", "secrets", "a") and not allowed(authz, kubelet, "delete", "nodes",
                                                                               name="n2")
    assert not allowed(authz, User("system:node:n1"), "get", "secrets", "a", "s")  # the group, not the name


async def test_rules_review_through_a_wrapping_authorizer(api: tuple[Rest, modes.Authorizer]) -> None:
    """A wrapper that keeps the wrapped authorizer as `inner` (the audit's) still lets the rules be listed."""
    from pybernetes.api.authorization.v1 import authorization_pb2 as az
    from services.apiserver.authz import Result

    class Wrapper:
        def __init__(self, inner: modes.Authorizer) -> None:
            self.inner = inner

        def authorize(self, attrs: Attributes) -> Result:
            return self.inner.authorize(attrs)

    _, authz = api
    rr = az.SelfSubjectRulesReview()
    rr.spec.namespace = "a"
    out = answer(Wrapper(authz), ALICE, "selfsubjectrulesreviews", rr.SerializeToString())
    assert isinstance(out, az.SelfSubjectRulesReview) and not out.status.incomplete
    assert any("selfsubjectaccessreviews" in r.resources for r in out.status.resource_rules)
