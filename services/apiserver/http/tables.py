"""Server-side printing: `Accept: application/json;as=Table;g=meta.k8s.io;v=v1` answers with a meta.k8s.io/v1
Table, so `kubectl get` prints the columns kube-apiserver's printers give (pods: NAME READY STATUS RESTARTS
AGE; with -o wide IP NODE NOMINATED NODE READINESS GATES) and NAME AGE for the other kinds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from google.protobuf.message import Message

from pybernetes.api import codec, objects, printing
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.kinds import ResourceInfo

NONE = "<none>"
TABLE_CONTENT_TYPE = "application/json;as=Table;g=meta.k8s.io;v=v1"

Column = dict[str, Any]
RowFn = Callable[[Message, float], list[Any]]


def wants_table(accept: str) -> bool:
    """True when the client prefers a Table (kubectl's first choice for `get`)."""
    for part in accept.split(","):
        params = dict(p.strip().partition("=")[::2] for p in part.split(";")[1:])
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io" and params.get("v") in ("v1", "v1beta1"):
            return True
    return False


def _col(name: str, description: str, *, priority: int = 0, fmt: str = "") -> Column:
    return {"name": name, "type": "string", "format": fmt, "description": description, "priority": priority}


NAME = _col("Name", "Name must be unique within a namespace.", fmt="name")
AGE = _col("Age", "CreationTimestamp is a timestamp representing the server time when this object was created.")


def _age(obj: Message, now: float) -> str:
    t = objects.meta_of(obj).creation_timestamp
    if not (t.seconds or t.nanos):
        return "<unknown>"
    return printing.human_duration(now - (t.seconds + t.nanos / 1e9))


def _pod_row(obj: Message, now: float) -> list[Any]:
    assert isinstance(obj, core.Pod)
    ready, status, restarts = printing.pod_status(obj, now)
    gates = NONE
    if obj.spec.readiness_gates:
        true = sum(1 for g in obj.spec.readiness_gates if printing.cond_true(obj, g.condition_type))
        gates = f"{true}/{len(obj.spec.readiness_gates)}"
    return [obj.metadata.name, ready, status, restarts, _age(obj, now), obj.status.pod_ip or NONE,
            obj.spec.node_name or NONE, obj.status.nominated_node_name or NONE, gates]


POD_COLUMNS = [
    NAME,
    _col("Ready", "The aggregate readiness state of this pod for accepting traffic."),
    _col("Status", "The aggregate status of the containers in this pod."),
    _col("Restarts", "The number of times the containers in this pod have been restarted and when the last "
                     "container in this pod has restarted."),
    AGE,
    _col("IP", "IP address allocated to the pod. Routable at least within the cluster.", priority=1),
    _col("Node", "NodeName is a request to schedule this pod onto a specific node.", priority=1),
    _col("Nominated Node", "nominatedNodeName is set when this pod preempts other pods on the node.", priority=1),
    _col("Readiness Gates", "If specified, all readiness gates will be evaluated for pod readiness.", priority=1),
]


def _default_row(obj: Message, now: float) -> list[Any]:
    return [objects.meta_of(obj).name, _age(obj, now)]


PRINTERS: dict[str, tuple[list[Column], RowFn]] = {
    "pods": (POD_COLUMNS, _pod_row),
}
DEFAULT = ([NAME, AGE], _default_row)


def columns(info: ResourceInfo) -> list[Column]:
    return PRINTERS.get(info.plural, DEFAULT)[0]


def row(info: ResourceInfo, obj: Message, now: float, include: str = "Metadata") -> dict[str, Any]:
    """One table row: its cells and, as kube-apiserver does by default, the object's metadata."""
    out: dict[str, Any] = {"cells": PRINTERS.get(info.plural, DEFAULT)[1](obj, now)}
    if include == "Object":
        out["object"] = codec.to_dict(obj)
    elif include != "None":
        md = codec.to_dict(objects.meta_of(obj))
        out["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": md}
    return out


def table(info: ResourceInfo, objs: Sequence[Message], *, resource_version: str = "", continue_: str = "",
          include: str = "Metadata", now: float | None = None) -> dict[str, Any]:
    t = time.time() if now is None else now
    md: dict[str, Any] = {}
    if resource_version:
        md["resourceVersion"] = resource_version
    if continue_:
        md["continue"] = continue_
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": md, "columnDefinitions": columns(info),
            "rows": [row(info, o, t, include) for o in objs]}
