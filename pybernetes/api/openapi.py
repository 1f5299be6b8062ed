"""OpenAPI schemas of the served kinds, generated from the one schema: the proto descriptors.

Each message becomes a definition named as Kubernetes names it (`io.k8s.api.core.v1.PodSpec`,
`io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta`); properties carry the JSON names, the `doc` option as
description and the `required` option as `required`. Kinds get `x-kubernetes-group-version-kind` from the
kind table; lists with a `merge_key` get the strategic-merge metadata pybernetes.api.patch uses
(`x-kubernetes-patch-merge-key`/`-strategy`) and `x-kubernetes-list-type: map` with their map keys; set-like
primitive lists and Kubernetes' retainKeys fields get their strategies too.

`definitions(v3)` builds the schemas for OpenAPI v2 (`#/definitions/...`) or v3 (`#/components/schemas/...`,
references wrapped in allOf as kube-apiserver does); the apiserver's HTTP layer serves them.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from pybernetes.api import kinds
from pybernetes.api.meta.v1 import meta_pb2 as meta
from pybernetes.api.meta.v1 import options_pb2
from pybernetes.api.patch import MERGE_PRIMITIVES  # primitive lists merged as sets

# Typed as Any: the generated stubs type Extensions[] keys narrowly.
_DOC: Any = options_pb2.doc
_REQUIRED: Any = options_pb2.required
_MERGE_KEY: Any = options_pb2.merge_key

META = "io.k8s.apimachinery.pkg.apis.meta.v1"
# meta.v1 special types: Kubernetes' names and JSON schemas.
SPECIAL: dict[str, tuple[str, dict[str, Any]]] = {
    meta.Time.DESCRIPTOR.full_name: (f"{META}.Time", {"type": "string", "format": "date-time"}),
    meta.Quantity.DESCRIPTOR.full_name: ("io.k8s.apimachinery.pkg.api.resource.Quantity", {"type": "string"}),
    meta.IntOrString.DESCRIPTOR.full_name: ("io.k8s.apimachinery.pkg.util.intstr.IntOrString",
                                            {"type": "string", "format": "int-or-string"}),
    meta.RawExtension.DESCRIPTOR.full_name: ("io.k8s.apimachinery.pkg.runtime.RawExtension", {"type": "object"}),
}
# Fields Kubernetes tags patchStrategy=retainKeys (kubectl then sends `$retainKeys`, so a union such as a
# Deployment's strategy drops the member the manifest no longer names). Keyed as MERGE_PRIMITIVES.
RETAIN_KEYS = frozenset({("pybernetes.api.apps.v1.DeploymentSpec", "strategy"),
                         ("pybernetes.api.core.v1.PodSpec", "volumes")})
_INT64 = {FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_SINT64,
          FieldDescriptor.TYPE_FIXED64, FieldDescriptor.TYPE_SFIXED64}
_INT32 = {FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_SINT32,
          FieldDescriptor.TYPE_FIXED32, FieldDescriptor.TYPE_SFIXED32}


def definition_name(desc: Descriptor) -> str:
    """Kubernetes' definition name for a message: pybernetes.api.core.v1.Pod -> io.k8s.api.core.v1.Pod."""
    special = SPECIAL.get(desc.full_name)
    if special is not None:
        return special[0]
    name = desc.full_name
    if name.startswith("pybernetes.api.meta.v1."):
        return f"{META}.{desc.name}"
    return "io.k8s.api." + name.removeprefix("pybernetes.api.")


def doc(fd: FieldDescriptor) -> str:
    return str(fd.GetOptions().Extensions[_DOC])


def required(fd: FieldDescriptor) -> bool:
    return bool(fd.GetOptions().Extensions[_REQUIRED])


def merge_key(fd: FieldDescriptor) -> str:
    return str(fd.GetOptions().Extensions[_MERGE_KEY])


def is_repeated(fd: FieldDescriptor) -> bool:
    rep = getattr(fd, "is_repeated", None)
    return bool(rep) if rep is not None else getattr(fd, "label", 0) == FieldDescriptor.LABEL_REPEATED


def message_of(fd: FieldDescriptor) -> Descriptor | None:
    return fd.message_type if fd.type == FieldDescriptor.TYPE_MESSAGE else None


def map_value(fd: FieldDescriptor) -> FieldDescriptor | None:
    """The value field of a map field's entry; None when fd is not a map."""
    mt = message_of(fd)
    if mt is None or not mt.GetOptions().map_entry:
        return None
    return mt.fields_by_name["value"]


def _ref(desc: Descriptor, v3: bool) -> dict[str, Any]:
    return {"$ref": ("#/components/schemas/" if v3 else "#/definitions/") + definition_name(desc)}


def _single(fd: FieldDescriptor, v3: bool) -> dict[str, Any]:
    mt = message_of(fd)
    if mt is not None:
        return _ref(mt, v3)
    if fd.type in _INT64:
        return {"type": "integer", "format": "int64"}
    if fd.type in _INT32:
        return {"type": "integer", "format": "int32"}
    if fd.type in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        return {"type": "number", "format": "double"}
    if fd.type == FieldDescriptor.TYPE_BOOL:
        return {"type": "boolean"}
    if fd.type == FieldDescriptor.TYPE_BYTES:
        return {"type": "string", "format": "byte"}
    return {"type": "string"}


def _wrap(schema: dict[str, Any], v3: bool, description: str) -> dict[str, Any]:
    # A v3 $ref ignores its siblings: kube-apiserver wraps it in allOf to keep the description.
    if "$ref" in schema and v3:
        schema = {"allOf": [schema], "default": {}}
    if description:
        schema = {**schema, "description": description}
    return schema


def property_schema(fd: FieldDescriptor, container: Descriptor, v3: bool) -> dict[str, Any]:
    vfd = map_value(fd)
    if vfd is not None:
        return _wrap({"type": "object", "additionalProperties": _wrap(_single(vfd, v3), v3, "")}, v3, doc(fd))
    if is_repeated(fd):
        schema: dict[str, Any] = {"type": "array", "items": _wrap(_single(fd, v3), v3, "")}
        key = merge_key(fd)
        if key:
            strategy = "merge,retainKeys" if (container.full_name, fd.name) in RETAIN_KEYS else "merge"
            schema.update({"x-kubernetes-list-map-keys": [key], "x-kubernetes-list-type": "map",
                           "x-kubernetes-patch-merge-key": key, "x-kubernetes-patch-strategy": strategy})
        elif (container.full_name, fd.name) in MERGE_PRIMITIVES:
            schema.update({"x-kubernetes-list-type": "set", "x-kubernetes-patch-strategy": "merge"})
        return _wrap(schema, v3, doc(fd))
    schema = _wrap(_single(fd, v3), v3, doc(fd))
    if (container.full_name, fd.name) in RETAIN_KEYS:
        schema["x-kubernetes-patch-strategy"] = "retainKeys"
    return schema


def message_schema(desc: Descriptor, v3: bool) -> dict[str, Any]:
    special = SPECIAL.get(desc.full_name)
    if special is not None:
        return dict(special[1])
    props: dict[str, Any] = {}
    info = kinds.for_descriptor_name(desc.full_name)
    if info is not None:
        props["apiVersion"] = {"type": "string", "description": "APIVersion defines the versioned schema of this "
                               "representation of an object."}
        props["kind"] = {"type": "string", "description": "Kind is a string value representing the REST resource "
                         "this object represents."}
    for fd in desc.fields:
        props[fd.json_name] = property_schema(fd, desc, v3)
    schema: dict[str, Any] = {"type": "object", "properties": dict(sorted(props.items()))}
    if info is not None:
        schema["description"] = f"{info.kind} is a {info.group or 'core'}/{info.version} API object."
        schema["x-kubernetes-group-version-kind"] = [{"group": info.group, "kind": info.kind,
                                                      "version": info.version}]
    req = sorted(fd.json_name for fd in desc.fields if required(fd))
    if req:
        schema["required"] = req
    return schema


def _collect(desc: Descriptor, out: dict[str, Descriptor]) -> None:
    name = definition_name(desc)
    if name in out:
        return
    out[name] = desc
    if desc.full_name in SPECIAL:
        return
    for fd in desc.fields:
        mt = message_of(fd)
        if mt is None:
            continue
        vfd = map_value(fd)
        if vfd is not None:
            mt = message_of(vfd)
            if mt is None:
                continue
        _collect(mt, out)


def definitions(infos: list[kinds.ResourceInfo], v3: bool) -> dict[str, Any]:
    """Every definition the kinds reach, by Kubernetes name, sorted."""
    descs: dict[str, Descriptor] = {}
    for info in infos:
        _collect(info.descriptor, descs)
    return {name: message_schema(descs[name], v3) for name in sorted(descs)}
