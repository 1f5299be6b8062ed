"""The cluster's certificates, in one place: a CA and the apiserver's serving certificate, as kubeadm lays
them out under <pki-dir> (ca.crt, ca.key, apiserver.crt, apiserver.key; keys 0600).

`ensure_apiserver_pki` creates what is missing and reuses what is there (a serving certificate is re-issued
when its addresses no longer cover the ones asked for). The apiserver's HTTPS front door serves with it and
admin.conf carries the CA as certificate-authority-data. Client certificates will be issued here too.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_NAME = "kubernetes"  # kubeadm's CA common name
APISERVER_NAME = "kube-apiserver"
# Names in-cluster clients use for the apiserver, and the `kubernetes` Service's default ClusterIP.
CLUSTER_DNS_NAMES = ("kubernetes", "kubernetes.default", "kubernetes.default.svc",
                     "kubernetes.default.svc.cluster.local")
DEFAULT_SERVICE_IP = "10.96.0.1"
CA_DAYS = 3650
CERT_DAYS = 365

Key = ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class ServingPKI:
    ca_cert: Path
    cert: Path
    key: Path

    def ca_pem(self) -> bytes:
        return self.ca_cert.read_bytes()

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx


def _new_key() -> Key:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: Key) -> None:
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    _write(path, data, 0o600)


def _write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _load_key(path: Path) -> Key:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path}: expected an EC private key")
    return key


def _validity(days: int) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)  # tolerate a little clock skew
    return start, start + dt.timedelta(days=days)


def ensure_ca(pki_dir: Path) -> tuple[x509.Certificate, Key]:
    """The cluster CA from <pki_dir>/ca.{crt,key}, created when absent."""
    crt, key_path = pki_dir / "ca.crt", pki_dir / "ca.key"
    if crt.exists() and key_path.exists():
        return x509.load_pem_x509_certificate(crt.read_bytes()), _load_key(key_path)
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
    start, end = _validity(CA_DAYS)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    _write_key(key_path, key)
    _write(crt, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert, key


def serving_names(addresses: list[str]) -> tuple[list[str], list[str]]:
    """(DNS names, IP addresses) an apiserver serving certificate covers: loopback, the cluster names and
    the `kubernetes` Service IP, plus the host's own addresses (IPs or names) given."""
    dns = ["localhost", *CLUSTER_DNS_NAMES]
    ips = ["127.0.0.1", DEFAULT_SERVICE_IP]
    for a in addresses:
        if not a or a in ("0.0.0.0", "::"):
            continue
        try:
            ip = str(ipaddress.ip_address(a))
        except ValueError:
            if a not in dns:
                dns.append(a)
        else:
            if ip not in ips:
                ips.append(ip)
    return dns, ips


def _covers(cert: x509.Certificate, dns: list[str], ips: list[str]) -> bool:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    have_dns = set(san.get_values_for_type(x509.DNSName))
    have_ips = {str(i) for i in san.get_values_for_type(x509.IPAddress)}
    fresh = cert.not_valid_after_utc > dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    return fresh and set(dns) <= have_dns and set(ips) <= have_ips


def ensure_apiserver_pki(pki_dir: Path, addresses: list[str]) -> ServingPKI:
    """CA plus <pki_dir>/apiserver.{crt,key} for `addresses`; reused when present and still covering them."""
    ca_cert, ca_key = ensure_ca(pki_dir)
    crt, key_path = pki_dir / "apiserver.crt", pki_dir / "apiserver.key"
    dns, ips = serving_names(addresses)
    if crt.exists() and key_path.exists() and _covers(x509.load_pem_x509_certificate(crt.read_bytes()), dns, ips):
        return ServingPKI(pki_dir / "ca.crt", crt, key_path)
    key = _new_key()
    start, end = _validity(CERT_DAYS)
    san = x509.SubjectAlternativeName([*(x509.DNSName(d) for d in dns),
                                       *(x509.IPAddress(ipaddress.ip_address(i)) for i in ips)])
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, APISERVER_NAME)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .add_extension(san, critical=False)
            .sign(ca_key, hashes.SHA256()))
    _write_key(key_path, key)
    _write(crt, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return ServingPKI(pki_dir / "ca.crt", crt, key_path)
