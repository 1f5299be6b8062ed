"""Kubernetes' own protobuf wire form, read into the JSON shape of the same object.

client-go's typed clients (kubectl's `create deployment`, `run`, `expose`...) send bodies as
`application/vnd.kubernetes.protobuf`: the magic `k8s\\0`, then a runtime.Unknown holding the apiVersion/kind
and the object encoded with k8s.io/api's field numbers. pybernetes' own messages number their fields
differently, so such a body is decoded here with k8s.io/api's schema (protos/k8s.io, vendored from
kubernetes/api and kubernetes/apimachinery; compiled by scripts/genprotos.sh into the descriptor set
k8s.binpb beside this file) and turned into the dict the JSON path reads. Answers stay JSON, which client-go
accepts from its Accept list, except for kinds whose pybernetes messages keep Kubernetes' field numbers: their
bytes pass through the envelope (`unwrap`, `wrap`) as they are (services/apiserver/http/kubeproto.py).
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"
_META = "k8s.io.apimachinery.pkg.apis.meta.v1"
# Kinds of meta.k8s.io that clients send to any group's endpoints (DELETE bodies and the like).
_META_KINDS = frozenset({"DeleteOptions", "CreateOptions", "UpdateOptions", "PatchOptions", "ListOptions",
                         "GetOptions", "Status"})


class WireError(ValueError):
    """The body is not a Kubernetes protobuf object pybernetes can read (names what is wrong)."""


@functools.cache
def _pool() -> descriptor_pool.DescriptorPool:
    fds = descriptor_pb2.FileDescriptorSet.FromString((Path(__file__).with_name("k8s.binpb")).read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for f in fds.file:
        pool.Add(f)
    return pool


def _message(full_name: str) -> type[Message]:
    try:
        d = _pool().FindMessageTypeByName(full_name)
    except KeyError:
        raise WireError(f"no protobuf schema for {full_name}") from None
    return message_factory.GetMessageClass(d)


def package_of(api_version: str, kind: str) -> str:
    """k8s.io/api's protobuf package for an apiVersion: v1 -> k8s.io.api.core.v1, apps/v1 -> ...apps.v1,
    rbac.authorization.k8s.io/v1 -> ...rbac.v1 (the group's first label)."""
    group, _, version = api_version.rpartition("/")
    if kind in _META_KINDS:
        return _META
    return f"k8s.io.api.{group.split('.')[0] if group else 'core'}.{version}"


def _unknown() -> Any:
    return _message("k8s.io.apimachinery.pkg.runtime.Unknown")()  # dynamic: fields by name


def unwrap(body: bytes) -> tuple[str, str, bytes, str]:
    """(apiVersion, kind, raw object bytes, contentEncoding) of a Kubernetes protobuf body's envelope."""
    if not body.startswith(MAGIC):
        raise WireError("the body does not start with Kubernetes' protobuf magic k8s\\0")
    unknown = _unknown()
    try:
        unknown.ParseFromString(body[len(MAGIC):])
    except DecodeError as e:
        raise WireError(f"the protobuf envelope cannot be read: {e}") from None
    meta = unknown.typeMeta
    return str(meta.apiVersion), str(meta.kind), bytes(unknown.raw), str(unknown.contentEncoding)


def wrap(api_version: str, kind: str, raw: bytes) -> bytes:
    """A Kubernetes protobuf body holding `raw` (an object already in k8s.io/api's encoding)."""
    unknown = _unknown()
    unknown.typeMeta.apiVersion, unknown.typeMeta.kind, unknown.raw = api_version, kind, raw
    return MAGIC + bytes(unknown.SerializeToString())


def decode(body: bytes) -> dict[str, Any]:
    """The object in a Kubernetes protobuf body, as the dict its JSON form would be."""
    api_version, kind, raw, encoding = unwrap(body)
    if not kind or not api_version:
        raise WireError("the protobuf envelope names no apiVersion and kind")
    if encoding:
        raise WireError(f"unsupported content encoding {encoding!r}")
    msg = _message(f"{package_of(api_version, kind)}.{kind}")()
    try:
        msg.ParseFromString(raw)
    except DecodeError as e:
        raise WireError(f"the {kind} in the body cannot be read: {e}") from None
    return {"apiVersion": api_version, "kind": kind, **to_dict(msg)}


def to_dict(msg: Message) -> dict[str, Any]:
    """A message's set fields by their JSON names (k8s.io/api's field names are its JSON names)."""
    out: dict[str, Any] = {}
    for field, value in msg.ListFields():
        out[field.name] = _field(field, value)
    return out


def _field(field: FieldDescriptor, value: Any) -> Any:
    entry = field.message_type
    if entry is not None and entry.GetOptions().map_entry:
        value_field = entry.fields_by_name["value"]
        return {k: _scalar(value_field, v) for k, v in value.items()}
    if field.is_repeated:
        return [_scalar(field, v) for v in value]
    return _scalar(field, value)


def _scalar(field: FieldDescriptor, value: Any) -> Any:
    if field.message_type is not None:
        return _special(field.message_type, value)
    if field.type == FieldDescriptor.TYPE_BYTES:
        return base64.b64encode(value).decode()
    return value


def _special(d: Descriptor, value: Any) -> Any:
    """Types whose JSON is not an object of their fields (apimachinery's custom marshallers)."""
    name = d.full_name
    if name == f"{_META}.Time":
        t = dt.datetime.fromtimestamp(value.seconds, dt.UTC)
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")
    if name == f"{_META}.MicroTime":
        t = dt.datetime.fromtimestamp(value.seconds + value.nanos / 1e9, dt.UTC)
        return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if name == f"{_META}.Duration":
        return _duration(int(value.duration))
    if name == "k8s.io.apimachinery.pkg.util.intstr.IntOrString":
        return str(value.strVal) if value.type == 1 else int(value.intVal)
    if name == "k8s.io.apimachinery.pkg.api.resource.Quantity":
        return str(value.string)
    if name in ("k8s.io.apimachinery.pkg.runtime.RawExtension", f"{_META}.FieldsV1"):
        raw = bytes(getattr(value, "raw" if name.endswith("RawExtension") else "Raw"))
        return json.loads(raw) if raw else None
    if d.name in ("ExtraValue", "Verbs"):
        return list(value.items)
    return to_dict(value)


def _duration(ns: int) -> str:
    """Go's time.Duration.String() for whole units (what metav1.Duration marshals to)."""
    if ns == 0:
        return "0s"
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)
    h, rem = divmod(ns, 3600 * 10**9)
    m, rem = divmod(rem, 60 * 10**9)
    s = rem / 10**9
    secs = f"{s:.9f}".rstrip("0").rstrip(".") + "s"
    if h:
        return f"{sign}{h}h{m}m{secs}"
    if m:
        return f"{sign}{m}m{secs}"
    return sign + secs
