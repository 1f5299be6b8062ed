"""The REST subresources that are not the object itself: `scale` (autoscaling/v1 Scale of deployments,
replicasets, replicationcontrollers, statefulsets), `eviction` (policy/v1 Eviction of a pod), `token`
(authentication.k8s.io/v1 TokenRequest of a serviceaccount: Rest.create_token), and the kubelet streams
(`log`, `exec`, `attach`: streams.py; `portforward`: portforward.py). app.py sends every request for them here.

Scale is a view, not a stored kind: a hand-built JSON document (there is no Scale proto message, as no gRPC
caller needs one) read from the parent object, and written back as a merge patch of the parent's
spec.replicas through the same Rest.patch the gRPC API uses (validation, admission, conflicts).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from google.protobuf.message import Message

from pybernetes import errors
from pybernetes.api import codec, kinds, objects, patch, selectors
from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.authentication.v1 import authentication_pb2 as authn
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.kinds import ResourceInfo

from ..kubelet_proxy import KubeletProxy
from ..rest import Rest
from ..serviceaccount import tokenrequest
from . import portforward, resources, status, streams
from .routing import Target

SCALE_API_VERSION, SCALE_KIND = "autoscaling/v1", "Scale"
EVICTION_API_VERSION, EVICTION_KIND = "policy/v1", "Eviction"
# Served here rather than by resources.py (status and binding stay there: they are the object itself).
HANDLED = frozenset({"scale", "eviction", "log", "exec", "attach", "portforward", "token"})


def handles(t: Target) -> bool:
    return t.subresource in HANDLED and t.subresource in t.info.subresources and bool(t.name)


async def handle(request: web.Request, rest: Rest, kubelets: KubeletProxy, t: Target) -> web.StreamResponse:
    sub, method = t.subresource, request.method
    if sub == "scale":
        if method == "GET":
            return resources.respond(scale_of(t.info, await rest.get(t.info.plural, t.namespace, t.name)))
        if method == "PUT":
            return await _put_scale(request, rest, t)
        if method == "PATCH":
            return await _patch_scale(request, rest, t)
    elif sub == "eviction":
        if method == "POST":
            return await _evict(request, rest, t)
    elif sub == "token":
        if method == "POST":
            return await _token(request, rest, t)
    elif sub == "log":
        if method == "GET":
            return await streams.pod_log(request, kubelets, t)
    elif sub == "portforward":
        if method in ("GET", "POST"):
            return await portforward.serve(request, kubelets, t)
    elif sub in ("exec", "attach"):
        if method in ("GET", "POST"):
            return await streams.connect(request, kubelets, t)
    raise errors.MethodNotAllowed(f"the server does not allow method {method} on {t.info.plural}/{sub}")


# -- scale -----------------------------------------------------------------------------------------

Scalable = apps.Deployment | apps.ReplicaSet | apps.StatefulSet | core.ReplicationController


def _selector(obj: Scalable) -> str:
    if isinstance(obj, core.ReplicationController):
        return str(selectors.from_match_labels(obj.spec.selector))
    return str(selectors.from_message(obj.spec.selector))


def scale_of(info: ResourceInfo, obj: Message) -> dict[str, Any]:
    """The autoscaling/v1 Scale of a scalable object."""
    if not isinstance(obj, Scalable):
        raise errors.NotFound(f"{info.plural}/scale does not exist")
    doc_md = codec.to_dict(obj.metadata)
    keep = ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
    spec, st = obj.spec, obj.status
    return {"kind": SCALE_KIND, "apiVersion": SCALE_API_VERSION,
            "metadata": {k: doc_md[k] for k in keep if k in doc_md},
            "spec": {"replicas": int(spec.replicas)},
            "status": {"replicas": int(st.replicas), "selector": _selector(obj)}}


def _replicas(doc: Any, name: str) -> int:
    spec = doc.get("spec") if isinstance(doc, dict) else None
    value = spec.get("replicas", 0) if isinstance(spec, dict) else 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise errors.Invalid(f'Scale.autoscaling "{name}" is invalid: spec.replicas: Invalid value: {value!r}: '
                             "must be an integer", kind=SCALE_KIND, name=name,
                             causes=[errors.FieldError("spec.replicas", f"Invalid value: {value!r}")])
    if value < 0:
        raise errors.Invalid(f'Scale.autoscaling "{name}" is invalid: spec.replicas: Invalid value: {value}: '
                             "must be greater than or equal to 0", kind=SCALE_KIND, name=name,
                             causes=[errors.FieldError("spec.replicas",
                                                       f"Invalid value: {value}: must be greater than or equal to 0")])
    return value


def _resource_version(doc: Any) -> str:
    md = doc.get("metadata") if isinstance(doc, dict) else None
    return str(md.get("resourceVersion") or "") if isinstance(md, dict) else ""


async def _write_replicas(request: web.Request, rest: Rest, t: Target, replicas: int, rv: str) -> web.Response:
    body: dict[str, Any] = {"spec": {"replicas": replicas}}
    if rv:
        body["metadata"] = {"resourceVersion": rv}  # the Scale's precondition is the parent's
    obj = await rest.patch(t.info.plural, t.namespace, t.name, "application/merge-patch+json",
                           json.dumps(body).encode(), "", resources._dry_run(request),
                           user=resources.user_of(request))
    return resources.respond(scale_of(t.info, obj))


async def _json_body(request: web.Request) -> Any:
    try:
        return json.loads(await request.read() or b"null")
    except ValueError as e:
        raise errors.BadRequest(f"the request body is not valid JSON: {e}") from None


async def _put_scale(request: web.Request, rest: Rest, t: Target) -> web.Response:
    doc = await _json_body(request)
    if not isinstance(doc, dict):
        raise errors.BadRequest("the request body must be a Scale object")
    av, kind = doc.get("apiVersion"), doc.get("kind")
    if (av or kind) and (av, kind) != (SCALE_API_VERSION, SCALE_KIND):
        raise errors.BadRequest(f"the body of a scale update must be {SCALE_API_VERSION} {SCALE_KIND}, not {av} {kind}")
    md = doc.get("metadata")
    name = md.get("name") if isinstance(md, dict) else None
    if name and name != t.name:
        raise errors.BadRequest(f"the name of the object ({name}) does not match the name on the URL ({t.name})")
    return await _write_replicas(request, rest, t, _replicas(doc, t.name), _resource_version(doc))


async def _patch_scale(request: web.Request, rest: Rest, t: Target) -> web.Response:
    ctype = request.content_type
    body = await _json_body(request)
    current = scale_of(t.info, await rest.get(t.info.plural, t.namespace, t.name))
    if ctype in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
        # A Scale has no lists, so a strategic merge patch is a merge patch.
        if not isinstance(body, dict):
            raise errors.BadRequest("a merge patch must be a JSON object")
        patched: Any = patch.merge_patch(current, body)
        rv = _resource_version(body)
    elif ctype == "application/json-patch+json":
        if not isinstance(body, list):
            raise errors.BadRequest("a JSON patch must be a JSON array of operations")
        patched = patch.json_patch(current, body)
        rv = ""
    else:
        raise errors.ApiError(f"the body of the request was in an unknown format - accepted media types include: "
                              f"{', '.join(resources.PATCH_TYPES)}", reason="UnsupportedMediaType", code=415)
    return await _write_replicas(request, rest, t, _replicas(patched, t.name), rv)


# -- eviction --------------------------------------------------------------------------------------

async def _evict(request: web.Request, rest: Rest, t: Target) -> web.Response:
    """Delete the pod with the Eviction's DeleteOptions. There are no PodDisruptionBudgets here, so every
    eviction is allowed (kube-apiserver would answer 429 when a budget forbids it)."""
    doc = await _json_body(request)
    if not isinstance(doc, dict):
        raise errors.BadRequest("the request body must be an Eviction object")
    av, kind = doc.get("apiVersion"), doc.get("kind")
    if (av or kind) and (kind != EVICTION_KIND or av not in (EVICTION_API_VERSION, "policy/v1beta1")):
        raise errors.BadRequest(f"the body of an eviction must be {EVICTION_API_VERSION} {EVICTION_KIND}, "
                                f"not {av} {kind}")
    md = doc.get("metadata")
    name = md.get("name") if isinstance(md, dict) else None
    if name and name != t.name:
        raise errors.BadRequest(f"name in URL does not match name in Eviction object ({name} != {t.name})")
    opts_doc = doc.get("deleteOptions") or {}
    opts = resources.delete_options(json.dumps(opts_doc).encode(), request.query)
    obj, _ = await rest.delete(t.info.plural, t.namespace, t.name, opts, resources.user_of(request),
                               subresource="eviction")
    md_obj = objects.meta_of(obj)
    pods = kinds.for_class(core.Pod)
    return resources.respond(status.success(kind=pods.plural, name=md_obj.name, uid=md_obj.uid), 201)


# -- token -----------------------------------------------------------------------------------------

async def _token(request: web.Request, rest: Rest, t: Target) -> web.Response:
    doc = await _json_body(request)
    if not isinstance(doc, dict):
        raise errors.BadRequest("the request body must be a TokenRequest object")
    av, kind = doc.pop("apiVersion", None), doc.pop("kind", None)
    if (av or kind) and (av, kind) != (tokenrequest.API_VERSION, tokenrequest.KIND):
        raise errors.BadRequest(f"the body of a token request must be {tokenrequest.API_VERSION} "
                                f"{tokenrequest.KIND}, not {av} {kind}")
    req = codec.from_dict(doc, authn.TokenRequest)
    out = await rest.create_token(t.namespace, t.name, req.SerializeToString())
    return resources.respond({"kind": tokenrequest.KIND, "apiVersion": tokenrequest.API_VERSION,
                              **codec.to_dict(out)}, 201)
