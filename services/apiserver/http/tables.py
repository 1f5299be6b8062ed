"""Server-side printing: `Accept: application/json;as=Table;g=meta.k8s.io;v=v1` answers with a meta.k8s.io/v1
Table, so `kubectl get` prints the columns kube-apiserver's printers give: the per-kind columns and cells of
pybernetes/api/printing.py, the same table pbctl's `get` prints (NAME AGE for kinds it has no entry for).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from google.protobuf.message import Message

from pybernetes.api import codec, objects, printing
from pybernetes.api.kinds import ResourceInfo

TABLE_CONTENT_TYPE = "application/json;as=Table;g=meta.k8s.io;v=v1"


def wants_table(accept: str) -> bool:
    """True when the client prefers a Table (kubectl's first choice for `get`)."""
    for part in accept.split(","):
        params = dict(p.strip().partition("=")[::2] for p in part.split(";")[1:])
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io" and params.get("v") in ("v1", "v1beta1"):
            return True
    return False


def columns(info: ResourceInfo) -> list[dict[str, Any]]:
    return [c.definition() for c in printing.columns(info.plural)]


def row(info: ResourceInfo, obj: Message, now: float, include: str = "Metadata") -> dict[str, Any]:
    """One table row: its cells and, as kube-apiserver does by default, the object's metadata."""
    out: dict[str, Any] = {"cells": printing.cells(info.plural, obj, now)}
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
