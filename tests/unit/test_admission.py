"""The admission chain (services/apiserver/admission) through Rest over the real Store on an in-memory etcd.

Each plugin's refusal as Kubernetes words it, naming the plugin's cause; what the mutating plugins add; the
chain's order and its --enable/--disable-admission-plugins resolution.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from google.protobuf.message import Message

from pybernetes import errors
from pybernetes.api import codec, kinds
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.meta.v1 import meta_pb2 as meta
from services.apiserver import admission
from services.apiserver.admission.chain import Chain
from services.apiserver.admission.defaulttolerationseconds import DefaultTolerationSeconds
from services.apiserver.admission.limitranger import LimitRanger
from services.apiserver.admission.namespacelifecycle import NamespaceLifecycle
from services.apiserver.admission.noderestriction import NodeRestriction
from services.apiserver.admission.podsecurity import PodSecurity
from services.apiserver.admission.resourcequota import ResourceQuota
from services.apiserver.admission.serviceaccount import ServiceAccount
from services.apiserver.auth import User
from services.apiserver.options import ADMISSION_PLUGINS, enabled_admission_plugins
from services.apiserver.registry import strategy
from services.apiserver.rest import Rest
from services.apiserver.storage.store import Store
from tests.unit.etcd_fake import FakeEtcd

ADMIN = User("system:admin", groups=("system:masters",))
NODE1 = User("system:node:node-1", groups=("system:nodes",))


@dataclass
class Api:
    rest: Rest
    store: Store

    async def create(self, obj: Message | dict[str, Any], namespace: str = "default", user: User | None = ADMIN,
                     dry_run: bool = False) -> Any:
        msg = codec.parse_object(obj) if isinstance(obj, dict) else obj
        info = kinds.for_message(msg)
        return await self.rest.create(info.plural, namespace if info.namespaced else "", msg.SerializeToString(),
                                      dry_run=dry_run, user=user)


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    store = Store(FakeEtcd(), {i.plural: strategy.fields_fn(i) for i in kinds.RESOURCES}, bookmark_interval=3600)
    store.start()
    # Every plugin, the ServiceAccount one without its wait for a `default` account still to be created.
    chain = Chain([NamespaceLifecycle(store), LimitRanger(store), ServiceAccount(store, retry_interval=(0, 0)),
                   NodeRestriction(), PodSecurity(store), DefaultTolerationSeconds(300, 300), ResourceQuota(store)])
    a = Api(Rest(store, admission=chain), store)
    for name in ("default", "kube-system"):
        await a.create(ns(name))
    await a.create(sa("default"))
    yield a
    await store.stop()


def ns(name: str, **labels: str) -> core.Namespace:
    n = core.Namespace()
    n.metadata.name = name
    n.metadata.labels.update(labels)
    return n


def sa(name: str) -> core.ServiceAccount:
    s = core.ServiceAccount()
    s.metadata.name = name
    return s


def pod(name: str = "p", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"containers": [{"name": "c", "image": "nginx"}]}
    body.update(spec)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": body}


def resources(requests: dict[str, str] | None = None, limits: dict[str, str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if requests:
        out["requests"] = requests
    if limits:
        out["limits"] = limits
    return out


async def refused(coro: Any, cls: type[errors.ApiError] = errors.Forbidden) -> str:
    with pytest.raises(cls) as e:
        await coro
    return e.value.message


# -- the chain -------------------------------------------------------------------------------------

def test_default_plugins_in_kubernetes_order() -> None:
    assert tuple(admission.ORDERED) == ADMISSION_PLUGINS  # every flag name has its plugin, in the same order
    assert enabled_admission_plugins() == ["NamespaceLifecycle", "LimitRanger", "ServiceAccount", "PodSecurity",
                                           "DefaultTolerationSeconds", "ResourceQuota"]
    assert enabled_admission_plugins(["NodeRestriction"], ["ServiceAccount,PodSecurity"]) == [
        "NamespaceLifecycle", "LimitRanger", "NodeRestriction", "DefaultTolerationSeconds", "ResourceQuota"]


def test_unknown_or_contradictory_plugin_flags_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown admission plugins: AlwaysDeny"):
        enabled_admission_plugins(["AlwaysDeny"])
    with pytest.raises(ValueError, match="LimitRanger in both"):
        enabled_admission_plugins(["LimitRanger"], ["LimitRanger"])


def test_the_apiserver_flag_names_the_bad_plugin() -> None:
    from services.apiserver.main import parse_args
    with pytest.raises(SystemExit):
        parse_args(["--enable-admission-plugins=Bogus"])
    assert parse_args(["--disable-admission-plugins=ServiceAccount,ResourceQuota"]).disable_admission_plugins == [
        "ServiceAccount", "ResourceQuota"]


# -- NamespaceLifecycle ----------------------------------------------------------------------------

async def test_no_create_in_a_missing_namespace(api: Api) -> None:
    msg = await refused(api.create(pod(), "nowhere"), errors.NotFound)
    assert msg == 'namespaces "nowhere" not found'


async def test_no_create_in_a_terminating_namespace(api: Api) -> None:
    await api.create(ns("going"))
    await api.create(sa("default"), "going")
    await api.rest.delete("namespaces", "", "going", meta.DeleteOptions())
    msg = await refused(api.create(pod(), "going"))
    assert msg == 'pods "p" is forbidden: unable to create new content in namespace going because it is being ' \
                  "terminated"


async def test_system_namespaces_cannot_be_deleted(api: Api) -> None:
    msg = await refused(api.rest.delete("namespaces", "", "kube-system", meta.DeleteOptions()))
    assert msg == 'namespaces "kube-system" is forbidden: this namespace may not be deleted'


# -- LimitRanger -----------------------------------------------------------------------------------

def limit_range(**item: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "limits"},
            "spec": {"limits": [{"type": "Container", **item}]}}


async def test_limit_range_defaults_fill_containers(api: Api) -> None:
    await api.create(limit_range(default={"cpu": "500m", "memory": "128Mi"}, defaultRequest={"cpu": "100m"}))
    p = await api.create(pod())
    r = p.spec.containers[0].resources
    assert {k: v.string for k, v in r.limits.items()} == {"cpu": "500m", "memory": "128Mi"}
    # defaultRequest falls back to the default limit (SetDefaults_LimitRangeItem)
    assert {k: v.string for k, v in r.requests.items()} == {"cpu": "100m", "memory": "128Mi"}
    assert p.metadata.annotations["kubernetes.io/limit-ranger"] == \
        "LimitRanger plugin set: cpu, memory request for container c; cpu, memory limit for container c"


async def test_limit_range_max_and_min(api: Api) -> None:
    await api.create(limit_range(max={"cpu": "1"}, min={"memory": "64Mi"}))
    big = pod(containers=[{"name": "c", "image": "nginx",
                           "resources": resources({"memory": "128Mi"}, {"cpu": "2", "memory": "128Mi"})}])
    assert await refused(api.create(big)) == 'pods "p" is forbidden: maximum cpu usage per Container is 1, but ' \
                                             "limit is 2"
    small = pod(containers=[{"name": "c", "image": "nginx",
                             "resources": resources({"memory": "32Mi"}, {"cpu": "2", "memory": "32Mi"})}])
    assert await refused(api.create(small)) == (
        'pods "p" is forbidden: [minimum memory usage per Container is 64Mi, but request is 32Mi, '
        "maximum cpu usage per Container is 1, but limit is 2]")


async def test_limit_range_validation(api: Api) -> None:
    msg = await refused(api.create(limit_range(min={"cpu": "2"}, max={"cpu": "1"})), errors.Invalid)
    assert 'spec.limits[0].min[cpu]: Invalid value: "2": min value 2 is greater than max value 1' in msg


# -- ServiceAccount --------------------------------------------------------------------------------

async def test_pods_run_as_the_default_account(api: Api) -> None:
    assert (await api.create(pod())).spec.service_account_name == "default"


async def test_a_missing_account_is_refused(api: Api) -> None:
    msg = await refused(api.create(pod(serviceAccountName="robot")))
    assert msg == 'pods "p" is forbidden: error looking up service account default/robot: serviceaccount "robot" ' \
                  "not found"
    await api.create(ns("fresh"))  # no serviceaccount controller here: `default` never comes
    msg = await refused(api.create(pod(), "fresh"))
    assert msg == 'pods "p" is forbidden: error looking up service account fresh/default: serviceaccount ' \
                  '"default" not found'


# -- DefaultTolerationSeconds ----------------------------------------------------------------------

NOT_READY = {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
             "tolerationSeconds": 300}
UNREACHABLE = {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
               "tolerationSeconds": 300}


async def test_pods_tolerate_node_outages_for_300s(api: Api) -> None:
    p = await api.create(pod())
    assert codec.to_dict(p)["spec"]["tolerations"] == [NOT_READY, UNREACHABLE]


async def test_existing_toleration_not_duplicated(api: Api) -> None:
    p = await api.create(pod(tolerations=[{**NOT_READY, "tolerationSeconds": 60}]))
    assert codec.to_dict(p)["spec"]["tolerations"] == [{**NOT_READY, "tolerationSeconds": 60}, UNREACHABLE]


async def test_tolerate_everything_adds_nothing(api: Api) -> None:
    p = await api.create(pod(tolerations=[{"operator": "Exists"}]))
    assert codec.to_dict(p)["spec"]["tolerations"] == [{"operator": "Exists"}]


# -- PodSecurity -----------------------------------------------------------------------------------

ENFORCE = "pod-security.kubernetes.io/enforce"


async def secured(api: Api, name: str, **labels: str) -> None:
    await api.create(ns(name, **labels))
    await api.create(sa("default"), name)


async def test_baseline_refuses_privileged_and_host_namespaces(api: Api) -> None:
    await secured(api, "base", **{ENFORCE: "baseline"})
    bad = pod(hostNetwork=True, containers=[{"name": "c", "image": "nginx",
                                             "securityContext": {"privileged": True}}])
    assert await refused(api.create(bad, "base")) == (
        'pods "p" is forbidden: violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true), '
        'privileged (container "c" must not set securityContext.privileged=true)')
    await api.create(pod(), "base")  # a plain pod meets baseline


async def test_restricted_names_every_failed_check(api: Api) -> None:
    await secured(api, "strict", **{ENFORCE: "restricted", "pod-security.kubernetes.io/enforce-version": "v1.30"})
    assert await refused(api.create(pod(), "strict")) == (
        'pods "p" is forbidden: violates PodSecurity "restricted:v1.30": allowPrivilegeEscalation != false '
        '(container "c" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities '
        '(container "c" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or '
        'container "c" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container "c" must set '
        'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")')
    ok = pod(securityContext={"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
             containers=[{"name": "c", "image": "nginx", "securityContext": {
                 "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}])
    await api.create(ok, "strict")


async def test_warn_mode_and_workloads_warn_without_refusing(api: Api) -> None:
    await secured(api, "warned", **{"pod-security.kubernetes.io/warn": "baseline", ENFORCE: "baseline"})
    with admission.warnings() as warned:
        await api.create(pod(hostPID=True, name="ok"), "default")
        assert warned == []
        deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                  "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {
                      "metadata": {"labels": {"a": "b"}}, "spec": {"hostPID": True, "containers": [
                          {"name": "c", "image": "nginx"}]}}}}
        await api.create(deploy, "warned")
    assert warned == ['would violate PodSecurity "baseline:latest": host namespaces (hostPID=true)']


async def test_an_unknown_level_is_invalid(api: Api) -> None:
    msg = await refused(api.create(ns("odd", **{ENFORCE: "strict"})), errors.Invalid)
    assert msg == 'namespaces "odd" is invalid: metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: ' \
                  '"strict": must be one of privileged, baseline, restricted'


# -- ResourceQuota ---------------------------------------------------------------------------------

async def quota(api: Api, hard: dict[str, str], used: dict[str, str], name: str = "compute") -> None:
    """A quota as the quota controller leaves it: status.hard from spec, status.used counted."""
    q = core.ResourceQuota()
    q.metadata.name = name
    for k, v in hard.items():
        q.spec.hard[k].string = v
    await api.create(q)
    cur = await api.rest.get("resourcequotas", "default", name)
    assert isinstance(cur, core.ResourceQuota)
    for k, v in hard.items():
        cur.status.hard[k].string = v
    for k, v in used.items():
        cur.status.used[k].string = v
    await api.rest.update("resourcequotas", "default", cur.SerializeToString(), "status")


async def used(api: Api, name: str = "compute") -> dict[str, str]:
    q = await api.rest.get("resourcequotas", "default", name)
    assert isinstance(q, core.ResourceQuota)
    return {k: v.string for k, v in q.status.used.items()}


async def test_quota_refuses_a_pod_over_it_and_charges_the_ones_under(api: Api) -> None:
    await quota(api, {"pods": "2", "count/configmaps": "5"}, {"pods": "1", "count/configmaps": "0"})
    await api.create(pod("a"))
    assert await used(api) == {"pods": "2", "count/configmaps": "0"}
    assert await refused(api.create(pod("b"))) == \
        'pods "b" is forbidden: exceeded quota: compute, requested: pods=1, used: pods=2, limited: pods=2'
    await api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}})
    assert (await used(api))["count/configmaps"] == "1"


async def test_quota_on_cpu_needs_requests_and_sums_them(api: Api) -> None:
    await quota(api, {"requests.cpu": "1", "limits.memory": "1Gi"}, {"requests.cpu": "0", "limits.memory": "0"})
    msg = await refused(api.create(pod()))
    assert msg == 'pods "p" is forbidden: failed quota: compute: must specify limits.memory for: c; ' \
                  "requests.cpu for: c"
    sized = pod("s", containers=[{"name": "c", "image": "nginx",
                                  "resources": resources({"cpu": "600m"}, {"memory": "512Mi"})}])
    await api.create(sized)
    assert await used(api) == {"requests.cpu": "600m", "limits.memory": "512Mi"}
    sized["metadata"]["name"] = "t"
    assert await refused(api.create(sized)) == (
        'pods "t" is forbidden: exceeded quota: compute, requested: requests.cpu=600m, used: requests.cpu=600m, '
        "limited: requests.cpu=1")


async def test_dry_run_charges_nothing(api: Api) -> None:
    await quota(api, {"pods": "1"}, {"pods": "0"})
    await api.create(pod(), dry_run=True)
    assert await used(api) == {"pods": "0"}


# -- NodeRestriction -------------------------------------------------------------------------------

def node(name: str, **labels: str) -> core.Node:
    n = core.Node()
    n.metadata.name = name
    n.metadata.labels.update(labels)
    return n


async def test_a_node_writes_only_its_own_node(api: Api) -> None:
    await api.create(node("node-1"), user=NODE1)
    assert await refused(api.create(node("node-2"), user=NODE1)) == \
        'nodes "node-2" is forbidden: node "node-1" is not allowed to modify node "node-2"'
    await api.create(node("node-2"))  # the admin may
    patch = b'{"metadata":{"labels":{"node-restriction.kubernetes.io/trusted":"yes"}}}'
    msg = await refused(api.rest.patch("nodes", "", "node-1", "merge", patch, user=NODE1))
    assert msg == 'nodes "node-1" is forbidden: is not allowed to modify labels: node-restriction.kubernetes.io/trusted'
    await api.rest.patch("nodes", "", "node-1", "merge", b'{"metadata":{"labels":{"disk":"ssd"}}}', user=NODE1)
    msg = await refused(api.create(node("node-1", **{"node-restriction.kubernetes.io/x": "y"}), user=NODE1))
    assert msg == 'nodes "node-1" is forbidden: node "node-1" is not allowed to set the following labels: ' \
                  "node-restriction.kubernetes.io/x"


async def test_a_node_touches_only_its_own_pods(api: Api) -> None:
    mine = await api.create(pod("mine", nodeName="node-1"))
    theirs = await api.create(pod("theirs", nodeName="node-2"))
    mine.status.phase = "Running"
    await api.rest.update("pods", "default", mine.SerializeToString(), "status", user=NODE1)
    theirs.status.phase = "Running"
    msg = await refused(api.rest.update("pods", "default", theirs.SerializeToString(), "status", user=NODE1))
    assert msg == 'pods "theirs" is forbidden: node "node-1" can only update pod status for pods with spec.nodeName ' \
                  "set to itself"
    msg = await refused(api.rest.delete("pods", "default", "theirs", meta.DeleteOptions(), NODE1))
    assert msg == 'pods "theirs" is forbidden: node "node-1" can only delete pods with spec.nodeName set to itself'
    msg = await refused(api.create(pod("new", nodeName="node-1"), user=NODE1))
    assert msg == 'pods "new" is forbidden: pod does not have "kubernetes.io/config.mirror" annotation, node ' \
                  '"node-1" can only create mirror pods'
    mirror = pod("static", nodeName="node-1")
    mirror["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "hash"}
    assert (await api.create(mirror, user=NODE1)).spec.service_account_name == ""
    _, gone = await api.rest.delete("pods", "default", "mine", meta.DeleteOptions(grace_period_seconds=0), NODE1)
    assert gone


async def test_a_node_renews_only_its_own_lease(api: Api) -> None:
    await api.create(ns("kube-node-lease"))
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "node-2"}}
    msg = await refused(api.create(lease, "kube-node-lease", user=NODE1))
    assert msg == 'leases.coordination.k8s.io "node-2" is forbidden: can only access node lease with the same name ' \
                  "as the requesting node"
    lease["metadata"]["name"] = "node-1"
    await api.create(lease, "kube-node-lease", user=NODE1)


async def test_concurrent_creates_cannot_both_take_the_last_unit(api: Api) -> None:
    await quota(api, {"pods": "3"}, {"pods": "0"})
    results = await asyncio.gather(*(api.create(pod(f"p{i}")) for i in range(6)), return_exceptions=True)
    refusals = [r for r in results if isinstance(r, errors.Forbidden)]
    assert len(refusals) == 3 and all("exceeded quota: compute" in r.message for r in refusals)
    assert await used(api) == {"pods": "3"}


async def test_tightening_a_namespace_warns_of_the_pods_already_there(api: Api) -> None:
    await secured(api, "team")
    await api.create(pod("host", hostNetwork=True), "team")
    cur = await api.rest.get("namespaces", "", "team")
    cur.metadata.labels[ENFORCE] = "baseline"
    with admission.warnings() as warned:
        await api.rest.update("namespaces", "", cur.SerializeToString(), user=ADMIN)
    assert warned == ['existing pods in namespace "team" violate the new PodSecurity enforce level "baseline:latest"',
                      "host: host namespaces"]
