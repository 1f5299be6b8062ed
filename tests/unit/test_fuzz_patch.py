"""Property tests of every patch type (pybernetes.api.patch): JSON merge patch, JSON patch, strategic merge
patch with directives, and the two-way patches pbctl computes. Each either applies or raises an ApiError,
never mutates its inputs, and a patch computed from two objects turns the first into the second."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from pybernetes.api import codec, kinds, patch
from pybernetes.errors import ApiError
from tests.fuzzing import examples
from tests.unit.test_fuzz_codec import JUNK, kind_objects, message_dict

pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

_KEYS = st.sampled_from(["a", "b", "c", "name", "~", "/", "0", "-", "$patch"])
_DOCS = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.text(max_size=3)),
                     lambda kids: st.one_of(st.lists(kids, max_size=3), st.dictionaries(_KEYS, kids, max_size=3)),
                     max_leaves=10)
_OBJECTS = st.dictionaries(_KEYS, _DOCS, max_size=4)
_NO_NULLS = st.recursive(st.one_of(st.booleans(), st.integers(-3, 3), st.text(max_size=3)),
                         lambda kids: st.one_of(st.lists(kids, max_size=3), st.dictionaries(_KEYS, kids, max_size=3)),
                         max_leaves=10)


def _merge_diff(a: Any, b: Any) -> Any:
    """The RFC 7386 patch turning object `a` into object `b`."""
    out: dict[str, Any] = {k: None for k in a if k not in b}
    for k, v in b.items():
        if k in a and isinstance(a[k], dict) and isinstance(v, dict):
            d = _merge_diff(a[k], v)
            if d:
                out[k] = d
        elif k not in a or a[k] != v or type(a[k]) is not type(v):
            out[k] = copy.deepcopy(v)
    return out


@examples(200)
@given(_OBJECTS, st.dictionaries(_KEYS, _NO_NULLS, max_size=4))
def test_merge_patch_from_two_objects_gives_the_second(a: dict[str, Any], b: dict[str, Any]) -> None:
    before = copy.deepcopy(a)
    assert patch.merge_patch(a, _merge_diff(a, b)) == b
    assert a == before


@examples(200)
@given(_OBJECTS, _OBJECTS)
def test_merge_patch_applies_anything(doc: dict[str, Any], p: dict[str, Any]) -> None:
    out = patch.merge_patch(doc, p)
    assert isinstance(out, dict)
    assert not any(k in out for k, v in p.items() if v is None)


_POINTERS = st.one_of(st.lists(st.one_of(_KEYS, st.sampled_from(["1", "01", "99", "²", "１", "-1"])), max_size=3)
                      .map(lambda ts: "".join("/" + t for t in ts)), st.sampled_from(["", "a", "/"]), JUNK)
_OPS = st.fixed_dictionaries(
    {"op": st.one_of(st.sampled_from(["add", "remove", "replace", "move", "copy", "test"]), JUNK)},
    optional={"path": _POINTERS, "from": _POINTERS, "value": _DOCS})


@examples(300)
@given(_DOCS, st.one_of(st.lists(_OPS, max_size=4), JUNK))
@example({"a": [1]}, [{"op": "remove", "path": "/a/²"}])  # int('²') raised ValueError: '²'.isdigit() is True
@example({"a": [1]}, [{"op": "add", "path": "/a/１", "value": 2}])  # fullwidth digit: accepted as index 1
def test_json_patch_applies_or_raises_api_error(doc: Any, ops: Any) -> None:
    before = copy.deepcopy(doc)
    try:
        patch.json_patch(doc, ops)
    except ApiError as e:
        assert e.code in (400, 422), e
    assert doc == before


def _directives() -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from(["$patch", "$retainKeys", "$setElementOrder/containers",
                                            "$deleteFromPrimitiveList/finalizers", "$setElementOrder/ports"]),
                           st.one_of(st.sampled_from(["merge", "replace", "delete", "bogus"]), JUNK,
                                     st.lists(st.sampled_from(["spec", "metadata", {"name": "a"}]), max_size=2)),
                           max_size=2)


def _sprinkle(data: Any, extra: dict[str, Any]) -> Any:
    """Directives added to the top and to every nested object of `data`."""
    if isinstance(data, dict):
        return {**{k: _sprinkle(v, extra) for k, v in data.items()}, **extra}
    if isinstance(data, list):
        return [_sprinkle(x, extra) for x in data]
    return data


@examples(100)
@given(kind_objects(), kind_objects(), _directives(), st.booleans())
def test_strategic_merge_patch_applies_or_raises_api_error(
        a: tuple[kinds.ResourceInfo, dict[str, Any]], b: tuple[kinds.ResourceInfo, dict[str, Any]],
        directives: dict[str, Any], everywhere: bool) -> None:
    info, doc = a
    p = _sprinkle(b[1], directives) if everywhere else {**b[1], **directives}
    before = copy.deepcopy(doc)
    try:
        out = patch.strategic_merge_patch(doc, p, info.descriptor)
    except ApiError as e:
        assert e.code == 400, e
    else:
        assert isinstance(out, dict)
    assert doc == before


@examples(50)
@given(st.data())
def test_two_way_strategic_patch_turns_original_into_modified(data: st.DataObject) -> None:
    """Over accepted objects (as the codec prints them); a keyed list item without its merge key (a decoded
    `conditions: [null]`) makes the patch unappliable, as in Kubernetes: that is a BadRequest."""
    info = data.draw(st.sampled_from(kinds.RESOURCES))
    objects = message_dict(info.descriptor).map(lambda d: _accepted(info, d))
    original, modified = data.draw(objects), data.draw(objects)
    p = patch.create_two_way_merge_patch(original, modified, info.descriptor)
    try:
        assert patch.strategic_merge_patch(original, p, info.descriptor) == modified
    except ApiError as e:
        assert "does not contain declared merge key" in e.message, e


def _accepted(info: kinds.ResourceInfo, data: dict[str, Any]) -> dict[str, Any]:
    try:
        return codec.to_dict(codec.from_dict(data, info.cls))
    except ApiError:
        return {}

