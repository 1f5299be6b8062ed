"""The one typed surface over every API object: metadata, kind, keys, owner references, labels, deletion,
status conditions.

Every kind is a generated protobuf message with `metadata: ObjectMeta`, but `google.protobuf.Message`
does not declare that field, so generic code (caches, controllers, the apiserver's storage, pbctl) reaches
metadata through `KubeObject` and the helpers here instead of silencing mypy on `obj.metadata`. The object key
(`namespace/name`, or `name` for cluster-scoped objects) is made here and nowhere else (client-go's
MetaNamespaceKeyFunc); `split_key` is its inverse. `condition`/`set_condition` read and write one condition
by type in any status's `conditions` list (pods, nodes, namespaces, deployments...). `replicas` reads a
scalable workload's spec.replicas.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol, TypeVar, cast, runtime_checkable

from google.protobuf.message import Message

from pybernetes.api import kinds
from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.meta.v1 import meta_pb2 as meta


@runtime_checkable
class KubeObject(Protocol):
    """Any API object: a generated message with Kubernetes' ObjectMeta."""

    @property
    def metadata(self) -> meta.ObjectMeta: ...


MsgT = TypeVar("MsgT", bound=Message)


def meta_of(obj: Message | KubeObject) -> meta.ObjectMeta:
    """The ObjectMeta of any registered kind (every kind's message has a `metadata` field)."""
    return cast(KubeObject, obj).metadata


def kind(obj: Message) -> str:
    """The registered kind of a message (`Pod`); KeyError for a message that is not a kind."""
    return kinds.for_message(obj).kind


def api_version(obj: Message) -> str:
    """The registered apiVersion of a message (`v1`, `apps/v1`)."""
    return kinds.for_message(obj).api_version


def key_for(namespace: str, name: str) -> str:
    """The cache/workqueue key: `namespace/name`, or `name` for cluster-scoped objects."""
    return f"{namespace}/{name}" if namespace else name


def key(obj: Message | KubeObject) -> str:
    """The object's key (client-go's MetaNamespaceKeyFunc)."""
    md = meta_of(obj)
    return key_for(md.namespace, md.name)


def split_key(k: str) -> tuple[str, str]:
    """`namespace/name` -> (namespace, name); `name` -> ("", name)."""
    namespace, sep, name = k.partition("/")
    return (namespace, name) if sep else ("", k)


def copy(obj: MsgT) -> MsgT:
    """A deep copy to edit: cached objects are shared and must never be changed in place."""
    out = type(obj)()
    out.CopyFrom(obj)
    return out


def resource_version(obj: Message | KubeObject) -> int:
    """metadata.resourceVersion as a number (0 when unset or not numeric)."""
    try:
        return int(meta_of(obj).resource_version)
    except ValueError:
        return 0


def being_deleted(obj: Message | KubeObject) -> bool:
    return meta_of(obj).HasField("deletion_timestamp")


def controller_ref(obj: Message | KubeObject) -> meta.OwnerReference | None:
    """The owner reference with `controller: true`, if any."""
    for ref in meta_of(obj).owner_references:
        if ref.controller:
            return ref
    return None


def labels(obj: Message | KubeObject) -> Mapping[str, str]:
    return meta_of(obj).labels


# -- status conditions -----------------------------------------------------------------------------

class Condition(Protocol):
    """What every status condition message has (PodCondition, NodeCondition, NamespaceCondition...)."""

    type: str
    status: str
    reason: str
    message: str

    @property
    def last_transition_time(self) -> meta.Time: ...


CondT = TypeVar("CondT", bound=Condition)
CondT_co = TypeVar("CondT_co", bound=Condition, covariant=True)


class Conditions(Protocol[CondT_co]):
    """A status's repeated `conditions` field."""

    def __iter__(self) -> Iterator[CondT_co]: ...

    def add(self, **kwargs: Any) -> CondT_co: ...


def condition(conditions: Iterable[CondT], type_: str) -> CondT | None:
    """The condition of type `type_`, if the list has one."""
    for c in conditions:
        if c.type == type_:
            return c
    return None


def set_condition(conditions: Conditions[CondT], type_: str, status: str, reason: str, message: str,
                  now: meta.Time) -> CondT:
    """Set (or add) the condition of type `type_`; lastTransitionTime moves to `now` only when the status changes."""
    c = condition(conditions, type_)
    if c is None:
        c = conditions.add(type=type_, status=status, reason=reason, message=message)
        c.last_transition_time.CopyFrom(now)
        return c
    if c.status != status:
        c.status = status
        c.last_transition_time.CopyFrom(now)
    c.reason, c.message = reason, message
    return c


Scalable = apps.Deployment | apps.ReplicaSet | apps.StatefulSet | core.ReplicationController


def replicas(obj: Scalable) -> int:
    """spec.replicas; 1 when unset (the apiserver's default, which an object built by a client may lack)."""
    return int(obj.spec.replicas) if obj.spec.HasField("replicas") else 1
