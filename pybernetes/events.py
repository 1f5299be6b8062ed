"""Event recording (client-go's EventRecorder): `recorder.event(obj, "Normal", "Scheduled", "...")`.

Events are written in the background so a component's hot path never waits on them; a repeat of the
same (object, reason, message) within the aggregation window bumps `count` and `lastTimestamp` instead
of creating a new Event, as Kubernetes does. Times carry sub-second precision (eventTime is a MicroTime;
firstTimestamp/lastTimestamp keep their nanos too) so `pbctl trace` can order what happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time

from google.protobuf.message import Message

from pybernetes import errors
from pybernetes.api import kinds, objects
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.meta.v1 import meta_pb2 as meta
from pybernetes.client.client import Client

log = logging.getLogger("pybernetes.events")


class EventRecorder:
    def __init__(self, client: Client, component: str, host: str = "", *, queue_size: int = 1000) -> None:
        self.client = client
        self.component = component
        self.host = host
        self._queue: asyncio.Queue[core.Event] = asyncio.Queue(queue_size)
        self._seen: dict[tuple[str, str, str, str], tuple[str, int, float]] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"events-{self.component}")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def event(self, obj: Message, type_: str, reason: str, message: str) -> None:
        """Record an event about `obj` (Normal or Warning). Never blocks; drops when overloaded."""
        md = objects.meta_of(obj)
        info = kinds.for_message(obj)
        ev = core.Event()
        ev.metadata.namespace = md.namespace or "default"
        ev.metadata.name = f"{md.name}.{secrets.token_hex(8)}"
        io = ev.involved_object
        io.kind, io.namespace, io.name, io.uid = info.kind, md.namespace, md.name, md.uid
        io.api_version, io.resource_version = info.api_version, md.resource_version
        ev.reason, ev.message, ev.type = reason, message, type_
        ev.source.component, ev.source.host = self.component, self.host
        # eventTime makes reportingInstance and action required (as the events.k8s.io API does).
        ev.reporting_component, ev.reporting_instance = self.component, self.host or self.component
        ev.action = reason
        ev.count = 1
        t = _time(time.time_ns())
        ev.event_time.CopyFrom(t)
        ev.first_timestamp.CopyFrom(t)
        ev.last_timestamp.CopyFrom(t)
        log.info("event object=%s/%s kind=%s type=%s reason=%s message=%r", md.namespace, md.name, info.kind,
                 type_, reason, message)
        try:
            self._queue.put_nowait(ev)
        except asyncio.QueueFull:
            log.warning("event dropped (queue full) reason=%s object=%s/%s", reason, md.namespace, md.name)

    async def _run(self) -> None:
        while True:
            ev = await self._queue.get()
            try:
                await self._write(ev)
            except errors.ApiError as e:
                log.warning("event not written reason=%s error=%s", ev.reason, e)
            except Exception as e:  # never let event writing kill a component
                log.warning("event not written reason=%s error=%s", ev.reason, e)

    async def _write(self, ev: core.Event) -> None:
        io = ev.involved_object
        key = (io.uid or objects.key_for(io.namespace, io.name), ev.reason, ev.message, ev.type)
        seen = self._seen.get(key)
        now_ns = time.time_ns()
        now = now_ns / 1e9
        if seen and now - seen[2] < 600:
            name, count, _ = seen
            try:
                await self.client.patch(core.Event, name, {"count": count + 1,
                                                            "lastTimestamp": _iso(now_ns)},
                                        namespace=ev.metadata.namespace, patch_type="merge")
                self._seen[key] = (name, count + 1, now)
                return
            except errors.NotFound:
                pass
        created = await self.client.create(ev)
        self._seen[key] = (created.metadata.name, 1, now)
        if len(self._seen) > 4096:
            self._seen.clear()


def _time(ns: int) -> meta.Time:
    # Microseconds, as metav1.MicroTime serializes.
    return meta.Time(seconds=ns // 1_000_000_000, nanos=(ns % 1_000_000_000) // 1000 * 1000)


def _iso(ns: int) -> str:
    """RFC 3339 with microseconds."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000)) + \
        f".{(ns % 1_000_000_000) // 1000:06d}Z"
