"""The one place gRPC channels and servers are built (message limits, keepalive, auth metadata, TLS).

Every component composes these, so TLS and authentication change here only. Object lists can be large
(10,000 pods is ~10 MB), hence the raised message limits.

TLS: `channel(target, tls=ChannelTLS(ca, cert, key))` verifies the server against the kubeconfig's CA and
presents the client certificate; `bind(srv, address, tls=ServerTLS(...))` serves TLS and, with a client CA,
mTLS. grpc's Python API knows two client-certificate modes only: not asked for, or required and verified
(`require_client_auth`; there is no "optional but verified" as Go's VerifyClientCertIfGiven), so the
apiserver's gRPC port requires one: a certificate from another CA, self-signed or expired is refused at the
handshake, and every gRPC client carries one (its kubeconfig's). `peer_certificate(context)` is the
verified certificate of a call. Without `tls` a channel or port is plaintext (the kubelet's gRPC port, benches'
relays). `prepend` puts back the first message of a client stream read early (to see what it names).
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import grpc
from google.protobuf.message import DecodeError

from pybernetes import certinfo
from pybernetes.api.meta.v1 import meta_pb2 as meta
from pybernetes.errors import ApiError, BadRequest

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
CONNECT_TIMEOUT_MS = 20_000  # grpc.min_reconnect_backoff_ms: see _COMMON

_COMMON: list[tuple[str, int]] = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    # gRPC's default reconnect backoff grows to 120 s: after a long apiserver outage, clients would sit out
    # up to two more minutes. Cap it so every component is back within seconds of the server.
    ("grpc.initial_reconnect_backoff_ms", 500),
    ("grpc.max_reconnect_backoff_ms", 3000),
    # Not a backoff despite its name: the least time one connection attempt (TCP and the TLS handshake) gets.
    # gRPC's 20 s default: at 0.5 s, handshakes with a busy server or a VM under emulation timed out and a
    # call failed "failed to connect to all addresses" with the server up.
    ("grpc.min_reconnect_backoff_ms", CONNECT_TIMEOUT_MS),
]

AUTH_HEADER = "authorization"
# Trailing metadata key carrying the meta.v1.Status of an error.
STATUS_KEY = "pb-status-bin"


@dataclass(frozen=True)
class ChannelTLS:
    """What a client trusts (the cluster CA, PEM) and presents (its certificate and key, PEM; empty: none)."""
    ca_pem: bytes
    cert_pem: bytes = b""
    key_pem: bytes = b""

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(self.ca_pem or None, self.key_pem or None, self.cert_pem or None)


@dataclass(frozen=True)
class ServerTLS:
    """A serving certificate and key (PEM) and, for mTLS, the CA client certificates must be signed by."""
    cert_pem: bytes
    key_pem: bytes
    client_ca_pem: bytes = b""

    def credentials(self) -> grpc.ServerCredentials:
        ca = self.client_ca_pem or None
        return grpc.ssl_server_credentials([(self.key_pem, self.cert_pem)], root_certificates=ca,
                                           require_client_auth=ca is not None)


def channel(target: str, *, extra_options: Sequence[tuple[str, int | str]] = (),
            tls: ChannelTLS | None = None) -> grpc.aio.Channel:
    """A client channel to `target` (host:port or unix:/path); TLS with `tls`, else plaintext."""
    target = target.removeprefix("grpc://").removeprefix("http://").removeprefix("https://")
    options = [*_COMMON, *extra_options]
    if tls is None:
        return grpc.aio.insecure_channel(target, options=options)
    return grpc.aio.secure_channel(target, tls.credentials(), options=options)


def server(*, extra_options: Sequence[tuple[str, int | str]] = (),
           interceptors: Sequence[grpc.aio.ServerInterceptor] = ()) -> grpc.aio.Server:
    return grpc.aio.server(
        options=[*_COMMON, ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
                 ("grpc.so_reuseport", 0), *extra_options],
        interceptors=[_UndecodableIsBadRequest(), *interceptors],
    )


@dataclass(frozen=True)
class _Undecodable:
    error: str


class _UndecodableIsBadRequest(grpc.aio.ServerInterceptor):  # type: ignore[misc]  # grpc's stub: untyped base
    """A request that does not parse as its message is a BadRequest with a Status, as every other refusal.

    Without this, grpc answers a corrupt request with UNKNOWN ("Unexpected DecodeError") and no Status.
    The request's deserializer returns a marker instead of raising; the method aborts on the marker."""

    async def intercept_service(self, continuation: Callable[[Any], Awaitable[Any]], details: Any) -> Any:
        handler = await continuation(details)
        if handler is None or handler.request_deserializer is None or handler.request_streaming:
            return handler
        parse = handler.request_deserializer

        def lenient(data: bytes) -> Any:
            try:
                return parse(data)
            except DecodeError as e:
                return _Undecodable(str(e))

        async def refuse(request: _Undecodable, context: Any) -> NoReturn:
            await abort(context, BadRequest(f"cannot decode the request: {request.error}"))

        if handler.response_streaming:
            inner_stream = handler.unary_stream

            async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
                if isinstance(request, _Undecodable):
                    await refuse(request, context)
                async for item in inner_stream(request, context):
                    yield item

            return grpc.unary_stream_rpc_method_handler(stream, request_deserializer=lenient,
                                                        response_serializer=handler.response_serializer)
        inner = handler.unary_unary

        async def unary(request: Any, context: Any) -> Any:
            if isinstance(request, _Undecodable):
                await refuse(request, context)
            return await inner(request, context)

        return grpc.unary_unary_rpc_method_handler(unary, request_deserializer=lenient,
                                                   response_serializer=handler.response_serializer)


def bind(srv: grpc.aio.Server, address: str, *, tls: ServerTLS | None = None) -> int:
    """Listen on address ("127.0.0.1:6443", "0.0.0.0:0" for a free port), TLS with `tls`; returns the port."""
    port: int = (srv.add_secure_port(address, tls.credentials()) if tls is not None
                 else srv.add_insecure_port(address))
    if port == 0:
        raise OSError(f"cannot listen on {address}")
    return port


def peer_certificate(context: Any) -> bytes | None:
    """The client certificate of a call (DER), as the TLS handshake verified it (None on a plaintext port)."""
    pems = context.auth_context().get("x509_pem_cert") or []
    return _pem_to_der(pems[0]) if pems else None


# A connection presents the same certificate on every call: decode it once per certificate, not per call.
_pem_to_der = functools.lru_cache(maxsize=1024)(certinfo.pem_to_der)


T = TypeVar("T")


async def prepend(first: T | None, rest: AsyncIterator[T]) -> AsyncIterator[T]:
    """A client stream whose first message was already read (to authorize or route what it names)."""
    if first is not None:
        yield first
    async for msg in rest:
        yield msg


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return ((AUTH_HEADER, f"Bearer {token}"),) if token else ()


def status_of(e: ApiError) -> meta.Status:
    """The meta.v1.Status an API error travels as (pybernetes.client turns it back into the same class)."""
    st = meta.Status(status="Failure", message=e.message, reason=e.reason, code=e.code)
    st.details.kind, st.details.name = e.kind, e.name
    st.details.retry_after_seconds = e.retry_after_seconds
    for c in e.causes:
        st.details.causes.add(field=c.path, message=c.message, reason=c.reason)
    return st


async def abort(context: Any, e: ApiError) -> NoReturn:
    """End a server call with `e`: its gRPC code, and its Status in trailing metadata."""
    await context.abort(e.grpc_code, e.message, trailing_metadata=((STATUS_KEY, status_of(e).SerializeToString()),))
    raise AssertionError("unreachable: context.abort raises")
