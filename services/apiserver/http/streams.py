"""pods/log (plain text, streamed while following), pods/exec and pods/attach over WebSocket (channels.py's
framing), relayed through the same KubeletProxy as the gRPC PodLogs and PodExec (pods/portforward:
portforward.py).

Errors found before the stream starts (no such pod or container, no node yet, a bad query) are ordinary
Status responses; once a WebSocket is open they travel on its error channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import WSMsgType, web

from pybernetes import errors
from pybernetes.api import codec
from pybernetes.api.rpc.v1 import rpc_pb2 as pb

from ..kubelet_proxy import KubeletProxy
from . import channels, websocket
from .routing import Target

log = logging.getLogger("pybernetes.apiserver.http")

# How long a log request waits for the kubelet's first answer before sending headers (a followed log may
# stay silent for long; an error, such as no previous container, arrives at once and becomes a Status).
FIRST_CHUNK_WAIT = 0.5


def _bool(query: Any, name: str, default: bool = False) -> bool:
    value = query.get(name)
    if value is None:
        return default
    return str(value).lower() in ("1", "true", "yes", "")


def _int(query: Any, name: str, default: int) -> int:
    value = query.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise errors.BadRequest(f"{name}: invalid integer {value!r}") from None


# -- pods/log --------------------------------------------------------------------------------------

def log_request(query: Any, namespace: str, name: str) -> pb.PodLogsRequest:
    """The kubelet's PodLogsRequest for a REST pods/log query (PodLogOptions)."""
    since = _int(query, "sinceSeconds", 0)
    if query.get("sinceTime"):
        if since:
            raise errors.BadRequest("at most one of sinceTime or sinceSeconds may be specified")
        seconds, _ = codec.parse_time(str(query["sinceTime"]))
        since = max(1, math.ceil(time.time() - seconds))
    tail = _int(query, "tailLines", -1)
    limit = _int(query, "limitBytes", 0)
    if since < 0 or limit < 0:
        raise errors.BadRequest("sinceSeconds and limitBytes must be positive")
    return pb.PodLogsRequest(namespace=namespace, name=name, container=query.get("container", ""),
                             follow=_bool(query, "follow"), previous=_bool(query, "previous"),
                             tail_lines=tail, timestamps=_bool(query, "timestamps"), since_seconds=since,
                             limit_bytes=limit)


async def pod_log(request: web.Request, kubelets: KubeletProxy, t: Target) -> web.StreamResponse:
    req = log_request(request.query, t.namespace, t.name)
    chunks = kubelets.logs(req)
    first = asyncio.ensure_future(anext(chunks, None))
    try:
        done, _ = await asyncio.wait([first], timeout=FIRST_CHUNK_WAIT)
        if first in done:
            chunk = first.result()  # an error from the kubelet or the proxy: a Status response
            if chunk is None:
                return web.Response(body=b"", content_type="text/plain")
            if not req.follow:
                rest = b"".join([c.data async for c in chunks])
                return web.Response(body=chunk.data + rest, content_type="text/plain")
        resp = web.StreamResponse(headers={"Content-Type": "text/plain", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        try:
            chunk = await first
            while chunk is not None:
                await resp.write(chunk.data)
                chunk = await anext(chunks, None)
        except errors.ApiError as e:
            # Headers are gone: end the stream (kube-apiserver does the same when the kubelet fails mid-log).
            log.info("pod log stream ended pod=%s/%s: %s", t.namespace, t.name, e.message)
        await resp.write_eof()
        return resp
    finally:
        if not first.done():
            first.cancel()
        await chunks.aclose()  # cancels the kubelet call


# -- pods/exec, pods/attach ------------------------------------------------------------------

def exec_start(query: Any, namespace: str, name: str, attach: bool = False) -> tuple[pb.ExecStart, bool, bool]:
    """The kubelet's ExecStart for a REST pods/exec (or pods/attach) query, and whether stdout and stderr are
    wanted."""
    command = list(query.getall("command", []))
    if not command and not attach:
        raise errors.BadRequest("you must specify at least one command for the container")
    stdin, tty = _bool(query, "stdin"), _bool(query, "tty")
    stdout, stderr = _bool(query, "stdout"), _bool(query, "stderr")
    if not (stdin or stdout or stderr):
        raise errors.BadRequest("you must specify at least 1 of stdin, stdout, stderr")
    if tty and stderr:
        stderr = False  # a terminal merges stderr into stdout, as the kubelet's CRI exec does
    start = pb.ExecStart(namespace=namespace, name=name, container=query.get("container", ""), command=command,
                         stdin=stdin, tty=tty, attach=attach)
    return start, stdout, stderr


async def connect(request: web.Request, kubelets: KubeletProxy, t: Target) -> web.StreamResponse:
    start, want_out, want_err = exec_start(request.query, t.namespace, t.name, t.subresource == "attach")
    start.container = await kubelets.container_for(t.namespace, t.name, start.container)
    # The protocol last: kubectl retries a failed WebSocket upgrade over SPDY, and the error it then prints
    # must be the real one (no such pod or container), as kube-apiserver's is on either protocol.
    websocket.refuse_unless_websocket(request, t.subresource, channels.PROTOCOLS,
                                      "use kubectl 1.30 or newer, or a client that streams over WebSocket")
    ws, protocol = await websocket.upgrade(request, channels.PROTOCOLS)
    inputs: asyncio.Queue[pb.ExecInput | None] = asyncio.Queue()
    reader = asyncio.create_task(_read_client(ws, inputs, protocol == channels.V5))

    async def relay() -> AsyncIterator[pb.ExecInput]:
        yield pb.ExecInput(start=start)
        while (msg := await inputs.get()) is not None:
            yield msg

    try:
        async for out in kubelets.exec(relay()):
            kind = out.WhichOneof("output")
            if kind == "stdout" and want_out:
                await ws.send_bytes(channels.frame(channels.STDOUT, out.stdout))
            elif kind == "stderr" and want_err:
                await ws.send_bytes(channels.frame(channels.STDERR, out.stderr))
            elif kind == "exit_code":
                await ws.send_bytes(channels.encode_status(channels.exit_status(out.exit_code, list(start.command))))
                break
    except errors.ApiError as e:
        with contextlib.suppress(ConnectionError):
            await ws.send_bytes(channels.encode_status(channels.error_status(e.message, e.reason, e.code)))
    except ConnectionError:
        pass  # the client went away
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await websocket.hang_up(request, ws)
    return ws


async def _read_client(ws: web.WebSocketResponse, inputs: asyncio.Queue[pb.ExecInput | None], v5: bool) -> None:
    """Client frames -> kubelet inputs; the end of the client's side closes the command's stdin."""
    stdin_open = True
    try:
        async for msg in ws:
            if msg.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
                break
            data = msg.data if isinstance(msg.data, bytes) else str(msg.data).encode()
            try:
                channel, payload = channels.parse(data)
                if channel == channels.STDIN and stdin_open and payload:
                    inputs.put_nowait(pb.ExecInput(stdin=payload))
                elif channel == channels.RESIZE:
                    w, h = channels.resize(payload)
                    inputs.put_nowait(pb.ExecInput(resize=pb.TerminalSize(width=w, height=h)))
                elif v5 and channel == channels.CLOSE and channels.closed_channel(payload) == channels.STDIN:
                    if stdin_open:
                        stdin_open = False
                        inputs.put_nowait(pb.ExecInput(close_stdin=True))
            except channels.FrameError as e:
                log.info("ignoring a bad exec frame: %s", e)
    finally:
        if stdin_open:
            inputs.put_nowait(pb.ExecInput(close_stdin=True))
        inputs.put_nowait(None)
