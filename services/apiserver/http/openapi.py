"""The OpenAPI documents: /openapi/v2 (Swagger 2.0) and /openapi/v3 (the index) with one document per
group-version (/openapi/v3/api/v1, /openapi/v3/apis/apps/v1, ...).

Schemas come from pybernetes.api.openapi (the proto descriptors); paths carry each kind's operations with
their query parameters, among them `fieldValidation`, which kubectl looks for before leaving validation to
the server (`fieldValidation=Strict`). The index links each document with `?hash=` the sha512 of its JSON,
as kube-apiserver does, so clients refetch exactly when a document changes.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from typing import Any

from pybernetes.api import openapi
from pybernetes.api.kinds import ResourceInfo

from .discovery import GIT_VERSION, group_versions, resources_in

PATCH_PARAMETERS = ("dryRun", "fieldManager", "fieldValidation", "force")
WRITE_PARAMETERS = ("dryRun", "fieldManager", "fieldValidation")
PATCH_CONSUMES = ("application/json-patch+json", "application/merge-patch+json",
                  "application/strategic-merge-patch+json", "application/apply-patch+yaml")


def document_path(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def _param(name: str, v3: bool) -> dict[str, Any]:
    if v3:
        return {"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
    return {"name": name, "in": "query", "type": "string", "uniqueItems": True}


def _op(r: ResourceInfo, action: str, verb: str, params: tuple[str, ...], v3: bool) -> dict[str, Any]:
    ref = ("#/components/schemas/" if v3 else "#/definitions/") + openapi.definition_name(r.descriptor)
    ok: dict[str, Any] = {"description": "OK"}
    if v3:
        ok["content"] = {"application/json": {"schema": {"$ref": ref}}}
    else:
        ok["schema"] = {"$ref": ref}
    op: dict[str, Any] = {
        "operationId": f"{verb}{r.kind}", "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": r.group, "kind": r.kind, "version": r.version},
        "parameters": [_param(p, v3) for p in params], "responses": {"200": ok}}
    if action == "patch" and not v3:
        op["consumes"] = list(PATCH_CONSUMES)
    return op


def _paths(infos: list[ResourceInfo], v3: bool) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for r in infos:
        prefix = "/" + document_path(r.group, r.version)
        collection = f"{prefix}/namespaces/{{namespace}}/{r.plural}" if r.namespaced else f"{prefix}/{r.plural}"
        if "create" in r.verbs:
            paths[collection] = {"post": _op(r, "post", "create", WRITE_PARAMETERS, v3)}
        if "get" not in r.verbs:
            continue
        paths[collection + "/{name}"] = {
            "get": _op(r, "get", "read", (), v3),
            "put": _op(r, "put", "replace", WRITE_PARAMETERS, v3),
            "patch": _op(r, "patch", "patch", PATCH_PARAMETERS, v3)}
    return paths


@cache
def _group_version_document(group: str, version: str) -> str | None:
    infos = resources_in(group, version)
    if not infos:
        return None
    doc = {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": GIT_VERSION},
           "paths": _paths(infos, True), "components": {"schemas": openapi.definitions(infos, True)}}
    return json.dumps(doc, separators=(",", ":"), sort_keys=True)


def group_version_document(group: str, version: str) -> bytes | None:
    """The OpenAPI v3 document of a group-version, as JSON bytes; None when it is not served."""
    doc = _group_version_document(group, version)
    return doc.encode() if doc is not None else None


def document_hash(doc: bytes) -> str:
    return hashlib.sha512(doc).hexdigest().upper()


def v3_index() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for g, vs in group_versions().items():
        for v in vs:
            doc = group_version_document(g, v)
            assert doc is not None
            p = document_path(g, v)
            paths[p] = {"serverRelativeURL": f"/openapi/v3/{p}?hash={document_hash(doc)}"}
    return {"paths": paths}


@cache
def _v2_document() -> str:
    infos = [r for vs in group_versions().items() for v in vs[1] for r in resources_in(vs[0], v)]
    doc = {"swagger": "2.0", "info": {"title": "Kubernetes", "version": GIT_VERSION},
           "paths": _paths(infos, False), "definitions": openapi.definitions(infos, False)}
    return json.dumps(doc, separators=(",", ":"), sort_keys=True)


def v2_document() -> bytes:
    """The Swagger 2.0 document of every served kind, as JSON bytes."""
    return _v2_document().encode()
