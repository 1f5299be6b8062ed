"""metadata.managedFields on writes: who changed which fields (pybernetes.api.managedfields has the sets).

Rest calls `track` on create and update when the request names a manager (HTTP: the `fieldManager` query
parameter, else the user agent's product as Kubernetes defaults it, see `manager_for`); the object then
carries the old entries updated by an Update operation of that manager. Writes without a manager (the gRPC
API) keep the entries as stored. Apply operations are built in apply.py on the same model.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.message import Message

from pybernetes import errors
from pybernetes.api import codec, managedfields
from pybernetes.api.kinds import ResourceInfo
from pybernetes.api.meta.v1 import meta_pb2 as meta
from pybernetes.api.objects import meta_of
from pybernetes.api.times import now

MAX_MANAGER = 128  # kube-apiserver's limit on a manager name


def manager_for(field_manager: str, user_agent: str) -> str:
    """The manager of a write: the fieldManager parameter, else the user agent's product (`kubectl/v1.33.0
    (linux/amd64) ...` -> `kubectl`), as kube-apiserver defaults it."""
    if field_manager:
        if len(field_manager) > MAX_MANAGER:
            raise errors.BadRequest(f"fieldManager: Too long: may not be more than {MAX_MANAGER} bytes")
        return field_manager
    return (user_agent.split("/", 1)[0].strip() or "unknown")[:MAX_MANAGER]


def timestamp() -> str:
    return codec.time_to_str(now())


def entries_of(obj: Message) -> list[dict[str, Any]]:
    return [codec.to_dict(e) for e in meta_of(obj).managed_fields]


def set_entries(obj: Message, entries: list[dict[str, Any]]) -> None:
    md = meta_of(obj)
    md.ClearField("managed_fields")
    for e in entries:
        md.managed_fields.append(codec.from_dict(e, meta.ManagedFieldsEntry))


def track(info: ResourceInfo, old: Message | None, obj: Message, manager: str | None,
          subresource: str = "") -> None:
    """Set obj's managedFields for a write of `obj` over `old` (None: a create) by `manager`."""
    md = meta_of(obj)
    if manager is None:
        if old is not None and not md.managed_fields:
            md.managed_fields.extend(meta_of(old).managed_fields)
        return
    base = entries_of(old) if old is not None else []
    changed, removed = managedfields.changed_paths(codec.to_dict(old) if old is not None else None,
                                                   codec.to_dict(obj), info.descriptor, subresource)
    if not changed and not removed:
        set_entries(obj, base)  # nothing changed: no new entry, no new time (and a no-op stays a no-op)
        return
    set_entries(obj, managedfields.record_update(base, manager, info.api_version, timestamp(), changed, removed,
                                                 subresource))
