"""Patches as Kubernetes applies them, on Kubernetes JSON (plain dicts).

- `merge_patch`: RFC 7386 JSON merge patch (null deletes, lists replaced).
- `json_patch`: RFC 6902 JSON patch; errors name the op index and path.
- `strategic_merge_patch`: Kubernetes' strategic merge patch. The schema comes from the message
  descriptors: lists whose field carries the `merge_key` option are merged item by item on that key,
  map fields merge like objects, meta.v1 special types (Time, Quantity, IntOrString, RawExtension)
  are leaves. Directives: `$patch` (merge/replace/delete), `$retainKeys`,
  `$deleteFromPrimitiveList/<field>`, `$setElementOrder/<field>`.
- `three_way_patch` / `create_two_way_merge_patch`: the patches `kubectl apply` / `edit` compute.

Every function returns new data; inputs are never mutated. The result is not validated: callers
re-parse it with `codec.from_dict`, which reports unknown fields and bad types with their paths.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from pybernetes.api import codec
from pybernetes.api.meta.v1 import meta_pb2 as meta
from pybernetes.api.meta.v1 import options_pb2
from pybernetes.errors import BadRequest, FieldError, Invalid

__all__ = ["create_two_way_merge_patch", "json_patch", "merge_patch", "strategic_merge_patch",
           "three_way_patch"]

# Typed as Any: the generated stubs type Extensions[] keys narrowly.
_MERGE_KEY: Any = options_pb2.merge_key

_LEAVES = frozenset(d.full_name for d in (meta.Time.DESCRIPTOR, meta.Quantity.DESCRIPTOR,
                                          meta.IntOrString.DESCRIPTOR, meta.RawExtension.DESCRIPTOR))

# Primitive lists Kubernetes tags patchStrategy=merge (set union on patch); all other primitive lists
# are replaced. Keyed by (containing message full name, proto field name).
MERGE_PRIMITIVES = frozenset({
    (meta.ObjectMeta.DESCRIPTOR.full_name, "finalizers"),
    ("pybernetes.api.core.v1.NodeSpec", "pod_cidrs"),
})

_PATCH = "$patch"
_RETAIN = "$retainKeys"
_DELETE_PRIM = "$deleteFromPrimitiveList/"
_ORDER = "$setElementOrder/"


# -- JSON helpers ----------------------------------------------------------------------------------

def _json_equal(a: Any, b: Any) -> bool:
    """Equality as JSON sees it: true is not 1, 1 is 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict):
        return (isinstance(b, dict) and a.keys() == b.keys()
                and all(_json_equal(v, b[k]) for k, v in a.items()))
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_json_equal, a, b))
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and bool(a == b)


def _contains(items: list[Any], x: Any) -> bool:
    return any(_json_equal(i, x) for i in items)


# -- RFC 7386 --------------------------------------------------------------------------------------

def merge_patch(doc: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7386: objects merge recursively, null deletes, anything else (lists too) replaces."""
    out = _merge_patch(doc, patch)
    return out if isinstance(out, dict) else {}


def _merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = _merge_patch(out.get(k), v)
    return out


# -- RFC 6902 --------------------------------------------------------------------------------------

class _OpError(Exception):
    def __init__(self, message: str, *, bad_request: bool = False) -> None:
        super().__init__(message)
        self.bad_request = bad_request


def _pointer(ptr: Any) -> list[str]:
    if not isinstance(ptr, str):
        raise _OpError("path must be a string", bad_request=True)
    if ptr == "":
        return []
    if not ptr.startswith("/"):
        raise _OpError(f"invalid JSON pointer {ptr!r}: must be empty or start with '/'", bad_request=True)
    # ~1 before ~0, so "~01" decodes to "~1" (RFC 6901 section 4).
    return [t.replace("~1", "/").replace("~0", "~") for t in ptr[1:].split("/")]


def _index(token: str, size: int, *, for_add: bool) -> int:
    if for_add and token == "-":
        return size
    # ASCII only: str.isdigit() is also true of '²' (int() refuses it) and of fullwidth digits.
    if not (token.isascii() and token.isdigit()) or (len(token) > 1 and token[0] == "0"):
        raise _OpError(f"invalid array index {token!r}")
    i = int(token)
    if i > size or (i == size and not for_add):
        raise _OpError(f"array index {i} out of bounds (length {size})")
    return i


def _walk(doc: Any, tokens: list[str]) -> Any:
    cur = doc
    for t in tokens:
        if isinstance(cur, dict):
            if t not in cur:
                raise _OpError(f"missing key {t!r}")
            cur = cur[t]
        elif isinstance(cur, list):
            cur = cur[_index(t, len(cur), for_add=False)]
        else:
            raise _OpError(f"cannot traverse into a {type(cur).__name__} at {t!r}")
    return cur


def _get(doc: Any, tokens: list[str]) -> Any:
    return _walk(doc, tokens)


def _add(doc: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return value
    parent = _walk(doc, tokens[:-1])
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(last, len(parent), for_add=True), value)
    else:
        raise _OpError(f"cannot add to a {type(parent).__name__}")
    return doc


def _remove(doc: Any, tokens: list[str]) -> tuple[Any, Any]:
    """Returns (doc, removed value)."""
    if not tokens:
        raise _OpError("cannot remove the whole document")
    parent = _walk(doc, tokens[:-1])
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise _OpError(f"missing key {last!r}")
        return doc, parent.pop(last)
    if isinstance(parent, list):
        return doc, parent.pop(_index(last, len(parent), for_add=False))
    raise _OpError(f"cannot remove from a {type(parent).__name__}")


def _apply_op(doc: Any, op: dict[str, Any]) -> Any:
    name = op.get("op")
    tokens = _pointer(op.get("path"))

    def value() -> Any:
        if "value" not in op:
            raise _OpError(f"{name}: missing 'value'", bad_request=True)
        return copy.deepcopy(op["value"])

    def source() -> list[str]:
        if "from" not in op:
            raise _OpError(f"{name}: missing 'from'", bad_request=True)
        return _pointer(op["from"])

    if name == "add":
        return _add(doc, tokens, value())
    if name == "remove":
        return _remove(doc, tokens)[0]
    if name == "replace":
        v = value()
        _get(doc, tokens)  # the target must exist
        if not tokens:
            return v
        doc, _ = _remove(doc, tokens)
        return _add(doc, tokens, v)
    if name == "move":
        src = source()
        if tokens[:len(src)] == src and len(tokens) > len(src):
            raise _OpError("cannot move a value into one of its own children")
        if src == tokens:
            _get(doc, src)
            return doc
        doc, v = _remove(doc, src)
        return _add(doc, tokens, v)
    if name == "copy":
        v = copy.deepcopy(_get(doc, source()))
        return _add(doc, tokens, v)
    if name == "test":
        v = value()
        if not _json_equal(_get(doc, tokens), v):
            raise _OpError(f"test failed: value is not {v!r}")
        return doc
    raise _OpError(f"unknown op {name!r}", bad_request=True)


def json_patch(doc: Any, ops: list[dict[str, Any]]) -> Any:
    """RFC 6902, all or nothing. A malformed op raises BadRequest; an op that cannot apply (missing
    path, index out of bounds, failed `test`) raises Invalid, as Kubernetes answers 422."""
    if not isinstance(ops, list):
        raise BadRequest("json patch must be a list of operations")
    out = copy.deepcopy(doc)
    for i, op in enumerate(ops):
        if not isinstance(op, dict):
            raise BadRequest(f"json patch op {i}: expected an object",
                             causes=[FieldError(f"[{i}]", "expected an object")])
        path = op.get("path")
        where = f"json patch op {i} ({op.get('op')} {path})"
        try:
            out = _apply_op(out, op)
        except _OpError as e:
            cause = FieldError(str(path) if path is not None else f"[{i}]", str(e))
            cls = BadRequest if e.bad_request else Invalid
            raise cls(f"{where}: {e}", causes=[cause]) from None
    return out


# -- schema ----------------------------------------------------------------------------------------

_Kind = Literal["any", "object", "leaf", "keyed", "replace_list", "merge_list"]


def _child_field(desc: Descriptor | None, key: str) -> FieldDescriptor | None:
    """The field a dict key names; every key of a map (entry descriptor) is the entry's value."""
    if desc is None:
        return None
    if desc.GetOptions().map_entry:
        return desc.fields_by_name["value"]
    return codec.fields_by_json_name(desc).get(key)


def _is_repeated(fd: FieldDescriptor) -> bool:
    # protobuf 6+ has is_repeated; `label` is deprecated there.
    rep = getattr(fd, "is_repeated", None)
    return bool(rep) if rep is not None else bool(getattr(fd, "label", 0) == FieldDescriptor.LABEL_REPEATED)


def _merge_key(fd: FieldDescriptor) -> str:
    return str(fd.GetOptions().Extensions[_MERGE_KEY])


def _classify(fd: FieldDescriptor | None) -> tuple[_Kind, Descriptor | None, str]:
    """(how the field patches, descriptor of its objects/items, merge key)."""
    if fd is None:
        return "any", None, ""
    msg = fd.message_type if fd.type == FieldDescriptor.TYPE_MESSAGE else None
    if msg is not None and msg.GetOptions().map_entry:
        return "object", msg, ""  # a map: keys merge like an object's
    if _is_repeated(fd):
        if msg is not None:
            key = _merge_key(fd)
            return ("keyed", msg, key) if key else ("replace_list", msg, "")
        owner = fd.containing_type.full_name if fd.containing_type is not None else ""
        if (owner, fd.name) in MERGE_PRIMITIVES:
            return "merge_list", None, ""
        return "replace_list", None, ""
    if msg is not None and msg.full_name not in _LEAVES:
        return "object", msg, ""
    return "leaf", None, ""


def _hkey(v: Any) -> tuple[str, Any] | None:
    """A hashable identity for a merge-key value (None when it is not a scalar)."""
    if isinstance(v, bool):
        return ("bool", v)
    if isinstance(v, int | float):
        return ("num", v)
    if isinstance(v, str):
        return ("str", v)
    return None


# -- strategic merge -------------------------------------------------------------------------------

def strategic_merge_patch(doc: dict[str, Any], patch: dict[str, Any], desc: Descriptor) -> dict[str, Any]:
    """Apply a Kubernetes strategic merge patch to `doc` (an object of message type `desc`).

    Raises BadRequest for malformed directives (unknown `$patch`, a keyed list item without its key)."""
    if not isinstance(patch, dict):
        raise BadRequest("strategic merge patch must be an object")
    out = _smp_map(doc if isinstance(doc, dict) else {}, patch, desc, "")
    return out if out is not None else {}


def _smp_map(orig: dict[str, Any], patch: dict[str, Any], desc: Descriptor | None,
             path: str) -> dict[str, Any] | None:
    """Merge `patch` into `orig`; None means the map itself was deleted (`$patch: delete`)."""
    directive = patch.get(_PATCH)
    if directive == "delete":
        return None
    if directive == "replace":
        # The patch is the whole new value: merge it onto nothing to drop nulls and directives.
        return _smp_map({}, {k: v for k, v in patch.items() if k != _PATCH}, desc, path)
    if directive not in (None, "merge"):
        raise BadRequest(f"{path or '<root>'}: unknown $patch directive {directive!r}",
                         causes=[FieldError(path, f"unknown $patch directive {directive!r}")])
    out = dict(orig)
    if _RETAIN in patch:
        retain = patch[_RETAIN]
        if not isinstance(retain, list):
            raise BadRequest(f"{path or '<root>'}: $retainKeys must be a list")
        extra = [k for k in patch if not k.startswith("$") and k not in retain]
        if extra:
            raise BadRequest(f"{path or '<root>'}: {extra} not present in $retainKeys list {retain}")
        out = {k: v for k, v in out.items() if k in retain}
    orders: dict[str, Any] = {}
    for k, v in patch.items():
        if k.startswith(_DELETE_PRIM):
            field = k[len(_DELETE_PRIM):]
            if isinstance(out.get(field), list) and isinstance(v, list):
                out[field] = [x for x in out[field] if not _contains(v, x)]
        elif k.startswith(_ORDER):
            orders[k[len(_ORDER):]] = v
    for k, v in patch.items():
        if k.startswith("$"):
            continue
        fpath = f"{path}.{k}" if path else k
        if v is None:
            out.pop(k, None)
            continue
        merged = _smp_value(out.get(k), v, _child_field(desc, k), fpath)
        if merged is None:
            out.pop(k, None)
        else:
            out[k] = merged
    for field, order in orders.items():
        if isinstance(out.get(field), list) and isinstance(order, list):
            _kind, _desc, key = _classify(_child_field(desc, field))
            out[field] = _apply_order(out[field], order, key)
    return out


def _smp_value(orig: Any, patch: Any, fd: FieldDescriptor | None, path: str) -> Any:
    kind, sub, key = _classify(fd)
    if kind == "leaf":
        return copy.deepcopy(patch)
    if isinstance(patch, dict):
        return _smp_map(orig if isinstance(orig, dict) else {}, patch, sub, path)
    if isinstance(patch, list):
        base = orig if isinstance(orig, list) else []
        if kind == "keyed":
            return _smp_keyed(base, patch, key, sub, path)
        if kind == "merge_list":
            if any(isinstance(x, dict) and x.get(_PATCH) == "replace" for x in patch):
                return [x for x in patch if not isinstance(x, dict)]
            return base + [x for x in patch if not _contains(base, x)]
        if sub is not None:  # a replaced list of objects: each item is new, so drop nulls/directives
            return [_smp_map({}, x, sub, f"{path}[{i}]") if isinstance(x, dict) else x
                    for i, x in enumerate(patch)]
    return copy.deepcopy(patch)


def _smp_keyed(orig: list[Any], patch: list[Any], key: str, desc: Descriptor | None,
               path: str) -> list[Any]:
    if any(isinstance(x, dict) and x.get(_PATCH) == "replace" for x in patch):
        rest = [x for x in patch if not (isinstance(x, dict) and x.get(_PATCH) == "replace")]
        return _smp_keyed([], rest, key, desc, path)
    out = list(orig)
    for i, item in enumerate(patch):
        ipath = f"{path}[{i}]"
        if not isinstance(item, dict) or key not in item:
            msg = f"does not contain declared merge key {key!r}"
            raise BadRequest(f"{ipath}: {msg}", causes=[FieldError(ipath, msg)])
        kv = item[key]
        match = [j for j, x in enumerate(out) if isinstance(x, dict) and key in x and _json_equal(x[key], kv)]
        if item.get(_PATCH) == "delete":
            out = [x for j, x in enumerate(out) if j not in match]
            continue
        ipath = f"{path}[{key}={kv}]"
        if match:
            merged = _smp_map(out[match[0]], item, desc, ipath)
            if merged is None:
                out.pop(match[0])
            else:
                out[match[0]] = merged
        else:
            new = _smp_map({}, item, desc, ipath)
            if new is not None:
                out.append(new)
    return out


def _apply_order(items: list[Any], order: list[Any], key: str) -> list[Any]:
    """`$setElementOrder`: items named in `order` take its order, in the slots such items occupy;
    items it does not name (added by other writers) keep their places."""
    def ident(x: Any) -> tuple[str, Any] | None:
        if key:
            return _hkey(x.get(key)) if isinstance(x, dict) else None
        return _hkey(x)

    rank: dict[tuple[str, Any], int] = {}
    for i, o in enumerate(order):
        h = ident(o)
        if h is not None:
            rank.setdefault(h, i)
    placed = [(j, h) for j, x in enumerate(items) if (h := ident(x)) is not None and h in rank]
    ranked = sorted(placed, key=lambda p: rank[p[1]])
    out = list(items)
    for (slot, _), (src, _) in zip(placed, ranked, strict=True):
        out[slot] = items[src]
    return out


# -- computing patches -----------------------------------------------------------------------------

def _diff(orig: dict[str, Any], mod: dict[str, Any], desc: Descriptor | None, *,
          additions: bool, deletions: bool) -> dict[str, Any]:
    """The strategic patch turning `orig` into `mod`, restricted to additions/changes and/or deletions."""
    patch: dict[str, Any] = {}
    if deletions:
        for k in orig:
            if k not in mod:
                patch[k] = None
    for k, mv in mod.items():
        if k not in orig:
            if additions:
                patch[k] = copy.deepcopy(mv)
            continue
        ov = orig[k]
        if _json_equal(ov, mv):
            continue
        kind, sub, key = _classify(_child_field(desc, k))
        if isinstance(ov, dict) and isinstance(mv, dict) and kind in ("object", "any"):
            d = _diff(ov, mv, sub, additions=additions, deletions=deletions)
            if d:
                patch[k] = d
        elif isinstance(ov, list) and isinstance(mv, list) and kind == "keyed":
            lp = _diff_keyed(ov, mv, key, sub, additions=additions, deletions=deletions)
            if lp is None:  # items without keys: fall back to replacing the list
                if additions:
                    patch[k] = [{_PATCH: "replace"}, *copy.deepcopy(mv)]
                continue
            items, reordered = lp
            if items:
                patch[k] = items
            if additions and (items or reordered):
                patch[_ORDER + k] = [{key: x[key]} for x in mv]
        elif isinstance(ov, list) and isinstance(mv, list) and kind == "merge_list":
            adds = [x for x in mv if not _contains(ov, x)]
            dels = [x for x in ov if not _contains(mv, x)]
            if additions and adds:
                patch[k] = copy.deepcopy(adds)
            if deletions and dels:
                patch[_DELETE_PRIM + k] = copy.deepcopy(dels)
            common = [x for x in ov if _contains(mv, x)]
            if additions and (adds or not _json_equal(common, [x for x in mv if _contains(ov, x)])):
                patch[_ORDER + k] = copy.deepcopy(mv)
        elif additions:
            patch[k] = copy.deepcopy(mv)
    return patch


def _diff_keyed(orig: list[Any], mod: list[Any], key: str, desc: Descriptor | None, *,
                additions: bool, deletions: bool) -> tuple[list[Any], bool] | None:
    """(patch items, whether the common items changed order); None when an item lacks its key."""
    def ids(items: list[Any]) -> list[tuple[str, Any]] | None:
        out = []
        for x in items:
            h = _hkey(x.get(key)) if isinstance(x, dict) else None
            if h is None:
                return None
            out.append(h)
        return out

    oids, mids = ids(orig), ids(mod)
    if oids is None or mids is None:
        return None
    by_id = dict(zip(oids, orig, strict=True))
    items: list[Any] = []
    for h, item in zip(mids, mod, strict=True):
        if h in by_id:
            d = _diff(by_id[h], item, desc, additions=additions, deletions=deletions)
            if d:
                items.append({key: item[key], **d})
        elif additions:
            items.append(copy.deepcopy(item))
    if deletions:
        mset = set(mids)
        items.extend({key: x[key], _PATCH: "delete"}
                     for h, x in zip(oids, orig, strict=True) if h not in mset)
    oset = set(oids)
    reordered = [h for h in oids if h in set(mids)] != [h for h in mids if h in oset]
    return items, reordered


def _combine(a: dict[str, Any], b: dict[str, Any], desc: Descriptor | None) -> dict[str, Any]:
    """One patch doing both `a` (deletions) and `b` (changes); their keyed list items are disjoint."""
    out = dict(a)
    for k, bv in b.items():
        av = out.get(k)
        kind, sub, key = _classify(_child_field(desc, k))
        if isinstance(av, dict) and isinstance(bv, dict):
            out[k] = _combine(av, bv, sub)
        elif isinstance(av, list) and isinstance(bv, list) and kind == "keyed":
            out[k] = _combine_keyed(av, bv, key, sub)
        else:
            out[k] = bv
    return out


def _combine_keyed(a: list[Any], b: list[Any], key: str, desc: Descriptor | None) -> list[Any]:
    if not all(isinstance(x, dict) and _hkey(x.get(key)) is not None for x in a + b):
        return b  # `b` replaces the whole list ($patch: replace): it wins
    out = list(b)
    where = {_hkey(x[key]): i for i, x in enumerate(out)}
    for x in a:
        h = _hkey(x[key])
        if h in where:
            out[where[h]] = _combine(x, out[where[h]], desc)
        else:
            out.append(x)
    return out


def three_way_patch(original: dict[str, Any] | None, modified: dict[str, Any], current: dict[str, Any],
                    desc: Descriptor) -> dict[str, Any]:
    """The strategic merge patch `kubectl apply` sends.

    `original` is the last-applied configuration (None on first apply), `modified` the new manifest,
    `current` the live object. The patch sets what `modified` has and `current` lacks or differs in,
    and deletes what `original` had and `modified` dropped; fields only `current` has (status,
    defaults, other writers' labels) are left alone. {} when nothing changes."""
    deletions = _diff(original or {}, modified, desc, additions=False, deletions=True)
    changes = _diff(current, modified, desc, additions=True, deletions=False)
    return _combine(deletions, changes, desc)


def create_two_way_merge_patch(original: dict[str, Any], modified: dict[str, Any],
                               desc: Descriptor) -> dict[str, Any]:
    """The strategic merge patch turning `original` into `modified` (for edit/label/scale)."""
    return _diff(original, modified, desc, additions=True, deletions=True)
