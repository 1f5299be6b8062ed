"""Kubernetes JSON/YAML <-> protobuf messages, strictly, with field paths in every error.

`from_dict` walks the message descriptor: an unknown field, a wrong type or a bad quantity is an error
naming its path (`spec.template.spec.containers[0].ports[0].containerPort: expected integer`), all of
them collected, never silently dropped. `to_dict` prints what is set, as Kubernetes' omitempty does.
Special types (meta.v1.Time, Quantity, IntOrString, RawExtension) have their Kubernetes JSON forms.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator
from functools import cache
from typing import Any, TypeVar, overload

import yaml
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from pybernetes.api import kinds, quantity
from pybernetes.api.meta.v1 import meta_pb2 as meta
from pybernetes.api.rpc.v1 import rpc_pb2 as rpc
from pybernetes.errors import FieldError, Invalid, ManifestError

M = TypeVar("M", bound=Message)

_TIME = meta.Time.DESCRIPTOR.full_name
_QUANTITY = meta.Quantity.DESCRIPTOR.full_name
_INT_OR_STRING = meta.IntOrString.DESCRIPTOR.full_name
_RAW = meta.RawExtension.DESCRIPTOR.full_name

_INT_TYPES = {FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT32,
              FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SINT64,
              FieldDescriptor.TYPE_FIXED32, FieldDescriptor.TYPE_FIXED64, FieldDescriptor.TYPE_SFIXED32,
              FieldDescriptor.TYPE_SFIXED64}
_FLOAT_TYPES = {FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE}
# The integers each protobuf integer type holds; JSON numbers outside them are field errors.
_INT_RANGES = {
    **dict.fromkeys((FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED32),
                    (-(2**31), 2**31 - 1)),
    **dict.fromkeys((FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32), (0, 2**32 - 1)),
    **dict.fromkeys((FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64),
                    (-(2**63), 2**63 - 1)),
    **dict.fromkeys((FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64), (0, 2**64 - 1)),
}


# -- time ------------------------------------------------------------------------------------------

def time_to_str(t: meta.Time) -> str:
    d = dt.datetime.fromtimestamp(t.seconds, tz=dt.UTC)
    if t.nanos:
        return d.strftime("%Y-%m-%dT%H:%M:%S") + f".{t.nanos // 1000:06d}Z"
    return d.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | dt.datetime) -> tuple[int, int]:
    if isinstance(value, dt.datetime):
        d = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    else:
        d = dt.datetime.fromisoformat(value.strip().replace("z", "Z"))
        if d.tzinfo is None:
            raise ValueError("missing time zone")
    try:  # time_to_str prints UTC: the UTC time must be within years 1-9999 too
        d = d.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError(f"time {value} is out of range") from None
    ts = d.timestamp()
    seconds = int(ts // 1)
    return seconds, d.microsecond * 1000


def time_from_datetime(d: dt.datetime) -> meta.Time:
    s, n = parse_time(d)
    return meta.Time(seconds=s, nanos=n)


def time_to_datetime(t: meta.Time) -> dt.datetime:
    return dt.datetime.fromtimestamp(t.seconds + t.nanos / 1e9, tz=dt.UTC)


# -- descriptors -----------------------------------------------------------------------------------

def _is_map(fd: FieldDescriptor) -> bool:
    mt = fd.message_type
    return fd.type == FieldDescriptor.TYPE_MESSAGE and mt is not None and bool(mt.GetOptions().map_entry)


def _map_value_field(fd: FieldDescriptor) -> FieldDescriptor:
    """The `value` field of a map field's entry message."""
    mt = fd.message_type
    assert mt is not None, fd.full_name
    return mt.fields_by_name["value"]


def _is_repeated(fd: FieldDescriptor) -> bool:
    rep = getattr(fd, "is_repeated", None)
    if rep is not None:
        return bool(rep)
    return bool(getattr(fd, "label") == FieldDescriptor.LABEL_REPEATED)  # noqa: B009 - older protobuf


@cache
def fields_by_json_name(desc: Descriptor) -> dict[str, FieldDescriptor]:
    return {f.json_name: f for f in desc.fields}


# -- dict -> message -------------------------------------------------------------------------------

def _type_name(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


def _utf8(v: str, path: str, errors: list[FieldError]) -> bool:
    """Whether `v` is valid UTF-8 text: JSON's \\ud800 escapes decode to lone surrogates protobuf cannot store."""
    try:
        v.encode()
    except UnicodeEncodeError:
        errors.append(FieldError(path, "Invalid value: not valid UTF-8 (a lone surrogate)"))
        return False
    return True


def _key_text(key: Any) -> str:
    """A key as it may appear in an error path (which goes into a protobuf Status): surrogates escaped."""
    return str(key).encode("utf-8", "backslashreplace").decode()


def _scalar(fd: FieldDescriptor, v: Any, path: str, errors: list[FieldError]) -> Any:
    t = fd.type
    if t in _INT_TYPES:
        if isinstance(v, bool) or not isinstance(v, int | float) or (isinstance(v, float) and not v.is_integer()):
            errors.append(FieldError(path, f"expected integer, got {_type_name(v)}", "FieldValueTypeInvalid"))
            return None
        lo, hi = _INT_RANGES[t]
        if not lo <= v <= hi:
            errors.append(FieldError(path, f"Invalid value: {v}: out of range [{lo}, {hi}]"))
            return None
        return int(v)
    if t in _FLOAT_TYPES:
        if isinstance(v, bool) or not isinstance(v, int | float):
            errors.append(FieldError(path, f"expected number, got {_type_name(v)}", "FieldValueTypeInvalid"))
            return None
        return float(v)
    if t == FieldDescriptor.TYPE_BOOL:
        if not isinstance(v, bool):
            errors.append(FieldError(path, f"expected boolean, got {_type_name(v)}", "FieldValueTypeInvalid"))
            return None
        return v
    if t == FieldDescriptor.TYPE_STRING:
        if not isinstance(v, str):
            errors.append(FieldError(path, f"expected string, got {_type_name(v)}", "FieldValueTypeInvalid"))
            return None
        return v if _utf8(v, path, errors) else None
    if t == FieldDescriptor.TYPE_BYTES:
        if not isinstance(v, str):
            errors.append(FieldError(path, f"expected base64 string, got {_type_name(v)}",
                                     "FieldValueTypeInvalid"))
            return None
        try:
            return base64.b64decode(v, validate=True)
        except ValueError:
            errors.append(FieldError(path, "illegal base64 data", "FieldValueInvalid"))
            return None
    errors.append(FieldError(path, "unsupported field type", "FieldValueTypeInvalid"))  # pragma: no cover
    return None


def _fill_special(target: Message, v: Any, path: str, errors: list[FieldError]) -> None:
    # A submessage field of a special type is an instance of its generated class, so isinstance narrows it.
    if isinstance(target, meta.Time):
        if not isinstance(v, str | dt.datetime):
            errors.append(FieldError(path, f"expected RFC 3339 time string, got {_type_name(v)}",
                                     "FieldValueTypeInvalid"))
            return
        try:
            s, n = parse_time(v)
        except ValueError:
            errors.append(FieldError(path, f"invalid time {v!r}: expected RFC 3339 (2006-01-02T15:04:05Z)"))
            return
        target.seconds, target.nanos = s, n
    elif isinstance(target, meta.Quantity):
        if isinstance(v, bool) or not isinstance(v, str | int | float):
            errors.append(FieldError(path, f"expected quantity, got {_type_name(v)}", "FieldValueTypeInvalid"))
            return
        text = v if isinstance(v, str) else (str(int(v)) if float(v).is_integer() else str(v))
        if not quantity.is_valid(text):
            errors.append(FieldError(path, f"invalid quantity {text!r}: quantities must look like "
                                     "'100m', '1.5', '64Mi' or '2G'"))
            return
        target.string = text
    elif isinstance(target, meta.IntOrString):
        if isinstance(v, bool) or not isinstance(v, int | str):
            errors.append(FieldError(path, f"expected integer or string, got {_type_name(v)}",
                                     "FieldValueTypeInvalid"))
            return
        if isinstance(v, int):
            lo, hi = _INT_RANGES[meta.IntOrString.DESCRIPTOR.fields_by_name["int_val"].type]
            if not lo <= v <= hi:
                errors.append(FieldError(path, f"Invalid value: {v}: out of range [{lo}, {hi}]"))
                return
            target.type, target.int_val = 0, v
        elif _utf8(v, path, errors):
            target.type, target.str_val = 1, v
    elif isinstance(target, meta.RawExtension):
        try:  # YAML can hold what JSON cannot: !!binary bytes, sets, recursive aliases
            target.raw = json.dumps(v, separators=(",", ":")).encode()
        except (TypeError, ValueError, RecursionError) as e:
            errors.append(FieldError(path, f"Invalid value: not JSON: {e}", "FieldValueTypeInvalid"))


def _is_special(desc: Any) -> bool:
    return desc.full_name in (_TIME, _QUANTITY, _INT_OR_STRING, _RAW)


def _fill(msg: Message, data: Any, path: str, errors: list[FieldError], unknown: list[str] | None = None) -> None:
    if _is_special(msg.DESCRIPTOR):
        _fill_special(msg, data, path, errors)
        return
    if not isinstance(data, dict):
        errors.append(FieldError(path, f"expected object, got {_type_name(data)}", "FieldValueTypeInvalid"))
        return
    fields = fields_by_json_name(msg.DESCRIPTOR)
    prefix = f"{path}." if path else ""
    for key, v in data.items():
        fd = fields.get(key) if isinstance(key, str) else None
        fpath = f"{prefix}{_key_text(key)}"
        if fd is None:
            if unknown is not None:
                unknown.append(fpath)
            else:
                errors.append(FieldError(fpath, "unknown field", "FieldValueNotSupported"))
            continue
        if v is None:
            continue
        if _is_map(fd):
            if not isinstance(v, dict):
                errors.append(FieldError(fpath, f"expected object, got {_type_name(v)}", "FieldValueTypeInvalid"))
                continue
            container = getattr(msg, fd.name)
            vfd = _map_value_field(fd)
            for mk, mv in v.items():
                kpath = f"{fpath}[{_key_text(mk)}]"
                if mv is None or not _utf8(str(mk), kpath, errors):
                    continue
                if vfd.type == FieldDescriptor.TYPE_MESSAGE:
                    _fill(container[str(mk)], mv, kpath, errors, unknown)
                else:
                    sv = _scalar(vfd, mv, kpath, errors)
                    if sv is not None:
                        container[str(mk)] = sv
        elif _is_repeated(fd):
            if not isinstance(v, list):
                errors.append(FieldError(fpath, f"expected array, got {_type_name(v)}", "FieldValueTypeInvalid"))
                continue
            container = getattr(msg, fd.name)
            for i, item in enumerate(v):
                ipath = f"{fpath}[{i}]"
                if fd.type == FieldDescriptor.TYPE_MESSAGE:
                    _fill(container.add(), item if item is not None else {}, ipath, errors, unknown)
                elif item is not None:
                    sv = _scalar(fd, item, ipath, errors)
                    if sv is not None:
                        container.append(sv)
        elif fd.type == FieldDescriptor.TYPE_MESSAGE:
            sub = getattr(msg, fd.name)
            sub.SetInParent()
            _fill(sub, v, fpath, errors, unknown)
        else:
            sv = _scalar(fd, v, fpath, errors)
            if sv is not None:
                setattr(msg, fd.name, sv)


def from_dict(data: Any, cls: type[M], *, path: str = "", unknown: list[str] | None = None) -> M:
    """Build a `cls` message from Kubernetes JSON; raises Invalid listing every bad field.

    With `unknown` given, unknown fields are not errors: their paths are appended to it and they are
    dropped (the apiserver's fieldValidation=Warn|Ignore)."""
    msg = cls()
    errors: list[FieldError] = []
    if isinstance(data, dict) and kinds.for_class_or_none(cls) is not None:
        data = {k: v for k, v in data.items() if k not in ("apiVersion", "kind")}
    _fill(msg, data, path, errors, unknown)
    if errors:
        raise Invalid("; ".join(str(e) for e in errors), causes=errors)
    return msg


def parse_object(data: Any) -> Message:
    """A whole object: apiVersion and kind pick the message class."""
    if not isinstance(data, dict):
        raise Invalid(f"expected an object, got {_type_name(data)}",
                      causes=[FieldError("", f"expected object, got {_type_name(data)}")])
    api_version, kind = data.get("apiVersion"), data.get("kind")
    missing = [FieldError(n, "Required value", "FieldValueRequired")
               for n, v in (("apiVersion", api_version), ("kind", kind)) if not v]
    if missing:
        raise Invalid("; ".join(map(str, missing)), causes=missing)
    info = kinds.for_kind(str(api_version), str(kind))
    if info is None:
        others = kinds.kinds_named(str(kind))
        hint = f" (did you mean apiVersion {others[0].api_version}?)" if others else ""
        msg = f'no matches for kind "{kind}" in version "{api_version}"{hint}'
        raise Invalid(msg, causes=[FieldError("kind", msg, "FieldValueNotSupported")])
    return from_dict(data, info.cls)


# -- message -> dict -------------------------------------------------------------------------------

def _special_to_json(msg: Message) -> Any:
    if isinstance(msg, meta.Time):
        return time_to_str(msg)
    if isinstance(msg, meta.Quantity):
        return msg.string
    if isinstance(msg, meta.IntOrString):
        return msg.str_val if msg.type == 1 else msg.int_val
    assert isinstance(msg, meta.RawExtension), msg.DESCRIPTOR.full_name
    return json.loads(msg.raw) if msg.raw else None


def _value_to_json(fd: FieldDescriptor, v: Any) -> Any:
    if fd.type == FieldDescriptor.TYPE_MESSAGE:
        return _special_to_json(v) if _is_special(v.DESCRIPTOR) else _msg_to_dict(v)
    if fd.type == FieldDescriptor.TYPE_BYTES:
        return base64.b64encode(v).decode()
    return v


def _msg_to_dict(msg: Message) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for fd, v in msg.ListFields():
        if _is_map(fd):
            vfd = _map_value_field(fd)
            out[fd.json_name] = {k: _value_to_json(vfd, v[k]) for k in sorted(v)}
        elif _is_repeated(fd):
            out[fd.json_name] = [_value_to_json(fd, x) for x in v]
        else:
            out[fd.json_name] = _value_to_json(fd, v)
    return out


def to_dict(msg: Message) -> dict[str, Any]:
    """Kubernetes JSON for a message; top-level kinds get apiVersion and kind first."""
    info = kinds.for_class_or_none(type(msg))
    body = _msg_to_dict(msg)
    if info is None:
        return body
    return {"apiVersion": info.api_version, "kind": info.kind, **body}


def to_json(msg: Message, *, indent: int | None = 4) -> str:
    return json.dumps(to_dict(msg), indent=indent)


# -- envelopes -------------------------------------------------------------------------------------

def to_envelope(msg: Message) -> rpc.Object:
    info = kinds.for_message(msg)
    return rpc.Object(api_version=info.api_version, kind=info.kind, raw=msg.SerializeToString())


@overload
def from_envelope(obj: rpc.Object) -> Message: ...
@overload
def from_envelope(obj: rpc.Object, cls: type[M]) -> M: ...
def from_envelope(obj: rpc.Object, cls: type[Message] | None = None) -> Message:
    """The message in an envelope, as `cls` or else as the class its apiVersion and kind name."""
    if cls is None:
        info = kinds.for_kind(obj.api_version, obj.kind)
        if info is None:
            raise Invalid(f'unknown kind "{obj.kind}" in version "{obj.api_version}"')
        cls = info.cls
    msg = cls()
    msg.ParseFromString(obj.raw)
    return msg


# -- YAML ------------------------------------------------------------------------------------------

class _Loader(yaml.SafeLoader):
    """YAML 1.1 safe loader that keeps timestamps as strings, as Kubernetes' YAML-to-JSON does."""


_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.copy().items()
}


class _Dumper(yaml.SafeDumper):
    pass


def _str_representer(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str_representer)


def yaml_load_all(text: str) -> Iterator[Any]:
    return yaml.load_all(text, Loader=_Loader)


def yaml_dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True)


def to_yaml(msg: Message) -> str:
    return yaml_dump(to_dict(msg))


def load_manifests(text: str, source: str = "-") -> list[Message]:
    """Every object in a YAML/JSON stream (multi-document, `kind: List` expanded).

    Raises ManifestError naming the source, the document number and each bad field path."""
    try:
        docs = [d for d in yaml_load_all(text) if d is not None]
    # PyYAML lets int()'s digit limit (ValueError) and deep nesting (RecursionError) escape its own errors.
    except (yaml.YAMLError, ValueError, RecursionError) as e:
        raise ManifestError(source, [FieldError("", f"invalid YAML: {e}", "BadRequest")]) from None
    out: list[Message] = []
    for i, doc in enumerate(docs, start=1):
        items = doc.get("items") if isinstance(doc, dict) and str(doc.get("kind", "")).endswith("List") else None
        for j, item in enumerate(items if isinstance(items, list) else [doc]):
            where = f"{source}: document {i}" + (f" item {j}" if items is not None else "")
            if isinstance(item, dict):
                md = item.get("metadata")
                name = md.get("name") if isinstance(md, dict) else None
                where += f" ({item.get('kind', '?')}/{name or '?'})"
            try:
                out.append(parse_object(item))
            except Invalid as e:
                raise ManifestError(where, e.causes or [FieldError("", e.message)]) from None
    return out
