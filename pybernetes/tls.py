"""The cluster's TLS at run time, in one place: the names kubeadm gives its certificates, a certificate and
key pair on disk, TLS contexts, and who a client certificate names. Making certificates is pybernetes.pkiutil.

    ca.crt/key                        cluster CA (signs serving and client certificates)
    apiserver.crt/key                 apiserver serving certificate (SANs: addresses, kubernetes.default.svc, 10.96.0.1)
    apiserver-kubelet-client.crt/key  the apiserver's client certificate towards kubelets (O system:masters)
    apiserver-etcd-client.crt/key     the apiserver's client certificate towards etcd (signed by etcd/ca)
    etcd/ca.crt/key                   etcd's own CA; etcd/server.crt, etcd/peer.crt
    sa.key/sa.pub                     the ServiceAccount token signing key pair
    <name>.crt/key                    a client certificate per component or user (`pkiutil.ensure_client_cert`)

Contexts: `server_context` (optionally asking for client certificates, verified against a CA) and
`client_context`. `identity` reads a verified client certificate's user and groups (CN and O) from its DER
with pybernetes.certinfo. Every component imports this module, so it does not import the cryptography package
(pkiutil does): see certinfo for why.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pybernetes import certinfo, errors

if TYPE_CHECKING:
    from cryptography import x509

CA_NAME = "kubernetes"  # kubeadm's CA common name
ETCD_CA_NAME = "etcd-ca"
APISERVER_NAME = "kube-apiserver"
MASTERS_GROUP = "system:masters"
ADMIN_USER = "kubernetes-admin"  # kubeadm's admin.conf user
NODES_GROUP = "system:nodes"
# Names in-cluster clients use for the apiserver, and the `kubernetes` Service's default ClusterIP.
CLUSTER_DNS_NAMES = ("kubernetes", "kubernetes.default", "kubernetes.default.svc",
                     "kubernetes.default.svc.cluster.local")
DEFAULT_SERVICE_IP = "10.96.0.1"
CA_DAYS = 3650
CERT_DAYS = 365


@dataclass(frozen=True)
class CertPair:
    """A certificate and its key on disk."""
    cert: Path
    key: Path

    def load(self) -> x509.Certificate:
        """The certificate, parsed by cryptography (imported here: only certificate makers and tests parse)."""
        from cryptography import x509

        return x509.load_pem_x509_certificate(self.cert.read_bytes())

    def der(self) -> bytes:
        return certinfo.pem_to_der(self.cert.read_bytes())


@dataclass(frozen=True)
class ServingPKI:
    ca_cert: Path
    cert: Path
    key: Path

    def ca_pem(self) -> bytes:
        return self.ca_cert.read_bytes()

    def server_context(self, client_ca: Path | None = None) -> ssl.SSLContext:
        return server_context(CertPair(self.cert, self.key), client_ca)


def server_context(pair: CertPair, client_ca: Path | None = None, *,
                   require_client_cert: bool = False) -> ssl.SSLContext:
    """A TLS server context; with `client_ca`, clients may (or, required, must) present a certificate signed by it."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(pair.cert, pair.key)
    if client_ca is not None:
        ctx.load_verify_locations(cafile=str(client_ca))
        ctx.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    return ctx


def client_context(ca: Path | bytes | None, pair: CertPair | None = None) -> ssl.SSLContext:
    """A TLS client context trusting `ca` (a file or PEM bytes; None: the system's roots), presenting `pair`."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if isinstance(ca, Path):
        ctx.load_verify_locations(cafile=str(ca))
    elif ca is not None:
        ctx.load_verify_locations(cadata=ca.decode())
    if pair is not None:
        ctx.load_cert_chain(pair.cert, pair.key)
    return ctx


def write_file(path: Path, data: bytes, mode: int) -> None:
    """Write atomically with `mode` from the first byte (keys are never world-readable, even briefly)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def serving_names(addresses: Sequence[str], *, cluster_names: bool = True) -> tuple[list[str], list[str]]:
    """(DNS names, IP addresses) a serving certificate covers: loopback (and, for the apiserver, the cluster
    names and the `kubernetes` Service IP), plus the host's own addresses (IPs or names) given."""
    dns = ["localhost", *(CLUSTER_DNS_NAMES if cluster_names else ())]
    ips = ["127.0.0.1", *((DEFAULT_SERVICE_IP,) if cluster_names else ())]
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


ETCD_CLIENT_NAME = "kube-apiserver-etcd-client"  # kubeadm's CN for apiserver-etcd-client
KUBELET_CLIENT_NAME = "kube-apiserver-kubelet-client"  # kubeadm's CN for apiserver-kubelet-client


def identity(der: bytes) -> tuple[str, tuple[str, ...]]:
    """(user, groups) a client certificate (DER) names, as Kubernetes reads it: CN is the user, each O a group.
    Cached per certificate: a client presents the same one on every call. A subject certinfo cannot read (a
    string type no CA should use) is Unauthorized, with the reason, rather than an internal error."""
    try:
        return _identity(der)
    except ValueError as e:
        raise errors.Unauthorized(f"Unauthorized: the client certificate's subject cannot be read: {e}") from None


@functools.lru_cache(maxsize=1024)  # wrapped above: an lru_cache'd function's arguments go unchecked by mypy
def _identity(der: bytes) -> tuple[str, tuple[str, ...]]:
    subject = certinfo.read(der)
    return (subject.common_names[0] if subject.common_names else ""), subject.organizations
