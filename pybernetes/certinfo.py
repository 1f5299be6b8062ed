"""What the components read from a certificate at run time, without the cryptography package: the subject's
common names and organizations (who a client certificate names: `pybernetes.tls.identity`) and the validity
window (an expired kubeconfig certificate is refused before dialing).

A certificate here has already been parsed and verified by OpenSSL (the TLS handshake) or read from the
component's own kubeconfig, so this only walks the DER (RFC 5280's TBSCertificate) to the fields it names; it
does not verify anything. Making certificates stays in pybernetes.pkiutil, the one user of cryptography outside
the apiserver: importing it costs every process about 8 MiB and 80 ms, and ten Python processes make a lab.
"""

from __future__ import annotations

import datetime as dt
import ssl
from dataclasses import dataclass

_SEQUENCE, _SET, _OID, _UTC_TIME, _GENERALIZED_TIME, _EXPLICIT_0 = 0x30, 0x31, 0x06, 0x17, 0x18, 0xA0
_COMMON_NAME, _ORGANIZATION = bytes([0x55, 0x04, 0x03]), bytes([0x55, 0x04, 0x0A])  # 2.5.4.3, 2.5.4.10
_SHORT = {_COMMON_NAME: "CN", _ORGANIZATION: "O"}
# The string types a Name's attribute values come in (RFC 5280's DirectoryString, and the ASCII ones some CAs
# use), and how each is encoded: UTF8String, PrintableString, IA5String, NumericString, VisibleString,
# TeletexString (read as Latin-1, as Go's crypto/x509 does), BMPString, UniversalString.
_STRINGS = {0x0C: "utf-8", 0x13: "ascii", 0x16: "ascii", 0x12: "ascii", 0x1A: "ascii", 0x14: "latin-1",
            0x1E: "utf-16-be", 0x1C: "utf-32-be"}


@dataclass(frozen=True)
class Summary:
    common_names: tuple[str, ...]
    organizations: tuple[str, ...]
    not_before: dt.datetime  # UTC
    not_after: dt.datetime

    def subject(self) -> str:
        """The subject's CN values, then its O values, in RFC 4514's form: `CN=jane,O=dev` (for messages)."""
        return ",".join([*(f"CN={v}" for v in self.common_names), *(f"O={v}" for v in self.organizations)])


def _element(der: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of contents, end of contents) of the DER element at `pos`."""
    if pos + 2 > len(der):
        raise ValueError("truncated DER")
    tag, length, pos = der[pos], der[pos + 1], pos + 2
    if length & 0x80:
        n = length & 0x7F
        if n == 0 or n > 4 or pos + n > len(der):
            raise ValueError("bad DER length")
        length, pos = int.from_bytes(der[pos:pos + n], "big"), pos + n
    if pos + length > len(der):
        raise ValueError("truncated DER")
    return tag, pos, pos + length


def _children(der: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    out = []
    while start < end:
        tag, s, e = _element(der, start)
        out.append((tag, s, e))
        start = e
    return out


def _time(der: bytes, tag: int, s: int, e: int) -> dt.datetime:
    text = der[s:e].decode("ascii")
    if tag == _UTC_TIME:  # YYMMDDHHMMSSZ; RFC 5280: YY >= 50 is 19YY
        year = int(text[:2])
        text = f"{1900 + year if year >= 50 else 2000 + year}{text[2:]}"
    elif tag != _GENERALIZED_TIME:
        raise ValueError(f"validity: unexpected tag {tag:#x}")
    return dt.datetime.strptime(text, "%Y%m%d%H%M%SZ").replace(tzinfo=dt.UTC)


def read(der: bytes) -> Summary:
    """The subject and validity of a DER certificate; ValueError when it is not one."""
    tag, s, e = _element(der, 0)
    if tag != _SEQUENCE:
        raise ValueError("not a DER certificate")
    tag, s, e = _element(der, s)  # tbsCertificate
    if tag != _SEQUENCE:
        raise ValueError("not a DER certificate: no TBSCertificate")
    fields = _children(der, s, e)
    if fields and fields[0][0] == _EXPLICIT_0:
        fields = fields[1:]  # the version
    if len(fields) < 5:
        raise ValueError("not a DER certificate: too few fields")
    # serialNumber, signature, issuer, validity, subject
    validity = _children(der, fields[3][1], fields[3][2])
    if len(validity) != 2:
        raise ValueError("not a DER certificate: bad validity")
    found: dict[bytes, list[str]] = {_COMMON_NAME: [], _ORGANIZATION: []}
    for rdn_tag, rs, re_ in _children(der, fields[4][1], fields[4][2]):
        if rdn_tag != _SET:
            raise ValueError("not a DER certificate: bad subject")
        for _, as_, ae in _children(der, rs, re_):
            (oid_tag, os_, oe), (value_tag, vs, ve) = _children(der, as_, ae)[:2]
            oid = der[os_:oe]
            if oid_tag == _OID and oid in found:
                encoding = _STRINGS.get(value_tag)
                if encoding is None:
                    raise ValueError(f"subject {_SHORT[oid]}: unexpected string type {value_tag:#x}")
                found[oid].append(der[vs:ve].decode(encoding))
    return Summary(tuple(found[_COMMON_NAME]), tuple(found[_ORGANIZATION]),
                   _time(der, *validity[0]), _time(der, *validity[1]))


def pem_to_der(pem: bytes | str) -> bytes:
    """The first certificate of a PEM text as DER; ValueError when there is none."""
    text = pem.decode("ascii", errors="replace") if isinstance(pem, bytes) else pem
    begin = text.find("-----BEGIN CERTIFICATE-----")
    end = text.find("-----END CERTIFICATE-----", begin)
    if begin < 0 or end < 0:
        raise ValueError("no PEM certificate in it")
    return ssl.PEM_cert_to_DER_cert(text[begin:end + len("-----END CERTIFICATE-----")])
