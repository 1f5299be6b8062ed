"""The protobuf wire format read and written by hand where decoding a whole message is not wanted: the name of a
serialized object (every kind's metadata is field 1) for authorizing an update by name, and Kubernetes' protobuf
envelope (http/kubeproto.py)."""

from __future__ import annotations

from collections.abc import Iterator

from google.protobuf.message import DecodeError

from pybernetes.api.meta.v1 import meta_pb2 as meta


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


def object_name(raw: bytes) -> str:
    """metadata.name of a serialized object ("" when it has none or the bytes are no message)."""
    try:
        for num, value in length_delimited(raw):
            if num == 1:
                return meta.ObjectMeta.FromString(value).name
    except (IndexError, ValueError, DecodeError):
        return ""
    return ""
