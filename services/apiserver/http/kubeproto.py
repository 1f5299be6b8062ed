"""Kubernetes' protobuf wire form (`application/vnd.kubernetes.protobuf`): the 4 bytes `k8s\\0`, then a
runtime.Unknown {typeMeta {apiVersion = 1, kind = 2} = 1, raw = 2, contentEncoding = 3, contentType = 4} whose
raw is the object in its generated.proto encoding. kubectl sends the review kinds this way (`auth can-i`,
`auth whoami`); their protos keep Kubernetes' field numbers, so raw is their protobuf encoding as it is.
"""

from __future__ import annotations

from collections.abc import Iterator

from pybernetes import errors

CONTENT_TYPE = "application/vnd.kubernetes.protobuf"
# The kinds whose protos keep Kubernetes' field numbers, so kubectl's protobuf bodies decode as they are (kubectl
# creates RBAC objects and asks reviews in protobuf).
KINDS = frozenset({"roles", "clusterroles", "rolebindings", "clusterrolebindings", "selfsubjectreviews",
                   "selfsubjectaccessreviews", "selfsubjectrulesreviews", "subjectaccessreviews"})
MAGIC = b"k8s\x00"


def _varint(raw: bytes, i: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        b = raw[i]
        n |= (b & 0x7F) << shift
        i += 1
        if not b & 0x80:
            return n, i
        shift += 7


def encode_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def length_delimited(raw: bytes) -> Iterator[tuple[int, bytes]]:
    """(field number, bytes) of each length-delimited field; other wire types are skipped. ValueError or
    IndexError on bytes that are no message."""
    i = 0
    while i < len(raw):
        tag, i = _varint(raw, i)
        wire = tag & 7
        if wire == 0:
            _, i = _varint(raw, i)
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        elif wire == 2:
            n, i = _varint(raw, i)
            if i + n > len(raw):
                raise ValueError("truncated field")
            yield tag >> 3, raw[i:i + n]
            i += n
        else:
            raise ValueError(f"unsupported wire type {wire}")


def field(num: int, value: bytes) -> bytes:
    """A length-delimited field."""
    return encode_varint(num << 3 | 2) + encode_varint(len(value)) + value


def unwrap(body: bytes) -> tuple[str, str, bytes]:
    """(apiVersion, kind, raw object bytes) of a Kubernetes protobuf body."""
    if not body.startswith(MAGIC):
        raise errors.BadRequest("a Kubernetes protobuf body starts with k8s\\x00")
    api_version = kind = ""
    raw = b""
    try:
        for num, value in length_delimited(body[len(MAGIC):]):
            if num == 1:
                for n, v in length_delimited(value):
                    if n == 1:
                        api_version = v.decode()
                    elif n == 2:
                        kind = v.decode()
            elif num == 2:
                raw = value
    except (IndexError, ValueError, UnicodeDecodeError) as e:
        raise errors.BadRequest(f"cannot decode the Kubernetes protobuf body: {e}") from None
    return api_version, kind, raw


def wrap(api_version: str, kind: str, raw: bytes) -> bytes:
    type_meta = field(1, api_version.encode()) + field(2, kind.encode())
    return MAGIC + field(1, type_meta) + field(2, raw)
