"""SharedInformer: one Reflector + Store per collection, fanning events out to many handlers.

Callers: InformerFactory (shares one per kind/namespace/selector), controllers (add_event_handler,
lister(), wait_for_sync()). Handlers are plain synchronous callables that must be quick (they
enqueue keys); all run on the informer's task in event order, so each handler sees the events of
one object in order. A handler that raises is logged and skipped; it never stops the informer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic

from pybernetes.cache.lister import Lister
from pybernetes.cache.reflector import DeletedFinalStateUnknown, ListerWatcher, Reflector
from pybernetes.cache.store import IndexFunc, M, Store
from pybernetes.clock import Clock, RealClock

log = logging.getLogger(__name__)


@dataclass(eq=False)
class HandlerRegistration(Generic[M]):
    """Returned by add_event_handler; pass it to remove_event_handler."""

    on_add: Callable[[M], None] | None = None
    on_update: Callable[[M, M], None] | None = None
    on_delete: Callable[[M | DeletedFinalStateUnknown[M]], None] | None = None


class SharedInformer(Generic[M]):
    def __init__(
        self,
        lw: ListerWatcher[M],
        *,
        name: str = "",
        resync_period: float = 0.0,
        clock: Clock | None = None,
        indexers: dict[str, IndexFunc[M]] | None = None,
        detect_mutations: bool | None = None,
    ) -> None:
        self.name = name
        self.resync_period = resync_period
        self.clock: Clock = clock or RealClock()
        self.store: Store[M] = Store(indexers=indexers, detect_mutations=detect_mutations)
        self.reflector: Reflector[M] = Reflector(lw, self.store, self, name=name, clock=self.clock)
        self._handlers: list[HandlerRegistration[M]] = []
        self._task: asyncio.Task[None] | None = None
        self._stopped = asyncio.Event()

    # -- consumers ------------------------------------------------------------------------------

    def lister(self) -> Lister[M]:
        return Lister(self.store)

    def add_indexer(self, name: str, fn: IndexFunc[M]) -> None:
        self.store.add_indexer(name, fn)

    def has_indexer(self, name: str) -> bool:
        return self.store.has_indexer(name)

    def add_event_handler(
        self,
        on_add: Callable[[M], None] | None = None,
        on_update: Callable[[M, M], None] | None = None,
        on_delete: Callable[[M | DeletedFinalStateUnknown[M]], None] | None = None,
    ) -> HandlerRegistration[M]:
        reg = HandlerRegistration(on_add, on_update, on_delete)
        self._handlers.append(reg)
        # A late handler must still learn about everything already cached.
        if on_add is not None:
            for obj in self.store.list():
                self._call(on_add, obj, obj)
        return reg

    def remove_event_handler(self, reg: HandlerRegistration[M]) -> None:
        with contextlib.suppress(ValueError):
            self._handlers.remove(reg)

    def has_synced(self) -> bool:
        return self.reflector.has_synced()

    @property
    def last_sync_resource_version(self) -> str:
        return self.reflector.last_sync_resource_version

    async def wait_for_sync(self) -> bool:
        """Wait until the first list is in the store (True) or the informer stopped first (False)."""
        if self.has_synced() or self._stopped.is_set():
            return self.has_synced()
        waiters = [
            asyncio.ensure_future(self.reflector.synced.wait()),
            asyncio.ensure_future(self._stopped.wait()),
        ]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)
        return self.has_synced()

    # -- lifecycle ------------------------------------------------------------------------------

    async def run(self) -> None:
        log.info("informer starting informer=%s resync=%.1fs", self.name, self.resync_period)
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.reflector.run(), name=f"reflector-{self.name}")
                if self.resync_period > 0:
                    tg.create_task(self._resync_loop(), name=f"resync-{self.name}")
        finally:
            self._stopped.set()
            log.info("informer stopped informer=%s", self.name)

    def start(self) -> asyncio.Task[None]:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=f"informer-{self.name}")
        return self._task

    def started(self) -> bool:
        return self._task is not None

    async def stop(self) -> None:
        task = self._task
        if task is None:
            self._stopped.set()
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _resync_loop(self) -> None:
        while True:
            await self.clock.sleep(self.resync_period)
            if not self.has_synced():
                continue
            objs = self.store.list()
            log.debug("informer resync informer=%s objects=%d", self.name, len(objs))
            for obj in objs:
                self.on_update(obj, obj)

    # -- EventSink (called by the reflector) ----------------------------------------------------

    def on_add(self, obj: M) -> None:
        for reg in list(self._handlers):
            if reg.on_add is not None:
                self._call(reg.on_add, obj, obj)

    def on_update(self, old: M, new: M) -> None:
        for reg in list(self._handlers):
            if reg.on_update is not None:
                self._call(reg.on_update, new, old, new)

    def on_delete(self, obj: M | DeletedFinalStateUnknown[M]) -> None:
        for reg in list(self._handlers):
            if reg.on_delete is not None:
                self._call(reg.on_delete, obj, obj)

    def _call(self, fn: Callable[..., None], subject: M | DeletedFinalStateUnknown[M], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:
            meta = subject.obj.metadata if isinstance(subject, DeletedFinalStateUnknown) else subject.metadata
            log.exception("event handler failed informer=%s namespace=%s name=%s", self.name,
                          meta.namespace, meta.name)
