"""The resource verbs over HTTP: get, list, create, update (PUT), patch, delete, and the status and binding
subresources, each a thin translation of the request into the one Rest call the gRPC API makes too.

Bodies are Kubernetes JSON (or YAML) decoded by pybernetes.api.codec under the request's `fieldValidation`
(fieldvalidation.py); answers are JSON objects with apiVersion and kind, or Tables.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from aiohttp import web
from google.protobuf.message import Message

from pybernetes import errors
from pybernetes.api import codec, kinds, objects
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.kinds import ResourceInfo
from pybernetes.api.meta.v1 import meta_pb2 as meta

from .. import apply, fieldmanager
from ..auth import User
from ..rest import Rest
from . import fieldvalidation, kubeproto, status, tables, watch
from .routing import Target

PATCH_TYPES = ("application/merge-patch+json", "application/strategic-merge-patch+json",
               "application/json-patch+json")
APPLY_PATCH = "application/apply-patch+yaml"
# Kinds whose DELETE answers with the deleted object (kube-apiserver's ReturnDeletedObject); the rest with a Status.
RETURNS_DELETED_OBJECT = frozenset({"pods", "services"})
USER_KEY = web.RequestKey("pybernetes.user", User)  # the authenticated user (app.py), for Rest's writes


def user_of(request: web.Request) -> User | None:
    """Who sent `request`, authenticated (impersonation applied) by app.py: what every REST handler passes to
    Rest's writes (admission, RBAC's escalation prevention) and to the reviews; None on the public paths."""
    return request[USER_KEY] if USER_KEY in request else None


def respond(body: Any, code: int = 200, content_type: str = "application/json") -> web.Response:
    return web.Response(body=json.dumps(body, separators=(",", ":")).encode(), status=code,
                        headers={"Content-Type": content_type})


def _dry_run(request: web.Request) -> bool:
    values = request.query.getall("dryRun", [])
    for v in values:
        if v != "All":
            raise errors.BadRequest(f'unsupported dryRun value "{v}": only "All" is supported')
    return bool(values)


def _manager(request: web.Request) -> str:
    return fieldmanager.manager_for(request.query.get("fieldManager", ""), request.headers.get("User-Agent", ""))


def _table(request: web.Request) -> bool:
    return tables.wants_table(request.headers.get("Accept", ""))


def _include(request: web.Request) -> str:
    return request.query.get("includeObject", "Metadata")


async def _decode(request: web.Request, rest: Rest, info: ResourceInfo) -> tuple[bytes, str, str]:
    """(protobuf bytes, apiVersion, kind) of the object in the body, under the request's fieldValidation;
    field errors name their paths. Kubernetes protobuf for the kinds that keep Kubernetes' field numbers."""
    if request.content_type == kubeproto.CONTENT_TYPE and info.plural in kubeproto.KINDS:
        av, kind, raw = kubeproto.unwrap(await request.read())
        rest._decode(info, raw, av, kind)  # the kind check, and bytes that decode
        return raw, av, kind
    duplicates: list[str] = []
    data = fieldvalidation.load(await request.read(), request.content_type, duplicates)
    if not isinstance(data, dict):
        raise errors.BadRequest("the request body must be an object")
    av, kind = str(data.get("apiVersion") or ""), str(data.get("kind") or "")
    rest._decode(info, b"", av, kind)  # the one kind check (Rest's), before field decoding
    msg, _ = fieldvalidation.decode(request, data, info, duplicates)
    return msg.SerializeToString(), av, kind


decode_body = _decode  # for the kinds answered without storage (app.py's reviews)


def _object(request: web.Request, info: ResourceInfo, msg: Message, code: int = 200) -> web.Response:
    if _table(request):
        return respond(tables.table(info, [msg], include=_include(request)), code, tables.TABLE_CONTENT_TYPE)
    return respond(codec.to_dict(msg), code)


def _named(t: Target) -> None:
    if not t.name:
        raise errors.MethodNotAllowed(f"the server does not allow this method on the collection {t.info.plural}")


def _subresource(t: Target, *allowed: str) -> None:
    if t.subresource and (t.subresource not in allowed or t.subresource not in t.info.subresources):
        raise errors.NotFound("the server could not find the requested resource")


# -- read ------------------------------------------------------------------------------------------

async def get(request: web.Request, rest: Rest, t: Target) -> web.StreamResponse:
    if not t.name:
        _subresource(t)
        q = request.query
        if q.get("watch", "").lower() in ("1", "true"):
            return await watch.serve(request, rest, t, _table(request))
        return await _list(request, rest, t)
    _subresource(t, "status")
    return _object(request, t.info, await rest.get(t.info.plural, t.namespace, t.name,
                                                   request.query.get("resourceVersion", "")))


async def _list(request: web.Request, rest: Rest, t: Target) -> web.Response:
    q = request.query
    try:
        limit = int(q.get("limit") or 0)
        if not -(2**63) <= limit < 2**63:  # an int64, as in ListOptions
            raise ValueError(limit)
    except ValueError:
        raise errors.BadRequest(f"invalid limit {q.get('limit')!r}") from None
    info = t.info
    r = await rest.list(info.plural, t.namespace, q.get("labelSelector", ""), q.get("fieldSelector", ""), limit,
                        q.get("continue", ""), q.get("resourceVersion", ""), q.get("resourceVersionMatch", ""))
    items = [info.cls.FromString(raw) for raw in r.items]
    if _table(request):
        return respond(tables.table(info, items, resource_version=r.resource_version, continue_=r.continue_,
                                    include=_include(request), now=time.time()), content_type=tables.TABLE_CONTENT_TYPE)
    md: dict[str, Any] = {"resourceVersion": r.resource_version}
    if r.continue_:
        md["continue"] = r.continue_
    if r.remaining is not None:
        md["remainingItemCount"] = r.remaining
    return respond({"apiVersion": info.api_version, "kind": info.list_kind, "metadata": md,
                    "items": [codec.to_dict(m) for m in items]})


# -- write -----------------------------------------------------------------------------------------

async def create(request: web.Request, rest: Rest, t: Target) -> web.Response:
    info = t.info
    if t.subresource == "binding" or (info.plural == "bindings" and not t.name):
        return await _bind(request, rest, t)
    if t.name:
        raise errors.MethodNotAllowed(f"POST is not supported on {info.plural}/{t.name}: create in the collection")
    raw, av, kind = await _decode(request, rest, info)
    obj = await rest.create(info.plural, t.namespace, raw, av, kind, _dry_run(request), _manager(request),
                            user=user_of(request))
    return _object(request, info, obj, 201)


async def _bind(request: web.Request, rest: Rest, t: Target) -> web.Response:
    binding = kinds.for_class(core.Binding)
    raw, _, _ = await _decode(request, rest, binding)
    name = t.name or core.Binding.FromString(raw).metadata.name
    await rest.bind(t.namespace, name, raw, user_of(request))
    return respond(status.success(kind=binding.kind, name=name), 201)


async def update(request: web.Request, rest: Rest, t: Target) -> web.Response:
    _named(t)
    _subresource(t, "status")
    info = t.info
    raw, av, kind = await _decode(request, rest, info)
    msg = info.cls.FromString(raw)
    md = objects.meta_of(msg)
    if md.name and md.name != t.name:
        raise errors.BadRequest(f"the name of the object ({md.name}) does not match the name on the URL ({t.name})")
    md.name = t.name
    obj = await rest.update(info.plural, t.namespace, msg.SerializeToString(), t.subresource, av, kind,
                            _dry_run(request), _manager(request), user=user_of(request))
    return _object(request, info, obj)


async def patch(request: web.Request, rest: Rest, t: Target) -> web.Response:
    _named(t)
    _subresource(t, "status")
    ctype = request.content_type
    if ctype == APPLY_PATCH:
        return await _apply(request, rest, t)
    if "force" in request.query:
        raise errors.BadRequest("force: Forbidden: may not be specified for non-apply patch")
    if ctype not in PATCH_TYPES:
        raise errors.ApiError(f'the body of the request was in an unknown format - accepted media types include: '
                              f'{", ".join(PATCH_TYPES)}', reason="UnsupportedMediaType", code=415)
    body = await request.read()
    fieldvalidation.mode(request)

    def unknown_fields(paths: Sequence[str]) -> None:
        fieldvalidation.check_unknown(request, t.info, list(paths))

    obj = await rest.patch(t.info.plural, t.namespace, t.name, ctype, body, t.subresource, _dry_run(request),
                           _manager(request), unknown_fields, user=user_of(request))
    return _object(request, t.info, obj)


async def _apply(request: web.Request, rest: Rest, t: Target) -> web.Response:
    """Server-side apply: the body is the applier's whole intent for the fields it manages (apply.py)."""
    if t.subresource:
        raise errors.MethodNotAllowed(f"server-side apply is not supported on {t.info.plural}/{t.subresource}")
    q = request.query
    manager = q.get("fieldManager", "")
    if not manager:
        raise errors.BadRequest("fieldManager: Required value: is required for apply patch")
    duplicates: list[str] = []
    data = fieldvalidation.load(await request.read(), "yaml", duplicates)
    if not isinstance(data, dict):
        raise errors.BadRequest("the apply configuration must be an object")
    if not data.get("apiVersion") or not data.get("kind"):
        raise errors.BadRequest("apiVersion and kind must be set in an apply configuration")
    rest._decode(t.info, b"", str(data["apiVersion"]), str(data["kind"]))
    msg, dropped = fieldvalidation.decode(request, data, t.info, duplicates)
    if dropped:  # Warn/Ignore: the intent without the fields the schema does not know
        data = codec.to_dict(msg)
    obj = await apply.apply(rest, t.info, t.namespace, t.name, data, fieldmanager.manager_for(manager, ""),
                            force=q.get("force", "").lower() in ("1", "true"), dry_run=_dry_run(request),
                            user=user_of(request))
    return _object(request, t.info, obj)


async def _delete_collection(request: web.Request, rest: Rest, t: Target, opts: meta.DeleteOptions) -> web.Response:
    """deletecollection: every object the selectors match, each through the one Rest.delete (finalizers,
    grace, propagation); objects that went meanwhile are skipped, as kube-apiserver does, which answers with the
    list of what it deleted (or marked for deletion)."""
    info = t.info
    if "deletecollection" not in info.verbs:
        raise errors.MethodNotAllowed(f"deletecollection is not supported on {info.plural}")
    q = request.query
    try:
        limit = max(0, int(q.get("limit") or 0))  # with a limit, as kube-apiserver: that one page only
    except ValueError:
        raise errors.BadRequest(f"invalid limit {q.get('limit')!r}") from None
    r = await rest.list(info.plural, t.namespace, q.get("labelSelector", ""), q.get("fieldSelector", ""), limit, "",
                        "")
    items = []
    for raw in r.items:
        obj = info.cls.FromString(raw)
        md = objects.meta_of(obj)
        try:
            await rest.delete(info.plural, md.namespace, md.name, opts, user_of(request))
        except errors.NotFound:
            continue
        items.append({"apiVersion": info.api_version, "kind": info.kind, **codec.to_dict(obj)})
    # kube-apiserver answers with the list of what it deleted (as listed), not a Status.
    return respond({"kind": info.list_kind, "apiVersion": info.api_version, "metadata": {}, "items": items})


def delete_options(body: bytes, query: Any) -> meta.DeleteOptions:
    """DeleteOptions from the body (kubectl) and the query (curl, some clients); the body wins."""
    try:
        data = json.loads(body) if body.strip() else {}
    except (ValueError, RecursionError) as e:
        raise errors.BadRequest(f"the DeleteOptions body is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise errors.BadRequest("DeleteOptions must be an object")
    data = {k: v for k, v in data.items() if k not in ("kind", "apiVersion")}
    try:
        if "gracePeriodSeconds" in query and "gracePeriodSeconds" not in data:
            data["gracePeriodSeconds"] = int(query["gracePeriodSeconds"])
        if "orphanDependents" in query and "orphanDependents" not in data:
            data["orphanDependents"] = query["orphanDependents"].lower() == "true"
    except ValueError:
        raise errors.BadRequest(f"invalid gracePeriodSeconds {query['gracePeriodSeconds']!r}") from None
    if "propagationPolicy" in query and "propagationPolicy" not in data:
        data["propagationPolicy"] = query["propagationPolicy"]
    if "dryRun" in query and "dryRun" not in data:
        data["dryRun"] = query.getall("dryRun")
    policy = data.get("propagationPolicy")
    if policy is not None and policy not in ("Orphan", "Background", "Foreground"):
        raise errors.BadRequest(f'propagationPolicy: Unsupported value: "{policy}": supported values: '
                                '"Orphan", "Background", "Foreground"')
    try:
        return codec.from_dict(data, meta.DeleteOptions)
    except errors.Invalid as e:
        raise errors.BadRequest(f"invalid DeleteOptions: {e.message}", causes=e.causes) from None


async def delete(request: web.Request, rest: Rest, t: Target) -> web.Response:
    _subresource(t)
    info = t.info
    opts = delete_options(await request.read(), request.query)
    if not t.name:
        if info.namespaced and not t.namespace:
            # As kube-apiserver: across all namespaces a namespaced resource serves list and watch only.
            raise errors.MethodNotAllowed(f"the server does not allow this method on the collection {info.plural} "
                                          "across all namespaces: delete them per namespace")
        return await _delete_collection(request, rest, t, opts)
    obj, gone = await rest.delete(info.plural, t.namespace, t.name, opts, user_of(request))
    if gone and info.plural not in RETURNS_DELETED_OBJECT:
        md = objects.meta_of(obj)
        return respond(status.success(kind=info.plural, name=md.name, group=info.group, uid=md.uid))
    return _object(request, info, obj)
