"""The HTTPS server: routes, authentication, the in-flight limit (inflight.py) and authorization, errors as Status
(a 429 with Retry-After), request metrics.

`HttpServer(rest, authn, pki).start(host, port)` serves beside the gRPC server (port 0: a free one; the
bound port is returned) until `stop()`. Clients may present a certificate signed by the cluster CA (`client_ca`;
one from another CA, self-signed or expired fails the handshake), read from the connection's TLS object into
Credentials beside the `Authorization: Bearer ...` header; /healthz, /livez, /readyz and /version are open,
as kube-apiserver allows them to everyone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from pybernetes import errors
from pybernetes.api import codec, kinds
from pybernetes.tls import ServingPKI

from .. import admission, impersonation, reviews
from ..auth import Credentials, UnionAuthenticator
from ..authz import AlwaysAllowAuthorizer, Authorizer, check, request_attributes
from ..inflight import InflightLimiter
from ..kubelet_proxy import KubeletProxy
from ..metrics import record_request
from ..rest import Rest
from . import discovery, fieldvalidation, kubeproto, openapi, resources, routing, status, subresources

log = logging.getLogger("pybernetes.apiserver.http")

PUBLIC = frozenset({"/healthz", "/livez", "/readyz", "/version"})
STOP_GRACE = 1.0  # seconds in-flight requests get at stop, as the gRPC server's grace
MAX_BODY = 3 * 1024 * 1024  # kube-apiserver's request body limit
VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ReadyCheck = Callable[[], Awaitable[None]]
RESOURCE_HANDLERS = {"GET": resources.get, "POST": resources.create, "PUT": resources.update,
                     "PATCH": resources.patch, "DELETE": resources.delete}


def peer_certificate(request: web.Request) -> bytes | None:
    """The client certificate the handshake verified, DER (None when the client sent none)."""
    sslobj = request.transport.get_extra_info("ssl_object") if request.transport is not None else None
    der = sslobj.getpeercert(binary_form=True) if sslobj is not None else None
    return der or None


class HttpServer:
    def __init__(self, rest: Rest, authn: UnionAuthenticator, pki: ServingPKI, *,
                 authz: Authorizer | None = None, ready_check: ReadyCheck | None = None,
                 kubelets: KubeletProxy | None = None, client_ca: Path | None = None,
                 inflight: InflightLimiter | None = None) -> None:
        self.rest = rest
        self.inflight = inflight or InflightLimiter(0, 0)  # shared with the gRPC front end; none: no limits
        self.client_ca = client_ca
        self.kubelets = kubelets or KubeletProxy(rest)  # pods/log, exec: the gRPC API's proxy, with its token
        self.authn = authn
        self.authz = authz or AlwaysAllowAuthorizer()
        self.pki = pki
        self.ready_check = ready_check
        self.port = 0
        self.address = ""
        self._runner: web.AppRunner | None = None
        self.app = self._build()

    def _build(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=MAX_BODY)
        r = app.router
        r.add_get("/version", self._version)
        for p in ("/healthz", "/livez"):
            r.add_get(p, self._ok)
        r.add_get("/readyz", self._readyz)
        r.add_get("/api", self._api)
        r.add_get("/apis", self._apis)
        r.add_get("/api/{version}", self._api_version)
        r.add_get("/apis/{group}", self._apis_group)
        r.add_get("/apis/{group}/{version}", self._apis_version)
        r.add_get("/openapi/v2", self._openapi_v2)
        r.add_get("/openapi/v3", self._openapi_root)
        r.add_get("/openapi/v3/{path:.+}", self._openapi_doc)
        r.add_route("*", "/api/{version}/{tail:.+}", self._resource)
        r.add_route("*", "/apis/{group}/{version}/{tail:.+}", self._resource)
        return app

    async def start(self, host: str, port: int) -> int:
        # Cancel a handler when its client goes away, as gRPC does: a watch stops waiting for events.
        self._runner = web.AppRunner(self.app, handler_cancellation=True, access_log=None,
                                     shutdown_timeout=STOP_GRACE)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, ssl_context=self.pki.server_context(self.client_ca))
        await site.start()
        addrs = self._runner.addresses
        self.port = int(addrs[0][1]) if addrs else port
        self.address = f"{host}:{self.port}"
        log.info("serving the Kubernetes REST API address=https://%s", self.address)
        return self.port

    async def start_plaintext(self, host: str, port: int) -> None:
        """The same application over plain HTTP on `port` too, after start() (the bench/test-only
        --insecure-port, see services/apiserver/insecure.py)."""
        assert self._runner is not None, "start() first"
        await web.TCPSite(self._runner, host, port).start()

    async def stop(self) -> None:
        if self._runner is None:
            return
        server = self._runner.server
        transports = [c.transport for c in server.connections if c.transport is not None] if server else []
        await self._runner.cleanup()  # in-flight requests get STOP_GRACE
        for t in transports:
            # A TLS close waits for the client's close_notify, which an idle client may never send.
            t.abort()
        self._runner = None

    # -- middleware: authentication, errors, metrics -------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        start = time.perf_counter()
        code = 499  # the client went away first, as kube-apiserver counts it
        try:
            resp = await self._handle(request, handler)
            code = resp.status
            for w in fieldvalidation.headers(request):
                if not resp.prepared:
                    resp.headers.add("Warning", w)
            return resp
        finally:
            t = self._target(request)
            if t is not None and request.query.get("watch") not in ("1", "true"):
                verb = VERBS.get(request.method, "get")
                record_request("list" if verb == "get" and not t.name else verb, t.info.plural, code,
                               time.perf_counter() - start)

    async def _handle(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            if request.path not in PUBLIC:
                user = await self.authn.authenticate(Credentials(authorization=request.headers.get("Authorization"),
                                                                 client_cert=peer_certificate(request)))
                user = impersonation.impersonate(self.authz, user, request.headers.get(impersonation.USER_HEADER),
                                                 request.headers.getall(impersonation.GROUP_HEADER, []))
                request[resources.USER_KEY] = user  # the request's one record of its user (resources.user_of)
                t = self._target(request)
                watch = request.query.get("watch") in ("1", "true")
                attrs = (request_attributes(user, request.method, request.path, resource=t.info.plural,
                                            api_group=t.info.group, namespace=t.namespace, name=t.name,
                                            subresource=t.subresource, watch=watch,
                                            field_selector=request.query.get("fieldSelector", ""))
                         if t is not None else request_attributes(user, request.method, request.path))
                with self.inflight.hold(user, attrs.verb, attrs.resource, attrs.subresource):
                    check(self.authz, attrs)
                    return await handler(request)
            return await handler(request)
        except errors.ApiError as e:
            return self._error(request, e)
        except web.HTTPException as e:
            if e.status == 404:
                return self._error(request, errors.NotFound("the server could not find the requested resource"))
            if e.status == 405:
                return self._error(request, errors.MethodNotAllowed(f"the server does not allow method "
                                                                    f"{request.method} here"))
            if e.status == 413:
                return self._error(request, errors.TooLarge("the request body is too large"))
            raise
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.exception("internal error method=%s path=%s", request.method, request.path)
            return self._error(request, errors.InternalError(f"internal error: {e}"))

    def _error(self, request: web.Request, e: errors.ApiError) -> web.Response:
        t = self._target(request)
        body = status.failure(e, kind=t.info.plural if t else "", name=t.name if t else "",
                              group=t.info.group if t else "")
        resp = resources.respond(body, e.code)
        if e.retry_after_seconds:
            resp.headers["Retry-After"] = str(e.retry_after_seconds)
        return resp

    @staticmethod
    def _target(request: web.Request) -> routing.Target | None:
        mi = request.match_info
        if "tail" not in mi:
            return None
        try:
            return routing.parse(mi.get("group", ""), mi["version"], mi["tail"])
        except errors.ApiError:
            return None

    # -- handlers -----------------------------------------------------------------------------------

    async def _resource(self, request: web.Request) -> web.StreamResponse:
        mi = request.match_info
        t = routing.parse(mi.get("group", ""), mi["version"], mi["tail"])
        if t.info.plural in kinds.REVIEWS and request.method == "POST" and not t.name:
            return await self._review(request, t)
        with admission.warnings() as warned:  # admission's warnings become Warning headers
            if subresources.handles(t):
                resp = await subresources.handle(request, self.rest, self.kubelets, t)
            else:
                handler = RESOURCE_HANDLERS.get(request.method)
                if handler is None:
                    raise errors.MethodNotAllowed(f"the server does not allow method {request.method} here")
                resp = await handler(request, self.rest, t)
        fieldvalidation.warn(request, warned)
        return resp

    async def _review(self, request: web.Request, t: routing.Target) -> web.Response:
        """The review kinds: answered, not stored; in Kubernetes protobuf when asked so (kubectl auth can-i)."""
        info = t.info
        raw, _, _ = await resources.decode_body(request, self.rest, info)
        out = reviews.answer(self.authz, request[resources.USER_KEY], info.plural, raw)
        if request.headers.get("Accept", "").startswith(kubeproto.CONTENT_TYPE):
            return web.Response(body=kubeproto.wrap(info.api_version, info.kind, out.SerializeToString()),
                                status=201, content_type=kubeproto.CONTENT_TYPE)
        return resources.respond(codec.to_dict(out), 201)

    async def _version(self, request: web.Request) -> web.Response:
        return resources.respond(discovery.version())

    async def _ok(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _readyz(self, request: web.Request) -> web.Response:
        if self.ready_check is not None:
            try:
                await self.ready_check()
            except Exception as e:
                return web.Response(text=f"[-]etcd failed: {e}\nreadyz check failed\n", status=500)
        return web.Response(text="ok")

    def _discovery(self, request: web.Request, core: bool) -> web.Response | None:
        v = discovery.aggregated_version(request.headers.get("Accept", ""))
        if v is None:
            return None
        return resources.respond(discovery.aggregated(core, v), content_type=discovery.aggregated_content_type(v))

    async def _api(self, request: web.Request) -> web.Response:
        return self._discovery(request, True) or resources.respond(discovery.api_versions(self.address))

    async def _apis(self, request: web.Request) -> web.Response:
        return self._discovery(request, False) or resources.respond(discovery.api_group_list())

    async def _api_version(self, request: web.Request) -> web.Response:
        return self._found(discovery.api_resource_list("", request.match_info["version"]))

    async def _apis_group(self, request: web.Request) -> web.Response:
        return self._found(discovery.api_group(request.match_info["group"]))

    async def _apis_version(self, request: web.Request) -> web.Response:
        mi = request.match_info
        return self._found(discovery.api_resource_list(mi["group"], mi["version"]))

    async def _openapi_v2(self, request: web.Request) -> web.Response:
        if "json" not in request.headers.get("Accept", "application/json") and "*/*" not in \
                request.headers.get("Accept", ""):
            # Only JSON is served: a protobuf-only client falls back on 406, as from an older server.
            return self._error(request, errors.ApiError("only application/json is served", reason="NotAcceptable",
                                                        code=406))
        return web.Response(body=openapi.v2_document(), content_type="application/json")

    async def _openapi_root(self, request: web.Request) -> web.Response:
        return resources.respond(openapi.v3_index())

    async def _openapi_doc(self, request: web.Request) -> web.Response:
        parts = request.match_info["path"].split("/")
        doc = None
        if len(parts) == 2 and parts[0] == "api":
            doc = openapi.group_version_document("", parts[1])
        elif len(parts) == 3 and parts[0] == "apis":
            doc = openapi.group_version_document(parts[1], parts[2])
        if doc is None:
            raise errors.NotFound("the server could not find the requested resource")
        return web.Response(body=doc, content_type="application/json")

    @staticmethod
    def _found(doc: dict[str, object] | None) -> web.Response:
        if doc is None:
            raise errors.NotFound("the server could not find the requested resource")
        return resources.respond(doc)
