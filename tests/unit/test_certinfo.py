"""pybernetes.certinfo reads a certificate's subject (CN, O) and validity as cryptography does, for the kinds of
certificates clients present: groups in several O attributes, none at all, non-ASCII names, other string types,
several attributes in one RDN, dates after 2049 (GeneralizedTime). Anything else is a ValueError."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

from pybernetes import certinfo, errors, pkiutil, tls
from pybernetes.secureserving import Caller, Decision, secure_serving

KEY = ec.generate_private_key(ec.SECP256R1())
START = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def _cert(name: x509.Name, *, start: dt.datetime = START, days: int = 365) -> x509.Certificate:
    return (x509.CertificateBuilder().subject_name(name).issuer_name(x509.Name([])).public_key(KEY.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=days)).sign(KEY, hashes.SHA256()))


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _expected(cert: x509.Certificate) -> tuple[tuple[str, ...], tuple[str, ...]]:
    def values(oid: x509.ObjectIdentifier) -> tuple[str, ...]:
        return tuple(str(a.value) for a in cert.subject.get_attributes_for_oid(oid))
    return values(NameOID.COMMON_NAME), values(NameOID.ORGANIZATION_NAME)


CN, ORG = NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME
NAMES = {
    "user and groups": x509.Name([x509.NameAttribute(ORG, "system:nodes"), x509.NameAttribute(ORG, "extra"),
                                  x509.NameAttribute(CN, "system:node:n1")]),
    "no groups": x509.Name([x509.NameAttribute(CN, "jane")]),
    "no common name": x509.Name([x509.NameAttribute(ORG, "g")]),
    "other attributes around": x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
                                          x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "ou"),
                                          x509.NameAttribute(CN, "x")]),
    "non-ASCII": x509.Name([x509.NameAttribute(CN, "Zoë Ångström"), x509.NameAttribute(ORG, "équipe")]),
    "PrintableString": x509.Name([x509.NameAttribute(CN, "printable", _type=_ASN1Type.PrintableString),
                                  x509.NameAttribute(ORG, "ia5", _type=_ASN1Type.IA5String)]),
    "BMPString": x509.Name([x509.NameAttribute(CN, "bmp ☃", _type=_ASN1Type.BMPString)]),
    "VisibleString and NumericString": x509.Name([x509.NameAttribute(CN, "visible", _type=_ASN1Type.VisibleString),
                                                  x509.NameAttribute(ORG, "2024", _type=_ASN1Type.NumericString)]),
    "multi-valued RDN": x509.Name([x509.RelativeDistinguishedName([x509.NameAttribute(CN, "multi"),
                                                                   x509.NameAttribute(ORG, "one")]),
                                   x509.RelativeDistinguishedName([x509.NameAttribute(ORG, "two")])]),
    "empty subject": x509.Name([]),
}


@pytest.mark.parametrize("case", sorted(NAMES))
def test_subject_as_cryptography_reads_it(case: str) -> None:
    cert = _cert(NAMES[case])
    got = certinfo.read(_der(cert))
    assert (got.common_names, got.organizations) == _expected(cert)
    assert (got.not_before, got.not_after) == (cert.not_valid_before_utc, cert.not_valid_after_utc)


def test_generalized_time_after_2049() -> None:
    cert = _cert(NAMES["no groups"], start=dt.datetime(2049, 6, 1, tzinfo=dt.UTC), days=3650)
    got = certinfo.read(_der(cert))
    assert got.not_before == dt.datetime(2049, 6, 1, tzinfo=dt.UTC)  # UTCTime
    assert got.not_after == cert.not_valid_after_utc and got.not_after.year == 2059  # GeneralizedTime


def test_identity_of_the_clusters_certificates(tmp_path: Path) -> None:
    pair = pkiutil.ensure_client_cert(tmp_path, "admin", tls.ADMIN_USER, [tls.MASTERS_GROUP])
    assert tls.identity(pair.der()) == (tls.ADMIN_USER, (tls.MASTERS_GROUP,))
    assert certinfo.read(pair.der()).subject() == f"CN={tls.ADMIN_USER},O={tls.MASTERS_GROUP}"
    assert pair.der() == _der(pair.load())


@pytest.mark.parametrize("bad", [b"", b"\x30", b"\x30\x82\xff\xff", b"\x02\x01\x00", b"\x30\x03\x30\x01\x00",
                                 b"\x30\x84\xff\xff\xff\xff\x00"])
def test_not_a_certificate_is_a_value_error(bad: bytes) -> None:
    with pytest.raises(ValueError):
        certinfo.read(bad)


def test_truncated_certificate_is_a_value_error() -> None:
    der = _der(_cert(NAMES["user and groups"]))
    for cut in (10, len(der) // 2, len(der) - 1):
        with pytest.raises(ValueError):
            certinfo.read(der[:cut])


def unreadable() -> bytes:
    """A certificate whose CN is an OCTET STRING (no CA makes one: a byte patched in, the signature broken)."""
    der = _der(_cert(x509.Name([x509.NameAttribute(CN, "patchme")])))
    assert der.count(b"\x0c\x07patchme") == 1
    return der.replace(b"\x0c\x07patchme", b"\x04\x07patchme")


def test_an_unreadable_subject_is_unauthorized_with_the_reason() -> None:
    with pytest.raises(ValueError, match="subject CN: unexpected string type 0x4"):
        certinfo.read(unreadable())
    with pytest.raises(errors.Unauthorized, match="the client certificate's subject cannot be read: subject CN"):
        tls.identity(unreadable())


async def test_secure_serving_answers_401_for_an_unreadable_subject(tmp_path: Path) -> None:
    pkiutil.ensure_ca(tmp_path)

    async def never(caller: Caller, verb: str, path: str) -> Decision:
        raise AssertionError("authorization must not be asked")
    s = secure_serving(client_ca=tmp_path / "ca.crt", authorize=never, common_name="t")
    assert s is not None
    refused = await s.check(unreadable(), "GET", "/metrics")
    assert refused is not None and refused[0] == 401
    assert json.loads(refused[1])["message"].startswith("Unauthorized: the client certificate's subject cannot be read")


def test_pem_to_der_takes_the_first_certificate() -> None:
    a, b = _cert(NAMES["no groups"]), _cert(NAMES["no common name"])
    pem = b"junk before\n" + a.public_bytes(serialization.Encoding.PEM) + b.public_bytes(serialization.Encoding.PEM)
    assert certinfo.pem_to_der(pem) == _der(a)
    assert certinfo.pem_to_der(pem.decode()) == _der(a)
    with pytest.raises(ValueError, match="no PEM certificate"):
        certinfo.pem_to_der(b"-----BEGIN PRIVATE KEY-----\n")
