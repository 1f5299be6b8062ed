"""Field ownership: the sets of fields an object's managers own, as `metadata.managedFields` records them.

A path is a tuple of Kubernetes' FieldsV1 elements: `f:spec` (a field or map key), `k:{"name":"web"}` (an
item of a list merged by key, the proto `merge_key`), `v:"x"` (an item of a set-like primitive list such as
finalizers); other lists are atomic (one leaf). `field_set` gives the leaves and list items an object sets,
`to_fields_v1`/`from_fields_v1` convert to and from the `{"f:spec": {"f:replicas": {}}}` notation (`.` marks a
node that is itself a member), `path_string` prints `.spec.containers[name="web"].image` as conflicts do.

`record_update` is the Update operation's bookkeeping (the writer takes the fields it changed, everybody
loses the fields that are gone); services/apiserver/apply.py builds the Apply operation on the same sets.
Server-owned metadata (name, uid, resourceVersion, ...) and, outside the status subresource, `status`
are never owned, as in Kubernetes.
"""

from __future__ import annotations

import json
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from pybernetes.api import codec
from pybernetes.api.openapi import SPECIAL, is_repeated, map_value, merge_key, message_of
from pybernetes.api.patch import MERGE_PRIMITIVES

Path = tuple[str, ...]
FieldSet = set[Path]
OWNED_METADATA = frozenset({"labels", "annotations", "ownerReferences", "finalizers"})


def _dumps(v: Any) -> str:
    return json.dumps(v, separators=(",", ":"), sort_keys=True)


def _walk(v: Any, fd: FieldDescriptor | None, desc: Descriptor | None, prefix: Path, out: FieldSet) -> None:
    """Add the members under `prefix` (the value `v` of field `fd`, or of message `desc` at the top)."""
    if fd is not None:
        vfd = map_value(fd)
        if vfd is not None:  # a map: each key is a member (or a struct below it)
            if not isinstance(v, dict) or not v:
                out.add(prefix)
                return
            for k, mv in v.items():
                _walk(mv, vfd, None, (*prefix, f"f:{k}"), out)
            return
        mt = message_of(fd)
        if is_repeated(fd):
            key = merge_key(fd)
            owner = fd.containing_type.full_name if fd.containing_type is not None else ""
            if key and mt is not None and isinstance(v, list) and v:
                for item in v:
                    if isinstance(item, dict) and key in item:
                        ipath = (*prefix, "k:" + _dumps({key: item[key]}))
                        out.add(ipath)
                        _walk(item, None, mt, ipath, out)
                return
            if (owner, fd.name) in MERGE_PRIMITIVES and isinstance(v, list) and v:
                out.update((*prefix, "v:" + _dumps(x)) for x in v)
                return
            out.add(prefix)  # atomic
            return
        if mt is None or mt.full_name in SPECIAL or not isinstance(v, dict) or not v:
            out.add(prefix)
            return
        desc = mt
    assert desc is not None
    if not isinstance(v, dict):
        return
    fields = codec.fields_by_json_name(desc)
    for k, cv in v.items():
        cfd = fields.get(k)
        if cfd is None or cv is None:
            continue
        _walk(cv, cfd, None, (*prefix, f"f:{k}"), out)


def field_set(obj: dict[str, Any], desc: Descriptor, *, subresource: str = "") -> FieldSet:
    """The paths `obj` (Kubernetes JSON of message `desc`) sets that a manager can own."""
    out: FieldSet = set()
    fields = codec.fields_by_json_name(desc)
    for k, v in obj.items():
        fd = fields.get(k)
        if fd is None or v is None or (k == "status") != (subresource == "status"):
            continue
        if k == "metadata":
            if not isinstance(v, dict):
                continue
            mt = message_of(fd)
            assert mt is not None
            mfields = codec.fields_by_json_name(mt)
            for mk, mv in v.items():
                if mk in OWNED_METADATA and mv is not None and mk in mfields:
                    _walk(mv, mfields[mk], None, ("f:metadata", f"f:{mk}"), out)
            continue
        _walk(v, fd, None, (f"f:{k}",), out)
    return out


# -- navigation -----------------------------------------------------------------------------------

def _matches(item: Any, element: str) -> bool:
    if element.startswith("k:"):
        key = json.loads(element[2:])
        return isinstance(item, dict) and all(item.get(k) == kv for k, kv in key.items())
    return element.startswith("v:") and _dumps(item) == element[2:]


_MISSING = object()


def value_at(obj: Any, path: Path) -> Any:
    """The value at `path` in `obj`, or None when absent."""
    v = obj
    for element in path:
        if element.startswith("f:") and isinstance(v, dict):
            v = v.get(element[2:], _MISSING)
        elif isinstance(v, list):
            v = next((i for i in v if _matches(i, element)), _MISSING)
        else:
            return None
        if v is _MISSING:
            return None
    return v


def remove(obj: dict[str, Any], path: Path) -> None:
    """Delete the field or list item at `path` from `obj` (in place); absent is fine."""
    parent = value_at(obj, path[:-1]) if len(path) > 1 else obj
    last = path[-1]
    if isinstance(parent, dict) and last.startswith("f:"):
        parent.pop(last[2:], None)
    elif isinstance(parent, list):
        parent[:] = [i for i in parent if not _matches(i, last)]


# -- FieldsV1 --------------------------------------------------------------------------------------

def to_fields_v1(paths: FieldSet) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for p in sorted(paths):
        node = root
        for element in p:
            node = node.setdefault(element, {})
    for p in paths:
        node = root
        for element in p:
            node = node[element]
        if node:
            node["."] = {}
    return _sorted(root)


def _sorted(node: dict[str, Any]) -> dict[str, Any]:
    return {k: _sorted(node[k]) for k in sorted(node)}


def from_fields_v1(fields: Any, prefix: Path = ()) -> FieldSet:
    out: FieldSet = set()
    if not isinstance(fields, dict):
        return out
    if prefix and (not fields or "." in fields):
        out.add(prefix)
    for k, v in fields.items():
        if k != ".":
            out |= from_fields_v1(v, (*prefix, k))
    return out


def path_string(path: Path) -> str:
    """`.spec.containers[name="web"].image`, as Kubernetes prints field paths in conflicts."""
    parts: list[str] = []
    for element in path:
        kind, body = element[:2], element[2:]
        if kind == "f:":
            parts.append(f".{body}")
        elif kind == "k:":
            parts.append("[" + ",".join(f"{k}={_dumps(v)}" for k, v in json.loads(body).items()) + "]")
        else:
            parts.append(f"[={body}]")
    return "".join(parts)


# -- entries ---------------------------------------------------------------------------------------

def entry_set(entry: dict[str, Any]) -> FieldSet:
    return from_fields_v1(entry.get("fieldsV1"))


def make_entry(manager: str, operation: str, api_version: str, time: str, paths: FieldSet,
               subresource: str = "") -> dict[str, Any]:
    e: dict[str, Any] = {"manager": manager, "operation": operation, "apiVersion": api_version, "time": time,
                         "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(paths)}
    if subresource:
        e["subresource"] = subresource
    return e


def changed_paths(old: dict[str, Any] | None, new: dict[str, Any], desc: Descriptor,
                  subresource: str = "") -> tuple[FieldSet, FieldSet]:
    """(paths `new` sets with a value `old` lacks or differs in, paths `old` set that `new` does not)."""
    new_set = field_set(new, desc, subresource=subresource)
    if old is None:
        return new_set, set()
    old_set = field_set(old, desc, subresource=subresource)
    changed = {p for p in new_set if p not in old_set or _dumps(value_at(new, p)) != _dumps(value_at(old, p))}
    return changed, old_set - new_set


def record_update(entries: list[dict[str, Any]], manager: str, api_version: str, time: str,
                  changed: FieldSet, removed: FieldSet, subresource: str = "") -> list[dict[str, Any]]:
    """The entries after an Update by `manager`: it owns what it changed, nobody owns what is gone."""
    out: list[dict[str, Any]] = []
    mine: FieldSet = set(changed)
    found = False
    for e in entries:
        paths = entry_set(e) - removed
        is_mine = (e.get("manager") == manager and e.get("operation") == "Update"
                   and e.get("subresource", "") == subresource)
        if is_mine:
            found = True
            mine |= paths
            continue
        paths -= changed
        if paths:
            out.append({**e, "fieldsV1": to_fields_v1(paths)})
    if mine or found:
        out.append(make_entry(manager, "Update", api_version, time, mine, subresource))
    return [e for e in out if e["fieldsV1"]]
