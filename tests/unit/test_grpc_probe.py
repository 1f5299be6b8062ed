"""The kubelet's gRPC health probe against a real gRPC server speaking grpc.health.v1 on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from node_agent import grpc_probe
from pybernetes import rpc


def test_encoding() -> None:
    assert grpc_probe.encode_request("") == b""
    assert grpc_probe.encode_request("web") == b"\x0a\x03web"
    assert grpc_probe.decode_status(b"\x08\x01") == grpc_probe.SERVING
    assert grpc_probe.decode_status(b"") == 0


@pytest.fixture
async def health_server() -> AsyncIterator[tuple[int, dict[str, int]]]:
    statuses = {"": 1, "web": 1, "db": 2}

    async def check(request: bytes, context: Any) -> bytes:
        service = request[2:].decode() if request else ""
        if service not in statuses:
            await context.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
        return b"\x08" + bytes([statuses[service]])

    handler = grpc.method_handlers_generic_handler("grpc.health.v1.Health", {
        "Check": grpc.unary_unary_rpc_method_handler(check, request_deserializer=None, response_serializer=None)})
    srv = rpc.server()
    srv.add_generic_rpc_handlers((handler,))
    port = rpc.bind(srv, "127.0.0.1:0")
    await srv.start()
    try:
        yield port, statuses
    finally:
        await srv.stop(0)


async def test_check_serving_not_serving_and_unreachable(health_server: tuple[int, dict[str, int]]) -> None:
    port, statuses = health_server
    assert (await grpc_probe.check(f"127.0.0.1:{port}", "", 2))[0]
    assert (await grpc_probe.check(f"127.0.0.1:{port}", "web", 2))[0]
    ok, msg = await grpc_probe.check(f"127.0.0.1:{port}", "db", 2)
    assert not ok and "NOT_SERVING" in msg
    statuses["web"] = 2
    assert not (await grpc_probe.check(f"127.0.0.1:{port}", "web", 2))[0]
    ok, msg = await grpc_probe.check("127.0.0.1:1", "", 1)
    assert not ok and "failed to connect" in msg
