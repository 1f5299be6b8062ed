"""etcd's and the kubelet API's certificates and who they let in: the etcd PKI as kubeadm lays it out, the etcd
client's https endpoints (the CA required, http and https not mixed, one certificate name per channel), the
kubelet's self-signed certificate, and the kubelet API's authorization of a verified client certificate."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from node_agent.server import KubeletAPI
from pybernetes import errors, pkiutil, tls
from services.apiserver.storage.etcd import EtcdClient, EtcdTLS, _target, _tls_name, secure


def _sans(pair: tls.CertPair) -> tuple[list[str], list[str]]:
    san = pair.load().extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.DNSName), [str(i) for i in san.get_values_for_type(x509.IPAddress)]


def test_etcd_pki_as_kubeadm(tmp_path: Path) -> None:
    pki = pkiutil.ensure_etcd_pki(tmp_path, ["172.30.0.10"], name="control-plane")
    etcd_ca = x509.load_pem_x509_certificate((tmp_path / "etcd" / "ca.crt").read_bytes())
    assert pki.ca == tmp_path / "etcd" / "ca.crt"
    assert tls.identity(etcd_ca.public_bytes(serialization.Encoding.DER))[0] == tls.ETCD_CA_NAME
    for pair in (pki.server, pki.peer):
        assert pair.load().issuer == etcd_ca.subject
        assert _sans(pair) == (["localhost"], ["127.0.0.1", "172.30.0.10"])
        usages = set(pair.load().extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
        assert usages == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}  # peers dial too
    assert pki.client.cert == tmp_path / "apiserver-etcd-client.crt"
    assert pki.client.load().issuer == etcd_ca.subject  # etcd's CA, not the cluster's
    assert tls.identity(pki.client.der()) == (tls.ETCD_CLIENT_NAME, (tls.MASTERS_GROUP,))
    for key in (tmp_path / "etcd" / "ca.key", pki.server.key, pki.peer.key, pki.client.key):
        assert key.stat().st_mode & 0o077 == 0
    again = pkiutil.ensure_etcd_pki(tmp_path, ["172.30.0.10"], name="control-plane")
    assert again.server.cert.read_bytes() == pki.server.cert.read_bytes()  # reused


def test_etcd_client_endpoints() -> None:
    assert not secure(["http://127.0.0.1:2379"]) and secure(["https://127.0.0.1:2379", "https://10.0.0.2:2379"])
    with pytest.raises(ValueError, match="mix http:// and https://"):
        secure(["http://127.0.0.1:2379", "https://127.0.0.1:12379"])
    with pytest.raises(ValueError, match="--etcd-cafile"):
        EtcdClient(["https://127.0.0.1:2379"])
    # A target per member the client can be pinned to (it moves on when a call fails: one pick_first channel
    # stayed on a hung member for a minute). One host: each lists every address from its member on (pick_first
    # skips a refusing one), its certificate checked for that host; several hosts over TLS: a channel each (a
    # certificate names its own host).
    one = _target(["https://127.0.0.1:2379", "https://127.0.0.1:12379"])
    assert one == ["ipv4:127.0.0.1:2379,127.0.0.1:12379", "ipv4:127.0.0.1:12379,127.0.0.1:2379"]
    assert _tls_name(one[0]) == "127.0.0.1"
    assert _target(["https://10.0.0.1:2379", "https://10.0.0.2:2379"]) == ["10.0.0.1:2379", "10.0.0.2:2379"]
    assert _target(["http://10.0.0.1:2379", "http://10.0.0.2:2379", "http://10.0.0.3:2379"]) == [
        "ipv4:10.0.0.1:2379,10.0.0.2:2379,10.0.0.3:2379", "ipv4:10.0.0.2:2379,10.0.0.3:2379,10.0.0.1:2379",
        "ipv4:10.0.0.3:2379,10.0.0.1:2379,10.0.0.2:2379"]
    assert _target(["http://127.0.0.1:2379"]) == ["127.0.0.1:2379"]
    assert _tls_name("etcd.example:2379") == "etcd.example"
    assert EtcdTLS(Path("ca.crt")).client is None


def test_kubelet_self_signed_certificate(tmp_path: Path) -> None:
    dns, ips = tls.serving_names(["node-1", "172.30.0.11"], cluster_names=False)
    pair = pkiutil.ensure_self_signed(tmp_path, "kubelet", "node-1", dns, ips)
    cert = pair.load()
    assert cert.issuer == cert.subject and _sans(pair) == (["localhost", "node-1"], ["127.0.0.1", "172.30.0.11"])
    assert pair.key.stat().st_mode & 0o077 == 0
    again = pkiutil.ensure_self_signed(tmp_path, "kubelet", "node-1", dns, ips)
    assert again.cert.read_bytes() == pair.cert.read_bytes()
    moved = pkiutil.ensure_self_signed(tmp_path, "kubelet", "node-1", dns, ["127.0.0.1", "172.30.0.99"])
    assert ipaddress.ip_address("172.30.0.99") in moved.load().extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value.get_values_for_type(x509.IPAddress)


class _Context:
    def __init__(self, pem: bytes | None = None, token: str = "") -> None:
        self.pem, self.token = pem, token

    def auth_context(self) -> dict[str, list[bytes]]:
        return {"x509_pem_cert": [self.pem]} if self.pem else {}

    def invocation_metadata(self) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {self.token}")] if self.token else []


def _api(**kw: Any) -> KubeletAPI:
    return KubeletAPI(None, "", **kw)  # type: ignore[arg-type]  # _check never reaches the CRI


def test_kubelet_api_lets_in_only_the_apiserver(tmp_path: Path) -> None:
    api = _api(client_certs=True)
    apiserver = pkiutil.ensure_kubelet_client_cert(tmp_path)
    admin = pkiutil.ensure_client_cert(tmp_path, "admin", "kubernetes-admin", (tls.MASTERS_GROUP,))
    node = pkiutil.ensure_client_cert(tmp_path, "node-2", "system:node:node-2", (tls.NODES_GROUP,))
    api._check(_Context(apiserver.cert.read_bytes()))
    api._check(_Context(admin.cert.read_bytes()))
    with pytest.raises(errors.Forbidden, match="user=system:node:node-2"):
        api._check(_Context(node.cert.read_bytes()))
    with pytest.raises(errors.Unauthorized):
        api._check(_Context(None, token="anything"))  # with a client CA, tokens do not count
    # Without a client CA: the token file's tokens only; with neither, no one.
    _api(tokens=frozenset({"t"}))._check(_Context(token="t"))
    with pytest.raises(errors.Unauthorized):
        _api(tokens=frozenset({"t"}))._check(_Context(token="u"))
    with pytest.raises(errors.Unauthorized, match="accepts no one"):
        _api()._check(_Context(token="t"))
