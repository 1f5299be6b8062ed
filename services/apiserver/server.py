"""The gRPC face of the apiserver: authenticate, take an in-flight slot (inflight.py; unary calls only: the
streams are long-running), authorize, call rest.Rest, translate errors.

Errors leave as a gRPC status code plus the full meta.v1.Status in trailing metadata (`pb-status-bin`),
which pybernetes.client turns back into the same exception class.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.protobuf.message import DecodeError, Message

from pybernetes import errors, rpc
from pybernetes.api import kinds
from pybernetes.api.objects import meta_of
from pybernetes.api.rpc.v1 import rpc_pb2 as pb
from pybernetes.api.rpc.v1 import rpc_pb2_grpc as pb_grpc
from pybernetes.rpc import AUTH_HEADER

from . import impersonation, reviews
from .auth import ADMIN_GROUP, REQUEST_USER, Credentials, UnionAuthenticator, User
from .authz import AlwaysAllowAuthorizer, Authorizer, check, resource_attributes
from .inflight import InflightLimiter
from .kubelet_proxy import KubeletProxy
from .metrics import count_request, record_request
from .rest import Rest
from .serviceaccount import tokenrequest
from .storage.etcd import Member, StorageError
from .storage.watch_cache import Event

log = logging.getLogger("pybernetes.apiserver")

def _envelope(msg: Message) -> pb.Object:
    info = kinds.for_message(msg)
    return pb.Object(api_version=info.api_version, kind=info.kind, raw=msg.SerializeToString())


def etcd_status_response(members: list[Member]) -> pb.EtcdStatusResponse:
    """EtcdStatus's answer: members by name, the leader as the answering members report it."""
    leader = next((m.status.leader for m in members if m.status is not None and m.status.leader), 0)
    out = pb.EtcdStatusResponse(leader=f"{leader:x}" if leader else "")
    for m in sorted(members, key=lambda m: (m.name == "", m.name, m.id)):
        e = out.members.add(name=m.name, id=f"{m.id:x}", client_urls=m.client_urls, is_learner=m.is_learner,
                            leader=bool(leader) and m.id == leader, error=m.error)
        if m.status is not None:
            st = m.status
            e.raft_term, e.raft_index, e.revision = st.raft_term, st.raft_index, st.revision
            e.db_size, e.db_size_in_use, e.version = st.db_size, st.db_size_in_use, st.version
            if st.errors and not e.error:
                e.error = "; ".join(st.errors)  # etcd's own alarms (NOSPACE, CORRUPT)
    return out


def _sub(resource: str, subresource: str) -> str:
    return f"{resource}/{subresource}" if subresource else resource


def _object_name(resource: str, raw: bytes) -> str:
    """The name in an update's object: REST carries it in the URL, and authorization by name (a node's own
    Lease) needs it. Undecodable bytes give "" (rest.update refuses them)."""
    info = kinds.for_plural(resource.partition("/")[0])
    if info is None:
        return ""
    try:
        return meta_of(info.cls.FromString(raw)).name
    except DecodeError:
        return ""


class APIServicer(pb_grpc.APIServicer):
    def __init__(self, rest: Rest, authn: UnionAuthenticator, authz: Authorizer | None = None,
                 kubelets: KubeletProxy | None = None, inflight: InflightLimiter | None = None) -> None:
        self.rest = rest
        self.authn = authn
        self.authz = authz or AlwaysAllowAuthorizer()
        self.kubelets = kubelets or KubeletProxy(rest)
        self.inflight = inflight or InflightLimiter(0, 0)  # shared with the REST front end; none: no limits

    async def _user(self, context: grpc.aio.ServicerContext[Any, Any]) -> User:
        header = as_user = None
        as_groups: list[str] = []
        for key, value in context.invocation_metadata() or ():
            if key == AUTH_HEADER:
                header = str(value)
            elif key == impersonation.USER_HEADER.lower():
                as_user = str(value)
            elif key == impersonation.GROUP_HEADER.lower():
                as_groups.append(str(value))
        user = await self.authn.authenticate(Credentials(authorization=header,
                                                         client_cert=rpc.peer_certificate(context)))
        user = impersonation.impersonate(self.authz, user, as_user, as_groups)
        REQUEST_USER.set(user)
        return user

    async def _authorize(self, context: Any, verb: str, resource: str, namespace: str = "",
                         name: str = "", field_selector: str = "") -> User:
        user = await self._user(context)
        check(self.authz, resource_attributes(user, verb, resource, namespace, name, field_selector=field_selector))
        return user

    async def _serve(self, verb: str, resource: str, namespace: str, context: Any, fn: Any,
                     name: str = "", field_selector: str = "") -> Any:
        start = time.perf_counter()
        code = 201 if verb == "create" else 200  # as kube-apiserver reports them
        try:
            user = await self._user(context)  # sets REQUEST_USER
            with self.inflight.hold(user, verb, resource):  # between authentication and authorization, as Kubernetes
                check(self.authz, resource_attributes(user, verb, resource, namespace, name,
                                                      field_selector=field_selector))
                return await fn()
        except errors.ApiError as e:
            code = e.code
            await rpc.abort(context, e)
        except asyncio.CancelledError:
            code = 499
            raise
        except Exception as e:
            code = 500
            log.exception("internal error verb=%s resource=%s", verb, resource)
            err = errors.InternalError(f"internal error: {e}")
            await rpc.abort(context, err)
        finally:
            record_request(verb, resource, code, time.perf_counter() - start)

    async def Create(self, request: pb.CreateRequest, context: Any) -> pb.Object:
        async def do() -> pb.Object:
            if request.subresource == "binding":
                if request.resource != "pods":
                    raise errors.NotFound(f"{request.resource}/binding does not exist")
                return _envelope(await self.rest.bind(request.namespace, request.name, request.object.raw,
                                                      REQUEST_USER.get()))
            if request.subresource == "token" and request.resource == "serviceaccounts":
                tr = await self.rest.create_token(request.namespace, request.name, request.object.raw)
                return pb.Object(api_version=tokenrequest.API_VERSION, kind=tokenrequest.KIND,
                                 raw=tr.SerializeToString())
            if request.subresource:
                raise errors.NotFound(f"{request.resource}/{request.subresource} does not support create")
            if request.resource == "bindings":
                name = self.rest.binding(request.object.raw).metadata.name
                return _envelope(await self.rest.bind(request.namespace, name, request.object.raw,
                                                      REQUEST_USER.get()))
            if request.resource in kinds.REVIEWS:
                user = REQUEST_USER.get()
                assert user is not None  # set by _authorize
                return _envelope(reviews.answer(self.authz, user, request.resource, request.object.raw))
            o = request.object
            return _envelope(await self.rest.create(request.resource, request.namespace, o.raw, o.api_version,
                                                    o.kind, request.dry_run, user=REQUEST_USER.get()))
        res: pb.Object = await self._serve("create", _sub(request.resource, request.subresource), request.namespace,
                                           context, do, request.name if request.subresource else "")
        return res

    async def Get(self, request: pb.GetRequest, context: Any) -> pb.Object:
        async def do() -> pb.Object:
            return _envelope(await self.rest.get(request.resource, request.namespace, request.name,
                                                 request.resource_version))
        res: pb.Object = await self._serve("get", request.resource, request.namespace, context, do, request.name)
        return res

    async def List(self, request: pb.ListRequest, context: Any) -> pb.ListResponse:
        async def do() -> pb.ListResponse:
            info = self.rest.resource(request.resource)
            r = await self.rest.list(request.resource, request.namespace, request.label_selector,
                                     request.field_selector, request.limit, getattr(request, "continue"),
                                     request.resource_version)
            out = pb.ListResponse(api_version=info.api_version, kind=info.list_kind)
            out.metadata.resource_version = r.resource_version
            setattr(out.metadata, "continue", r.continue_)
            if r.remaining is not None:
                out.metadata.remaining_item_count = r.remaining
            av, kind = info.api_version, info.kind
            add = out.items.add  # in place: a tenth of the cost of building each Object and copying it in
            for raw in r.items:
                add(api_version=av, kind=kind, raw=raw)
            return out
        res: pb.ListResponse = await self._serve("list", request.resource, request.namespace, context, do,
                                                 field_selector=request.field_selector)
        return res

    async def Update(self, request: pb.UpdateRequest, context: Any) -> pb.Object:
        async def do() -> pb.Object:
            o = request.object
            return _envelope(await self.rest.update(request.resource, request.namespace, o.raw,
                                                    request.subresource, o.api_version, o.kind, request.dry_run,
                                                    user=REQUEST_USER.get()))
        res: pb.Object = await self._serve("update", _sub(request.resource, request.subresource), request.namespace,
                                           context, do, _object_name(request.resource, request.object.raw))
        return res

    async def Patch(self, request: pb.PatchRequest, context: Any) -> pb.Object:
        async def do() -> pb.Object:
            return _envelope(await self.rest.patch(request.resource, request.namespace, request.name,
                                                   request.patch_type, request.patch, request.subresource,
                                                   request.dry_run, user=REQUEST_USER.get()))
        res: pb.Object = await self._serve("patch", _sub(request.resource, request.subresource), request.namespace,
                                           context, do, request.name)
        return res

    async def Delete(self, request: pb.DeleteRequest, context: Any) -> pb.DeleteResponse:
        async def do() -> pb.DeleteResponse:
            obj, gone = await self.rest.delete(request.resource, request.namespace, request.name, request.options,
                                               REQUEST_USER.get())
            return pb.DeleteResponse(object=_envelope(obj), deleted=gone)
        res: pb.DeleteResponse = await self._serve("delete", request.resource, request.namespace, context, do,
                                                   request.name)
        return res

    async def Discovery(self, request: pb.DiscoveryRequest, context: Any) -> pb.DiscoveryResponse:
        async def do() -> pb.DiscoveryResponse:
            out = pb.DiscoveryResponse()
            for r in kinds.RESOURCES:
                out.resources.add(name=r.plural, singular_name=r.singular, namespaced=r.namespaced, group=r.group,
                                  version=r.version, kind=r.kind, verbs=list(r.verbs),
                                  short_names=list(r.short_names), categories=list(r.categories))
            return out
        res: pb.DiscoveryResponse = await self._serve("get", "discovery", "", context, do)
        return res

    async def Watch(self, request: pb.WatchRequest, context: Any) -> AsyncIterator[pb.WatchEvent]:
        try:
            await self._authorize(context, "watch", request.resource, request.namespace,
                                  field_selector=request.field_selector)
            info, w = self.rest.watch(request.resource, request.namespace, request.label_selector,
                                      request.field_selector, request.resource_version,
                                      request.allow_watch_bookmarks)
        except errors.ApiError as e:
            count_request("watch", request.resource, e.code)
            await rpc.abort(context, e)
        count_request("watch", request.resource, 200)
        av, kind = info.api_version, info.kind
        encoding = ("grpc", av, kind)

        def message(ev: Event) -> pb.WatchEvent:
            return pb.WatchEvent(type=ev.type, object=pb.Object(api_version=av, kind=kind, raw=ev.raw))

        loop = asyncio.get_running_loop()
        deadline = loop.time() + request.timeout_seconds if request.timeout_seconds > 0 else None
        try:
            while True:
                if deadline is None:
                    ev = await w.queue.get()
                else:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        return
                    try:
                        ev = await asyncio.wait_for(w.queue.get(), remaining)
                    except TimeoutError:
                        return
                if ev.type == "ERROR":
                    err = ev.error if isinstance(ev.error, errors.ApiError) else errors.Unavailable(str(ev.error))
                    yield pb.WatchEvent(type="ERROR", status=rpc.status_of(err))
                    return
                yield ev.encoded(encoding, message)  # one message for every stream the event goes to
        finally:
            self.rest.unwatch(info, w)

    async def _stream_error(self, context: Any, verb: str, resource: str, e: errors.ApiError) -> None:
        count_request(verb, resource, e.code)
        await rpc.abort(context, e)

    async def PodLogs(self, request: pb.PodLogsRequest, context: Any) -> AsyncIterator[pb.LogChunk]:
        try:
            await self._authorize(context, "get", "pods/log", request.namespace, request.name)
            async for chunk in self.kubelets.logs(request):
                yield chunk
        except errors.ApiError as e:
            await self._stream_error(context, "get", "pods/log", e)
            return
        count_request("get", "pods/log", 200)

    async def PodExec(self, request_iterator: AsyncIterator[pb.ExecInput],
                      context: Any) -> AsyncIterator[pb.ExecOutput]:
        try:
            first = await anext(request_iterator, None)
            start = first.start if first is not None else pb.ExecStart()
            sub = "pods/attach" if start.attach else "pods/exec"
            await self._authorize(context, "create", sub, start.namespace, start.name)
            async for out in self.kubelets.exec(rpc.prepend(first, request_iterator)):
                yield out
        except errors.ApiError as e:
            await self._stream_error(context, "create", "pods/exec", e)
            return
        count_request("create", "pods/exec", 200)

    async def PodPortForward(self, request_iterator: AsyncIterator[pb.PortForwardInput],
                             context: Any) -> AsyncIterator[pb.PortForwardOutput]:
        try:
            first = await anext(request_iterator, None)
            start = first.start if first is not None else pb.PortForwardStart()
            await self._authorize(context, "create", "pods/portforward", start.namespace, start.name)
            async for out in self.kubelets.portforward(rpc.prepend(first, request_iterator)):
                yield out
        except errors.ApiError as e:
            await self._stream_error(context, "create", "pods/portforward", e)
            return
        count_request("create", "pods/portforward", 200)

    async def EtcdSnapshot(self, request: pb.EtcdSnapshotRequest,
                           context: Any) -> AsyncIterator[pb.EtcdSnapshotChunk]:
        """etcd's Maintenance.Snapshot passed through chunk by chunk: the apiserver is the only process that
        reaches etcd, so backups go through it; the whole database is readable, so admins only."""
        try:
            user = await self._user(context)
            if ADMIN_GROUP not in user.groups:
                raise errors.Forbidden(f'user "{user.name}" cannot take an etcd snapshot (group {ADMIN_GROUP} only)')
            log.info("etcd snapshot requested user=%s", user.name)
            sent = 0
            etcd = self.rest.store.etcd
            before = await etcd.current_revision()  # etcd 3.4 sends no header with the stream
            async for blob, remaining, revision in etcd.snapshot():
                sent += len(blob)
                yield pb.EtcdSnapshotChunk(data=blob, remaining_bytes=remaining, revision=revision or before)
            log.info("etcd snapshot sent user=%s bytes=%d", user.name, sent)
        except errors.ApiError as e:
            await self._stream_error(context, "get", "etcd/snapshot", e)
            return
        except StorageError as e:
            await self._stream_error(context, "get", "etcd/snapshot", errors.Unavailable(f"etcd snapshot: {e}"))
            return
        count_request("get", "etcd/snapshot", 200)

    async def EtcdStatus(self, request: pb.EtcdStatusRequest, context: Any) -> pb.EtcdStatusResponse:
        """etcd's members, each with its own status. Read-only and holding no object data, so any authenticated
        user may ask (as Kubernetes shows etcd's health on /readyz?verbose), unlike EtcdSnapshot."""
        async def do() -> pb.EtcdStatusResponse:
            try:
                found = await self.rest.store.etcd.members()
            except StorageError as e:
                raise errors.Unavailable(f"etcd member list: {e}") from None
            return etcd_status_response(found)
        res: pb.EtcdStatusResponse = await self._serve("get", "etcd/status", "", context, do)
        return res

    async def NodeStats(self, request: pb.NodeStatsRequest, context: Any) -> pb.StatsSummary:
        async def do() -> pb.StatsSummary:
            return await self.kubelets.stats(request)
        res: pb.StatsSummary = await self._serve("get", "nodes/proxy", "", context, do)
        return res
