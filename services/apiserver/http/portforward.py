"""pods/portforward over WebSocket (`v4.channel.k8s.io`, as the kubelet's websocket port-forward speaks it and
the official Python client's `kubernetes.stream.portforward` uses), relayed through KubeletProxy.portforward.

`?ports=80&ports=8080` (or `ports=80,8080`): port i gets channels 2i (data, both ways) and 2i+1 (errors, from
the server); the server's first message on each names the port (two bytes, little-endian). One connection to
each port opens with the WebSocket; when the pod side closes, the port's error channel says so if it failed.
kubectl (1.30+) tunnels SPDY inside the WebSocket (`SPDY/3.1+portforward.k8s.io`), which this server does not
speak: it gets a clear error naming `pbctl port-forward`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import WSMsgType, web

from pybernetes import errors
from pybernetes.api.rpc.v1 import rpc_pb2 as pb

from ..kubelet_proxy import KubeletProxy
from . import channels
from .routing import Target

log = logging.getLogger("pybernetes.apiserver.http")

PROTOCOLS = (channels.V4,)


def parse_ports(query: Any) -> list[int]:
    out: list[int] = []
    for value in query.getall("ports", []):
        for part in str(value).split(","):
            try:
                port = int(part)
            except ValueError:
                raise errors.BadRequest(f"ports: invalid port {part!r}") from None
            if not 0 < port < 65536:
                raise errors.BadRequest(f"ports: {port} is not a valid port (1-65535)")
            out.append(port)
    if not out:
        raise errors.BadRequest("at least one port must be specified (?ports=N)")
    return out


def _port_header(channel: int, port: int) -> bytes:
    return channels.frame(channel, port.to_bytes(2, "little"))


async def serve(request: web.Request, kubelets: KubeletProxy, t: Target) -> web.StreamResponse:
    await kubelets.stub_for_pod(t.namespace, t.name)  # no such pod, not running: a Status, before upgrading
    offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
    if request.headers.get("Upgrade", "").lower() != "websocket" or not set(offered) & set(PROTOCOLS):
        raise errors.BadRequest(
            f"pods/portforward speaks WebSocket {channels.V4} (the Python client's kubernetes.stream.portforward); "
            f"SPDY and kubectl's SPDY-over-WebSocket tunnel ({', '.join(offered) or 'no subprotocol'}) are not "
            "supported: use `pbctl port-forward`")
    ports = parse_ports(request.query)
    ws = web.WebSocketResponse(protocols=PROTOCOLS, autoping=True)
    await ws.prepare(request)
    queues: list[asyncio.Queue[pb.PortForwardInput | None]] = [asyncio.Queue() for _ in ports]
    send_lock = asyncio.Lock()

    async def send(data: bytes) -> None:
        async with send_lock:
            await ws.send_bytes(data)

    async def one(i: int, port: int) -> None:
        await send(_port_header(2 * i, port))
        await send(_port_header(2 * i + 1, port))
        start = pb.PortForwardStart(namespace=t.namespace, name=t.name, port=port)

        async def inputs() -> AsyncIterator[pb.PortForwardInput]:
            yield pb.PortForwardInput(start=start)
            while (msg := await queues[i].get()) is not None:
                yield msg

        try:
            async for out in kubelets.portforward(inputs()):
                await send(channels.frame(2 * i, out.data))
        except errors.ApiError as e:
            log.info("port-forward failed pod=%s/%s port=%d: %s", t.namespace, t.name, port, e.message)
            with contextlib.suppress(ConnectionError):
                await send(channels.frame(2 * i + 1, e.message.encode()))

    relays = [asyncio.create_task(one(i, p)) for i, p in enumerate(ports)]
    reader = asyncio.create_task(_read_client(ws, queues))
    try:
        await asyncio.gather(*relays, return_exceptions=True)
    finally:
        reader.cancel()
        for r in relays:
            r.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await ws.close()
        if request.transport is not None:
            request.transport.abort()  # no TLS close_notify wait (see streams.connect)
    return ws


async def _read_client(ws: web.WebSocketResponse, queues: list[asyncio.Queue[pb.PortForwardInput | None]]) -> None:
    """Client frames on data channels -> that port's connection; the client's end half-closes them all."""
    try:
        async for msg in ws:
            if msg.type != WSMsgType.BINARY:
                if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                    break
                continue
            try:
                channel, payload = channels.parse(msg.data)
            except channels.FrameError:
                continue
            if channel % 2 == 0 and channel // 2 < len(queues) and payload:
                queues[channel // 2].put_nowait(pb.PortForwardInput(data=payload))
    finally:
        for q in queues:
            q.put_nowait(pb.PortForwardInput(close_write=True))
            q.put_nowait(None)
