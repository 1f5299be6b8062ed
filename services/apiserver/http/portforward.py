"""pods/portforward over WebSocket (`v4.channel.k8s.io`, as the kubelet's websocket port-forward speaks it and
the official Python client's `kubernetes.stream.portforward` uses), relayed through KubeletProxy.portforward.

`?ports=80&ports=8080` (or `ports=80,8080`): port i gets channels 2i (data, both ways) and 2i+1 (errors, from
the server); the server's first message on each names the port (two bytes, little-endian). One connection to
each port opens with the WebSocket; when the pod side closes, the port's error channel says so if it failed.
kubectl (1.30+) tunnels SPDY/3.1 inside the WebSocket instead (`SPDY/3.1+portforward.k8s.io`, spdy.py): per
local connection it opens an error stream and a data stream with headers streamType, port and requestID; the
data stream carries the bytes, the error stream a message if forwarding failed, and the server ends both. SPDY
without the WebSocket (client-go's fallback) gets a clear error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web

from pybernetes import errors
from pybernetes.api.rpc.v1 import rpc_pb2 as pb

from ..kubelet_proxy import KubeletProxy
from . import channels, spdy, websocket
from .routing import Target

log = logging.getLogger("pybernetes.apiserver.http")

TUNNEL = "SPDY/3.1+portforward.k8s.io"
PROTOCOLS = (channels.V4, TUNNEL)


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
    websocket.refuse_unless_websocket(request, "portforward", PROTOCOLS, "use kubectl 1.30 or newer, the Python "
                                      "client's kubernetes.stream.portforward, or `pbctl port-forward`")
    tunnel = TUNNEL in websocket.offered_protocols(request)
    ports = [] if tunnel else parse_ports(request.query)
    ws, _ = await websocket.upgrade(request, (TUNNEL,) if tunnel else PROTOCOLS)
    if tunnel:
        try:
            await _serve_spdy(ws, kubelets, t)
        finally:
            await websocket.hang_up(request, ws)
        return ws
    queues: list[asyncio.Queue[pb.PortForwardInput | None]] = [asyncio.Queue() for _ in ports]
    send_lock = asyncio.Lock()

    async def send(data: bytes) -> None:
        async with send_lock:
            await ws.send_bytes(data)

    async def one(i: int, port: int) -> None:
        await send(_port_header(2 * i, port))
        await send(_port_header(2 * i + 1, port))
        await _relay(kubelets, t, port, queues[i], send, lambda d: channels.frame(2 * i, d),
                     lambda d: channels.frame(2 * i + 1, d))

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
        await websocket.hang_up(request, ws)
    return ws


async def _relay(kubelets: KubeletProxy, t: Target, port: int, queue: asyncio.Queue[pb.PortForwardInput | None],
                 send: Callable[[bytes], Awaitable[None]], data_frame: Callable[[bytes], bytes],
                 error_frame: Callable[[bytes], bytes]) -> None:
    """One connection to the pod's `port`: the queued client bytes to it (None ends them), its bytes back as
    `data_frame`s; a failure as one `error_frame` (each protocol frames both its own way)."""
    start = pb.PortForwardStart(namespace=t.namespace, name=t.name, port=port)

    async def inputs() -> AsyncIterator[pb.PortForwardInput]:
        yield pb.PortForwardInput(start=start)
        while (msg := await queue.get()) is not None:
            yield msg

    try:
        async for out in kubelets.portforward(inputs()):
            await send(data_frame(out.data))
    except errors.ApiError as e:
        log.info("port-forward failed pod=%s/%s port=%d: %s", t.namespace, t.name, port, e.message)
        with contextlib.suppress(ConnectionError):
            await send(error_frame(e.message.encode()))


async def _binary_messages(ws: web.WebSocketResponse) -> AsyncIterator[bytes]:
    """The client's binary messages until it closes (text and control messages are no port's data)."""
    async for msg in ws:
        if msg.type == WSMsgType.BINARY:
            yield msg.data
        elif msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
            return


async def _read_client(ws: web.WebSocketResponse, queues: list[asyncio.Queue[pb.PortForwardInput | None]]) -> None:
    """Client frames on data channels -> that port's connection; the client's end half-closes them all."""
    try:
        async for data in _binary_messages(ws):
            try:
                channel, payload = channels.parse(data)
            except channels.FrameError:
                continue
            if channel % 2 == 0 and channel // 2 < len(queues) and payload:
                queues[channel // 2].put_nowait(pb.PortForwardInput(data=payload))
    finally:
        for q in queues:
            q.put_nowait(pb.PortForwardInput(close_write=True))
            q.put_nowait(None)


# -- kubectl: SPDY/3.1 inside the WebSocket ---------------------------------------------------------

class _Pair:
    """One local connection of kubectl: its data and error streams and the relay to the pod's port."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.data_id = 0
        self.error_id = 0
        self.inputs: asyncio.Queue[pb.PortForwardInput | None] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None


async def _serve_spdy(ws: web.WebSocketResponse, kubelets: KubeletProxy, t: Target) -> None:
    decoder, encoder = spdy.Decoder(), spdy.Encoder()
    lock = asyncio.Lock()
    pairs: dict[str, _Pair] = {}
    by_stream: dict[int, _Pair] = {}

    async def send(data: bytes) -> None:
        async with lock:
            await ws.send_bytes(data)

    async def relay(pair: _Pair) -> None:
        try:
            await _relay(kubelets, t, pair.port, pair.inputs, send, lambda d: encoder.data(pair.data_id, d),
                         lambda d: encoder.data(pair.error_id, d))
        finally:
            # Both streams end: kubectl waits for the data stream, then reads the error stream to its end.
            with contextlib.suppress(ConnectionError):
                await send(encoder.data(pair.data_id, b"", fin=True))
                await send(encoder.data(pair.error_id, b"", fin=True))

    def stream_opened(frame: spdy.Frame) -> None:
        h = frame.headers
        try:
            port = int(h.get("port", ""))
        except ValueError:
            port = 0
        pair = pairs.setdefault(h.get("requestid", ""), _Pair(port))
        if h.get("streamtype") == "data":
            pair.data_id = frame.stream_id
        else:
            pair.error_id = frame.stream_id
        by_stream[frame.stream_id] = pair
        if pair.data_id and pair.error_id and pair.task is None:
            pair.task = asyncio.create_task(relay(pair))

    try:
        async for data in _binary_messages(ws):
            for frame in decoder.feed(data):
                pair = by_stream.get(frame.stream_id)
                if frame.type == spdy.SYN_STREAM:
                    async with lock:  # header blocks share one zlib stream: compress and send in order
                        await ws.send_bytes(encoder.syn_reply(frame.stream_id))
                    stream_opened(frame)
                elif frame.type == 0 and pair is not None and frame.stream_id == pair.data_id:
                    if frame.data:
                        pair.inputs.put_nowait(pb.PortForwardInput(data=frame.data))
                    if frame.fin:
                        pair.inputs.put_nowait(pb.PortForwardInput(close_write=True))
                elif frame.type == spdy.RST_STREAM and pair is not None and frame.stream_id == pair.data_id:
                    if pair.task is not None:  # kubectl is done with this connection: close it at the pod
                        pair.inputs.put_nowait(None)  # (the relay then ends the streams, as kubectl waits for)
                elif frame.type == spdy.PING:
                    await send(encoder.ping(frame.value))
                elif frame.type == spdy.GOAWAY:
                    return
    except spdy.ProtocolError as e:
        log.info("port-forward tunnel closed pod=%s/%s: %s", t.namespace, t.name, e)
    finally:
        for p in pairs.values():
            p.inputs.put_nowait(None)
            if p.task is not None:
                p.task.cancel()
