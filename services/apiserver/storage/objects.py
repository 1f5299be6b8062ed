"""Stored objects: etcd keys, and the resourceVersion spliced onto stored bytes.

etcd values are the kind's serialized message with metadata.resourceVersion left empty; the version is
the key's mod_revision. Protobuf merges concatenated encodings, so appending the tiny encoding of
`{metadata: {resourceVersion: "N"}}` to the stored bytes yields the object with its version, without
decoding and re-encoding it (lists of 10,000 pods stay cheap). Every kind has metadata as field 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import Message

from pybernetes.api.kinds import ResourceInfo
from pybernetes.api.objects import meta_of

PREFIX = b"/registry/"


def resource_prefix(info: ResourceInfo, namespace: str = "") -> bytes:
    """Prefix of one resource's keys, or of one namespace's objects of it."""
    base = PREFIX + info.group_resource.encode() + b"/"
    return base + namespace.encode() + b"/" if namespace and info.namespaced else base


def object_key(info: ResourceInfo, namespace: str, name: str) -> bytes:
    if info.namespaced:
        return PREFIX + f"{info.group_resource}/{namespace}/{name}".encode()
    return PREFIX + f"{info.group_resource}/{name}".encode()


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def rv_suffix(rv: int) -> bytes:
    """Encoding of {metadata(1): {resource_version(6): "rv"}}."""
    s = str(rv).encode()
    inner = b"\x32" + _varint(len(s)) + s
    return b"\x0a" + _varint(len(inner)) + inner


def with_rv(value: bytes, rv: int) -> bytes:
    return value + rv_suffix(rv)


@dataclass(slots=True)
class Cached:
    """One object as the watch cache holds it: bytes to send, the decoded message to filter on."""

    key: bytes
    raw: bytes  # with resourceVersion
    rv: int
    obj: Message
    namespace: str
    labels: dict[str, str]
    fields: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_value(cls, info: ResourceInfo, key: bytes, value: bytes, rv: int, attrs: Any) -> Cached:
        raw = with_rv(value, rv)
        obj = info.cls.FromString(raw)
        md = meta_of(obj)
        return cls(key, raw, rv, obj, md.namespace, dict(md.labels), attrs(obj))
