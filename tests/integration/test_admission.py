"""The admission chain through a real apiserver (etcd, gRPC and HTTPS), with the serviceaccount and resourcequota
controllers running beside it: every plugin's refusal reaches the client as a 403 (NotFound for a missing
namespace, 422 for an invalid PodSecurity label) whose message names the plugin's cause as Kubernetes words it,
and quota status shows used/hard as the controller and admission keep it.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from pybernetes import errors
from pybernetes.api import codec
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.cache import InformerFactory
from pybernetes.client.client import Client
from pybernetes.events import EventRecorder
from services.apiserver.storage.embedded import EmbeddedEtcd
from services.controllers.resourcequota import ResourceQuotaController
from services.controllers.serviceaccount import ServiceAccountController
from tests.helpers import eventually
from tests.integration.conftest import ApiServer
from tests.integration.test_rest_kubectl import Kubectl

NODE_TOKEN = "node-1-token-for-admission-tests"


class Cluster:
    def __init__(self, srv: ApiServer) -> None:
        self.srv = srv
        self.admin = srv.client
        self.node = Client(srv.address, token=NODE_TOKEN, timeout=10, tls=srv.tls)

    async def http(self, method: str, path: str, body: Any = None, token: str | None = None,
                   content_type: str = "application/json") -> tuple[int, dict[str, Any], list[str]]:
        ctx = ssl.create_default_context(cafile=str(self.srv.cfg.data_dir / "pki" / "ca.crt"))
        headers = {"Authorization": f"Bearer {token or self.srv.token}", "Content-Type": content_type}
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as s, \
                s.request(method, f"https://localhost:{self.srv.cfg.secure_port}{path}", headers=headers,
                          data=json.dumps(body) if body is not None else None) as r:
            return r.status, await r.json(), r.headers.getall("Warning", [])


@pytest.fixture
async def cluster(etcd: EmbeddedEtcd, tmp_path: Path) -> AsyncIterator[Cluster]:
    """Kubernetes' default plugins and NodeRestriction (as kubeadm turns it on), a kubelet's token for node-1."""
    srv = ApiServer(etcd, tmp_path / "apiserver", disable_admission=(), enable_admission=("NodeRestriction",))
    srv.cfg.data_dir.mkdir(parents=True)
    (srv.cfg.data_dir / "tokens.csv").write_text(f'{NODE_TOKEN},system:node:node-1,node-1,"system:nodes"\n')
    await srv.start()
    client = srv.new_client(timeout=10)
    factory = InformerFactory(client)
    recorder = EventRecorder(client, "test", "test")
    controllers = [ServiceAccountController(client, factory, recorder),
                   ResourceQuotaController(client, factory, recorder)]
    factory.start()
    stop = asyncio.Event()
    tasks = [asyncio.create_task(c.run(stop)) for c in controllers]
    c = Cluster(srv)
    try:
        yield c
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await factory.shutdown()
        await c.node.close()
        await client.close()
        await srv.stop()


def pod(name: str, **spec: Any) -> core.Pod:
    body: dict[str, Any] = {"containers": [{"name": "c", "image": "nginx"}], **spec}
    out = codec.parse_object({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": body})
    assert isinstance(out, core.Pod)
    return out


async def namespace(c: Cluster, name: str, **labels: str) -> None:
    ns = core.Namespace()
    ns.metadata.name = name
    ns.metadata.labels.update(labels)
    await c.admin.create(ns)

    async def has_default_account() -> bool:
        try:
            await c.admin.get(core.ServiceAccount, "default", namespace=name)
        except errors.NotFound:
            return False
        return True

    await eventually(has_default_account, what=f"the default ServiceAccount of {name}")


async def forbidden(coro: Any, cls: type[errors.ApiError] = errors.Forbidden) -> str:
    with pytest.raises(cls) as e:
        await coro
    return e.value.message


async def test_each_plugin_refuses_with_its_reason(cluster: Cluster) -> None:
    c = cluster
    # NamespaceLifecycle
    code, status, _ = await c.http("DELETE", "/api/v1/namespaces/kube-system")
    assert (code, status["reason"], status["message"]) == (
        403, "Forbidden", 'namespaces "kube-system" is forbidden: this namespace may not be deleted')
    assert await forbidden(c.admin.create(pod("p"), namespace="nowhere"), errors.NotFound) == \
        'namespaces "nowhere" not found'
    # ServiceAccount: the controller made `default`; a missing account is refused
    await namespace(c, "team")
    created = await c.admin.create(pod("plain"), namespace="team")
    assert created.spec.service_account_name == "default"
    # DefaultTolerationSeconds
    assert [(t.key, t.toleration_seconds) for t in created.spec.tolerations] == [
        ("node.kubernetes.io/not-ready", 300), ("node.kubernetes.io/unreachable", 300)]
    assert await forbidden(c.admin.create(pod("robot", serviceAccountName="robot"), namespace="team")) == \
        'pods "robot" is forbidden: error looking up service account team/robot: serviceaccount "robot" not found'
    # LimitRanger, over HTTPS
    lr = {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "limits"},
          "spec": {"limits": [{"type": "Container", "max": {"cpu": "1"}}]}}
    code, _, _ = await c.http("POST", "/api/v1/namespaces/team/limitranges", lr)
    assert code == 201
    big = codec.to_dict(pod("big", containers=[{"name": "c", "image": "nginx", "resources": {"limits": {"cpu": "2"}}}]))
    code, status, _ = await c.http("POST", "/api/v1/namespaces/team/pods", {"apiVersion": "v1", "kind": "Pod", **big})
    assert (code, status["message"]) == (
        403, 'pods "big" is forbidden: maximum cpu usage per Container is 1, but limit is 2')
    defaulted = await c.admin.create(pod("small"), namespace="team")  # max is the default limit
    assert defaulted.spec.containers[0].resources.limits["cpu"].string == "1"


async def test_pod_with_admitted_service_account_takes_label_patches(cluster: Cluster) -> None:
    """ServiceAccount admission names the account on create; a later patch of metadata only (what `kubectl label`
    and the Python client send) must not read as a change of the spec (the deprecated serviceAccount alias)."""
    await namespace(cluster, "sa-patch")
    created = await cluster.admin.create(pod("web"), namespace="sa-patch")
    assert created.spec.service_account_name == created.spec.service_account == "default"
    for ctype, body in (("application/strategic-merge-patch+json", {"metadata": {"labels": {"tier": "web"}}}),
                        ("application/merge-patch+json", {"metadata": {"labels": {"team": "a"}}})):
        code, out, _ = await cluster.http("PATCH", "/api/v1/namespaces/sa-patch/pods/web", body, content_type=ctype)
        assert code == 200, (ctype, out)
    assert out["metadata"]["labels"] == {"tier": "web", "team": "a"} and out["spec"]["serviceAccount"] == "default"


async def test_pod_security_levels_and_warnings(cluster: Cluster) -> None:
    c = cluster
    await namespace(c, "base", **{"pod-security.kubernetes.io/enforce": "baseline",
                                  "pod-security.kubernetes.io/warn": "restricted"})
    assert await forbidden(c.admin.create(pod("host", hostNetwork=True), namespace="base")) == \
        'pods "host" is forbidden: violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true)'
    body = {"apiVersion": "v1", "kind": "Pod", **codec.to_dict(pod("ok"))}
    code, _, warnings = await c.http("POST", "/api/v1/namespaces/base/pods", body)
    assert code == 201
    assert len(warnings) == 1 and 'would violate PodSecurity \\"restricted:latest\\": allowPrivilegeEscalation' \
        in warnings[0]
    code, status, _ = await c.http("PATCH", "/api/v1/namespaces/base", {
        "metadata": {"labels": {"pod-security.kubernetes.io/enforce": "strict"}}},
        content_type="application/merge-patch+json")
    assert (code, status["reason"]) == (422, "Invalid")
    assert 'Invalid value: "strict": must be one of privileged, baseline, restricted' in status["message"]


async def test_node_restriction(cluster: Cluster) -> None:
    c = cluster
    n1, n2 = core.Node(), core.Node()
    n1.metadata.name, n2.metadata.name = "node-1", "node-2"
    await c.node.create(n1)  # a kubelet registers its own node
    assert await forbidden(c.node.create(n2)) == \
        'nodes "node-2" is forbidden: node "node-1" is not allowed to modify node "node-2"'
    code, status, _ = await c.http("PATCH", "/api/v1/nodes/node-1", {
        "metadata": {"labels": {"node-restriction.kubernetes.io/trusted": "yes"}}}, token=NODE_TOKEN,
        content_type="application/merge-patch+json")
    assert (code, status["message"]) == (
        403, 'nodes "node-1" is forbidden: is not allowed to modify labels: node-restriction.kubernetes.io/trusted')
    await c.admin.create(n2)
    theirs = await c.admin.create(pod("theirs", nodeName="node-2"), namespace="default")
    theirs.status.phase = "Running"
    assert await forbidden(c.node.update_status(theirs)) == \
        'pods "theirs" is forbidden: node "node-1" can only update pod status for pods with spec.nodeName set to itself'
    mine = await c.admin.create(pod("mine", nodeName="node-1"), namespace="default")
    mine.status.phase = "Running"
    assert (await c.node.update_status(mine)).status.phase == "Running"


async def test_resource_quota_status_and_refusal(cluster: Cluster, tmp_path: Path) -> None:
    c = cluster
    await namespace(c, "quota")
    q = codec.parse_object({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "compute"},
                            "spec": {"hard": {"pods": "2", "requests.cpu": "1"}}})
    await c.admin.create(q, namespace="quota")

    async def status(used: dict[str, str]) -> core.ResourceQuota | None:
        got = await c.admin.get(core.ResourceQuota, "compute", namespace="quota")
        seen = {k: v.string for k, v in got.status.used.items()}
        return got if seen == used and got.status.hard["pods"].string == "2" else None

    await eventually(lambda: status({"pods": "0", "requests.cpu": "0"}), what="the quota controller's first count")
    assert await forbidden(c.admin.create(pod("bare"), namespace="quota")) == \
        'pods "bare" is forbidden: failed quota: compute: must specify requests.cpu for: c'
    sized = {"containers": [{"name": "c", "image": "nginx", "resources": {"requests": {"cpu": "400m"}}}]}
    await c.admin.create(pod("a", **sized), namespace="quota")
    await c.admin.create(pod("b", **sized), namespace="quota")
    assert await forbidden(c.admin.create(pod("c", **sized), namespace="quota")) == \
        'pods "c" is forbidden: exceeded quota: compute, requested: pods=1,requests.cpu=400m, used: ' \
        "pods=2,requests.cpu=800m, limited: pods=2,requests.cpu=1"
    got = await eventually(lambda: status({"pods": "2", "requests.cpu": "800m"}), what="used pods=2")
    assert got.status.hard["requests.cpu"].string == "1"
    code, doc, _ = await c.http("GET", "/api/v1/namespaces/quota/resourcequotas/compute")
    assert code == 200 and doc["status"]["used"] == {"pods": "2", "requests.cpu": "800m"}
    kubectl = Kubectl(c.srv, tmp_path / "home")
    _, out, _ = await kubectl.run("get", "quota", "-n", "quota")
    assert out.splitlines()[0].split() == ["NAME", "AGE", "REQUEST", "LIMIT"]
    assert "pods: 2/2, requests.cpu: 800m/1" in out.splitlines()[1]
    rc, _, err = await kubectl.run("run", "d", "-n", "quota", "--image=nginx", "--overrides",
                                   json.dumps({"spec": sized}), ok=False)
    assert rc == 1 and 'Error from server (Forbidden): pods "d" is forbidden: exceeded quota: compute' in err
    await c.admin.delete(core.Pod, "a", namespace="quota", grace_period_seconds=0)
    await eventually(lambda: status({"pods": "1", "requests.cpu": "400m"}), what="the deleted pod given back")
    await c.admin.create(pod("c", **sized), namespace="quota")
