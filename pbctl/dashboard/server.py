"""The dashboard's HTTP side: one page from `static/`, its state as server-sent events (`/events`: a snapshot,
then every change), and `/state` (the snapshot as JSON, for scripts and tests).

`Dashboard(client).start()` starts the informers, binds 127.0.0.1 (the given port, or a free one when it is
taken), waits for the informers' first lists and returns the page's URL; `stop()` undoes it. Used by
`pbctl.verbs.dashboard`, the tests and bench/dashboard.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from pathlib import Path
from typing import Any

from aiohttp import web

from pbctl.dashboard import health
from pbctl.dashboard.model import Model, attach
from pybernetes import ports
from pybernetes.cache import InformerFactory
from pybernetes.client.client import Client

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
KEEPALIVE = 15.0  # seconds between comments on an idle stream, so proxies and the page know it is alive
QUEUE_LIMIT = 5000  # a page this far behind is cut off; its EventSource reconnects and gets a fresh snapshot


def _frame(msg: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(msg, separators=(',', ':'))}\n\n".encode()


class Dashboard:
    def __init__(self, client: Client, *, host: str = "127.0.0.1", port: int = ports.DASHBOARD,
                 readyz_url: str = "", readyz_tls: ssl.SSLContext | None = None,
                 probe_interval: float = health.INTERVAL) -> None:
        self.client = client
        self.host = host
        self.port = port
        self.readyz_url = readyz_url
        self.readyz_tls = readyz_tls
        self.probe_interval = probe_interval
        self.model = Model()
        self.factory = InformerFactory(client)
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._probe: asyncio.Task[None] | None = None
        self._live: asyncio.Task[None] | None = None
        self._streams: set[asyncio.Queue[dict[str, Any] | None]] = set()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self._index)
        app.router.add_get("/events", self._events)
        app.router.add_get("/state", self._state)
        app.router.add_static("/static/", STATIC)
        return app

    async def start(self, sync_timeout: float = 30.0) -> str:
        """Serve, and return the URL once the first lists are in (or after `sync_timeout`: the page then fills
        in as they arrive)."""
        attach(self.model, self.factory)
        self.factory.start()
        self._live = asyncio.create_task(self._go_live(), name="dashboard-sync")
        self._probe = asyncio.create_task(health.probe_forever(self.model, self.client, self.readyz_url,
                                                               self.probe_interval, self.readyz_tls),
                                          name="dashboard-health")
        self._runner = web.AppRunner(self.app(), access_log=None, handler_cancellation=True)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, self.host, self.port).start()
        except OSError as e:
            log.info("dashboard port taken, using a free one port=%d error=%s", self.port, e)
            await web.TCPSite(self._runner, self.host, 0).start()
        host, port = self._runner.addresses[0][:2]
        self.port = int(port)
        self.url = f"http://{host}:{port}/"
        await asyncio.wait([self._live], timeout=sync_timeout)
        if not self._live.done():
            log.warning("dashboard serving before the first lists arrived (is the apiserver reachable?)")
        return self.url

    async def _go_live(self) -> None:
        await self.factory.wait_for_cache_sync()
        self.model.live = True
        st = self.model.state
        self.model.note("dashboard", "cluster", f"watching {len(st['nodes'])} nodes, {len(st['pods'])} pods, "
                        f"{len(st['services'])} services")

    async def stop(self) -> None:
        for q in list(self._streams):
            q.put_nowait(None)  # ends each open stream so the runner's cleanup does not wait for it
        for task in (self._probe, self._live):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._runner is not None:
            await self._runner.cleanup()
        await self.factory.shutdown()

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    async def _state(self, request: web.Request) -> web.Response:
        return web.json_response(self.model.snapshot())

    async def _events(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(QUEUE_LIMIT)

        def push(msg: dict[str, Any]) -> None:
            try:
                queue.put_nowait(msg)
            except asyncio.QueueFull:
                unsubscribe()
                queue.get_nowait()
                queue.put_nowait(None)

        unsubscribe = self.model.subscribe(push)
        self._streams.add(queue)
        try:
            await resp.write(_frame(self.model.snapshot()))
            while True:
                try:
                    msg = await asyncio.wait_for(queue.get(), KEEPALIVE)
                except TimeoutError:
                    await resp.write(b": keepalive\n\n")
                    continue
                batch = [msg]
                while not queue.empty():  # what arrived meanwhile goes in one write
                    batch.append(queue.get_nowait())
                if None in batch:
                    break
                await resp.write(b"".join(_frame(m) for m in batch if m is not None))
        except ConnectionResetError:
            pass  # the page went away
        finally:
            unsubscribe()
            self._streams.discard(queue)
        return resp
