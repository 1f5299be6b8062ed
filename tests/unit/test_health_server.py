"""pybernetes.metrics.HealthServer's connections: kept alive between requests (a scraper reuses one, as with
Go's servers), closed when the client asks, for HTTP/1.0, and when the server stops."""

from __future__ import annotations

import asyncio

from pybernetes.metrics import HealthServer


async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str,
                   extra: str = "", version: str = "HTTP/1.1") -> tuple[str, bytes]:
    writer.write(f"GET {path} {version}\r\nHost: x\r\n{extra}\r\n".encode())
    head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).decode()
    length = int(next(h.split(":")[1] for h in head.split("\r\n") if h.lower().startswith("content-length")))
    return head, await reader.readexactly(length)


async def _closed(reader: asyncio.StreamReader) -> bool:
    return await asyncio.wait_for(reader.read(1), 5) == b""


async def test_one_connection_serves_requests_until_the_client_asks_to_close() -> None:
    srv = HealthServer("127.0.0.1", 0)
    port = await srv.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for path in ("/healthz", "/metrics", "/readyz"):
            head, body = await _request(reader, writer, path)
            assert head.startswith("HTTP/1.1 200") and "Connection: keep-alive" in head and body
        head, _ = await _request(reader, writer, "/healthz", "Connection: close\r\n")
        assert "Connection: close" in head and await _closed(reader)
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        head, _ = await _request(reader, writer, "/healthz", version="HTTP/1.0")
        assert "Connection: close" in head and await _closed(reader)
        writer.close()
        # an idle kept-alive connection ends with the server
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await _request(reader, writer, "/livez")
    finally:
        await srv.stop()
    assert await _closed(reader)
    writer.close()
