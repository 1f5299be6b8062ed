"""pybernetes.secureserving: who a client certificate names, kube's 401/403 wording, the always-allowed health
paths, and the SubjectAccessReview cache (a fake API client; tests/integration/test_metrics_auth.py runs it for
real over TLS)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from pybernetes import pkiutil, tls
from pybernetes.api.authorization.v1 import authorization_pb2 as authz_api
from pybernetes.secureserving import Caller, Decision, SecureServing, SubjectAccessReviewer, secure_serving


def der(pair: tls.CertPair) -> bytes:
    """The client certificate as the handshake hands it over (ssl's getpeercert(binary_form=True))."""
    return pair.load().public_bytes(serialization.Encoding.DER)


class FakeClient:
    def __init__(self, allowed: set[str]) -> None:
        self.allowed = allowed
        self.asked: list[authz_api.SubjectAccessReview] = []

    async def create(self, sar: authz_api.SubjectAccessReview) -> authz_api.SubjectAccessReview:
        self.asked.append(sar)
        out = authz_api.SubjectAccessReview()
        out.CopyFrom(sar)
        out.status.allowed = bool(set(sar.spec.groups) & self.allowed) or sar.spec.user in self.allowed
        if not out.status.allowed:
            out.status.reason = "no RBAC policy matched"
        return out


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    pkiutil.ensure_ca(tmp_path)
    return tmp_path


def serving(pki: Path, client: Any) -> SecureServing:
    s = secure_serving(client_ca=pki / "ca.crt", authorize=SubjectAccessReviewer(client), common_name="t",
                       addresses=["127.0.0.1"])
    assert s is not None
    return s


async def test_health_paths_need_no_certificate(pki: Path) -> None:
    s = serving(pki, FakeClient(set()))
    for path in ("/healthz", "/livez", "/readyz"):
        assert await s.check(None, "GET", path) is None


async def test_no_certificate_is_401_as_kube_words_it(pki: Path) -> None:
    s = serving(pki, FakeClient(set()))
    for peer in (None, b""):
        refused = await s.check(peer, "GET", "/metrics")
        assert refused is not None
        code, body = refused
        assert code == 401
        assert json.loads(body) == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                    "message": "Unauthorized", "reason": "Unauthorized", "details": {}, "code": 401}


async def test_certificate_names_the_user_and_groups_and_rbac_decides(pki: Path) -> None:
    client = FakeClient({"system:monitoring"})
    s = serving(pki, client)
    nobody = der(pkiutil.ensure_client_cert(pki, "nobody", "nobody", ["team-a"]))
    refused = await s.check(nobody, "GET", "/metrics")
    assert refused is not None and refused[0] == 403
    status = json.loads(refused[1])
    assert status["reason"] == "Forbidden" and status["code"] == 403
    assert status["message"] == 'forbidden: User "nobody" cannot get path "/metrics": no RBAC policy matched'
    sar = client.asked[0]
    assert (sar.spec.user, list(sar.spec.groups)) == ("nobody", ["team-a"])
    assert (sar.spec.non_resource_attributes.path, sar.spec.non_resource_attributes.verb) == ("/metrics", "get")
    assert not sar.spec.HasField("resource_attributes")
    prom = der(pkiutil.ensure_client_cert(pki, "prometheus", "prometheus", ["system:monitoring"]))
    assert await s.check(prom, "GET", "/metrics") is None


async def test_an_authorization_error_is_500_not_a_denial(pki: Path) -> None:
    async def broken(caller: Caller, verb: str, path: str) -> Decision:
        raise ConnectionError("apiserver unreachable")
    s = secure_serving(client_ca=pki / "ca.crt", authorize=broken, common_name="t")
    assert s is not None
    who = der(pkiutil.ensure_client_cert(pki, "prometheus", "prometheus", ["system:monitoring"]))
    refused = await s.check(who, "GET", "/metrics")
    assert refused is not None and refused[0] == 500
    assert "apiserver unreachable" in json.loads(refused[1])["message"]


async def test_reviews_are_cached_allowed_and_denied_until_their_ttl() -> None:
    client = FakeClient({"system:monitoring"})
    now = [0.0]
    r = SubjectAccessReviewer(client, allow_ttl=10, deny_ttl=5, clock=lambda: now[0])
    prom, nobody = Caller("prometheus", ("system:monitoring",)), Caller("nobody")
    for _ in range(3):
        assert (await r(prom, "get", "/metrics")).allowed
        assert not (await r(nobody, "get", "/metrics")).allowed
    assert r.reviews == 2
    assert (await r(prom, "get", "/metrics/slis")).allowed  # another path: another review
    assert r.reviews == 3
    now[0] = 6.0  # the denial expired, the allowance not yet
    await r(prom, "get", "/metrics")
    await r(nobody, "get", "/metrics")
    assert r.reviews == 4


def test_without_a_client_ca_there_is_no_secure_serving(pki: Path) -> None:
    assert secure_serving(client_ca=None, authorize=None, common_name="t") is None
    with pytest.raises(ValueError, match="kubeconfig"):
        secure_serving(client_ca=pki / "ca.crt", authorize=None, common_name="t")
    pair = pkiutil.ensure_cert(pki, "s", common_name="s", server=True, ips=["127.0.0.1"])
    with pytest.raises(ValueError, match="go together"):
        secure_serving(client_ca=pki / "ca.crt", authorize=SubjectAccessReviewer(None), cert_file=pair.cert,
                       common_name="t")


def test_self_signed_serving_certificate_leaves_no_file(pki: Path) -> None:
    import tempfile

    before = set(Path(tempfile.gettempdir()).glob("pb-serving-*"))
    s = secure_serving(client_ca=pki / "ca.crt", authorize=SubjectAccessReviewer(None), common_name="kube-x",
                       addresses=["10.0.0.5"])
    assert s is not None
    assert set(Path(tempfile.gettempdir()).glob("pb-serving-*")) == before  # it lives in the context only
