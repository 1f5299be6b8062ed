"""pods/attach on the kubelet: join a running container's own stdin/stdout/stderr through the runtime's
streaming server, as Kubernetes' kubelet does (CRI Attach returns a URL; the stream speaks the remotecommand
WebSocket protocol `v4.channel.k8s.io`: one leading byte per message names the channel, 0 stdin, 1 stdout,
2 stderr, 3 error (a final Status), 4 resize).

The relay turns it into the same ExecOutput stream as exec; the end is exit code 0, or 1 when the runtime's
error channel reports a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from pybernetes import errors, netns
from pybernetes.api.rpc.v1 import rpc_pb2 as pb

from .cri.client import CRIClient

log = logging.getLogger("pybernetes.kubelet.attach")

PROTOCOL = "v4.channel.k8s.io"
STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4


def _session(runtime_netns: str) -> aiohttp.ClientSession:
    """A client for the runtime's streaming server, which listens on the loopback of the runtime's network
    namespace: entered for the socket when the kubelet runs elsewhere (`--probe-netns`)."""
    if not runtime_netns:
        return aiohttp.ClientSession()

    def factory(addr: tuple[int, int, int, str, tuple[Any, ...]]) -> socket.socket:
        family, type_, proto = addr[0], addr[1], addr[2]
        return netns.socket_in(runtime_netns, family, type_, proto)

    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(socket_factory=factory))


async def attach(runtime: CRIClient, container_id: str, start: pb.ExecStart,
                 inputs: AsyncIterator[pb.ExecInput], runtime_netns: str = "") -> AsyncIterator[pb.ExecOutput]:
    url = await runtime.attach(container_id, tty=start.tty, stdin=start.stdin, stdout=True, stderr=not start.tty)
    session = _session(runtime_netns)
    try:
        try:
            ws = await session.ws_connect(url, protocols=(PROTOCOL,), autoping=True)
        except aiohttp.ClientError as e:
            raise errors.Unavailable(f"the runtime's streaming server refused the attach: {e}") from None

        async def feed() -> None:
            with contextlib.suppress(ConnectionError):
                async for msg in inputs:
                    kind = msg.WhichOneof("input")
                    if kind == "stdin":
                        await ws.send_bytes(bytes((STDIN,)) + msg.stdin)
                    elif kind == "resize":
                        size = {"Width": msg.resize.width, "Height": msg.resize.height}
                        await ws.send_bytes(bytes((RESIZE,)) + json.dumps(size).encode())
                    elif kind == "close_stdin":
                        return  # v4 has no way to close stdin alone; the process keeps it open

        feeder = asyncio.create_task(feed())
        failed = False
        try:
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.BINARY or not msg.data:
                    continue
                channel, payload = msg.data[0], msg.data[1:]
                if channel == STDOUT and payload:
                    yield pb.ExecOutput(stdout=payload)
                elif channel == STDERR and payload:
                    yield pb.ExecOutput(stderr=payload)
                elif channel == ERROR and payload:
                    log.info("attach ended with an error container=%s: %s", container_id[:12], payload[:200])
                    failed = True
        finally:
            feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feeder
            await ws.close()
        yield pb.ExecOutput(exit_code=1 if failed else 0)
    finally:
        await session.close()
