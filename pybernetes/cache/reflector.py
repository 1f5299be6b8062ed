"""The Reflector: keeps a Store equal to the server's collection by list, then watch.

Callers: SharedInformer (one per informer); usable alone to mirror a collection into a Store.
Protocol with the server, through a `ListerWatcher` (the InformerFactory adapts the real client):
  * list, replace the store, emitting adds/updates for what changed and DeletedFinalStateUnknown
    tombstones for objects that vanished while we were not watching;
  * watch from the list's resourceVersion; every event (bookmarks included) advances it;
  * `Expired` (version compacted) -> re-list; any other error or the stream ending -> back off
    (exponential, jittered, capped) and watch again from the last seen resourceVersion.
Store writes happen before the sink is told, so handlers always see the new state in listers.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from pybernetes.api.objects import KubeObject
from pybernetes.cache.store import Store
from pybernetes.clock import Clock, RealClock
from pybernetes.errors import Expired

log = logging.getLogger(__name__)

M = TypeVar("M", bound=KubeObject)
M_co = TypeVar("M_co", bound=KubeObject, covariant=True)
M_contra = TypeVar("M_contra", bound=KubeObject, contravariant=True)

ADDED = "ADDED"
MODIFIED = "MODIFIED"
DELETED = "DELETED"
BOOKMARK = "BOOKMARK"


@dataclass(frozen=True)
class ListResult(Generic[M_co]):
    items: list[M_co]
    resource_version: str


@dataclass(frozen=True)
class WatchEvent(Generic[M_co]):
    type: str
    object: M_co


@dataclass(frozen=True)
class DeletedFinalStateUnknown(Generic[M_co]):
    """Passed to on_delete when the delete was inferred from a re-list: `obj` is the last state we saw."""

    key: str
    obj: M_co


class ListerWatcher(Protocol[M_co]):
    async def list(self, *, resource_version: str) -> ListResult[M_co]: ...

    def watch(self, *, resource_version: str) -> AsyncIterator[WatchEvent[M_co]]:
        """Events after `resource_version`; raises Expired if that version is compacted."""
        ...


class EventSink(Protocol[M_contra]):
    def on_add(self, obj: M_contra) -> None: ...
    def on_update(self, old: M_contra, new: M_contra) -> None: ...
    def on_delete(self, obj: M_contra | DeletedFinalStateUnknown[M_contra]) -> None: ...


class WatchError(Exception):
    """The watch stream sent something we cannot apply; the reflector backs off and re-watches."""


class Reflector(Generic[M]):
    def __init__(
        self,
        lw: ListerWatcher[M],
        store: Store[M],
        sink: EventSink[M] | None = None,
        *,
        name: str = "",
        clock: Clock | None = None,
        initial_backoff: float = 0.8,
        max_backoff: float = 30.0,
        backoff_reset_after: float = 60.0,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.lw = lw
        self.store = store
        self.sink = sink
        self.name = name
        self.clock: Clock = clock or RealClock()
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.backoff_reset_after = backoff_reset_after
        self._rand = rand
        self.last_sync_resource_version = ""
        self.synced = asyncio.Event()
        self.lists = 0  # completed lists, for tests and debugging
        self._watch_events = 0

    def has_synced(self) -> bool:
        return self.synced.is_set()

    def backoff(self, failures: int) -> float:
        """Delay before retry number `failures` (1-based): doubling, capped, with up to +50% jitter."""
        base = min(self.max_backoff, self.initial_backoff * (2.0 ** min(failures - 1, 32)))
        return min(self.max_backoff, base * (1.0 + 0.5 * self._rand()))

    async def run(self) -> None:
        need_list = True
        failures = 0
        while True:
            if need_list:
                try:
                    await self._list()
                    need_list = False
                except Exception as exc:
                    failures += 1
                    delay = self.backoff(failures)
                    log.warning("list failed reflector=%s retry_in=%.2fs error=%r", self.name, delay, exc)
                    await self.clock.sleep(delay)
                    continue
            started = self.clock.now()
            self._watch_events = 0
            error: Exception | None = None
            try:
                await self._watch()
            except Exception as exc:
                error = exc
            if self._watch_events > 0 or self.clock.now() - started >= self.backoff_reset_after:
                failures = 0
            if isinstance(error, Expired):
                need_list = True
                log.info("watch expired, relisting reflector=%s rv=%s", self.name,
                         self.last_sync_resource_version)
                if failures == 0:
                    failures = 1  # relist at once, but back off if it keeps expiring with no progress
                    continue
            failures += 1
            delay = self.backoff(failures)
            if error is None or isinstance(error, Expired):
                log.info("watch ended reflector=%s rv=%s retry_in=%.2fs", self.name,
                         self.last_sync_resource_version, delay)
            else:
                log.warning("watch failed reflector=%s rv=%s retry_in=%.2fs error=%r", self.name,
                            self.last_sync_resource_version, delay, error)
            await self.clock.sleep(delay)

    async def _list(self) -> None:
        # An empty resourceVersion asks for a consistent (quorum) read: never Expired.
        result = await self.lw.list(resource_version="")
        store = self.store
        seen: set[str] = set()
        adds = updates = deletes = 0
        for obj in result.items:
            key = store.key_func(obj)
            seen.add(key)
            old = store.get_by_key(key)
            if old is None:
                store.add(obj)
                adds += 1
                if self.sink is not None:
                    self.sink.on_add(obj)
            elif not _same_version(old, obj):
                store.add(obj)
                updates += 1
                if self.sink is not None:
                    self.sink.on_update(old, obj)
        for key in [k for k in store.list_keys() if k not in seen]:
            gone = store.delete_key(key)
            if gone is None:
                continue
            deletes += 1
            if self.sink is not None:
                # We never saw the DELETED event: hand over the last known state as a tombstone.
                self.sink.on_delete(DeletedFinalStateUnknown(key, gone))
        self.last_sync_resource_version = result.resource_version
        self.lists += 1
        self.synced.set()
        log.info("listed reflector=%s rv=%s items=%d adds=%d updates=%d deletes=%d", self.name,
                 result.resource_version, len(result.items), adds, updates, deletes)

    async def _watch(self) -> None:
        stream = self.lw.watch(resource_version=self.last_sync_resource_version)
        try:
            async for event in stream:
                self._watch_events += 1
                self._apply(event)
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()

    def _apply(self, event: WatchEvent[M]) -> None:
        obj = event.object
        meta = obj.metadata
        if event.type == BOOKMARK:
            pass
        elif event.type in (ADDED, MODIFIED):
            old = self.store.add(obj)
            if self.sink is not None:
                if old is None:
                    self.sink.on_add(obj)
                else:
                    self.sink.on_update(old, obj)
        elif event.type == DELETED:
            self.store.delete(obj)
            if self.sink is not None:
                self.sink.on_delete(obj)
        else:
            raise WatchError(f"unexpected watch event type {event.type!r}")
        log.debug("watch event reflector=%s type=%s namespace=%s name=%s rv=%s", self.name, event.type,
                  meta.namespace, meta.name, meta.resource_version)
        if meta.resource_version:
            self.last_sync_resource_version = meta.resource_version


def _same_version(a: KubeObject, b: KubeObject) -> bool:
    rv = a.metadata.resource_version
    return a is b or (bool(rv) and rv == b.metadata.resource_version)
