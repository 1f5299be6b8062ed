"""pybernetes.tls: the CA and the apiserver's serving certificate, laid out as kubeadm does and reused."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

from cryptography import x509

from pybernetes import pkiutil, tls


def _san(path: Path) -> tuple[set[str], set[str]]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(san.get_values_for_type(x509.DNSName)), {str(i) for i in san.get_values_for_type(x509.IPAddress)}


def test_creates_ca_and_serving_cert_with_cluster_names(tmp_path: Path) -> None:
    pki = pkiutil.ensure_apiserver_pki(tmp_path / "pki", ["10.0.0.5", "node1.example"])
    assert {p.name for p in (tmp_path / "pki").iterdir()} == {"ca.crt", "ca.key", "apiserver.crt", "apiserver.key"}
    for key in ("ca.key", "apiserver.key"):
        assert stat.S_IMODE((tmp_path / "pki" / key).stat().st_mode) == 0o600
    dns, ips = _san(pki.cert)
    assert {"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local", "node1.example"} <= dns
    assert {"127.0.0.1", "10.96.0.1", "10.0.0.5"} <= ips
    ca = x509.load_pem_x509_certificate(pki.ca_pem())
    x509.load_pem_x509_certificate(pki.cert.read_bytes()).verify_directly_issued_by(ca)
    pki.server_context()  # loads as a server chain


def test_reused_when_present_and_reissued_for_new_addresses(tmp_path: Path) -> None:
    first = pkiutil.ensure_apiserver_pki(tmp_path, ["10.0.0.5"])
    ca, crt = first.ca_pem(), first.cert.read_bytes()
    again = pkiutil.ensure_apiserver_pki(tmp_path, ["10.0.0.5"])
    assert again.ca_pem() == ca and again.cert.read_bytes() == crt
    third = pkiutil.ensure_apiserver_pki(tmp_path, ["10.0.0.6"])
    assert third.ca_pem() == ca  # the CA stays; only the serving certificate is re-issued
    assert third.cert.read_bytes() != crt
    assert "10.0.0.6" in _san(third.cert)[1]


def test_serving_names_skip_wildcards_and_duplicates() -> None:
    _dns, ips = tls.serving_names(["0.0.0.0", "127.0.0.1", "::1"])
    assert ips.count("127.0.0.1") == 1 and str(ipaddress.ip_address("::1")) in ips
    assert "0.0.0.0" not in ips
