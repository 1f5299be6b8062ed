"""Per-kind rules around storage writes (Kubernetes' RESTCreateStrategy/RESTUpdateStrategy): the entry points.

What the server sets on create, what a spec update may not touch (status), what a status update may not
touch (spec), when generation moves, and which fields each kind exposes to field selectors. The generic
rules are here; what a kind adds (its `prepare_for_create`, its `fields`) is its strategy's (strategies.py).
"""

from __future__ import annotations

from collections.abc import Callable

from google.protobuf.message import Message

from pybernetes.api import kinds
from pybernetes.api.objects import meta_of
from services.apiserver.registry.kindstrategy import meta_fields
from services.apiserver.registry.protofields import sub_message
from services.apiserver.registry.strategies import strategy_for, strategy_for_class

FieldsFn = Callable[[Message], dict[str, str]]


def fields_fn(info: kinds.ResourceInfo) -> FieldsFn:
    """The field selector attributes of info's kind (the store calls it with objects of that kind only)."""
    strategy = strategy_for_class(info.cls)
    if strategy is None or strategy.fields is None:
        return meta_fields
    return strategy.fields


def selectable_fields(info: kinds.ResourceInfo) -> frozenset[str]:
    probe = info.cls()
    return frozenset(fields_fn(info)(probe))


def has_spec(obj: Message) -> bool:
    return "spec" in obj.DESCRIPTOR.fields_by_name


def spec_bytes(obj: Message) -> bytes:
    """What generation tracks: spec for spec-bearing kinds (a Deployment's template included)."""
    if has_spec(obj):
        return sub_message(obj, "spec").SerializeToString(deterministic=True)
    return b""


def prepare_for_create(info: kinds.ResourceInfo, obj: Message) -> None:
    """Reset what clients may not set on create (status of most kinds), as Kubernetes does."""
    strategy = strategy_for(obj)
    if strategy is not None and strategy.prepare_for_create is not None:
        strategy.prepare_for_create(obj)
    if has_spec(obj):
        meta_of(obj).generation = 1


def prepare_for_update(info: kinds.ResourceInfo, obj: Message, old: Message) -> None:
    """A main-resource update keeps the old status (for kinds with a status subresource: the Node's is the
    kubelet's, written through it)."""
    if info.has_status and "status" in obj.DESCRIPTOR.fields_by_name:
        sub_message(obj, "status").CopyFrom(sub_message(old, "status"))
    md, omd = meta_of(obj), meta_of(old)
    if has_spec(obj):
        md.generation = omd.generation + (1 if spec_bytes(obj) != spec_bytes(old) else 0)
    else:
        md.generation = omd.generation


def prepare_for_status_update(obj: Message, old: Message) -> Message:
    """A status update changes status only: everything else comes from the stored object."""
    out = type(old)()
    out.CopyFrom(old)
    if "status" in obj.DESCRIPTOR.fields_by_name:
        sub_message(out, "status").CopyFrom(sub_message(obj, "status"))
    return out
