"""The audit log's hooks in the two front ends, outside their code: an aiohttp middleware plus a
response-prepare signal for the REST API (`instrument(app, auditor)`), and a gRPC server interceptor for the
gRPC API (`interceptor(auditor)`). Each opens a Record with what the request says about itself, and closes
it with the response's code and failure (a REST error body's Status; a gRPC abort's ApiError).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from aiohttp import web

from pybernetes import errors
from pybernetes.api import codec

from ..auth import User
from ..authz import Attributes, request_attributes, resource_attributes
from ..http import routing
from .auditor import Auditor
from .policy import Level
from .record import Record

log = logging.getLogger("pybernetes.apiserver.audit")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
LONG_RUNNING_SUBRESOURCES = frozenset({"log", "exec", "attach", "portforward", "proxy"})
_KEY = web.RequestKey("audit", Record)
NOBODY = User("")


def _json(body: Any) -> Any:
    try:
        return json.loads(body) if isinstance(body, bytes | str) and body else None
    except ValueError:
        return None  # protobuf or YAML bodies are not logged


# -- REST ------------------------------------------------------------------------------------------

def _http_guess(request: web.Request) -> tuple[Attributes, bool]:
    mi = request.match_info
    watch = request.query.get("watch") in ("1", "true")
    if "tail" in mi:
        try:
            t = routing.parse(mi.get("group", ""), mi["version"], mi["tail"])
        except errors.ApiError:
            t = None
        if t is not None:
            attrs = request_attributes(NOBODY, request.method, request.path, resource=t.info.plural,
                                       api_group=t.info.group, namespace=t.namespace, name=t.name,
                                       subresource=t.subresource, watch=watch)
            return attrs, watch or t.subresource in LONG_RUNNING_SUBRESOURCES
    return request_attributes(NOBODY, request.method, request.path), False


def _source_ips(request: web.Request) -> list[str]:
    """X-Forwarded-For, X-Real-Ip, then the peer, as kube-apiserver's utilnet.SourceIPs lists them."""
    ips = [ip.strip() for ip in request.headers.get("X-Forwarded-For", "").split(",") if ip.strip()]
    real = request.headers.get("X-Real-Ip", "").strip()
    if real and real not in ips:
        ips.append(real)
    if request.remote and request.remote not in ips:
        ips.append(request.remote)
    return ips


def _response(auditor: Auditor, rec: Record, resp: web.Response) -> None:
    """A failure's Status message and reason; the object at RequestResponse."""
    if resp.status >= 400:
        st = _json(resp.body)
        if isinstance(st, dict):
            rec.message, rec.failure_reason = str(st.get("message", "")), str(st.get("reason", ""))
    elif auditor.level(rec) >= Level.REQUEST_RESPONSE and "json" in resp.content_type:
        rec.response_object = _json(resp.body)


def _wants_body(level: Level, verb: str) -> bool:
    """Is the request's body read: logged at Request and above; a create's for its object's name."""
    return level >= Level.REQUEST or (level is not Level.NONE and verb == "create")


def _created_name(rec: Record, body: Any) -> None:
    """A create names its object in the body: the objectRef gets that name, as kube-apiserver's does."""
    md = body.get("metadata") if isinstance(body, dict) else None
    if isinstance(md, dict) and isinstance(md.get("name"), str):
        rec.object_name = md["name"]


def instrument(app: web.Application, auditor: Auditor) -> None:
    """Audit every request `app` serves: call before the app starts."""

    @web.middleware
    async def audit(request: web.Request, handler: Handler) -> web.StreamResponse:
        guess, long_running = _http_guess(request)
        rec = auditor.begin(Record(str(request.rel_url), guess, _source_ips(request),
                                   request.headers.get("User-Agent", "")[:1024], long_running))
        request[_KEY] = rec
        stage = "ResponseComplete"
        try:
            resp = await handler(request)
            rec.code = rec.code or resp.status
            if isinstance(resp, web.Response) and not resp.prepared:
                _response(auditor, rec, resp)  # sent after this returns: read it now
            return resp
        except asyncio.CancelledError:
            rec.code = rec.code or 499  # the client went away
            raise
        except web.HTTPException as e:
            rec.code = rec.code or e.status
            raise
        except BaseException:
            rec.code, stage = 500, "Panic"
            raise
        finally:
            level = auditor.level(rec)
            if (rec.code != 499 and request.method in ("POST", "PUT", "PATCH") and request.body_exists
                    and _wants_body(level, rec.effective.verb)):
                try:
                    body = _json(await request.read())
                except Exception:  # the body could not be read: the event goes without it
                    body = None
                _created_name(rec, body)
                rec.request_object = body if level >= Level.REQUEST else None
            auditor.end(rec, stage)

    async def prepare(request: web.Request, response: web.StreamResponse) -> None:
        rec: Record | None = request.get(_KEY)
        if rec is None:
            return
        response.headers["Audit-Id"] = rec.audit_id
        if rec.long_running and not isinstance(response, web.Response) and response.status < 400:
            rec.code = response.status
            auditor.started(rec)

    app.middlewares.insert(0, audit)
    app.on_response_prepare.append(prepare)


# -- gRPC ------------------------------------------------------------------------------------------

# Method -> (verb, resource) for those whose request does not name them; the rest use the request's.
_FIXED = {"PodLogs": ("get", "pods/log"), "PodExec": ("create", "pods/exec"), "EtcdSnapshot": ("get", "etcd/snapshot"),
          "EtcdStatus": ("get", "etcd/status"), "NodeStats": ("get", "nodes/proxy"), "Discovery": ("get", "discovery")}
_LONG_RUNNING = frozenset({"Watch", "PodLogs", "PodExec", "EtcdSnapshot"})


def _grpc_guess(method: str, request: Any) -> Attributes:
    name = method.rsplit("/", 1)[-1]
    if name in _FIXED:
        verb, resource = _FIXED[name]
    else:
        verb, resource = name.lower(), str(getattr(request, "resource", ""))
        sub = str(getattr(request, "subresource", ""))
        if sub:
            resource = f"{resource}/{sub}"
    return resource_attributes(NOBODY, verb, resource or method, str(getattr(request, "namespace", "")),
                               str(getattr(request, "name", "")))


def _grpc_record(method: str, request: Any, context: Any) -> Record:
    ua = ""
    for k, v in context.invocation_metadata() or ():
        if k == "user-agent":
            ua = str(v)
    peer = str(context.peer() or "")
    ip = peer.split(":", 1)[1].rsplit(":", 1)[0].strip("[]") if ":" in peer else peer
    return Record(method, _grpc_guess(method, request), [ip] if ip else [], ua[:1024],
                  method.rsplit("/", 1)[-1] in _LONG_RUNNING)


def _object(msg: Any) -> Any:
    """A gRPC request's or response's object as Kubernetes JSON (None if it carries none)."""
    try:
        if hasattr(msg, "raw") and hasattr(msg, "kind"):
            return codec.to_dict(codec.from_envelope(msg)) if msg.raw else None
        if hasattr(msg, "object"):
            return _object(msg.object)
        if hasattr(msg, "patch"):
            return _json(msg.patch)
    except Exception:  # an undecodable object is the request's error to report, not the audit's
        return None
    return None


def _failed(rec: Record, e: BaseException) -> str:
    """Fill the record from the exception a call ended with; the stage to close with."""
    seen: BaseException | None = e
    while seen is not None:
        if isinstance(seen, errors.ApiError):
            rec.code, rec.message, rec.failure_reason = seen.code, seen.message, seen.reason
            return "ResponseComplete"
        seen = seen.__context__
    if isinstance(e, asyncio.CancelledError | GeneratorExit):
        rec.code = 499  # the client went away
        return "ResponseComplete"
    if isinstance(e, grpc.aio.AbortError):
        rec.code = rec.code or 500
        return "ResponseComplete"
    rec.code, rec.message = 500, f"internal error: {e}"
    return "Panic"


class _Interceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]  # grpc's stub: untyped base
    def __init__(self, auditor: Auditor) -> None:
        self.auditor = auditor

    def _close(self, rec: Record, request: Any, stage: str) -> None:
        """Close the record; the request's object is read now that the level (known only once the user is)
        says whether it is logged. A create names its object in it."""
        level = self.auditor.level(rec)
        if request is not None and _wants_body(level, rec.effective.verb):
            body = _object(request)
            _created_name(rec, body)
            rec.request_object = body if level >= Level.REQUEST else None
        self.auditor.end(rec, stage)

    async def intercept_service(self, continuation: Callable[[Any], Awaitable[Any]], details: Any) -> Any:
        handler = await continuation(details)
        if handler is None:
            return handler
        method, auditor = str(details.method), self.auditor
        ok = 201 if method.endswith("/Create") else 200
        if not handler.request_streaming and not handler.response_streaming:
            inner = handler.unary_unary

            async def unary(request: Any, context: Any) -> Any:
                rec = auditor.begin(_grpc_record(method, request, context))
                stage = "ResponseComplete"
                try:
                    resp = await inner(request, context)
                    rec.code = ok
                    if auditor.level(rec) >= Level.REQUEST_RESPONSE:
                        rec.response_object = _object(resp)
                    return resp
                except BaseException as e:
                    stage = _failed(rec, e)
                    raise
                finally:
                    self._close(rec, request, stage)

            return grpc.unary_unary_rpc_method_handler(unary, request_deserializer=handler.request_deserializer,
                                                       response_serializer=handler.response_serializer)

        async def streamed(request: Any, context: Any,
                           items: Callable[[], AsyncIterator[Any]]) -> AsyncIterator[Any]:
            rec = auditor.begin(_grpc_record(method, request, context))
            stage = "ResponseComplete"
            try:
                async for item in items():
                    auditor.started(rec)
                    yield item
                rec.code = ok
            except BaseException as e:
                stage = _failed(rec, e)
                raise
            finally:
                self._close(rec, request, stage)

        if handler.request_streaming and handler.response_streaming:
            inner_ss = handler.stream_stream

            # Async generator functions both: grpc.aio tells a streaming behaviour by its function's kind and
            # iterates a plain function's result synchronously ('async_generator' object is not iterable).
            async def bidi(requests: Any, context: Any) -> AsyncIterator[Any]:
                async for item in streamed(None, context, lambda: inner_ss(requests, context)):
                    yield item

            return grpc.stream_stream_rpc_method_handler(bidi, request_deserializer=handler.request_deserializer,
                                                         response_serializer=handler.response_serializer)
        if handler.response_streaming:
            inner_us = handler.unary_stream

            async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
                async for item in streamed(request, context, lambda: inner_us(request, context)):
                    yield item

            return grpc.unary_stream_rpc_method_handler(stream, request_deserializer=handler.request_deserializer,
                                                        response_serializer=handler.response_serializer)
        return handler


def interceptor(auditor: Auditor) -> grpc.aio.ServerInterceptor:
    return _Interceptor(auditor)
