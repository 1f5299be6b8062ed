"""Every component's HTTP side: /metrics (prometheus-client), /healthz, /livez, /readyz.

One small asyncio HTTP server; components register readiness checks (apiserver: etcd reachable,
kubelet: containerd answers) and their metrics live in prometheus-client's default registry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest

log = logging.getLogger("pybernetes.metrics")


def _asyncio_tasks() -> float:
    try:
        return float(len(asyncio.all_tasks()))
    except RuntimeError:  # scraped outside the event loop
        return 0.0


# Read at scrape time, inside the loop that serves /metrics: leaked tasks show as growth (bench/soak.py).
ASYNCIO_TASKS = Gauge("pybernetes_asyncio_tasks", "asyncio tasks in the component's event loop.")
ASYNCIO_TASKS.set_function(_asyncio_tasks)

Check = Callable[[], Awaitable[None]]


class HealthServer:
    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.ready_checks: dict[str, Check] = {}
        self.live_checks: dict[str, Check] = {}
        self._server: asyncio.AbstractServer | None = None

    def add_ready_check(self, name: str, check: Check) -> None:
        self.ready_checks[name] = check

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        sock = self._server.sockets[0]
        self.port = int(sock.getsockname()[1])
        return self.port

    async def stop(self) -> None:
        if self._server:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _run_checks(self, checks: dict[str, Check]) -> tuple[bool, str]:
        lines, ok = [], True
        for name, check in checks.items():
            try:
                await asyncio.wait_for(check(), 2.0)
                lines.append(f"[+]{name} ok")
            except Exception as e:
                ok = False
                lines.append(f"[-]{name} failed: {e}")
        lines.append("ok" if ok else "check failed")
        return ok, "\n".join(lines) + "\n"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            path = head.split(b" ", 2)[1].decode().split("?", 1)[0]
            status, ctype, body = 200, "text/plain; charset=utf-8", b""
            if path == "/metrics":
                ctype, body = CONTENT_TYPE_LATEST, generate_latest()
            elif path in ("/healthz", "/livez"):
                ok, text = await self._run_checks(self.live_checks)
                status, body = (200 if ok else 500), (b"ok" if ok else text.encode())
            elif path == "/readyz":
                ok, text = await self._run_checks({**self.live_checks, **self.ready_checks})
                status, body = (200 if ok else 500), (b"ok" if ok else text.encode())
            else:
                status, body = 404, b"not found\n"
            reason = {200: "OK", 404: "Not Found", 500: "Internal Server Error"}[status]
            writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                         "Connection: close\r\n\r\n".encode() + body)
            await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError, IndexError):
            pass
        finally:
            writer.close()
