"""Server-side apply (PATCH `application/apply-patch+yaml`): the Apply operation on managedFields.

The body is the applier's whole intent. Fields it sets are set as given (merged into the live object as a
strategic merge does: maps and lists with a merge key item by item, other lists whole); fields it set last
time and no longer sends are removed unless another manager owns them too; a field another manager owns
with a different value is a 409 Conflict listing managers and fields as Kubernetes words it, unless `force`,
which takes the field over. The applier's entry (operation Apply) then holds exactly the fields it sent.
The object is created when absent. Writes go through Rest (defaults, validation, admission, storage), so
apply has no rules of its own beyond ownership.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from google.protobuf.message import Message

from pybernetes import errors
from pybernetes.api import codec, managedfields, patch
from pybernetes.api.kinds import ResourceInfo
from pybernetes.api.managedfields import FieldSet, Path

from . import fieldmanager
from .auth import User
from .rest import PATCH_RETRIES, Rest

# Metadata the applier cannot own or set through apply (the server's, or another mechanism's).
_SERVER_METADATA = ("managedFields", "resourceVersion", "uid", "creationTimestamp", "generation",
                    "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink")


def _printed(entry: dict[str, Any]) -> str:
    """A manager as kube-apiserver prints it in a conflict."""
    out = json.dumps(str(entry.get("manager", "")))
    if entry.get("subresource"):
        out += f' with subresource {json.dumps(entry["subresource"])}'
    if entry.get("operation") == "Update":
        out += f" using {entry.get('apiVersion', '')}"
        if entry.get("time"):
            out += f" at {entry['time']}"
    return out


def conflict_error(conflicts: list[tuple[dict[str, Any], Path]]) -> errors.Conflict:
    causes = [errors.FieldError(managedfields.path_string(p), f"conflict with {_printed(e)}", "FieldManagerConflict")
              for e, p in conflicts]
    if len(conflicts) == 1:
        e, p = conflicts[0]
        return errors.Conflict(f"Apply failed with 1 conflict: conflict with {_printed(e)}: "
                               f"{managedfields.path_string(p)}", causes=causes)
    by_manager: dict[str, list[str]] = {}
    for e, p in conflicts:
        by_manager.setdefault(_printed(e), []).append(managedfields.path_string(p))
    lines: list[str] = []
    for m in sorted(by_manager):
        lines.append(f"conflicts with {m}:")
        lines += [f"- {p}" for p in by_manager[m]]
    return errors.Conflict(f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines), causes=causes)


def _differs(applied: dict[str, Any], live: dict[str, Any], p: Path) -> bool:
    a, b = managedfields.value_at(applied, p), managedfields.value_at(live, p)
    if p[-1][:2] in ("k:", "v:"):
        return False  # both hold the item: only its fields can conflict
    return json.dumps(a, sort_keys=True) != json.dumps(b, sort_keys=True)


def _without_entries(obj: dict[str, Any]) -> dict[str, Any]:
    md = obj.get("metadata")
    if not isinstance(md, dict):
        return obj
    return {**obj, "metadata": {k: v for k, v in md.items() if k != "managedFields"}}


def _is_mine(entry: dict[str, Any], manager: str) -> bool:
    return entry.get("manager") == manager and entry.get("operation") == "Apply" and not entry.get("subresource")


Entries = list[dict[str, Any]]


def merge(live: dict[str, Any], applied: dict[str, Any], entries: Entries, manager: str, api_version: str,
          info: ResourceInfo, *, force: bool, time: str) -> tuple[dict[str, Any], Entries]:
    """(the object after `manager` applies `applied` to `live`, the new managedFields entries)."""
    new_set = managedfields.field_set(applied, info.descriptor)
    conflicts: list[tuple[dict[str, Any], Path]] = []
    owned: list[tuple[dict[str, Any], FieldSet]] = []
    previous: FieldSet = set()
    for e in entries:
        paths = managedfields.entry_set(e)
        if _is_mine(e, manager):
            previous = paths
            continue
        if not e.get("subresource"):
            clash = sorted(p for p in new_set & paths if _differs(applied, live, p))
            conflicts += [(e, p) for p in clash]
            if force:
                paths = paths - set(clash)
        owned.append((e, paths))
    if conflicts and not force:
        raise conflict_error(conflicts)
    others: FieldSet = set().union(*(paths for _, paths in owned)) if owned else set()
    intent = {k: v for k, v in applied.items() if k not in ("apiVersion", "kind")}
    md = intent.get("metadata")
    if isinstance(md, dict):
        intent["metadata"] = {k: v for k, v in md.items() if k not in _SERVER_METADATA}
    out = patch.strategic_merge_patch(live, intent, info.descriptor)
    # What the applier let go of and nobody else holds (nor holds anything under) goes, deepest first.
    gone = [p for p in previous - new_set
            if p not in others and not any(o[:len(p)] == p for o in others)]
    for p in sorted(gone, key=len, reverse=True):
        managedfields.remove(out, p)
    if new_set == previous and not conflicts and _without_entries(out) == _without_entries(live):
        return out, entries  # a re-apply that changes nothing: no write, no new time
    new_entries: list[dict[str, Any]] = []
    mine = managedfields.make_entry(manager, "Apply", api_version, time, new_set)
    placed = False
    for e in entries:
        if _is_mine(e, manager):
            new_entries.append(mine)
            placed = True
            continue
        paths = next(p for oe, p in owned if oe is e)
        if paths:
            new_entries.append({**e, "fieldsV1": managedfields.to_fields_v1(paths)})
    if not placed:
        new_entries.append(mine)
    return out, new_entries


async def apply(rest: Rest, info: ResourceInfo, namespace: str, name: str, applied: dict[str, Any], manager: str,
                *, force: bool, dry_run: bool, user: User | None = None) -> Message:
    """Apply `applied` (Kubernetes JSON with apiVersion and kind) as `manager`; create the object if absent."""
    md = applied.setdefault("metadata", {})
    if not isinstance(md, dict):
        raise errors.BadRequest("metadata must be an object")
    if md.get("name") and md["name"] != name:
        raise errors.BadRequest(f"the name of the object ({md['name']}) does not match the name on the URL "
                                f"({name})")
    md["name"] = name
    namespace = rest._scope(info, namespace)
    if md.get("namespace") and md["namespace"] != namespace:
        raise errors.BadRequest("the namespace of the provided object does not match the namespace sent on the "
                                "request")
    md.pop("namespace", None)
    api_version = info.api_version
    for _ in range(PATCH_RETRIES):
        try:
            cur = await rest.store.get(info, namespace, name)
        except errors.NotFound:
            obj_d, entries = merge({}, applied, [], manager, api_version, info, force=force,
                                   time=fieldmanager.timestamp())
            obj_d.setdefault("metadata", {})["namespace"] = namespace or None
            obj = codec.from_dict(obj_d, info.cls)
            fieldmanager.set_entries(obj, entries)
            try:
                return await rest.create(info.plural, namespace, obj.SerializeToString(), dry_run=dry_run, user=user)
            except errors.AlreadyExists:
                continue  # created meanwhile: apply over it
        live = codec.to_dict(cur.obj)
        live.pop("apiVersion", None)
        live.pop("kind", None)
        entries = fieldmanager.entries_of(cur.obj)
        obj_d, entries = merge(live, copy.deepcopy(applied), entries, manager, api_version, info, force=force,
                               time=fieldmanager.timestamp())
        obj_d["metadata"]["resourceVersion"] = str(cur.rv)
        obj = codec.from_dict(obj_d, info.cls)
        fieldmanager.set_entries(obj, entries)
        try:
            return await rest._write_update(info, obj, cur, "", dry_run, user=user)
        except errors.Conflict as e:
            if "UID" in e.message:
                raise
            continue
    raise errors.Conflict(f'{info.group_resource} "{name}": too many concurrent changes while applying')
