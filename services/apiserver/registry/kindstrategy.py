"""KindStrategy: everything the apiserver does differently for one kind, gathered in that kind's module.

Kubernetes' per-kind strategy (pkg/registry/<group>/<kind>/strategy.go: PrepareForCreate, Validate,
ValidateUpdate, the status strategy, GetAttrs) plus its SetDefaults_<Kind>: each kind module (core/pod.py,
apps/deployment.py, ...) ends with one `STRATEGY = KindStrategy(<kind>, ...)`, typed for that kind; strategies.py
collects them and the entry points (defaults, validation, strategy) look a kind's up there. A hook left None
means the kind has nothing to add to the generic behaviour. `clear_status` and `meta_fields` are the
hooks several kinds share.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from google.protobuf.message import Message

from pybernetes.api.objects import meta_of
from services.apiserver.registry.field import Errs
from services.apiserver.registry.formats import is_dns1123_subdomain
from services.apiserver.registry.metadata import NameFn

KindT = TypeVar("KindT", bound=Message)


@dataclass(frozen=True)
class KindStrategy(Generic[KindT]):
    kind: type[KindT]
    # SetDefaults_<Kind>: fills defaults in place, before validation, on create and update.
    default: Callable[[KindT], None] | None = None
    # What metadata.name must be (a DNS subdomain unless the kind says otherwise).
    name: NameFn = is_dns1123_subdomain
    # Create rules (also run on update, before the update rules), update rules, status-subresource rules.
    validate: Callable[[KindT, Errs], None] | None = None
    validate_update: Callable[[KindT, KindT, Errs], None] | None = None
    validate_status: Callable[[KindT, KindT, Errs], None] | None = None
    # PrepareForCreate: what the server resets on create (most kinds: the status clients may not set).
    prepare_for_create: Callable[[KindT], None] | None = None
    # The field selector attributes (GetAttrs); None: metadata.name and metadata.namespace only.
    fields: Callable[[KindT], dict[str, str]] | None = None


def clear_status(obj: Message) -> None:
    """PrepareForCreate of kinds whose status only controllers write."""
    obj.ClearField("status")


def meta_fields(obj: Message) -> dict[str, str]:
    """The field selector attributes every kind has."""
    md = meta_of(obj)
    return {"metadata.name": md.name, "metadata.namespace": md.namespace}
