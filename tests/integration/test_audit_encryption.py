"""The audit log and encryption at rest on a real apiserver over a real etcd.

Every request the test makes, over gRPC and over HTTPS, allowed (200/201), unauthenticated (401) and denied
(403), appears in the audit log with its user, verb, objectRef and code; Secrets are logged at Metadata only.
With --encryption-provider-config, etcd holds a Secret as `k8s:enc:aescbc:v1:key1:` + ciphertext while
pbctl shows its data; after a new key is put first and the Secrets rewritten (`pbctl get secrets -A -o json`
into `pbctl apply -f`), etcd holds them under the new key and the old one can go."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from pybernetes import errors
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.rbac.v1 import rbac_pb2 as rbac
from pybernetes.client.client import Client
from services.apiserver.audit.policy import LAB_POLICY
from services.apiserver.auth import ensure_admin_token
from services.apiserver.storage.embedded import EmbeddedEtcd
from services.apiserver.storage.etcd import EtcdClient
from tests.helpers import eventually
from tests.integration.conftest import ApiServer
from tests.integration.test_pbctl import Pbctl

pytestmark = pytest.mark.integration

KEY = b"/registry/secrets/default/db"
PLAIN = b"s3cr3t-hunter2"


def encryption_config(path: Path, *keys: tuple[str, bytes]) -> Path:
    doc = {"kind": "EncryptionConfiguration", "apiVersion": "apiserver.config.k8s.io/v1",
           "resources": [{"resources": ["secrets"],
                          "providers": [{"aescbc": {"keys": [{"name": n, "secret": base64.b64encode(k).decode()}
                                                             for n, k in keys]}},
                                        {"identity": {}}]}]}
    path.write_text(yaml.safe_dump(doc))
    return path


async def raw(etcd: EmbeddedEtcd, key: bytes) -> bytes:
    """The value etcd itself holds (what `etcdctl get` prints)."""
    client = EtcdClient([etcd.endpoint])
    try:
        kv = await client.get(key)
    finally:
        await client.close()
    assert kv is not None
    return kv.value


def audit_events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def find(events: list[dict[str, Any]], *, verb: str, resource: str, code: int, user: str | None = None,
         name: str | None = None) -> dict[str, Any]:
    for e in events:
        ref = e.get("objectRef", {})
        if (e["stage"] == "ResponseComplete" and e["verb"] == verb and ref.get("resource") == resource
                and e["responseStatus"]["code"] == code and (user is None or e["user"].get("username") == user)
                and (name is None or ref.get("name") == name)):
            return e
    raise AssertionError(f"no audit event verb={verb} resource={resource} code={code} user={user}:\n"
                         + "\n".join(json.dumps(e) for e in events))


@pytest.fixture
async def server(etcd: EmbeddedEtcd, tmp_path: Path) -> Any:
    srv = ApiServer(etcd, tmp_path / "apiserver")
    data = srv.cfg.data_dir
    data.mkdir(parents=True)
    ensure_admin_token(data / "tokens.csv")
    with (data / "tokens.csv").open("a") as f:
        f.write("viewer-token,viewer,u-viewer,\n")
    policy = tmp_path / "audit-policy.yaml"
    # The lab's policy, all stages, and first a rule only the viewer's reads of ConfigMaps match (a user is
    # known only after authentication: the level must not be decided before).
    viewer_rule = {"level": "RequestResponse", "users": ["viewer"],
                   "resources": [{"group": "", "resources": ["configmaps"]}]}
    policy.write_text(yaml.safe_dump({**LAB_POLICY, "omitStages": [], "rules": [viewer_rule, *LAB_POLICY["rules"]]}))
    srv.cfg.audit_log_path = str(tmp_path / "audit" / "audit.log")
    srv.cfg.audit_policy_file = policy
    srv.cfg.encryption_provider_config = encryption_config(tmp_path / "enc.yaml", ("key1", os.urandom(32)))
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


async def test_every_request_is_audited_and_secrets_are_ciphertext(server: ApiServer, etcd: EmbeddedEtcd,
                                                                   tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    c = server.client
    s = core.Secret()
    s.metadata.name, s.metadata.namespace = "db", "default"
    s.data["password"] = PLAIN
    await c.create(s)  # gRPC, 201
    stored = await raw(etcd, KEY)
    assert stored.startswith(b"k8s:enc:aescbc:v1:key1:") and PLAIN not in stored
    assert base64.b64encode(PLAIN) not in stored
    cm = core.ConfigMap()
    cm.metadata.name, cm.metadata.namespace = "settings", "default"
    cm.data["k"] = "plain"
    await c.create(cm)
    assert b"plain" in await raw(etcd, b"/registry/configmaps/default/settings")  # only Secrets are encrypted

    kubeconfig = server.write_kubeconfig(tmp_path / "pbconfig")
    pbctl = Pbctl(kubeconfig, capsys)
    got = await pbctl.json("get", "secret", "db")  # REST or gRPC, whichever pbctl speaks: decrypted
    assert base64.b64decode(got["data"]["password"]) == PLAIN

    ctx = ssl.create_default_context(cafile=str(server.cfg.data_dir / "pki" / "ca.crt"))
    base = f"https://localhost:{server.cfg.secure_port}"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as http:
        admin = {"Authorization": f"Bearer {server.token}", "User-Agent": "audit-test/1"}
        async with http.get(f"{base}/api/v1/namespaces/default/configmaps/settings", headers=admin) as r:
            assert r.status == 200
        async with http.get(f"{base}/api/v1/namespaces/default/pods/nope", headers=admin) as r:
            assert r.status == 404
        async with http.get(f"{base}/api/v1/namespaces/default/secrets", headers={"Authorization": "Bearer bad"}) as r:
            assert r.status == 401
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
               "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
        async with http.post(f"{base}/api/v1/namespaces/default/pods", headers=admin, json=pod) as r:
            assert r.status == 201
        async with http.get(f"{base}/api/v1/namespaces/default/pods?watch=1&timeoutSeconds=1", headers=admin) as r:
            assert r.status == 200
            await r.read()
    async with Client(server.address, token="bad", timeout=10, tls=server.tls) as anon:
        with pytest.raises(errors.Unauthorized):
            await anon.get(core.ConfigMap, "settings", namespace="default")
    rb = rbac.RoleBinding()  # the viewer may read in default (Kubernetes' `view` role), not snapshot etcd
    rb.metadata.name, rb.metadata.namespace = "viewer-view", "default"
    rb.role_ref.api_group, rb.role_ref.kind, rb.role_ref.name = "rbac.authorization.k8s.io", "ClusterRole", "view"
    rb.subjects.add(kind="User", name="viewer", api_group="rbac.authorization.k8s.io")
    await c.create(rb)
    async with Client(server.address, token="viewer-token", timeout=10, tls=server.tls) as viewer:
        with pytest.raises(errors.Forbidden):
            async for _ in viewer.etcd_snapshot():
                pass
        await eventually(lambda: viewer.get(core.ConfigMap, "settings", namespace="default"), timeout=10,
                         what="the viewer's binding in effect")
    # The streams through the audit interceptor: a watch (server-streaming) and an exec (bidirectional).
    async for _ in c.watch(core.ConfigMap, namespace="default", timeout_seconds=1):
        break
    with pytest.raises(errors.NotFound):
        async for _ in c.pod_exec("default", "nope", ["true"]):
            pass
    await server.stop()  # flushes the log
    events = audit_events(Path(server.cfg.audit_log_path))

    e = find(events, verb="create", resource="secrets", code=201, user="system:admin", name="db")
    assert e["user"]["groups"] == ["system:masters"] and e["objectRef"]["namespace"] == "default"
    assert e["level"] == "Metadata" and "requestObject" not in e  # Secrets never above Metadata
    assert all(PLAIN.decode() not in json.dumps(ev) and base64.b64encode(PLAIN).decode() not in json.dumps(ev)
               for ev in events)
    find(events, verb="get", resource="secrets", code=200, name="db")  # pbctl's read
    e = find(events, verb="get", resource="configmaps", code=200, name="settings", user="system:admin")
    assert e["userAgent"] == "audit-test/1" and e["sourceIPs"] == ["127.0.0.1"]
    assert e["requestURI"] == "/api/v1/namespaces/default/configmaps/settings"
    assert e["annotations"]["authorization.k8s.io/decision"] == "allow"
    e = find(events, verb="get", resource="pods", code=404, name="nope")
    assert e["responseStatus"]["reason"] == "NotFound"
    e = find(events, verb="list", resource="secrets", code=401)
    assert e["user"] == {} and e["responseStatus"]["reason"] == "Unauthorized" and e["responseStatus"]["message"]
    e = find(events, verb="create", resource="pods", code=201, user="system:admin")
    assert e["level"] == "Request" and e["requestObject"]["metadata"]["name"] == "web"
    stages = [ev["stage"] for ev in events if ev["auditID"] == e["auditID"]]
    assert stages == ["RequestReceived", "ResponseComplete"]
    e = find(events, verb="watch", resource="pods", code=200)
    assert [ev["stage"] for ev in events if ev["auditID"] == e["auditID"]] == \
        ["RequestReceived", "ResponseStarted", "ResponseComplete"]
    find(events, verb="get", resource="configmaps", code=401)  # gRPC with a bad token
    e = next(ev for ev in events if ev["requestURI"].endswith("/EtcdSnapshot") and ev["stage"] == "ResponseComplete")
    assert e["responseStatus"]["code"] == 403 and e["user"]["username"] == "viewer"
    assert e["responseStatus"]["reason"] == "Forbidden" and "etcd snapshot" in e["responseStatus"]["message"]
    e = find(events, verb="get", resource="configmaps", code=200, user="viewer", name="settings")
    assert e["level"] == "RequestResponse" and e["responseObject"]["data"] == {"k": "plain"}
    assert all(ev["apiVersion"] == "audit.k8s.io/v1" and ev["kind"] == "Event" for ev in events)


async def test_rotation_rewrites_secrets_under_the_new_key(server: ApiServer, etcd: EmbeddedEtcd, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    s = core.Secret()
    s.metadata.name, s.metadata.namespace = "db", "default"
    s.data["password"] = PLAIN
    await server.client.create(s)
    old = yaml.safe_load(server.cfg.encryption_provider_config.read_text())  # type: ignore[union-attr]
    key1 = base64.b64decode(old["resources"][0]["providers"][0]["aescbc"]["keys"][0]["secret"])
    key2 = os.urandom(32)
    # 1. the new key first, the old one still there to read; restart.
    encryption_config(tmp_path / "enc.yaml", ("key2", key2), ("key1", key1))
    await server.restart()
    pbctl = Pbctl(server.write_kubeconfig(tmp_path / "pbconfig"), capsys)
    assert base64.b64decode((await pbctl.json("get", "secret", "db"))["data"]["password"]) == PLAIN
    assert (await raw(etcd, KEY)).startswith(b"k8s:enc:aescbc:v1:key1:")
    # 2. rewrite every Secret: read them all and write them back unchanged.
    listing = tmp_path / "secrets.json"
    listing.write_text(await pbctl.ok("get", "secrets", "-A", "-o", "json"))
    await pbctl.ok("apply", "-f", str(listing))
    assert (await raw(etcd, KEY)).startswith(b"k8s:enc:aescbc:v1:key2:")
    # 3. the old key can go.
    encryption_config(tmp_path / "enc.yaml", ("key2", key2))
    await server.restart()
    got = await server.client.get(core.Secret, "db", namespace="default")
    assert got.data["password"] == PLAIN
    # A key missing for stored data is a clear error, not a crash.
    encryption_config(tmp_path / "enc.yaml", ("key3", os.urandom(32)))
    await server.restart()
    with pytest.raises(errors.InternalError, match="key2"):
        await server.client.get(core.Secret, "db", namespace="default")
    await asyncio.sleep(0)
