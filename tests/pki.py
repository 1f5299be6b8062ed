"""Certificates pybernetes.tls never issues, for tests that must be refused: expired, self-signed, from
another CA. Real X.509 (the `cryptography` package), written as PEM files beside a kubeconfig's."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pybernetes import pkiutil, tls
from pybernetes.tls import CertPair


def _name(user: str, groups: Sequence[str]) -> x509.Name:
    return x509.Name([*(x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups),
                      *([x509.NameAttribute(NameOID.COMMON_NAME, user)] if user else [])])  # "": no CN


def client_cert(out: Path, stem: str, user: str, groups: Sequence[str] = (), *,
                ca_dir: Path | None = None, not_before: dt.datetime | None = None,
                not_after: dt.datetime | None = None) -> CertPair:
    """A client certificate for `user` at <out>/<stem>.{crt,key}: signed by the CA in `ca_dir` (None:
    self-signed), valid from `not_before` to `not_after` (default: now, for a day)."""
    now = dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(user, groups)
    if ca_dir is not None:
        issuer, signer = pkiutil.ensure_ca(ca_dir)
        issuer_name = issuer.subject
    else:
        issuer_name, signer = subject, key
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or now - dt.timedelta(minutes=5))
            .not_valid_after(not_after or now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(signer, hashes.SHA256()))
    pair = CertPair(out / f"{stem}.crt", out / f"{stem}.key")
    tls.write_file(pair.key, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()), 0o600)
    tls.write_file(pair.cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return pair


def expired(out: Path, stem: str, user: str, groups: Sequence[str], ca_dir: Path) -> CertPair:
    """Signed by the right CA, but its validity ended yesterday."""
    now = dt.datetime.now(dt.UTC)
    return client_cert(out, stem, user, groups, ca_dir=ca_dir, not_before=now - dt.timedelta(days=30),
                       not_after=now - dt.timedelta(days=1))
