"""Making the cluster's certificates and keys, laid out as kubeadm does under <pki-dir> (pybernetes.tls lists
the files), after kubeadm's pkiutil.

Keys are EC P-256, written 0600 and never logged. `ensure_*` create what is missing and reuse what is there; a
certificate is re-issued when it expires within a day or no longer covers the names asked for. `inventory`
lists a pki dir's certificates with their CAs and `renew` re-issues one with the same subject, SANs and usages
(`pbctl certs check-expiration` / `renew`). This is the module that imports the cryptography package, so that
the components, which only load what it made, do not (pybernetes.certinfo).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pybernetes.tls import (
    APISERVER_NAME,
    CA_DAYS,
    CA_NAME,
    CERT_DAYS,
    ETCD_CA_NAME,
    ETCD_CLIENT_NAME,
    KUBELET_CLIENT_NAME,
    MASTERS_GROUP,
    CertPair,
    ServingPKI,
    identity,
    serving_names,
    write_file,
)

Key = ec.EllipticCurvePrivateKey


def _new_key() -> Key:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: Key) -> None:
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    write_file(path, data, 0o600)


def load_key(path: Path) -> Key:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path}: expected an EC private key")
    return key


def _validity(days: int) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)  # tolerate a little clock skew
    return start, start + dt.timedelta(days=days)


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                         data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=False,
                         encipher_only=False, decipher_only=False)


def ensure_ca(pki_dir: Path, stem: str = "ca", common_name: str = CA_NAME) -> tuple[x509.Certificate, Key]:
    """A CA from <pki_dir>/<stem>.{crt,key} (e.g. "ca", "etcd/ca"), created when absent."""
    crt, key_path = pki_dir / f"{stem}.crt", pki_dir / f"{stem}.key"
    if crt.exists() and key_path.exists():
        return x509.load_pem_x509_certificate(crt.read_bytes()), load_key(key_path)
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start, end = _validity(CA_DAYS)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_key_usage(ca=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    _write_key(key_path, key)
    write_file(crt, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert, key


def _subject(cert: x509.Certificate) -> tuple[str, tuple[str, ...]]:
    return identity(cert.public_bytes(serialization.Encoding.DER))


def _still_good(cert: x509.Certificate, ca: x509.Certificate, cn: str, orgs: Sequence[str],
                dns: Sequence[str], ips: Sequence[str]) -> bool:
    if cert.issuer != ca.subject or _subject(cert) != (cn, tuple(orgs)):
        return False
    if cert.not_valid_after_utc <= dt.datetime.now(dt.UTC) + dt.timedelta(days=1):
        return False
    if not dns and not ips:
        return True
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    have_ips = {str(i) for i in san.get_values_for_type(x509.IPAddress)}
    return set(dns) <= set(san.get_values_for_type(x509.DNSName)) and set(ips) <= have_ips


def ensure_cert(pki_dir: Path, stem: str, *, ca_stem: str = "ca", common_name: str,
                organizations: Sequence[str] = (), server: bool = False, client: bool = False,
                dns: Sequence[str] = (), ips: Sequence[str] = (), days: int = CERT_DAYS,
                force: bool = False) -> CertPair:
    """<pki_dir>/<stem>.{crt,key} signed by the CA at <ca_stem>, reused while still valid for the same subject
    and names (`force` re-issues: `pbctl certs renew`). The CA must exist (`ensure_ca`)."""
    pair = CertPair(pki_dir / f"{stem}.crt", pki_dir / f"{stem}.key")
    ca_cert = x509.load_pem_x509_certificate((pki_dir / f"{ca_stem}.crt").read_bytes())
    if not force and pair.cert.exists() and pair.key.exists() and _still_good(
            pair.load(), ca_cert, common_name, organizations, dns, ips):
        return pair
    ca_key = load_key(pki_dir / f"{ca_stem}.key")
    key = _new_key()
    start, end = _validity(days)
    name = x509.Name([*(x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    usages = (([ExtendedKeyUsageOID.SERVER_AUTH] if server else [])
              + ([ExtendedKeyUsageOID.CLIENT_AUTH] if client else []))
    b = (x509.CertificateBuilder().subject_name(name).issuer_name(ca_cert.subject).public_key(key.public_key())
         .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(_key_usage(ca=False), critical=True)
         .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False))
    if dns or ips:
        b = b.add_extension(x509.SubjectAlternativeName(
            [*(x509.DNSName(d) for d in dns), *(x509.IPAddress(ipaddress.ip_address(i)) for i in ips)]),
            critical=False)
    cert = b.sign(ca_key, hashes.SHA256())
    _write_key(pair.key, key)
    write_file(pair.cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return pair


def ensure_client_cert(pki_dir: Path, stem: str, user: str, groups: Sequence[str] = (), *,
                       ca_stem: str = "ca", force: bool = False) -> CertPair:
    """A client certificate for `user` in `groups` (CN and O, as Kubernetes' x509 authenticator reads them)."""
    ensure_ca(pki_dir, ca_stem, CA_NAME if ca_stem == "ca" else ETCD_CA_NAME)
    return ensure_cert(pki_dir, stem, ca_stem=ca_stem, common_name=user, organizations=groups, client=True,
                       force=force)


def ensure_apiserver_pki(pki_dir: Path, addresses: Sequence[str]) -> ServingPKI:
    """CA plus <pki_dir>/apiserver.{crt,key} for `addresses`; reused when present and still covering them."""
    ensure_ca(pki_dir)
    dns, ips = serving_names(addresses)
    pair = ensure_cert(pki_dir, "apiserver", common_name=APISERVER_NAME, server=True, dns=dns, ips=ips)
    return ServingPKI(pki_dir / "ca.crt", pair.cert, pair.key)


def ensure_service_account_key(pki_dir: Path) -> tuple[Path, Path]:
    """<pki_dir>/sa.key (0600) and sa.pub: the key pair ServiceAccount tokens are signed and verified with."""
    key_path, pub_path = pki_dir / "sa.key", pki_dir / "sa.pub"
    if not key_path.exists():
        _write_key(key_path, _new_key())
    if not pub_path.exists():
        pub = load_key(key_path).public_key().public_bytes(serialization.Encoding.PEM,
                                                           serialization.PublicFormat.SubjectPublicKeyInfo)
        write_file(pub_path, pub, 0o644)
    return key_path, pub_path


def expiry(path: Path) -> dt.datetime:
    """When the certificate at `path` stops being valid (`pbctl certs check-expiration`)."""
    return x509.load_pem_x509_certificate(path.read_bytes()).not_valid_after_utc


@dataclass(frozen=True)
class EtcdPKI:
    """etcd's certificates as kubeadm lays them out: its own CA, the members' serving and peer certificates,
    and the apiserver's client certificate (the only client etcd accepts: --client-cert-auth on etcd/ca)."""
    ca: Path
    server: CertPair
    peer: CertPair
    client: CertPair


def ensure_etcd_pki(pki_dir: Path, addresses: Sequence[str] = (), name: str = "etcd") -> EtcdPKI:
    """etcd/ca, etcd/server and etcd/peer (CN `name`, SANs localhost, 127.0.0.1 and `addresses`; both server and
    client usage, as kubeadm issues them: peers dial each other with them) and apiserver-etcd-client."""
    ensure_ca(pki_dir, "etcd/ca", ETCD_CA_NAME)
    dns, ips = serving_names(addresses, cluster_names=False)
    server = ensure_cert(pki_dir, "etcd/server", ca_stem="etcd/ca", common_name=name, server=True, client=True,
                         dns=dns, ips=ips)
    peer = ensure_cert(pki_dir, "etcd/peer", ca_stem="etcd/ca", common_name=name, server=True, client=True,
                       dns=dns, ips=ips)
    client = ensure_client_cert(pki_dir, "apiserver-etcd-client", ETCD_CLIENT_NAME, (MASTERS_GROUP,),
                                ca_stem="etcd/ca")
    return EtcdPKI(pki_dir / "etcd" / "ca.crt", server, peer, client)


def ensure_kubelet_client_cert(pki_dir: Path) -> CertPair:
    """apiserver-kubelet-client: the apiserver's identity towards kubelets (logs, exec, stats), in
    system:masters as kubeadm issues it."""
    return ensure_client_cert(pki_dir, "apiserver-kubelet-client", KUBELET_CLIENT_NAME, (MASTERS_GROUP,))


def ensure_self_signed(pki_dir: Path, stem: str, common_name: str, dns: Sequence[str],
                       ips: Sequence[str]) -> CertPair:
    """<pki_dir>/<stem>.{crt,key}: a self-signed serving certificate, as a kubelet makes itself one when given
    none (its own issuer, so a client that pins it can use it as the root; reused while it covers the names)."""
    pair = CertPair(pki_dir / f"{stem}.crt", pki_dir / f"{stem}.key")
    if pair.cert.exists() and pair.key.exists():
        cert = pair.load()
        if _still_good(cert, cert, common_name, (), dns, ips):
            return pair
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start, end = _validity(CERT_DAYS)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(ca=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(
                [*(x509.DNSName(d) for d in dns), *(x509.IPAddress(ipaddress.ip_address(i)) for i in ips)]),
                critical=False)
            .sign(key, hashes.SHA256()))
    _write_key(pair.key, key)
    write_file(pair.cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return pair
@dataclass(frozen=True)
class CertInfo:
    """One certificate of a pki dir, as `pbctl certs check-expiration` lists it."""
    name: str  # the path's stem relative to the pki dir: "apiserver", "etcd/server", "kubelet-node-1"
    cert: x509.Certificate
    is_ca: bool
    authority: str  # the name of the CA in the same dir that issued it ("" when it is not there)

    @property
    def expires(self) -> dt.datetime:
        return self.cert.not_valid_after_utc


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def inventory(pki_dir: Path) -> list[CertInfo]:
    """Every certificate under `pki_dir` (kubeadm's layout), CAs marked, each with its issuing CA's name."""
    found: list[tuple[str, x509.Certificate]] = []
    for path in sorted(pki_dir.rglob("*.crt")):
        try:
            found.append((path.relative_to(pki_dir).with_suffix("").as_posix(),
                          x509.load_pem_x509_certificate(path.read_bytes())))
        except ValueError:
            continue  # not a PEM certificate: not ours to list
    cas = {c.subject: n for n, c in found if _is_ca(c)}
    out = []
    for name, cert in found:
        ca = _is_ca(cert)
        issuer = "" if ca and cert.issuer == cert.subject else cas.get(cert.issuer, "")
        out.append(CertInfo(name, cert, ca, issuer.replace("/", "-")))
    return out


def renew(pki_dir: Path, name: str, *, days: int = CERT_DAYS) -> CertPair:
    """Re-issue <pki_dir>/<name>.crt (a new key too) with the same subject, SANs and usages, signed by its CA
    in the same dir, valid `days` from now (`pbctl certs renew`). CAs are not renewed here, as in kubeadm."""
    info = next((i for i in inventory(pki_dir) if i.name == name), None)
    if info is None:
        raise FileNotFoundError(f"{pki_dir / name}.crt: no such certificate")
    if info.is_ca:
        raise ValueError(f"{name} is a certificate authority: renewing it would invalidate everything it signed")
    ca_stem = next((i.name for i in inventory(pki_dir) if i.is_ca and i.cert.subject == info.cert.issuer), "")
    if not ca_stem or not (pki_dir / f"{ca_stem}.key").exists():
        raise ValueError(f"{name}: its CA ({info.cert.issuer.rfc4514_string()}) and key are not in {pki_dir}")
    cn, orgs = _subject(info.cert)
    try:
        usages = set(info.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        usages = set()
    try:
        san = info.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns, ips = san.get_values_for_type(x509.DNSName), [str(i) for i in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        dns, ips = [], []
    return ensure_cert(pki_dir, name, ca_stem=ca_stem, common_name=cn, organizations=orgs,
                       server=ExtendedKeyUsageOID.SERVER_AUTH in usages,
                       client=ExtendedKeyUsageOID.CLIENT_AUTH in usages, dns=dns, ips=ips, days=days, force=True)
