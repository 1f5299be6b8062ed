"""Every component's HTTP side: /metrics (prometheus-client), /healthz, /livez, /readyz.

One small asyncio HTTP server; components register readiness checks (apiserver: etcd reachable,
kubelet: containerd answers) and their metrics live in prometheus-client's default registry.
Given a `SecureServing` (pybernetes.secureserving: the component has a --client-ca-file) it serves HTTPS and
every path but the health ones needs an authenticated, authorized caller; without one, plain HTTP to anyone.
`metrics=False` serves the health paths only (kube-proxy's healthz port).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, Gauge, disable_created_metrics, generate_latest

from pybernetes.secureserving import SecureServing, is_loopback

log = logging.getLogger("pybernetes.metrics")

# No `_created` series: Kubernetes' components (Go's client) expose none, and prometheus_client adds one per
# counter and histogram child, which every scrape renders and stores.
disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped in prometheus_client


def _asyncio_tasks() -> float:
    try:
        return float(len(asyncio.all_tasks()))
    except RuntimeError:  # scraped outside the event loop
        return 0.0


# Read at scrape time, inside the loop that serves /metrics: leaked tasks show as growth (bench/soak.py).
ASYNCIO_TASKS = Gauge("pybernetes_asyncio_tasks", "asyncio tasks in the component's event loop.")
ASYNCIO_TASKS.set_function(_asyncio_tasks)

Check = Callable[[], Awaitable[None]]

# Connections stay open between requests, as Go's servers keep them (Prometheus reuses one per target, and
# a scrape then pays no TLS handshake): the first request must come within FIRST_REQUEST_TIMEOUT, the next
# within IDLE_TIMEOUT (longer than any scrape interval; Go's transports drop idle connections after 90 s).
FIRST_REQUEST_TIMEOUT = 10.0
IDLE_TIMEOUT = 120.0


def _peer_der(writer: asyncio.StreamWriter) -> bytes | None:
    """The client certificate the TLS handshake verified (DER), if the client sent one."""
    ssl_object = writer.get_extra_info("ssl_object")
    return ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None


class HealthServer:
    def __init__(self, host: str, port: int, serving: SecureServing | None = None, *, metrics: bool = True,
                 name: str = "health") -> None:
        self.host = host
        self.port = port
        self.serving = serving
        self.metrics = metrics
        self.name = name
        self.ready_checks: dict[str, Check] = {}
        self.live_checks: dict[str, Check] = {}
        self._server: asyncio.AbstractServer | None = None
        self._conns: set[asyncio.StreamWriter] = set()

    def add_ready_check(self, name: str, check: Check) -> None:
        self.ready_checks[name] = check

    async def start(self) -> int:
        ctx = self.serving.context if self.serving is not None else None
        self._server = await asyncio.start_server(self._handle, self.host, self.port, ssl=ctx)
        sock = self._server.sockets[0]
        self.port = int(sock.getsockname()[1])
        if self.serving is not None:
            log.info("%s serving scheme=https address=%s:%d authn=x509 authz=required", self.name, self.host,
                     self.port)
        elif self.metrics and not is_loopback(self.host):
            log.warning("%s serving scheme=http address=%s:%d: /metrics unauthenticated on a non-loopback address "
                        "(give --client-ca-file to require an authorized client certificate)", self.name,
                        self.host, self.port)
        return self.port

    @property
    def scheme(self) -> str:
        return "https" if self.serving is not None else "http"

    async def stop(self) -> None:
        if self._server:
            self._server.close()
            for writer in list(self._conns):  # kept-alive connections end with the server
                writer.close()
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
        """One connection: requests until the client closes it, asks to, or idles past IDLE_TIMEOUT."""
        self._conns.add(writer)
        try:
            timeout = FIRST_REQUEST_TIMEOUT
            while await self._serve_one(reader, writer, timeout):
                timeout = IDLE_TIMEOUT
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError, IndexError, ValueError):
            pass
        finally:
            self._conns.discard(writer)
            writer.close()

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float) -> bool:
        """Answer one request; whether the connection stays open for another."""
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        method, target, version = head.split(b"\r\n", 1)[0].split(b" ", 2)
        headers = head.lower()
        # HTTP/1.1 keeps a connection unless asked not to; a request with a body (none here takes one) ends it
        keep = (version.strip() == b"HTTP/1.1" and b"\r\nconnection: close" not in headers
                and b"\r\ncontent-length:" not in headers and b"\r\ntransfer-encoding:" not in headers)
        path = target.decode().split("?", 1)[0]
        status, ctype, body = 200, "text/plain; charset=utf-8", b""
        refused = None if self.serving is None else await self.serving.check(
            _peer_der(writer), method.decode(), path)
        if refused is not None:
            (status, body), ctype = refused, "application/json"
        elif path == "/metrics" and self.metrics:
            ctype, body = CONTENT_TYPE_LATEST, generate_latest()
        elif path in ("/healthz", "/livez"):
            ok, text = await self._run_checks(self.live_checks)
            status, body = (200 if ok else 500), (b"ok" if ok else text.encode())
        elif path == "/readyz":
            ok, text = await self._run_checks({**self.live_checks, **self.ready_checks})
            status, body = (200 if ok else 500), (b"ok" if ok else text.encode())
        else:
            status, body = 404, b"not found\n"
        reason = {200: "OK", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
                  500: "Internal Server Error"}[status]
        writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                     f"Connection: {'keep-alive' if keep else 'close'}\r\n\r\n".encode() + body)
        await writer.drain()
        return keep

