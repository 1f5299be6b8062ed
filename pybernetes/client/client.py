"""The typed async API client every component and pbctl use.

Messages in, messages out: `await client.get(core.Pod, "web-1", namespace="default")`. gRPC errors are
translated into `pybernetes.errors` at this boundary (using the Status the apiserver puts in trailing
metadata), so callers never see grpc types. Reads (get, list, discovery) are retried when the apiserver or its
storage is unavailable (a restarting apiserver, an etcd failover), a few times with backoff and jitter, as
client-go retries GETs; writes are not (a create may have landed: the caller decides, knowing the name). Every
call is retried after TooManyRequests (the apiserver's in-flight limit: nothing was done), after its Retry-After
with jitter, up to `throttle_retries` times, as client-go retries 429s.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import random
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import grpc
from google.protobuf.message import Message

from pybernetes import errors, rpc
from pybernetes.api import codec, kinds
from pybernetes.api.authentication.v1 import authentication_pb2 as authn
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.meta.v1 import meta_pb2 as meta
from pybernetes.api.objects import meta_of
from pybernetes.api.rpc.v1 import rpc_pb2 as pb
from pybernetes.api.rpc.v1 import rpc_pb2_grpc as pb_grpc
from pybernetes.client.config import ClientConfig

M = TypeVar("M", bound=Message)

STATUS_KEY = rpc.STATUS_KEY
PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
}


@dataclass
class ObjectList(Generic[M]):
    items: list[M]
    resource_version: str
    continue_: str = ""
    remaining_item_count: int | None = None


@dataclass
class WatchEvent(Generic[M]):
    type: str  # ADDED, MODIFIED, DELETED, BOOKMARK
    object: M


def error_from_rpc(e: grpc.aio.AioRpcError) -> errors.ApiError:
    """Rebuild the apiserver's error (reason, code, field causes) from a gRPC error."""
    for key, value in e.trailing_metadata() or ():
        if key == STATUS_KEY and isinstance(value, bytes):
            st = meta.Status.FromString(value)
            causes = [errors.FieldError(c.field, c.message, c.reason) for c in st.details.causes]
            cls = errors.BY_REASON.get(st.reason, errors.BY_GRPC_CODE.get(e.code(), errors.InternalError))
            return cls(st.message, reason=st.reason, code=st.code or None, causes=causes,
                       kind=st.details.kind, name=st.details.name,
                       retry_after_seconds=st.details.retry_after_seconds)
    detail = e.details() or str(e.code())
    if e.code() == grpc.StatusCode.UNAVAILABLE:  # no Status: the channel failed, not the server
        return errors.Unreachable(f"the apiserver is unreachable: {detail}")
    return errors.BY_GRPC_CODE.get(e.code(), errors.InternalError)(detail)


class Client:
    """One channel to the apiserver; safe to share between tasks of one event loop."""

    def __init__(self, server: str, *, token: str = "", timeout: float = 30.0,
                 user_agent: str = "pybernetes", tls: rpc.ChannelTLS | None = None, impersonate_user: str = "",
                 impersonate_groups: Sequence[str] = (), read_retries: int = 3, throttle_retries: int = 10) -> None:
        self.server = server
        self.read_retries = read_retries  # further attempts of a read answered Unavailable
        self.throttle_retries = throttle_retries  # further attempts of a call answered TooManyRequests (client-go 10)
        self._channel = rpc.channel(server, extra_options=[("grpc.primary_user_agent", user_agent)], tls=tls)
        self._stub = pb_grpc.APIStub(self._channel)
        # --as / --as-group: the apiserver acts as that user once this one may impersonate it
        self._md = (*rpc.bearer(token), *((("impersonate-user", impersonate_user),) if impersonate_user else ()),
                    *(("impersonate-group", g) for g in impersonate_groups))
        self.timeout = timeout

    @classmethod
    def from_config(cls, cfg: ClientConfig, **kw: Any) -> Client:
        return cls(cfg.server, token=cfg.token, tls=cfg.tls(), **kw)

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- helpers ---------------------------------------------------------------------------------

    @staticmethod
    def _ns(info: kinds.ResourceInfo, namespace: str) -> str:
        return namespace if info.namespaced else ""

    async def _call(self, method: Any, request: Any, timeout: float | None = None, *, read: bool = False) -> Any:
        """One unary call, errors translated; the one place calls are retried, bounded, with up to +50 % jitter (a
        fleet of clients does not come back in step):
        - TooManyRequests, every verb (the apiserver refused before doing anything, so a create is safe to send
          again, as client-go retries 429s): after its Retry-After, `throttle_retries` times;
        - Unavailable, reads only (`read`: get, list, discovery; a write may have landed): 0.1 s doubling,
          `read_retries` times."""
        delay, unavailable, throttled = 0.1, 0, 0
        while True:
            try:
                return await method(request, metadata=self._md, timeout=timeout or self.timeout)
            except grpc.aio.AioRpcError as e:
                err = error_from_rpc(e)
            if isinstance(err, errors.TooManyRequests) and throttled < self.throttle_retries:
                throttled += 1
                await asyncio.sleep((err.retry_after_seconds or 1) * (1 + random.random() / 2))
            elif isinstance(err, errors.Unavailable) and read and unavailable < self.read_retries:
                unavailable += 1
                await asyncio.sleep(delay * (1 + random.random() / 2))
                delay *= 2
            else:
                raise err from None

    async def _read(self, method: Any, request: Any, timeout: float | None = None) -> Any:
        """`_call` for an idempotent read (Unavailable is retried too)."""
        return await self._call(method, request, timeout, read=True)

    # -- verbs -----------------------------------------------------------------------------------

    async def create(self, obj: M, *, namespace: str | None = None, dry_run: bool = False,
                     field_manager: str = "") -> M:
        info = kinds.for_message(obj)
        ns = self._ns(info, namespace if namespace is not None else meta_of(obj).namespace)
        req = pb.CreateRequest(resource=info.plural, namespace=ns, object=codec.to_envelope(obj),
                               dry_run=dry_run, field_manager=field_manager)
        out = await self._call(self._stub.Create, req)
        return codec.from_envelope(out, type(obj))

    async def get(self, cls: type[M], name: str, *, namespace: str = "", resource_version: str = "") -> M:
        """The object; `resource_version` as Kubernetes' GetOptions ("0": the apiserver's cache may answer)."""
        info = kinds.for_class(cls)
        out = await self._read(self._stub.Get, pb.GetRequest(resource=info.plural, namespace=self._ns(info, namespace),
                                                              name=name, resource_version=resource_version))
        return codec.from_envelope(out, cls)

    async def list(self, cls: type[M], *, namespace: str = "", label_selector: str = "",
                   field_selector: str = "", limit: int = 0, continue_: str = "",
                   resource_version: str = "") -> ObjectList[M]:
        info = kinds.for_class(cls)
        req = pb.ListRequest(resource=info.plural, namespace=self._ns(info, namespace),
                             label_selector=label_selector, field_selector=field_selector, limit=limit,
                             resource_version=resource_version, **{"continue": continue_})
        out: pb.ListResponse = await self._read(self._stub.List, req, timeout=max(self.timeout, 120))
        items = []
        for o in out.items:
            m = cls()
            m.ParseFromString(o.raw)
            items.append(m)
        rem = out.metadata.remaining_item_count if out.metadata.HasField("remaining_item_count") else None
        return ObjectList(items, out.metadata.resource_version, getattr(out.metadata, "continue"), rem)

    async def list_all(self, cls: type[M], *, page_size: int = 500, **kw: Any) -> ObjectList[M]:
        """All pages of a list, following `continue` tokens."""
        first = await self.list(cls, limit=page_size, **kw)
        items, token = list(first.items), first.continue_
        while token:
            page = await self.list(cls, limit=page_size, continue_=token, **kw)
            items.extend(page.items)
            token = page.continue_
        return ObjectList(items, first.resource_version)

    async def update(self, obj: M, *, dry_run: bool = False, field_manager: str = "") -> M:
        return await self._update(obj, "", dry_run, field_manager)

    async def update_status(self, obj: M, *, field_manager: str = "") -> M:
        return await self._update(obj, "status", False, field_manager)

    async def _update(self, obj: M, sub: str, dry_run: bool, field_manager: str) -> M:
        info = kinds.for_message(obj)
        req = pb.UpdateRequest(resource=info.plural, namespace=self._ns(info, meta_of(obj).namespace),
                               object=codec.to_envelope(obj), subresource=sub, dry_run=dry_run,
                               field_manager=field_manager)
        out = await self._call(self._stub.Update, req)
        return codec.from_envelope(out, type(obj))

    async def patch(self, cls: type[M], name: str, patch: Mapping[str, Any] | builtins.list[Any], *,
                    namespace: str = "", patch_type: str = "strategic", subresource: str = "",
                    dry_run: bool = False, field_manager: str = "") -> M:
        info = kinds.for_class(cls)
        req = pb.PatchRequest(resource=info.plural, namespace=self._ns(info, namespace), name=name,
                              patch_type=PATCH_TYPES.get(patch_type, patch_type),
                              patch=json.dumps(patch).encode(), subresource=subresource, dry_run=dry_run,
                              field_manager=field_manager)
        out = await self._call(self._stub.Patch, req)
        return codec.from_envelope(out, cls)

    async def delete(self, cls: type[M], name: str, *, namespace: str = "",
                     grace_period_seconds: int | None = None, propagation_policy: str | None = None,
                     uid: str | None = None, resource_version: str | None = None,
                     dry_run: bool = False) -> tuple[M, bool]:
        """Delete; returns (object as left by the call, True when it is gone from storage)."""
        info = kinds.for_class(cls)
        opts = meta.DeleteOptions()
        if grace_period_seconds is not None:
            opts.grace_period_seconds = grace_period_seconds
        if propagation_policy:
            opts.propagation_policy = propagation_policy
        if uid is not None:
            opts.preconditions.uid = uid
        if resource_version is not None:
            opts.preconditions.resource_version = resource_version
        if dry_run:
            opts.dry_run.append("All")
        out: pb.DeleteResponse = await self._call(
            self._stub.Delete, pb.DeleteRequest(resource=info.plural, namespace=self._ns(info, namespace),
                                                name=name, options=opts))
        return codec.from_envelope(out.object, cls), out.deleted

    async def bind(self, namespace: str, pod_name: str, node_name: str, *, uid: str = "") -> None:
        """pods/binding: the scheduler's only write."""
        b = core.Binding()
        b.metadata.name, b.metadata.namespace = pod_name, namespace
        if uid:
            b.metadata.uid = uid
        b.target.kind, b.target.name = "Node", node_name
        req = pb.CreateRequest(resource="pods", namespace=namespace, name=pod_name, subresource="binding",
                               object=codec.to_envelope(b))
        await self._call(self._stub.Create, req)

    async def create_token(self, namespace: str, service_account: str, *, audiences: Sequence[str] = (),
                           expiration_seconds: int | None = None, bound_pod: tuple[str, str] | None = None
                           ) -> authn.TokenRequest:
        """serviceaccounts/token: a token for `service_account` (TokenRequest), optionally bound to the pod
        `bound_pod` = (name, uid); the answer's status has the token and its expirationTimestamp."""
        tr = authn.TokenRequest()
        tr.spec.audiences.extend(audiences)
        if expiration_seconds is not None:
            tr.spec.expiration_seconds = expiration_seconds
        if bound_pod is not None:
            ref = tr.spec.bound_object_ref
            ref.kind, ref.api_version, (ref.name, ref.uid) = "Pod", "v1", bound_pod
        req = pb.CreateRequest(resource="serviceaccounts", namespace=namespace, name=service_account,
                               subresource="token", object=pb.Object(api_version="authentication.k8s.io/v1",
                                                                     kind="TokenRequest",
                                                                     raw=tr.SerializeToString()))
        out: pb.Object = await self._call(self._stub.Create, req)
        return authn.TokenRequest.FromString(out.raw)

    async def discovery(self) -> pb.DiscoveryResponse:
        out: pb.DiscoveryResponse = await self._read(self._stub.Discovery, pb.DiscoveryRequest())
        return out

    async def watch(self, cls: type[M], *, namespace: str = "", label_selector: str = "",
                    field_selector: str = "", resource_version: str = "", allow_bookmarks: bool = True,
                    timeout_seconds: int = 0) -> AsyncIterator[WatchEvent[M]]:
        """Events after `resource_version` ("" or "0": current objects first, as ADDED).

        Raises errors.Expired when the version was compacted (re-list, then watch again) and
        errors.Unavailable when the stream breaks; it ends normally only on the server's timeout."""
        info = kinds.for_class(cls)
        req = pb.WatchRequest(resource=info.plural, namespace=self._ns(info, namespace),
                              label_selector=label_selector, field_selector=field_selector,
                              resource_version=resource_version, allow_watch_bookmarks=allow_bookmarks,
                              timeout_seconds=timeout_seconds)
        call = self._stub.Watch(req, metadata=self._md)
        try:
            async for ev in call:
                if ev.type == "ERROR":
                    st = ev.status
                    cls_err = errors.BY_REASON.get(st.reason, errors.InternalError)
                    raise cls_err(st.message, reason=st.reason, code=st.code or None)
                m = cls()
                m.ParseFromString(ev.object.raw)
                yield WatchEvent(ev.type, m)
        except grpc.aio.AioRpcError as e:
            raise error_from_rpc(e) from None
        finally:
            call.cancel()

    async def pod_logs(self, namespace: str, name: str, *, container: str = "", follow: bool = False,
                       previous: bool = False, tail_lines: int = -1, timestamps: bool = False,
                       since_seconds: int = 0) -> AsyncIterator[bytes]:
        """A container's log, proxied by the apiserver from the pod's kubelet."""
        req = pb.PodLogsRequest(namespace=namespace, name=name, container=container, follow=follow,
                                previous=previous, tail_lines=tail_lines, timestamps=timestamps,
                                since_seconds=since_seconds)
        call = self._stub.PodLogs(req, metadata=self._md)
        try:
            async for chunk in call:
                yield chunk.data
        except grpc.aio.AioRpcError as e:
            raise error_from_rpc(e) from None
        finally:
            call.cancel()

    async def pod_exec(self, namespace: str, name: str, command: builtins.list[str], *, container: str = "",
                       stdin: AsyncIterator[bytes] | None = None, tty: bool = False,
                       attach: bool = False) -> AsyncIterator[pb.ExecOutput]:
        """Run a command in a container (or, `attach`, join its main process); yields stdout/stderr chunks and
        finally the exit code."""

        async def inputs() -> AsyncIterator[pb.ExecInput]:
            yield pb.ExecInput(start=pb.ExecStart(namespace=namespace, name=name, container=container,
                                                  command=command, stdin=stdin is not None, tty=tty, attach=attach))
            if stdin is not None:
                async for data in stdin:
                    yield pb.ExecInput(stdin=data)
                yield pb.ExecInput(close_stdin=True)

        call = self._stub.PodExec(inputs(), metadata=self._md)
        try:
            async for out in call:
                yield out
        except grpc.aio.AioRpcError as e:
            raise error_from_rpc(e) from None
        finally:
            call.cancel()

    async def pod_port_forward(self, namespace: str, name: str, port: int,
                               data: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """One TCP connection to `port` inside the pod (through the apiserver and the pod's kubelet): `data`
        is sent (its end half-closes the connection), the pod's bytes are yielded until it closes."""

        async def inputs() -> AsyncIterator[pb.PortForwardInput]:
            yield pb.PortForwardInput(start=pb.PortForwardStart(namespace=namespace, name=name, port=port))
            async for chunk in data:
                yield pb.PortForwardInput(data=chunk)
            yield pb.PortForwardInput(close_write=True)

        call = self._stub.PodPortForward(inputs(), metadata=self._md)
        try:
            async for out in call:
                yield out.data
        except grpc.aio.AioRpcError as e:
            raise error_from_rpc(e) from None
        finally:
            call.cancel()

    async def etcd_snapshot(self) -> AsyncIterator[pb.EtcdSnapshotChunk]:
        """etcd's snapshot, streamed by the apiserver (admins only); no deadline, a large database takes time."""
        call = self._stub.EtcdSnapshot(pb.EtcdSnapshotRequest(), metadata=self._md)
        try:
            async for chunk in call:
                yield chunk
        except grpc.aio.AioRpcError as e:
            raise error_from_rpc(e) from None
        finally:
            call.cancel()

    async def etcd_status(self) -> pb.EtcdStatusResponse:
        """etcd's members with leader, raft term/index, revision, DB size and version, as the apiserver reads them
        (any authenticated user)."""
        out: pb.EtcdStatusResponse = await self._call(self._stub.EtcdStatus, pb.EtcdStatusRequest())
        return out

    async def node_stats(self, node: str) -> pb.StatsSummary:
        """The node's resource usage summary from its kubelet, through the apiserver (nodes/proxy)."""
        out: pb.StatsSummary = await self._call(self._stub.NodeStats, pb.NodeStatsRequest(node=node))
        return out
