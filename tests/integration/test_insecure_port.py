"""The bench/test-only plaintext ports on a real apiserver: with security off (--insecure-grpc-port,
--insecure-port, --anonymous-auth=true, --authorization-mode=AlwaysAllow, as bench/security.py runs its
baseline) the API works over plaintext gRPC and plain HTTP as system:anonymous, and the listener says so
loudly in its log; with the default authentication and authorization the same plaintext port is no bypass
(no credentials: 401; anonymous under RBAC: 403; a bearer token names its user)."""

from __future__ import annotations

import logging
from pathlib import Path

import aiohttp
import pytest

from pybernetes import errors
from pybernetes.api import codec
from pybernetes.api.authentication.v1 import authentication_pb2 as authn
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.client.client import Client
from services.apiserver.auth import ANONYMOUS_USER, UNAUTHENTICATED_GROUP
from services.apiserver.storage.embedded import EmbeddedEtcd
from tests.integration.conftest import ApiServer, free_port

pytestmark = pytest.mark.integration


def pod(name: str) -> core.Pod:
    return codec.from_dict({"metadata": {"name": name, "namespace": "default"},
                            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}, core.Pod)


def with_plaintext(etcd: EmbeddedEtcd, data: Path, *, security_off: bool) -> ApiServer:
    srv = ApiServer(etcd, data)
    srv.cfg.insecure_grpc_port, srv.cfg.insecure_port = free_port(), free_port()
    if security_off:
        srv.cfg.anonymous_auth, srv.cfg.authorization_mode = True, ["AlwaysAllow"]
    return srv


async def test_security_off_serves_the_api_over_plaintext(
        etcd: EmbeddedEtcd, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="pybernetes.apiserver")
    srv = with_plaintext(etcd, tmp_path / "apiserver", security_off=True)
    await srv.start()
    try:
        warned = [r.getMessage() for r in caplog.records if "INSECURE" in r.getMessage()]
        assert any(f"gRPC API without TLS address=127.0.0.1:{srv.cfg.insecure_grpc_port}" in m for m in warned)
        assert any(f"REST API without TLS address=http://127.0.0.1:{srv.cfg.insecure_port}" in m for m in warned)
        async with Client(f"127.0.0.1:{srv.cfg.insecure_grpc_port}") as plain:  # no TLS, no credentials
            me = (await plain.create(authn.SelfSubjectReview())).status.user_info
            assert (me.username, list(me.groups)) == (ANONYMOUS_USER, [UNAUTHENTICATED_GROUP])
            created = await plain.create(pod("over-grpc"))
            assert created.metadata.uid
            assert (await plain.get(core.Pod, "over-grpc", namespace="default")).metadata.uid == created.metadata.uid
        base = f"http://127.0.0.1:{srv.cfg.insecure_port}"
        body = dict(codec.to_dict(pod("over-http")), apiVersion="v1", kind="Pod")
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{base}/api/v1/namespaces/default/pods", json=body) as r:
                assert r.status == 201, await r.text()
            async with http.get(f"{base}/api/v1/namespaces/default/pods") as r:
                assert r.status == 200
                names = {p["metadata"]["name"] for p in (await r.json())["items"]}
        assert names == {"over-grpc", "over-http"}
        # The secure ports are unchanged: the admin's mTLS client sees the same pods.
        assert {p.metadata.name for p in (await srv.client.list(core.Pod, namespace="default")).items} == names
    finally:
        await srv.stop()


async def test_plaintext_port_is_no_bypass_of_authentication_or_authorization(
        etcd: EmbeddedEtcd, tmp_path: Path) -> None:
    srv = with_plaintext(etcd, tmp_path / "apiserver", security_off=False)
    await srv.start()
    target = f"127.0.0.1:{srv.cfg.insecure_grpc_port}"
    try:
        async with Client(target) as nobody:
            with pytest.raises(errors.Unauthorized, match="credentials are required"):
                await nobody.create(pod("refused"))
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{srv.cfg.insecure_port}/api/v1/namespaces/default/pods") as r:
                assert r.status == 401
        async with Client(target, token=srv.token) as admin:  # a bearer token still names its user
            assert (await admin.create(pod("by-token"))).metadata.name == "by-token"
    finally:
        await srv.stop()
    srv.cfg.anonymous_auth = True  # anonymous, but RBAC still decides: system:anonymous may not create pods
    await srv.start()
    try:
        async with Client(target) as anonymous:
            with pytest.raises(errors.Forbidden, match=ANONYMOUS_USER):
                await anonymous.create(pod("forbidden"))
    finally:
        await srv.stop()
