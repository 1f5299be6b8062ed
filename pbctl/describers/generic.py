"""describe for every kind without a report of its own: its fields as YAML; ConfigMap and Secret keys."""

from __future__ import annotations

from google.protobuf.message import Message

from pbctl.describers.writer import Writer, labels, print_annotations
from pybernetes.api import codec, kinds
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.objects import meta_of


def describe_generic(w: Writer, info: kinds.ResourceInfo, obj: Message) -> None:
    md = meta_of(obj)
    w.w(0, f"Name:\t{md.name}\n")
    if info.namespaced:
        w.w(0, f"Namespace:\t{md.namespace}\n")
    labels(w, "Labels", md.labels)
    print_annotations(w, md.annotations)
    data = codec.to_dict(obj)
    w.w(0, f"API Version:\t{data.pop('apiVersion', '')}\n")
    w.w(0, f"Kind:\t{data.pop('kind', '')}\n")
    data.pop("metadata", None)
    if isinstance(obj, core.ConfigMap):
        w.w(0, "\nData\n====\n")
        for k in sorted(obj.data):
            w.w(0, f"{k}:\n----\n{obj.data[k]}\n\n")
        w.w(0, "\nBinaryData\n====\n")
        for k in sorted(obj.binary_data):
            w.w(0, f"{k}: {len(obj.binary_data[k])} bytes\n")
        return
    if isinstance(obj, core.Secret):
        w.w(0, f"\nType:\t{obj.type or 'Opaque'}\n\nData\n====\n")
        for k in sorted(obj.data):
            w.w(0, f"{k}:\t{len(obj.data[k])} bytes\n")
        return
    for line in codec.yaml_dump(data).splitlines() if data else []:
        w.w(0, line.replace("\t", " ") + "\n")
