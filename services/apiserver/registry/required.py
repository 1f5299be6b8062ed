"""The generic rule: every field marked `[(pybernetes.api.meta.v1.required) = true]` in the protos is set.

`walk_required` descends through every set message (lists and maps included) and files "Required value"
for each unset required field; validation.validate runs it after the hand-written rules of each kind.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from pybernetes.api.meta.v1 import meta_pb2 as meta
from pybernetes.api.meta.v1 import options_pb2
from services.apiserver.registry.field import Errs, child, index, key

_REQUIRED: Any = options_pb2.required
_SPECIAL = frozenset({meta.Time.DESCRIPTOR.full_name, meta.Quantity.DESCRIPTOR.full_name,
                      meta.IntOrString.DESCRIPTOR.full_name, meta.RawExtension.DESCRIPTOR.full_name})


def _is_map(fd: FieldDescriptor) -> bool:
    return fd.type == FieldDescriptor.TYPE_MESSAGE and bool(_msg_type(fd).GetOptions().map_entry)


def _msg_type(fd: FieldDescriptor) -> Descriptor:
    t = fd.message_type
    assert t is not None
    return t


def _target(fd: FieldDescriptor) -> Descriptor | None:
    """The message a message field (or a map field's values) holds, None for scalar map values."""
    return _msg_type(fd).fields_by_name["value"].message_type if _is_map(fd) else _msg_type(fd)


@cache
def _plan(desc: Descriptor) -> tuple[tuple[FieldDescriptor, bool, Descriptor | None, bool], ...]:
    """(field, required?, message type worth descending into, map?) for fields that matter to the walk."""
    out = []
    for fd in desc.fields:
        required = bool(fd.GetOptions().Extensions[_REQUIRED])
        sub: Descriptor | None = None
        if fd.type == FieldDescriptor.TYPE_MESSAGE:
            target = _target(fd)
            if target is not None and target.full_name not in _SPECIAL and _has_required(target):
                sub = target
        if required or sub is not None:
            out.append((fd, required, sub, _is_map(fd)))
    return tuple(out)


@cache
def _has_required(desc: Descriptor, _depth: int = 0) -> bool:
    if _depth > 20:  # recursive message types: assume yes, the walk only follows what is set
        return True
    for fd in desc.fields:
        if fd.GetOptions().Extensions[_REQUIRED]:
            return True
        if fd.type == FieldDescriptor.TYPE_MESSAGE:
            t = _target(fd)
            if t is not None and t.full_name not in _SPECIAL and t is not desc and _has_required(t, _depth + 1):
                return True
    return False


def _is_set(msg: Message, fd: FieldDescriptor) -> bool:
    if fd.is_repeated:  # lists and maps: non-empty
        return len(getattr(msg, fd.name)) > 0
    if fd.type == FieldDescriptor.TYPE_MESSAGE or fd.has_presence:
        return msg.HasField(fd.name)
    if fd.type == FieldDescriptor.TYPE_BOOL:
        return True  # false is a value, not an absence
    return bool(getattr(msg, fd.name))


def walk_required(msg: Message, path: str, errs: Errs, skip: frozenset[str] = frozenset()) -> None:
    # Runs on every write over every set message: a path is built only for an error or a field to descend into.
    for fd, required, sub, is_map in _plan(msg.DESCRIPTOR):
        if fd.json_name in skip:
            continue
        if required and not _is_set(msg, fd):
            errs.required(child(path, fd.json_name))
        if sub is None:
            continue
        p = child(path, fd.json_name)
        value = getattr(msg, fd.name)
        if is_map:
            for k in sorted(value):
                walk_required(value[k], key(p, k), errs)
        elif fd.is_repeated:
            for i, item in enumerate(value):
                walk_required(item, index(p, i), errs)
        elif msg.HasField(fd.name):
            walk_required(value, p, errs)
