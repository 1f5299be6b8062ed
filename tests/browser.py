"""Debian's headless Chromium driven through the DevTools protocol (a websocket, with aiohttp): no browser
download, no Playwright. Used by the dashboard's integration and e2e tests and bench/dashboard.py.

    async with Browser.launch(tmp_path) as page:
        await page.goto(url); await page.wait_for("document.title"); await page.screenshot(path)

`errors` collects the page's uncaught exceptions and console errors.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import shutil
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-dev-shm-usage", "--window-size=1280,800"]


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    def __init__(self, proc: asyncio.subprocess.Process, session: aiohttp.ClientSession,
                 ws: aiohttp.ClientWebSocketResponse) -> None:
        self.proc = proc
        self.session = session
        self.ws = ws
        self.errors: list[str] = []
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader = asyncio.create_task(self._read())
        self.target_session = ""

    @classmethod
    async def launch(cls, work_dir: Path, width: int = 1280, height: int = 800) -> Browser:
        exe = chromium()
        if exe is None:
            raise RuntimeError("chromium not installed (deploy/install-deps.sh installs it)")
        profile = work_dir / "chromium-profile"
        profile.mkdir(parents=True, exist_ok=True)
        proc = await asyncio.create_subprocess_exec(
            exe, *ARGS, f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
            if time.monotonic() > deadline or proc.returncode is not None:
                proc.kill()
                raise RuntimeError("chromium did not open its DevTools port")
            await asyncio.sleep(0.05)
        port, path = port_file.read_text().splitlines()[:2]
        session = aiohttp.ClientSession()
        ws = await session.ws_connect(f"ws://127.0.0.1:{port}{path}", max_msg_size=0)
        b = cls(proc, session, ws)
        target = await b.send("Target.createTarget", url="about:blank")
        attached = await b.send("Target.attachToTarget", targetId=target["targetId"], flatten=True)
        b.target_session = attached["sessionId"]
        for domain in ("Runtime.enable", "Page.enable", "Log.enable"):
            await b.send(domain, page=True)
        await b.send("Emulation.setDeviceMetricsOverride", page=True, width=width, height=height,
                     deviceScaleFactor=1, mobile=False)
        return b

    async def __aenter__(self) -> Browser:
        return self

    async def __aexit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.send("Browser.close"), 5)
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        await self.ws.close()
        await self.session.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()

    async def send(self, method: str, *, page: bool = False, **params: Any) -> dict[str, Any]:
        msg_id = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[msg_id] = fut
        msg: dict[str, Any] = {"id": msg_id, "method": method, "params": params}
        if page:
            msg["sessionId"] = self.target_session
        await self.ws.send_str(json.dumps(msg))
        return await asyncio.wait_for(fut, 30)

    async def _read(self) -> None:
        async for m in self.ws:
            if m.type != aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(m.data)
            if "id" in data:
                fut = self._waiting.pop(data["id"], None)
                if fut is not None and not fut.done():
                    if "error" in data:
                        fut.set_exception(RuntimeError(f"DevTools: {data['error']}"))
                    else:
                        fut.set_result(data.get("result", {}))
                continue
            self._event(data.get("method", ""), data.get("params", {}))

    def _event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Runtime.exceptionThrown":
            d = params.get("exceptionDetails", {})
            self.errors.append(f"exception: {d.get('exception', {}).get('description') or d.get('text')}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            self.errors.append("console.error: " + " ".join(str(a.get("value", a.get("description")))
                                                            for a in params.get("args", [])))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            self.errors.append(f"log: {params['entry'].get('text')} {params['entry'].get('url', '')}")

    async def goto(self, url: str) -> None:
        await self.send("Page.navigate", page=True, url=url)

    async def eval(self, expression: str) -> Any:
        r = await self.send("Runtime.evaluate", page=True, expression=expression, returnByValue=True,
                            awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"evaluating {expression!r}: {r['exceptionDetails'].get('text')}")
        return r.get("result", {}).get("value")

    async def wait_for(self, expression: str, timeout: float = 10.0, interval: float = 0.02) -> Any:
        """Evaluate until truthy; the value, or TimeoutError naming the expression."""
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(RuntimeError):  # the page may be between documents
                value = await self.eval(expression)
                if value:
                    return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"not true within {timeout}s: {expression}")
            await asyncio.sleep(interval)

    async def key(self, key: str, code: str, key_code: int) -> None:
        for kind in ("keyDown", "keyUp"):
            await self.send("Input.dispatchKeyEvent", page=True, type=kind, key=key, code=code,
                            windowsVirtualKeyCode=key_code)

    async def screenshot(self, path: Path) -> Path:
        r = await self.send("Page.captureScreenshot", page=True, format="png")
        path.write_bytes(base64.b64decode(r["data"]))
        return path
