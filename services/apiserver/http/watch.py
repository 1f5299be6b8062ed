"""Watch over HTTP: a chunked stream of JSON lines `{"type": ADDED|MODIFIED|DELETED|BOOKMARK|ERROR, "object": ...}`.

The events come from the same Rest.watch (the watch cache) as gRPC watches. Bookmarks when asked
(allowWatchBookmarks), timeoutSeconds (else kube-apiserver's 30-60 min), sendInitialEvents (the initial ADDED
events then a bookmark annotated k8s.io/initial-events-end), a too-old resourceVersion as an ERROR event with
a 410 Expired Status, and Tables (one row per event) for `kubectl get -w`.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
from typing import Any

from aiohttp import web
from google.protobuf.message import Message

from pybernetes import errors
from pybernetes.api import codec
from pybernetes.api.kinds import ResourceInfo

from ..metrics import count_request
from ..rest import Rest
from ..storage.watch_cache import Event
from . import status, tables
from .routing import Target

MIN_REQUEST_TIMEOUT = 1800.0  # kube-apiserver's --min-request-timeout: watches end after 1-2x this
INITIAL_EVENTS_END = "k8s.io/initial-events-end"


def _truthy(v: str | None) -> bool:
    return v is not None and v.lower() in ("1", "true", "yes")


def _bookmark(info: ResourceInfo, rv: int, initial_end: bool = False) -> dict[str, Any]:
    md: dict[str, Any] = {"resourceVersion": str(rv)}
    if initial_end:
        md["annotations"] = {INITIAL_EVENTS_END: "true"}
    return {"apiVersion": info.api_version, "kind": info.kind, "metadata": md}


def _object(info: ResourceInfo, msg: Message, table: bool, include: str) -> dict[str, Any]:
    if table:
        return tables.table(info, [msg], include=include)
    return codec.to_dict(msg)


async def serve(request: web.Request, rest: Rest, t: Target, table: bool) -> web.StreamResponse:
    q = request.query
    info = t.info
    initial = _truthy(q.get("sendInitialEvents"))
    rv = "" if initial else q.get("resourceVersion", "")
    bookmarks = _truthy(q.get("allowWatchBookmarks")) or initial
    include = q.get("includeObject", "Metadata")
    try:
        timeout = float(q["timeoutSeconds"]) if "timeoutSeconds" in q else \
            MIN_REQUEST_TIMEOUT * (1 + random.random())
        if not math.isfinite(timeout):  # "inf" (or "1e400") would hold the watch open forever
            raise ValueError(timeout)
    except ValueError:
        raise errors.BadRequest(f"invalid timeoutSeconds {q['timeoutSeconds']!r}") from None
    pending_error: errors.ApiError | None = None
    if initial and not q.get("resourceVersion"):
        await rest.catch_up(info.plural)
    try:
        info, w = rest.watch(info.plural, t.namespace, q.get("labelSelector", ""), q.get("fieldSelector", ""), rv,
                             bookmarks)
    except errors.Expired as e:
        pending_error, w = e, None  # Kubernetes reports a too-old version inside the stream
    initial_left = w.queue.qsize() if (w is not None and initial) else 0
    count_request("watch", info.plural, 200)
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json", "Cache-Control": "no-cache"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)

    def line(typ: str, obj: dict[str, Any]) -> bytes:
        return json.dumps({"type": typ, "object": obj}, separators=(",", ":")).encode() + b"\n"

    async def send(typ: str, obj: dict[str, Any]) -> None:
        await resp.write(line(typ, obj))

    encoding = ("json", info.api_version, info.kind, table, include)

    def encode(ev: Event) -> bytes:
        return line(ev.type, _object(info, info.cls.FromString(ev.raw), table, include))

    if pending_error is not None or w is None:
        assert pending_error is not None
        await send("ERROR", status.failure(pending_error))
        return resp
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last_rv = 0
    try:
        if initial and initial_left == 0:
            await send("BOOKMARK", _bookmark(info, rest.store.cache(info).rv, initial_end=True))
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                ev: Event = await asyncio.wait_for(w.queue.get(), remaining)
            except TimeoutError:
                break
            if ev.type == "ERROR":
                err = ev.error if isinstance(ev.error, errors.ApiError) else errors.Unavailable(str(ev.error))
                await send("ERROR", status.failure(err))
                break
            last_rv = max(last_rv, ev.rv)
            if ev.type == "BOOKMARK":
                await send("BOOKMARK", _bookmark(info, ev.rv))
                continue
            await resp.write(ev.encoded(encoding, encode))  # one encoding for every watcher the event goes to
            if initial_left:
                initial_left -= 1
                if initial_left == 0:
                    await send("BOOKMARK", _bookmark(info, max(last_rv, rest.store.cache(info).rv),
                                                     initial_end=True))
    except ConnectionResetError:
        pass  # the client went away
    finally:
        rest.unwatch(info, w)
    return resp
