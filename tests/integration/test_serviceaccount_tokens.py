"""ServiceAccount tokens against a real apiserver and etcd: a TokenRequest (REST through the official Python
client, and gRPC) bound to a pod; the token authenticates over HTTPS; deleting the pod or the ServiceAccount,
or the token expiring, makes it 401. The pod's kube-api-access volume as kubectl and pbctl describe it."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.message import Message

from pbctl.main import run as pbctl
from pybernetes import errors
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.kinds import ResourceInfo
from pybernetes.api.rbac.v1 import rbac_pb2 as rbac
from services.apiserver.auth import Credentials
from services.apiserver.serviceaccount import claims as cl
from services.apiserver.serviceaccount import tokens
from services.apiserver.storage.embedded import EmbeddedEtcd
from tests.helpers import eventually
from tests.integration.conftest import ApiServer
from tests.integration.test_rest_kubectl import Kubectl

kubernetes = pytest.importorskip("kubernetes")
from kubernetes import client as k8s  # noqa: E402
from kubernetes import config as k8s_config  # noqa: E402

pytestmark = pytest.mark.integration
NS = "team"


@pytest.fixture
async def https_apiserver(etcd: EmbeddedEtcd, tmp_path: Path) -> AsyncIterator[ApiServer]:
    """An apiserver with Kubernetes' default admission plugins: the ServiceAccount plugin, which the shared
    fixture turns off, is what gives a pod its token volume."""
    srv = ApiServer(etcd, tmp_path / "apiserver", disable_admission=())
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


def https_get(srv: ApiServer, path: str, token: str) -> tuple[int, Any]:
    """GET over HTTPS with `token`, trusting the apiserver's CA, as an in-cluster client does."""
    ctx = ssl.create_default_context(cafile=str(srv.cfg.data_dir / "pki" / "ca.crt"))
    req = urllib.request.Request(srv.https_server + path, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


async def status_of(srv: ApiServer, token: str) -> int:
    for _ in range(50):  # a 403 only until RBAC's cache has the account's RoleBinding (setup)
        code, _ = await asyncio.to_thread(https_get, srv, f"/api/v1/namespaces/{NS}/pods", token)
        if code != 403:
            break
        await asyncio.sleep(0.1)
    return code


async def setup(srv: ApiServer) -> core.Pod:
    c = srv.client
    ns = core.Namespace()
    ns.metadata.name = NS
    await c.create(ns)
    sa = core.ServiceAccount()
    sa.metadata.name = "robot"
    await c.create(sa, namespace=NS)
    rb = rbac.RoleBinding()  # the account may read its namespace (Kubernetes' `view`)
    rb.metadata.name = "robot-view"
    rb.role_ref.api_group, rb.role_ref.kind, rb.role_ref.name = "rbac.authorization.k8s.io", "ClusterRole", "view"
    rb.subjects.add(kind="ServiceAccount", name="robot", namespace=NS)
    await c.create(rb, namespace=NS)
    pod = core.Pod()
    pod.metadata.name = "web"
    pod.spec.service_account_name = "robot"
    pod.spec.containers.add(name="c", image="busybox")
    return await c.create(pod, namespace=NS)


async def test_token_request_over_rest_authenticates_until_the_pod_is_deleted(https_apiserver: ApiServer) -> None:
    srv = https_apiserver
    pod = await setup(srv)
    api = k8s_config.new_client_from_config(config_file=str(srv.admin_conf))
    try:
        body = k8s.AuthenticationV1TokenRequest(spec=k8s.V1TokenRequestSpec(
            audiences=[], expiration_seconds=600,
            bound_object_ref=k8s.V1BoundObjectReference(kind="Pod", api_version="v1", name="web",
                                                        uid=pod.metadata.uid)))
        tr = await asyncio.to_thread(k8s.CoreV1Api(api).create_namespaced_service_account_token, "robot", NS, body)
    finally:
        api.close()
    token = tr.status.token
    # The pod got the token volume at create: its ServiceAccount exists.
    assert [v.name[:16] for v in pod.spec.volumes] == ["kube-api-access-"]
    assert [m.mount_path for m in pod.spec.containers[0].volume_mounts] == [
        "/var/run/secrets/kubernetes.io/serviceaccount"]
    assert tr.spec.expiration_seconds == 600 and tr.spec.audiences == [tokens.DEFAULT_ISSUER]
    # Who the token names, checked with the apiserver's own keys against the live objects.
    sa = await srv.client.get(core.ServiceAccount, "robot", namespace=NS)

    async def lookup(info: ResourceInfo, namespace: str, name: str) -> Message | None:
        try:
            return await srv.client.get(info.cls, name, namespace=namespace)
        except errors.NotFound:
            return None

    keys = tokens.load_keys(srv.cfg.data_dir / "pki")
    user = await tokens.ServiceAccountAuthenticator(keys.verifying, lookup).authenticate(
        Credentials(authorization=f"Bearer {token}"))
    assert user is not None and user.name == "system:serviceaccount:team:robot" and user.uid == sa.metadata.uid
    assert "system:serviceaccounts:team" in user.groups
    code, doc = await asyncio.to_thread(https_get, srv, f"/api/v1/namespaces/{NS}/pods", token)
    assert code == 200 and [p["metadata"]["name"] for p in doc["items"]] == ["web"]
    assert await status_of(srv, "not-a-token") == 401

    await srv.client.delete(core.Pod, "web", namespace=NS)  # unscheduled: gone at once

    async def refused() -> bool:
        return await status_of(srv, token) == 401
    await eventually(refused, 10)
    _, doc = await asyncio.to_thread(https_get, srv, f"/api/v1/namespaces/{NS}/pods", token)
    assert doc["reason"] == "Unauthorized" and "pod team/web not found" in doc["message"]


async def test_token_over_grpc_is_refused_once_the_service_account_is_deleted(https_apiserver: ApiServer) -> None:
    srv = https_apiserver
    await setup(srv)
    tr = await srv.client.create_token(NS, "robot")  # not bound: valid while the account lives
    assert tr.spec.expiration_seconds == 3600 and tr.status.token
    assert await status_of(srv, tr.status.token) == 200
    with pytest.raises(errors.Invalid, match="less than 10 minutes"):
        await srv.client.create_token(NS, "robot", expiration_seconds=60)
    with pytest.raises(errors.NotFound):
        await srv.client.create_token(NS, "nobody")
    await srv.client.delete(core.ServiceAccount, "robot", namespace=NS)

    async def refused() -> bool:
        return await status_of(srv, tr.status.token) == 401
    await eventually(refused, 10)


async def test_expired_token_is_401(https_apiserver: ApiServer) -> None:
    srv = https_apiserver
    await setup(srv)
    sa = await srv.client.get(core.ServiceAccount, "robot", namespace=NS)
    keys = tokens.load_keys(Path(srv.cfg.data_dir / "pki"))
    # Signed by the apiserver's own key, but issued two hours ago for one hour.
    then = tokens.TokenIssuer(keys.signing, clock=lambda: time.time() - 7200)
    old, _ = then.issue(NS, cl.Ref("robot", sa.metadata.uid), [tokens.DEFAULT_ISSUER], 3600)
    code, doc = await asyncio.to_thread(https_get, srv, f"/api/v1/namespaces/{NS}/pods", old)
    assert code == 401 and "expired" in doc["message"]
    fresh, _ = tokens.TokenIssuer(keys.signing).issue(NS, cl.Ref("robot", sa.metadata.uid),
                                                      [tokens.DEFAULT_ISSUER], 3600)
    assert await status_of(srv, fresh) == 200



async def test_pbctl_and_kubectl_describe_the_token_volume_alike(https_apiserver: ApiServer, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """The kube-api-access volume the pod got at create, as real kubectl's describe shows it and pbctl's the same."""
    srv = https_apiserver
    pod = await setup(srv)
    name = pod.spec.volumes[0].name
    cfg = tmp_path / "pbconfig"
    srv.write_kubeconfig(cfg)
    capsys.readouterr()
    assert await pbctl(["--config", str(cfg), "describe", "pod", "web", "-n", NS]) == 0
    ours = capsys.readouterr().out
    _, theirs, _ = await Kubectl(srv, tmp_path / "home").run("describe", "pod", "web", "-n", NS)

    def volumes(text: str) -> list[list[str]]:
        section = text[text.index("\nVolumes:"):text.index("\nQoS Class:")]
        return [line.split() for line in section.strip().splitlines()]

    assert volumes(theirs) == [["Volumes:"], [f"{name}:"],
                               ["Type:", "Projected", "(a", "volume", "that", "contains", "injected", "data", "from",
                                "multiple", "sources)"],
                               ["TokenExpirationSeconds:", "3607"], ["ConfigMapName:", "kube-root-ca.crt"],
                               ["Optional:", "false"], ["DownwardAPI:", "true"]], theirs
    assert volumes(ours) == volumes(theirs), ours
