"""Per-kind rules around storage writes (Kubernetes' RESTCreateStrategy/RESTUpdateStrategy).

What the server sets on create, what a spec update may not touch (status), what a status update may not
touch (spec), when generation moves, and which fields each kind exposes to field selectors.
"""

from __future__ import annotations

from collections.abc import Callable

from google.protobuf.message import Message

from pybernetes.api import registry
from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.qos import qos_class

FieldsFn = Callable[[Message], dict[str, str]]


def _meta_fields(o: Message) -> dict[str, str]:
    md = o.metadata  # type: ignore[attr-defined]
    return {"metadata.name": md.name, "metadata.namespace": md.namespace}


def _pod_fields(o: Message) -> dict[str, str]:
    p: core.Pod = o  # type: ignore[assignment]
    return {"metadata.name": p.metadata.name, "metadata.namespace": p.metadata.namespace,
            "spec.nodeName": p.spec.node_name, "spec.restartPolicy": p.spec.restart_policy,
            "spec.schedulerName": p.spec.scheduler_name, "spec.serviceAccountName": p.spec.service_account_name,
            "status.phase": p.status.phase, "status.podIP": p.status.pod_ip,
            "status.nominatedNodeName": p.status.nominated_node_name}


def _node_fields(o: Message) -> dict[str, str]:
    n: core.Node = o  # type: ignore[assignment]
    return {"metadata.name": n.metadata.name, "spec.unschedulable": str(n.spec.unschedulable).lower()}


def _event_fields(o: Message) -> dict[str, str]:
    e: core.Event = o  # type: ignore[assignment]
    io = e.involved_object
    return {"metadata.name": e.metadata.name, "metadata.namespace": e.metadata.namespace,
            "involvedObject.kind": io.kind, "involvedObject.namespace": io.namespace,
            "involvedObject.name": io.name, "involvedObject.uid": io.uid,
            "involvedObject.apiVersion": io.api_version, "involvedObject.resourceVersion": io.resource_version,
            "involvedObject.fieldPath": io.field_path, "reason": e.reason, "type": e.type,
            "source": e.source.component, "reportingComponent": e.reporting_component}


def _secret_fields(o: Message) -> dict[str, str]:
    s: core.Secret = o  # type: ignore[assignment]
    return {**_meta_fields(o), "type": s.type}


def _ns_fields(o: Message) -> dict[str, str]:
    n: core.Namespace = o  # type: ignore[assignment]
    return {"metadata.name": n.metadata.name, "status.phase": n.status.phase}


FIELDS: dict[str, FieldsFn] = {
    "pods": _pod_fields,
    "nodes": _node_fields,
    "events": _event_fields,
    "secrets": _secret_fields,
    "namespaces": _ns_fields,
}


def fields_fn(info: registry.ResourceInfo) -> FieldsFn:
    return FIELDS.get(info.plural, _meta_fields)


def selectable_fields(info: registry.ResourceInfo) -> frozenset[str]:
    probe = info.cls()
    return frozenset(fields_fn(info)(probe))


def has_spec(obj: Message) -> bool:
    return "spec" in obj.DESCRIPTOR.fields_by_name


def spec_bytes(obj: Message) -> bytes:
    """What generation tracks: spec for spec-bearing kinds (a Deployment's template included)."""
    if has_spec(obj):
        return obj.spec.SerializeToString(deterministic=True)  # type: ignore[attr-defined,no-any-return]
    return b""


def prepare_for_create(info: registry.ResourceInfo, obj: Message) -> None:
    """Reset what clients may not set on create (status of most kinds), as Kubernetes does."""
    if isinstance(obj, core.Pod):
        obj.ClearField("status")
        obj.status.phase = "Pending"
        obj.status.qos_class = qos_class(obj)
    elif isinstance(obj, core.Namespace):
        obj.ClearField("status")  # defaulting sets phase Active and the "kubernetes" finalizer
    elif isinstance(obj, (apps.Deployment, apps.ReplicaSet, core.ReplicationController, core.Service)):
        obj.ClearField("status")
    if has_spec(obj):
        obj.metadata.generation = 1  # type: ignore[attr-defined]


def prepare_for_update(info: registry.ResourceInfo, obj: Message, old: Message) -> None:
    """A main-resource update keeps the old status (for kinds with a status subresource)."""
    if info.has_status and "status" in obj.DESCRIPTOR.fields_by_name and not isinstance(obj, core.Node):
        obj.status.CopyFrom(old.status)  # type: ignore[attr-defined]
    if isinstance(obj, core.Node) and isinstance(old, core.Node):
        # Node status is written by the kubelet through the status subresource; keep it here too.
        obj.status.CopyFrom(old.status)
    md, omd = obj.metadata, old.metadata  # type: ignore[attr-defined]
    if has_spec(obj):
        md.generation = omd.generation + (1 if spec_bytes(obj) != spec_bytes(old) else 0)
    else:
        md.generation = omd.generation


def prepare_for_status_update(obj: Message, old: Message) -> Message:
    """A status update changes status only: everything else comes from the stored object."""
    out = type(old)()
    out.CopyFrom(old)
    if "status" in obj.DESCRIPTOR.fields_by_name:
        out.status.CopyFrom(obj.status)  # type: ignore[attr-defined]
    return out


