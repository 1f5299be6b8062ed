"""Property tests of manifest decoding, validation and defaulting over every kind in pybernetes.api.kinds.

Objects are Kubernetes-shaped JSON built from the message descriptors (valid-ish values per field type),
with mutations mixed in: wrong types, unknown fields, nulls, huge and odd unicode strings, deep nesting,
integers out of range. Properties: decoding returns a message or raises Invalid with field causes, never
another exception; an accepted object round-trips unchanged through the codec and the stored (etcd) bytes;
defaulting and validation raise nothing, and defaulting is idempotent.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import example, given
from hypothesis import strategies as st

from pybernetes.api import codec, kinds
from pybernetes.api.meta.v1 import meta_pb2 as meta
from pybernetes.errors import ApiError, Invalid, ManifestError
from services.apiserver.registry import apply_defaults, validate
from services.apiserver.storage import store
from tests.fuzzing import examples

# The strategies built from descriptors are large; their repr (printed on a failure) is too.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

_INTS = {FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1), FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
         FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1), FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1)}
_ODD_STRINGS = ["\ud800", "x" * 300, "ünï/cödé", "\x00", "a\nb", "", "web", "1e9999999", "-"]
_NAMES = st.sampled_from(["web", "a", "x-1", "default", "kube-system", "Web_1", "a.b", ""])


def _json_values() -> st.SearchStrategy[Any]:
    leaves = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False),
                       st.text(max_size=8), st.sampled_from(_ODD_STRINGS))
    return st.recursive(leaves, lambda kids: st.one_of(st.lists(kids, max_size=3),
                                                       st.dictionaries(st.text(max_size=6), kids, max_size=3)),
                        max_leaves=8)


JUNK = _json_values()


def _deep(depth: int) -> Any:
    v: Any = {}
    for _ in range(depth):
        v = {"a": [v]}
    return v


def _scalar(fd: FieldDescriptor) -> st.SearchStrategy[Any]:
    t = fd.type
    if t == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if t == FieldDescriptor.TYPE_STRING:
        return st.one_of(_NAMES, st.text(max_size=12), st.sampled_from(_ODD_STRINGS))
    if t == FieldDescriptor.TYPE_BYTES:
        return st.one_of(st.binary(max_size=8).map(lambda b: base64.b64encode(b).decode()),
                         st.sampled_from(["!!", "YQ"]))
    if t in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        return st.floats(allow_nan=False, allow_infinity=False, width=32)
    lo, hi = _INTS.get(t, (-(2**31), 2**31 - 1))
    return st.one_of(st.integers(max(lo, -5), min(hi, 100)), st.integers(lo, hi), st.integers(-(2**70), 2**70))


def _special(desc: Descriptor) -> st.SearchStrategy[Any] | None:
    name = desc.full_name
    if name == meta.Time.DESCRIPTOR.full_name:
        return st.one_of(st.sampled_from(["2024-01-02T03:04:05Z", "2024-01-02T03:04:05.123456Z",
                                          "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "yesterday"]),
                         st.datetimes(timezones=st.just(dt.UTC)).map(
                             lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")))
    if name == meta.Quantity.DESCRIPTOR.full_name:
        return st.one_of(st.sampled_from(["100m", "1", "64Mi", "1.5", "2e3", "1e9999999", "lots"]),
                         st.integers(0, 10**6), st.floats(allow_nan=False, allow_infinity=False))
    if name == meta.IntOrString.DESCRIPTOR.full_name:
        return st.one_of(st.integers(-(2**40), 2**40), st.integers(0, 65535), _NAMES, st.just("50%"))
    if name == meta.RawExtension.DESCRIPTOR.full_name:
        return JUNK
    return None


def message_dict(desc: Descriptor, depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    """Valid-ish JSON for a message: any subset of its fields, each of its type, sometimes junk."""
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for fd in desc.fields:
        optional[fd.json_name] = st.one_of(_field(fd, depth), _field(fd, depth), _field(fd, depth), JUNK)
    if depth >= 5:  # bound the size: deep messages get no plain submessages
        optional = {fd.json_name: optional[fd.json_name] for fd in desc.fields
                    if fd.type != FieldDescriptor.TYPE_MESSAGE or fd.message_type is None
                    or _special(fd.message_type) is not None}
    base = st.fixed_dictionaries({}, optional=optional)
    unknown = st.dictionaries(st.sampled_from(["bogus", "Name", "$patch", "apiVersion"]), JUNK, max_size=1)
    return st.one_of(base, base, base, st.tuples(base, unknown).map(lambda p: {**p[0], **p[1]}))


def _field(fd: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    mt = fd.message_type if fd.type == FieldDescriptor.TYPE_MESSAGE else None
    if mt is not None and mt.GetOptions().map_entry:
        vfd = mt.fields_by_name["value"]
        return st.dictionaries(st.one_of(_NAMES, st.sampled_from(_ODD_STRINGS)), _single(vfd, depth + 1), max_size=3)
    item = _single(fd, depth + 1)
    if codec._is_repeated(fd):
        return st.lists(st.one_of(item, item, st.none()), max_size=2)
    return item


def _single(fd: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    if fd.type != FieldDescriptor.TYPE_MESSAGE:
        return _scalar(fd)
    assert fd.message_type is not None
    special = _special(fd.message_type)
    if special is not None:
        return special
    return st.deferred(lambda: message_dict(fd.message_type, depth))


def kind_objects() -> st.SearchStrategy[tuple[kinds.ResourceInfo, dict[str, Any]]]:
    """(kind, its JSON with apiVersion and kind) for every registered kind."""
    def one(info: kinds.ResourceInfo) -> st.SearchStrategy[tuple[kinds.ResourceInfo, dict[str, Any]]]:
        return message_dict(info.descriptor).map(
            lambda d: (info, {"apiVersion": info.api_version, "kind": info.kind, **d}))
    return st.one_of([one(r) for r in kinds.RESOURCES])


def _decode(info: kinds.ResourceInfo, data: Any) -> Message | None:
    try:
        msg = codec.from_dict(data, info.cls)
    except Invalid as e:
        assert e.causes, e
        assert all(isinstance(c.path, str) for c in e.causes)
        return None
    assert isinstance(msg, info.cls)
    return msg


def _round_trips(info: kinds.ResourceInfo, msg: Message) -> None:
    again = codec.from_dict(json.loads(json.dumps(codec.to_dict(msg))), info.cls)
    assert again == msg
    assert codec.from_envelope(codec.to_envelope(msg)) == msg
    assert store.decode(info, store.encode(msg), 7).SerializeToString(deterministic=True) == (
        _with_rv(msg, "7").SerializeToString(deterministic=True))


def _with_rv(msg: Message, rv: str) -> Message:
    out = type(msg)()
    out.CopyFrom(msg)
    out.metadata.resource_version = rv  # type: ignore[attr-defined]  # every kind has ObjectMeta
    return out


_POD = kinds.for_kind("v1", "Pod")


@examples(200)
@given(kind_objects())
@example((kinds.for_kind("apps/v1", "Deployment"), {"spec": {"replicas": 2**40}}))  # protobuf ValueError
@example((kinds.for_kind("v1", "Service"), {"spec": {"ports": [{"port": 80, "targetPort": 2**40}]}}))
@example((kinds.for_kind("apps/v1", "Deployment"), {"spec": {"replicas": 1e300}}))
@example((_POD, {"metadata": {"name": "\ud800"}}))  # UnicodeEncodeError from protobuf
@example((_POD, {"metadata": {"labels": {"\ud800": "a"}}}))
@example((_POD, {"metadata": {"creationTimestamp": "0001-01-01T00:00:00+01:00"}}))  # to_dict: year 0
@example((_POD, {"metadata": {"creationTimestamp": "9999-12-31T23:59:59-01:00"}}))  # to_dict: year 10000
def test_decode_is_a_message_or_invalid_and_round_trips(case: tuple[kinds.ResourceInfo, dict[str, Any]]) -> None:
    info, data = case
    msg = _decode(info, data)
    if msg is not None:
        _round_trips(info, msg)


@examples(150)
@given(kind_objects())
def test_defaulting_and_validation_raise_nothing(case: tuple[kinds.ResourceInfo, dict[str, Any]]) -> None:
    info, data = case
    msg = _decode(info, data)
    if msg is None:
        return
    try:
        apply_defaults(msg)
        once = msg.SerializeToString(deterministic=True)
        apply_defaults(msg)
        assert msg.SerializeToString(deterministic=True) == once, "defaulting is not idempotent"
        errs = validate(msg)
        validate(msg, old=msg)
    except ApiError:
        return
    assert all(isinstance(e.path, str) and e.message for e in errs)
    if not errs:
        _round_trips(info, msg)


@examples(100)
@given(st.one_of(JUNK, kind_objects().map(lambda c: c[1])))
def test_parse_object_refuses_with_invalid(data: Any) -> None:
    try:
        msg = codec.parse_object(data)
    except Invalid as e:
        assert e.causes
        return
    info = kinds.for_message(msg)
    _round_trips(info, msg)


_BINARY_RAW = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  managedFields:\n  - fieldsV1: !!binary aGVsbG8=\n"
_YAML_JUNK = st.sampled_from([
    _BINARY_RAW,
    "apiVersion: v1\nkind: Pod\nspec:\n  priority: " + "1" * 5000,  # int() digit limit: ValueError
    "[" * 5000,  # the parser recursed: RecursionError
    "apiVersion: v1\nkind: Event\nrelated: !!binary aGVsbG8=\n",
    "apiVersion: v1\nkind: List\nitems: [{apiVersion: v1, kind: Pod}, 3]\n",
    "a: &a [*a]\n",
    "- &x {apiVersion: v1, kind: ConfigMap, data: *x}\n",
    "!!python/object:os.system\n",
    "\t\x00",
])


@examples(100)
@given(st.one_of(_YAML_JUNK, st.text(max_size=60),
                 kind_objects().map(lambda c: codec.yaml_dump(c[1])),
                 kind_objects().map(lambda c: json.dumps(c[1]))))
@example(_BINARY_RAW)  # json.dumps(bytes) into a RawExtension: TypeError
@example("apiVersion: v1\nkind: Pod\nspec:\n  priority: " + "1" * 5000)  # ValueError out of PyYAML
@example("[" * 5000)  # RecursionError out of PyYAML
def test_load_manifests_returns_messages_or_manifest_error(text: str) -> None:
    try:
        out = codec.load_manifests(text, "fuzz.yaml")
    except ManifestError as e:
        assert e.where.startswith("fuzz.yaml")
        return
    for msg in out:
        _round_trips(kinds.for_message(msg), msg)


@pytest.mark.parametrize("depth", [50, 500])
def test_deep_nesting_is_invalid_not_a_crash(depth: int) -> None:
    with pytest.raises(Invalid):
        codec.from_dict({"spec": _deep(depth)}, kinds.RESOURCES[0].cls)
