"""The WebSocket upgrade the streaming pod subresources share (pods/exec and pods/attach: streams.py;
pods/portforward: portforward.py).

A request that is not a WebSocket upgrade offering one of the subresource's subprotocols is refused with a 400
Status before anything is sent (SPDY, which older kubectl tries after a failed WebSocket upgrade, named as such);
otherwise the handshake picks the subprotocol. After the stream, `hang_up` ends the connection.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

from pybernetes import errors


def offered_protocols(request: web.Request) -> list[str]:
    """The subprotocols the client offers (Sec-WebSocket-Protocol), in its order."""
    return [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]


def refuse_unless_websocket(request: web.Request, subresource: str, protocols: Sequence[str], hint: str) -> None:
    """BadRequest unless `request` is a WebSocket upgrade offering one of `protocols` for pods/`subresource`;
    `hint` says which clients speak it."""
    upgrade = request.headers.get("Upgrade", "").lower()
    speaks = ", ".join(protocols)
    if "spdy" in upgrade:
        raise errors.BadRequest(f"SPDY is not supported for pods/{subresource}: this server speaks WebSocket "
                                f"({speaks}); {hint}")
    if upgrade != "websocket":
        raise errors.BadRequest(f"Upgrade request required: pods/{subresource} is a WebSocket stream ({speaks})")
    offered = offered_protocols(request)
    if not set(offered) & set(protocols):
        raise errors.BadRequest(f"pods/{subresource} needs one of the WebSocket subprotocols {speaks} "
                                f"(Sec-WebSocket-Protocol; offered: {', '.join(offered) or 'none'}); {hint}")


async def upgrade(request: web.Request, protocols: Sequence[str]) -> tuple[web.WebSocketResponse, str]:
    """The WebSocket handshake for a request `refuse_unless_websocket` let through, and the subprotocol chosen:
    the client's first offer among `protocols`."""
    ws = web.WebSocketResponse(protocols=protocols, autoping=True)
    ready = ws.can_prepare(request)
    if not ready.ok or ready.protocol is None:  # refuse_unless_websocket was skipped
        raise errors.BadRequest(f"a WebSocket upgrade with one of the subprotocols {', '.join(protocols)} is needed")
    await ws.prepare(request)
    return ws, ready.protocol


async def hang_up(request: web.Request, ws: web.WebSocketResponse) -> None:
    """Close the WebSocket, then drop the connection rather than wait for a TLS close_notify that WebSocket
    clients (the Python client's websocket-client) never send."""
    await ws.close()
    if request.transport is not None:
        request.transport.abort()
