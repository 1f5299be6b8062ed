"""Server-side validation of every registered kind, in Kubernetes' words and field paths: the entry points.

`validate(obj)` is create validation, `validate(obj, old=old)` update validation (the create rules on
the new object plus Kubernetes' update rules: immutable fields, what a pod update may change, ...),
`validate_status_update(obj, old)` the status subresource's. Each returns FieldErrors whose `path` is
what Kubernetes prints (`spec.template.spec.containers[0].image`) and whose message is the rest of
Kubernetes' line ("Required value", "Invalid value: \"x\": ..."). Objects are expected to be defaulted
(defaults.apply_defaults) first, as the apiserver does. Metadata is checked here for every kind; the rules
of each kind are its strategy's (strategies.py); besides them, every field marked
`[(pybernetes.api.meta.v1.required) = true]` in the protos is checked generically (required.py).
"""

from __future__ import annotations

from typing import TypeVar

from google.protobuf.message import Message

from pybernetes.api import kinds
from pybernetes.api.objects import meta_of
from pybernetes.errors import FieldError
from services.apiserver.registry.field import Errs
from services.apiserver.registry.formats import is_dns1123_subdomain
from services.apiserver.registry.metadata import validate_object_meta, validate_object_meta_update
from services.apiserver.registry.protofields import has_field, sub_message
from services.apiserver.registry.required import walk_required
from services.apiserver.registry.strategies import strategy_for

MsgT = TypeVar("MsgT", bound=Message)


def _finish(specific: Errs, generic: Errs) -> list[FieldError]:
    """Specific errors first; a generic "Required value" only where nothing else was said of that field."""
    said = {e.path for e in specific}
    out: list[FieldError] = []
    seen: set[tuple[str, str]] = set()
    for e in [*specific, *(g for g in generic if g.path not in said)]:
        if (e.path, e.message) not in seen:
            seen.add((e.path, e.message))
            out.append(e)
    return out


def validate(obj: MsgT, *, old: MsgT | None = None) -> list[FieldError]:
    """Create validation (old is None) or update validation of a (defaulted) object of any kind."""
    info = kinds.for_class_or_none(type(obj))
    strategy = strategy_for(obj)
    errs = Errs()
    validate_object_meta(meta_of(obj), namespaced=info.namespaced if info else True,
                         name_fn=strategy.name if strategy else is_dns1123_subdomain, path="metadata", errs=errs)
    if strategy is not None and strategy.validate is not None:
        strategy.validate(obj, errs)
    if old is not None:
        validate_object_meta_update(meta_of(obj), meta_of(old), "metadata", errs)
        if strategy is not None and strategy.validate_update is not None:
            strategy.validate_update(obj, old, errs)
    generic = Errs()
    walk_required(obj, "", generic, skip=frozenset({"status"}))
    return _finish(errs, generic)


def validate_status_update(obj: MsgT, old: MsgT) -> list[FieldError]:
    """The status subresource: metadata may not be renamed, and the status must make sense."""
    errs = Errs()
    validate_object_meta_update(meta_of(obj), meta_of(old), "metadata", errs)
    strategy = strategy_for(obj)
    if strategy is not None and strategy.validate_status is not None:
        strategy.validate_status(obj, old, errs)
    generic = Errs()
    if "status" in obj.DESCRIPTOR.fields_by_name and has_field(obj, "status"):
        walk_required(sub_message(obj, "status"), "status", generic)
    return _finish(errs, generic)


__all__ = ["validate", "validate_status_update"]
